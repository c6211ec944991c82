"""Leaderboard cells: one (agent, scenario, seed) evaluation, its cache key, and its self-checking cache file.

A cell's key holds everything its result depends on: the agent (name or import path, the SHA-256
of its checkpoint; for a plug-in, its module, that file's SHA-256 and the distribution and version
it is installed from), the scenario with its config hash and overrides, the seed, the number of
episodes, the qin-env version and the environment version (`qin_env.version.ENV_VERSION`). The
file `DIR/cells/<hash>.json` is written atomically and carries a SHA-256 of its own content, so a
truncated, edited or foreign file is reported and recomputed, never trusted.

The evaluation is `qin_env.bench.evaluate.evaluate_agent`'s (the episodes of `qin_env.rollout`,
true team reward, KPIs averaged over the episode's slots) and keeps per-episode KPIs; compiled
functions are cached per agent and scenario in the process, so the seeds of one agent on one
scenario compile once (also inside a long-lived Ray worker).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qin_env import version as qin_version

CELL_FORMAT = "qin-leaderboard-cell/2"  # 2: keys hold env_version and a plug-in's distribution
_IDENTITY = ("agent", "checkpoint_sha256", "scenario", "overrides", "seed", "episodes")  # a cell, any version
_CACHE_LIMIT = 8  # agents (with their compiled episode functions) kept per process


def package_version() -> str:
    """Installed qin-env version (part of every cell key: a new release recomputes its cells)."""
    try:
        return importlib.metadata.version("qin-env")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """The byte form hashes are taken of: sorted keys, no spaces, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclasses.dataclass(frozen=True)
class CellTask:
    """What a worker needs to evaluate one cell: how to build the agent, and the cell's key."""

    agent: str
    """Registered name, entry-point name or `module:Class` import path."""
    checkpoint: str | None
    scenario: str
    overrides: tuple[tuple[str, Any], ...]
    seed: int
    episodes: int
    key: dict[str, Any] = dataclasses.field(hash=False, compare=False)

    @property
    def digest(self) -> str:
        """Hash of the cell key (the cache file's name)."""
        return hashlib.sha256(canonical_json(self.key)).hexdigest()[:24]


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed distribution (name, version) that provides a top-level module, or (None, None)."""
    names = importlib.metadata.packages_distributions().get(module.partition(".")[0]) or []
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


def plugin_source(agent: str) -> dict[str, Any] | None:
    """Where a plug-in agent's code comes from: its module, that file's SHA-256, its distribution and version.

    The agent is resolved as `qin_env.agents.make` resolves it (registered name, `module:attr` import
    path, installed entry point), which imports it: only agents the user named or installed reach
    here. None for qin-env's own agents, whose code the qin-env version in every key covers. Editing
    the plug-in's module file or installing another version of it changes its cells' keys.
    """
    from qin_env.agents import registry

    target = registry._resolve(agent)  # make's resolution order, so the key follows what make builds
    module = getattr(target, "__module__", None) or type(target).__module__
    if module == "qin_env" or module.startswith("qin_env."):
        return None
    entry_point = None if ":" in agent or agent in registry._REGISTRY else registry._entry_points().get(agent)
    dist = getattr(entry_point, "dist", None)
    name, dist_version = (dist.name, dist.version) if dist is not None else _distribution_of(module)
    source = getattr(sys.modules.get(module), "__file__", None)
    return {"module": module, "module_sha256": file_sha256(source) if source else None,
            "distribution": name, "version": dist_version}


def make_task(agent: str, checkpoint: str | None, checkpoint_sha256: str | None, scenario: str,
              scenario_hash: str, overrides: Mapping[str, Any], seed: int, episodes: int,
              source: Mapping[str, Any] | None = None) -> CellTask:
    """A cell task with its full configuration key (`source`: a plug-in's, from `plugin_source`)."""
    key = {
        "format": CELL_FORMAT, "agent": agent, "checkpoint_sha256": checkpoint_sha256,
        "agent_source": dict(source) if source else None, "scenario": scenario, "scenario_hash": scenario_hash,
        "overrides": dict(overrides), "seed": seed, "episodes": episodes, "qin_env_version": package_version(),
        "env_version": qin_version.ENV_VERSION,
    }
    return CellTask(agent, checkpoint, scenario, tuple(sorted(overrides.items())), seed, episodes, key)


# ---------------------------------------------------------------- cache files

class CorruptCell(ValueError):
    """A cache file that exists but cannot be trusted."""


def cell_path(cells_dir: Path, task: CellTask) -> Path:
    """The cache file of a cell."""
    return cells_dir / f"{task.digest}.json"


def _checksum(key: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"key": key, "result": result})).hexdigest()


def write_cell(cells_dir: Path, task: CellTask, result: Mapping[str, Any]) -> Path:
    """Atomically write a cell's result with its key and checksum."""
    from qin_env.bench.io import write_atomic

    record = {"key": task.key, "result": dict(result), "sha256": _checksum(task.key, result)}
    return write_atomic(cell_path(cells_dir, task), json.dumps(record, sort_keys=True, allow_nan=False).encode())


