"""Run the cells that are not cached yet: here in this process, or as Ray tasks (same results, same seeds).

Every finished cell is written to `DIR/cells/` at once (atomically: `qin_env.bench.io.write_atomic`),
so a run killed at any point resumes with only the missing cells; a cached cell that fails its
checks is reported and recomputed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qin_env.bench.leaderboard.cells import (
    CellTask,
    CorruptCell,
    evaluate_cell,
    other_version_cells,
    read_cell,
    write_cell,
)

BACKENDS = ("local", "ray")
Log = Callable[[str], None]


@dataclasses.dataclass
class RunReport:
    """What a run did: results by cell digest, and how many cells were cached, computed, corrupt or failed.

    `other_versions`: cached cells of these tasks made under another environment version, ignored.
    """

    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    cached: int = 0
    computed: int = 0
    other_versions: int = 0
    corrupt: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def _safe_evaluate(task: CellTask) -> dict[str, Any]:
    """evaluate_cell, with a failure returned as {"error": ...} so one broken agent does not stop the others."""
    try:
        return evaluate_cell(task)
    except Exception as exc:  # any agent code may fail; the report names the cell and the error
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return {"error": f"{type(exc).__name__}: {first_line}"}


def _local(tasks: Sequence[CellTask], done: Callable[[CellTask, dict[str, Any]], None], **_: Any) -> None:
    for task in tasks:
        done(task, _safe_evaluate(task))


def _ray_pythonpath() -> str:
    """The driver's import path, so a local Ray instance's workers import what the driver imports (plug-ins)."""
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([*inherited, *(p for p in sys.path if p and Path(p).is_dir())]))


def _ray(tasks: Sequence[CellTask], done: Callable[[CellTask, dict[str, Any]], None], *,
         ray_address: str | None = None, ray_cpus: int | None = None, **_: Any) -> None:
    try:
        import ray
    except ImportError:
        raise SystemExit("--backend ray needs Ray: pip install 'qin-env[ray]'") from None
    started = not ray.is_initialized()
    if started and ray_address:
        ray.init(address=ray_address, log_to_driver=False)
    elif started:
        ray.init(num_cpus=ray_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 object_store_memory=80 * 1024 * 1024,
                 runtime_env={"env_vars": {"PYTHONPATH": _ray_pythonpath()}})
    try:
        remote = ray.remote(num_cpus=1)(_safe_evaluate)
        pending = {remote.remote(task): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def run_cells(tasks: Sequence[CellTask], cells_dir: Path, backend: str = "local", *, ray_address: str | None = None,
              ray_cpus: int | None = None, progress: bool = True, log: Log = print) -> RunReport:
    """Results of every task: cached ones read and checked, the rest computed on `backend` and cached."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    report = RunReport(other_versions=other_version_cells(cells_dir, tasks))
    missing = []
    for task in tasks:
        try:
            result = read_cell(cells_dir, task)
        except CorruptCell as exc:
            log(f"corrupt cache entry, recomputing it: {exc}")
            report.corrupt.append(task.digest)
            result = None
        if result is None:
            missing.append(task)
        else:
            report.results[task.digest] = result
            report.cached += 1
    bar = tqdm(total=len(tasks), initial=report.cached, desc="leaderboard cells", unit="cell", disable=not progress,
               dynamic_ncols=True)

    def done(task: CellTask, result: dict[str, Any]) -> None:
        if "error" in result:
            report.failed[task.digest] = result["error"]
            log(f"cell failed: {task.agent} on {task.scenario} seed {task.seed}: {result['error']}")
        else:
            write_cell(cells_dir, task, result)
            report.results[task.digest] = result
            report.computed += 1
        bar.set_postfix_str(f"{task.agent} / {task.scenario}", refresh=False)
        bar.update(1)

    try:
        (_ray if backend == "ray" else _local)(missing, done, ray_address=ray_address, ray_cpus=ray_cpus)
    finally:
        bar.close()
    return report
