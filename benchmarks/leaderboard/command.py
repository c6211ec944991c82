"""`qin leaderboard`: parse the flags, check the references, run the cells, write every output."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qin_env import version as qin_version
from qin_env.bench.args import (
    Command,
    UsageError,
    add_overrides,
    comma_names,
    command_parser,
    int_range,
    main_of,
    scenario_overrides,
)
from qin_env.bench.leaderboard import references as refs
from qin_env.bench.leaderboard.cells import CellTask, file_sha256, make_task, package_version, plugin_source
from qin_env.bench.leaderboard.runner import BACKENDS, RunReport, run_cells
from qin_env.bench.leaderboard.specs import (
    AgentSpec,
    check_agent_name,
    check_loadable,
    checkpoint_metadata,
    parse_agent,
    place,
)
from qin_env.bench.timing import git_commit, machine_info

DEFAULT_SEEDS, DEFAULT_EPISODES = 10, 32
QUICK_SEEDS, QUICK_EPISODES = 5, 4


DESCRIPTION = """\
Evaluate agents x scenarios x seeds on the true team reward; normalised IQM with stratified
bootstrap CIs; results.json, LEADERBOARD.md, leaderboard.html and plots in --out. Finished
cells are cached: rerun to resume (docs/leaderboard.md)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `qin leaderboard`."""
    p.add_argument("--agents", type=comma_names("--agents"), default=None,
                   help="comma-separated agent names (default: every registered agent and installed plug-in)")
    p.add_argument("--agent", action="append", default=[], metavar="NAME[@CHECKPOINT]",
                   help="add an entry, repeatable: a registered name, plug-in or module:Class, optionally with a "
                        "checkpoint file, `qin train` folder or folder of <scenario>.qinckpt after '@' "
                        "(default: none)")
    p.add_argument("--scenarios", type=comma_names("--scenarios"), default=None,
                   help="comma-separated scenario names (default: all)")
    p.add_argument("--seeds", type=int_range("--seeds", 1, 1000), default=None,
                   help=f"runs per agent and scenario, seeds 0..N-1 (default: {DEFAULT_SEEDS}; "
                        f"with --quick {QUICK_SEEDS})")
    p.add_argument("--episodes", type=int_range("--episodes", 1, 10_000), default=None,
                   help=f"episodes per run (default: {DEFAULT_EPISODES}; with --quick {QUICK_EPISODES})")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_SEEDS} seeds x {QUICK_EPISODES} episodes")
    p.add_argument("--out", type=Path, default=None, help="output folder, its cells/ cache makes reruns resume "
                   "(default: none; required except with --regenerate-references)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where cells run")
    p.add_argument("--ray-address", default=None, help="existing Ray cluster, with --backend ray (default: start "
                   "a local instance)")
    p.add_argument("--ray-cpus", type=int_range("--ray-cpus", 1), default=None,
                   help="CPUs of a local Ray instance (default: all)")
    add_overrides(p)
    p.add_argument("--references", type=Path, default=None, help="reference scores file (default: "
                   "scenarios/references.json)")
    p.add_argument("--regenerate-references", action="store_true",
                   help="re-evaluate random and the heuristic and rewrite the reference scores, then stop")
    p.add_argument("--bootstrap-reps", type=int_range("--bootstrap-reps", 100, 1_000_000), default=2000,
                   help="bootstrap resamples of every confidence interval")
    p.add_argument("--top", type=int_range("--top", 2, 20), default=4,
                   help="agents compared pairwise by probability of improvement")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@dataclasses.dataclass
class Settings:
    """Everything a run depends on, after validation."""

    specs: list[AgentSpec]
    scenarios: list[str]
    seeds: list[int]
    episodes: int
    overrides: dict[str, Any]
    references: Path
    args: argparse.Namespace


def settings_of(args: argparse.Namespace) -> Settings:
    """Validate the parsed flags into `Settings` (UsageError naming the flag)."""
    from qin_env import agents
    from qin_env.params import list_scenarios

    valid_scenarios = list(list_scenarios())
    scenarios = args.scenarios or valid_scenarios
    if bad := [s for s in scenarios if s not in valid_scenarios]:
        raise UsageError(f"--scenarios: unknown {', '.join(bad)}; valid scenarios: {', '.join(valid_scenarios)}")
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    if args.out is None and not args.regenerate_references:
        raise UsageError("--out DIR is required")
    overrides = scenario_overrides(args.set, scenarios)
    specs = []
    names = args.agents if args.agents is not None else list(agents.list_agents())
    try:
        for text in [*names, *args.agent]:
            spec = parse_agent(text)
            check_agent_name(spec.agent)
            specs.append(spec)
    except ValueError as exc:
        raise UsageError(f"--agents/--agent: {exc}") from None
    labels = [s.label for s in specs]
    if dupes := sorted({x for x in labels if labels.count(x) > 1}):
        raise UsageError(f"--agents/--agent: entries named twice: {', '.join(dupes)}")
    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    episodes = args.episodes or (QUICK_EPISODES if args.quick else DEFAULT_EPISODES)
    return Settings(specs, scenarios, list(range(seeds)), episodes, overrides, args.references or refs.default_path(),
                    args)


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    """`settings_of`, a refused flag reported by `parser` (exit status 2)."""
    try:
        return settings_of(args)
    except UsageError as err:
        parser.error(str(err))


def _scenario_hashes(scenarios: Sequence[str], overrides: dict[str, Any]) -> dict[str, str]:
    from qin_env.params import config_hash, load_config

    return {s: config_hash(load_config(s, overrides)) for s in scenarios}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def regenerate(settings: Settings, log: Any = print) -> int:
    """Rewrite the reference scores of the chosen scenarios, loudly."""
    args = settings.args
    seeds = args.seeds or refs.REFERENCE_SEEDS
    episodes = args.episodes or refs.REFERENCE_EPISODES
    hashes = _scenario_hashes(settings.scenarios, settings.overrides)
    checks = {} if (args.seeds or args.episodes) else {QUICK_EPISODES: QUICK_SEEDS}  # --quick's cells, for drift
    protocols = {episodes: seeds, **{n: m for n, m in checks.items() if n != episodes}}
    tasks = {(agent, s, k, n): make_task(agent, None, None, s, hashes[s], settings.overrides, k, n)
             for agent in (refs.BASELINE_AGENT, refs.REFERENCE_AGENT) for s in settings.scenarios
             for n, m in protocols.items() for k in range(m)}
    with tempfile.TemporaryDirectory(prefix="qin-references-") as tmp:
        cells_dir = (args.out / "cells") if args.out else Path(tmp)
        report = run_cells(list(tasks.values()), cells_dir, args.backend, ray_address=args.ray_address,
                           ray_cpus=args.ray_cpus, progress=not args.no_progress, log=log)
    if report.failed:
        log(f"{settings.args.prog}: reference cells failed, references NOT written: {report.failed}")
        return 1

    def evaluate(agent: str, scenario: str, seed: int, n_episodes: int) -> float:
        returns = report.results[tasks[(agent, scenario, seed, n_episodes)].digest]["returns"]
        return sum(returns) / len(returns)

    provenance = {"qin_env_version": package_version(), "git_commit": git_commit()}
    written = refs.regenerate(settings.references, settings.scenarios, settings.overrides, evaluate, provenance,
                              seeds, episodes, checks)
    banner = "=" * 78
    lines = [banner, f"REFERENCE SCORES REGENERATED in {settings.references}",
             f"scenarios: {', '.join(settings.scenarios)}; random and heuristic over {seeds} seeds x {episodes} "
             "episodes.", "Normalised scores made against the previous references are NOT comparable with new ones;",
             "rerun your leaderboards (their cached cells are reused, only the scores change)."]
    lines += [f"  {s:20s} random {written['scenarios'][s]['random']['mean_return']:9.3f}   heuristic "
              f"{written['scenarios'][s]['heuristic']['mean_return']:9.3f}" for s in settings.scenarios]
    log("\n".join([*lines, banner]))
    return 0


@dataclasses.dataclass
class Plan:
    """The cells to run, and the entries that sit out a scenario (with why)."""

    tasks: dict[tuple[str, str, int], CellTask]
    not_entered: dict[str, dict[str, str]]
    checkpoints: dict[str, dict[str, str]]
    step_counts: dict[tuple[str, str], int]


def _training_steps(checkpoint: str) -> int:
    """Env steps a checkpoint was trained for, from its metadata (0 when it does not say)."""
    try:
        meta = checkpoint_metadata(checkpoint)
    except ValueError:  # a plug-in's own checkpoint format
        return 0
    return int((meta.get("ppo_config") or {}).get("total_timesteps", meta.get("timesteps", 0)) or 0)


def plan(settings: Settings, hashes: dict[str, str]) -> Plan:
    """Place every entry on every scenario and make the cell tasks of those entered.

    A checkpoint its agent refuses for what it is (an sb3-ppo file of the old, pickled format) is a
    UsageError here, before any cell runs.
    """
    tasks, not_entered, checkpoints, step_counts = {}, {}, {}, {}
    for spec in settings.specs:
        source = plugin_source(spec.agent)
        for s in settings.scenarios:
            placement = place(spec, s, hashes[s])
            if placement.not_entered:
                not_entered.setdefault(spec.label, {})[s] = placement.not_entered
                continue
            digest = None
            if placement.checkpoint:
                try:
                    check_loadable(spec.agent, placement.checkpoint)
                except ValueError as exc:
                    raise UsageError(f"--agent {spec.label}: {exc}") from None
                digest = file_sha256(placement.checkpoint)
                checkpoints.setdefault(spec.label, {})[s] = digest
                step_counts[(spec.label, s)] = _training_steps(placement.checkpoint)
            for k in settings.seeds:
                tasks[(spec.label, s, k)] = make_task(spec.agent, placement.checkpoint, digest, s, hashes[s],
                                                      settings.overrides, k, settings.episodes, source)
    return Plan(tasks, not_entered, checkpoints, step_counts)


def _metadata(settings: Settings, hashes: dict[str, str], run_plan: Plan, report: RunReport,
              started: str, wall_s: float, reference_entries: dict[str, Any]) -> dict[str, Any]:
    args = settings.args
    failed = [f"{label} on {s} seed {k}: {report.failed[t.digest]}" for (label, s, k), t in run_plan.tasks.items()
              if t.digest in report.failed]
    return {
        "qin_env_version": package_version(), "git_commit": git_commit(), "hardware": machine_info(),
        "started": started, "finished": _now(), "wall_seconds": round(wall_s, 1), "command": sys.argv,
        "backend": args.backend, "ray_address": args.ray_address, "seeds": settings.seeds,
        "episodes": settings.episodes, "scenarios": settings.scenarios, "overrides": settings.overrides,
        "scenario_hashes": hashes, "agents": {s.label: {"agent": s.agent, "checkpoint": s.checkpoint}
                                              for s in settings.specs},
        "checkpoint_sha256": run_plan.checkpoints, "not_entered": run_plan.not_entered, "failed_cells": failed,
        "cells": {"total": len(run_plan.tasks), "cached": report.cached, "computed": report.computed,
                  "corrupt_recomputed": len(report.corrupt)},
        "env_version": qin_version.ENV_VERSION, "cached_cells_of_other_env_versions": report.other_versions,
        "references": {"path": str(settings.references), "baseline_agent": refs.BASELINE_AGENT,
                       "reference_agent": refs.REFERENCE_AGENT,
                       "scenarios": {s: {k: reference_entries[s][k] for k in
                                         ("config_hash", "episodes", "seeds", "qin_env_version", "git_commit")}
                                     | {a: reference_entries[s][a]["mean_return"]
                                        for a in (refs.BASELINE_AGENT, refs.REFERENCE_AGENT)}
                                     for s in settings.scenarios}},
        "bootstrap_reps": args.bootstrap_reps,
    }


def run(settings: Settings, log: Any = print) -> int:
    """The whole leaderboard: references checked first, cells run (or read), then every output written."""
    from qin_env.bench.io import write_json
    from qin_env.bench.leaderboard import report as out
    from qin_env.bench.leaderboard import summary

    args, started, start = settings.args, _now(), time.perf_counter()
    hashes = _scenario_hashes(settings.scenarios, settings.overrides)
    try:
        table = refs.load(settings.references)
        reference_entries = {s: refs.for_scenario(table, s, hashes[s], settings.overrides, settings.references)
                             for s in settings.scenarios}
    except refs.StaleReferences as exc:
        log(f"{args.prog}: error: {exc}")
        return 2
    run_plan = plan(settings, hashes)
    for label, reasons in run_plan.not_entered.items():
        log(f"{label}: not entered on {len(reasons)} scenario(s): {', '.join(reasons)}")
    report = run_cells(list(run_plan.tasks.values()), args.out / "cells", args.backend, ray_address=args.ray_address,
                       ray_cpus=args.ray_cpus, progress=not args.no_progress, log=log)
    cells: dict[str, dict[tuple[str, int], dict[str, Any]]] = {s.label: {} for s in settings.specs}
    try:
        for (label, s, k), task in run_plan.tasks.items():
            if (result := report.results.get(task.digest)) is not None:
                cells[label][(s, k)] = result
                refs.check_drift(reference_entries[s], task.agent, k, task.episodes,
                                 sum(result["returns"]) / len(result["returns"]), s, settings.references)
    except refs.StaleReferences as exc:
        log(f"{args.prog}: error: {exc}")
        return 2
    rows = summary.rank([summary.agent_summary(label, c, reference_entries, settings.scenarios, settings.seeds,
                                               args.bootstrap_reps) for label, c in cells.items()],
                        len(settings.scenarios))
    pairs = summary.improvement_pairs(rows, args.top, args.bootstrap_reps)
    meta = _metadata(settings, hashes, run_plan, report, started, time.perf_counter() - start, reference_entries)
    meta["leaderboard"] = {"ranking": rows, "probability_of_improvement": pairs}
    plots = {"iqm": out.plot_iqm(args.out / out.PLOTS["iqm"], rows),
             "profiles": out.plot_profiles(args.out / out.PLOTS["profiles"], rows, args.bootstrap_reps),
             "improvement": out.plot_improvement(args.out / out.PLOTS["improvement"], pairs)}
    write_json(args.out / "results.json", {"metadata": meta,
                                           **summary.marl_eval_block(cells, reference_entries, run_plan.step_counts)})
    out.write_markdown(args.out / "LEADERBOARD.md", rows, settings.scenarios, pairs, meta)
    out.write_html(args.out / "leaderboard.html", rows, settings.scenarios, meta, plots)
    log(out._markdown_table(out.table_rows(rows, settings.scenarios)))
    ignored = (f", {report.other_versions} cached of another environment version ignored"
               if report.other_versions else "")
    log(f"cells: {report.cached} cached, {report.computed} computed, {len(report.corrupt)} corrupt recomputed, "
        f"{len(report.failed)} failed{ignored}; {time.perf_counter() - start:.0f} s. Wrote {args.out}/results.json, "
        "LEADERBOARD.md, leaderboard.html and plots.")
    return 1 if report.failed else 0


def run_command(args: argparse.Namespace) -> int:
    """`qin leaderboard`: validate the flags, then regenerate the references or run the leaderboard."""
    settings = settings_of(args)
    return regenerate(settings) if args.regenerate_references else run(settings)


COMMAND = Command("leaderboard", "evaluate agents on scenarios: IQM with bootstrap CIs", add_arguments, run_command,
                  description=DESCRIPTION)


def build_parser(prog: str = "qin leaderboard") -> argparse.ArgumentParser:
    """The leaderboard's own argument parser (`qin leaderboard --help`)."""
    return command_parser(COMMAND, prog)


def main(argv: Sequence[str] | None = None, prog: str = "qin leaderboard") -> int:
    """Entry point of `qin leaderboard` (and `python -m qin_env.bench.leaderboard`)."""
    return main_of(COMMAND, argv, prog)


__all__ = ["COMMAND", "add_arguments", "build_parser", "main", "plan", "regenerate", "run", "run_command"]