def _check_result(result: Any, episodes: int) -> None:
    if not isinstance(result, dict):
        raise CorruptCell("result is not an object")
    returns = result.get("returns")
    if not isinstance(returns, list) or len(returns) != episodes:
        raise CorruptCell(f"returns must be a list of {episodes} numbers")
    kpis = result.get("kpis")
    if not isinstance(kpis, dict) or not kpis:
        raise CorruptCell("kpis missing")
    for name, values in [("returns", returns), *kpis.items()]:
        if not isinstance(values, list) or len(values) != episodes:
            raise CorruptCell(f"{name} must hold {episodes} per-episode values")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise CorruptCell(f"{name} holds a value that is not a finite number")


def read_cell(cells_dir: Path, task: CellTask) -> dict[str, Any] | None:
    """The cached result of a cell; None when absent; CorruptCell when present but untrustworthy."""
    path = cell_path(cells_dir, task)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CorruptCell(f"{path.name}: unreadable JSON ({exc})") from exc
    if not isinstance(record, dict) or set(record) != {"key", "result", "sha256"}:
        raise CorruptCell(f"{path.name}: not a leaderboard cell")
    if record["sha256"] != _checksum(record["key"], record["result"]):
        raise CorruptCell(f"{path.name}: checksum does not match its content")
    if record["key"] != task.key:
        raise CorruptCell(f"{path.name}: holds another cell's configuration")
    try:
        _check_result(record["result"], task.episodes)
    except CorruptCell as exc:
        raise CorruptCell(f"{path.name}: {exc}") from None
    return record["result"]


def _identity(key: Mapping[str, Any]) -> bytes:
    return canonical_json({field: key.get(field) for field in _IDENTITY})


def other_version_cells(cells_dir: Path, tasks: Sequence[CellTask]) -> int:
    """Cache files of these very cells made under another environment version (not reused: their keys differ).

    Reads only the files that are not a task's own; a file that is not a readable cell is skipped
    (it belongs to no task here).
    """
    own = {cell_path(cells_dir, task).name for task in tasks}
    wanted = {_identity(task.key) for task in tasks}
    count = 0
    for path in cells_dir.glob("*.json"):
        if path.name in own:
            continue
        try:
            key = json.loads(path.read_bytes())["key"]
            count += key.get("env_version", 0) != qin_version.ENV_VERSION and _identity(key) in wanted
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return count


# ---------------------------------------------------------------- evaluation

_AGENTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def param_count(agent: Any, checkpoint: str | None) -> int | None:
    """Trainable parameters of one agent network, where the agent or its checkpoint says (None if unknown)."""
    if checkpoint is not None:
        from qin_env.bench.leaderboard.specs import checkpoint_metadata

        try:
            count = (checkpoint_metadata(checkpoint).get("network") or {}).get("param_count")
        except ValueError:  # a plug-in's own checkpoint format
            count = None
        if isinstance(count, int):
            return count
    model = getattr(agent, "model", None)  # stable-baselines3 agents: the torch policy
    if model is not None and hasattr(model, "policy"):
        return int(sum(p.numel() for p in model.policy.parameters()))
    count = getattr(agent, "param_count", None)
    if isinstance(count, int):
        return count
    return 0 if getattr(agent, "name", None) in ("random", "heuristic") else None


def _prepared(task: CellTask) -> dict[str, Any]:
    """The agent of a task with its environment params and compiled episode function, cached per process."""
    from qin_env import agents
    from qin_env.bench.evaluate import agent_episodes
    from qin_env.params import load_params

    cache_key = (task.agent, task.checkpoint, task.scenario, task.overrides, task.episodes)
    if cache_key not in _AGENTS:
        if len(_AGENTS) >= _CACHE_LIMIT:
            _AGENTS.pop(next(iter(_AGENTS)))
        overrides = dict(task.overrides)
        agent = agents.make(task.agent, scenario=task.scenario, overrides=overrides, checkpoint=task.checkpoint)
        params = load_params(task.scenario, overrides)
        run = agent_episodes(agent, params, progress=False)
        _AGENTS[cache_key] = {"agent": agent, "params": params, "run": run,
                              "param_count": param_count(agent, task.checkpoint)}
    return _AGENTS[cache_key]


def evaluate_cell(task: CellTask) -> dict[str, Any]:
    """Per-episode true returns and KPIs of one cell (importable by name, so Ray can ship it)."""
    from qin_env.rollout import episode_summary, seed_keys

    start = time.perf_counter()
    prepared = _prepared(task)
    if hasattr(prepared["agent"], "reset"):
        prepared["agent"].reset(prepared["params"])
    returns, kpis = episode_summary(prepared["run"](seed_keys(task.seed, task.episodes)))
    return {
        "returns": [float(r) for r in np.asarray(returns, np.float64)],
        "kpis": {name: [float(v) for v in np.asarray(values, np.float64)] for name, values in sorted(kpis.items())},
        "param_count": prepared["param_count"],
        "wall_s": round(time.perf_counter() - start, 3),
    }
