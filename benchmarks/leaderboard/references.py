"""Fixed per-scenario reference returns: the random team scores 0, the pinned heuristic team 1.

Scores are normalised against these stored numbers, never against the entries of a run, so adding
an entry never moves another's score. `scenarios/references.json` holds, per scenario, the mean
true return of `random` and `heuristic` over `REFERENCE_SEEDS` seeds x `REFERENCE_EPISODES`
episodes (the same cells the leaderboard evaluates), with the scenario's config hash, the
qin-env version and the git commit they were made at. A reference whose config hash no longer
matches the scenario is stale: the leaderboard stops and names the command that remakes it,
`qin leaderboard --regenerate-references`.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qin_env.version import ENV_VERSION, version_mismatch

REFERENCES_FORMAT = "qin-leaderboard-references/1"
BASELINE_AGENT = "random"
REFERENCE_AGENT = "heuristic"
REFERENCE_SEEDS = 10
REFERENCE_EPISODES = 32
MIN_GAP = 1e-6  # a reference no better than random cannot define a scale
DRIFT_RTOL = 1e-4  # tolerance when a leaderboard cell repeats a reference cell


class StaleReferences(ValueError):
    """References missing, made for another configuration, or contradicted by a fresh evaluation."""


def default_path() -> Path:
    """`references.json` beside the shipped scenario files."""
    from qin_env.params import scenario_dir

    return scenario_dir() / "references.json"


def regenerate_command(scenario: str | None = None, overrides: Mapping[str, Any] | None = None,
                       path: Path | None = None) -> str:
    """The command line that remakes references for a scenario (what error messages tell users to run)."""
    parts = ["qin leaderboard --regenerate-references"]
    if scenario:
        parts.append(f"--scenarios {scenario}")
    parts += [f"--set {k}={json.dumps(v)}" for k, v in sorted((overrides or {}).items())]
    if path is not None and path != default_path():
        parts.append(f"--references {path}")
    return " ".join(parts)


def load(path: Path) -> dict[str, Any]:
    """The references file, or an empty one when it does not exist yet."""
    if not path.exists():
        return {"format": REFERENCES_FORMAT, "scenarios": {}}
    data = json.loads(path.read_text())
    if data.get("format") != REFERENCES_FORMAT:
        raise StaleReferences(f"{path} is not a references file of format {REFERENCES_FORMAT}")
    return data


def for_scenario(references: Mapping[str, Any], scenario: str, scenario_hash: str,
                 overrides: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The reference of a scenario, refusing a missing or stale one with the command that fixes it."""
    entry = references.get("scenarios", {}).get(scenario)
    fix = regenerate_command(scenario, overrides, path)
    if entry is None:
        raise StaleReferences(f"no reference scores for scenario {scenario!r} in {path}; make them with: {fix}")
    if problem := version_mismatch(f"the reference scores for {scenario!r} in {path}", entry.get("env_version", 0)):
        raise StaleReferences(f"{problem}. Remake them with: {fix}")
    if entry["config_hash"] != scenario_hash:
        raise StaleReferences(
            f"reference scores for {scenario!r} in {path} are stale: made for scenario config hash "
            f"{entry['config_hash']} (overrides {entry.get('overrides') or {}}), the scenario now hashes to "
            f"{scenario_hash} (overrides {dict(overrides)}). Remake them with: {fix}")
    return entry


def normalise(mean_return: float, reference: Mapping[str, Any]) -> float:
    """Score of a return on the reference scale: random's mean return 0, the heuristic's 1."""
    low = reference[BASELINE_AGENT]["mean_return"]
    high = reference[REFERENCE_AGENT]["mean_return"]
    return (mean_return - low) / (high - low)


def check_drift(reference: Mapping[str, Any], agent: str, seed: int, episodes: int, mean_return: float,
                scenario: str, path: Path) -> None:
    """Refuse references that a fresh evaluation of the same reference cell contradicts (the code changed).

    The cells compared are the reference protocol's and the `checks` stored beside it (the
    `--quick` protocol's cells), so a quick run checks the references too.
    """
    if agent not in (BASELINE_AGENT, REFERENCE_AGENT):
        return
    if episodes == reference["episodes"]:
        stored = reference[agent]["per_seed"].get(str(seed))
    else:
        stored = reference.get("checks", {}).get(str(episodes), {}).get(agent, {}).get(str(seed))
    if stored is None or math.isclose(stored, mean_return, rel_tol=DRIFT_RTOL, abs_tol=DRIFT_RTOL):
        return
    raise StaleReferences(
        f"reference scores for {scenario!r} in {path} are stale: {agent} seed {seed} returned {mean_return:.6g} "
        f"now and {stored:.6g} when the references were made (the environment's code changed). Remake them "
        f"with: {regenerate_command(scenario, reference.get('overrides'), path)}")


def build_entry(scenario_hash: str, overrides: Mapping[str, Any], seeds: Sequence[int], episodes: int,
                per_seed: Mapping[str, Mapping[int, float]], provenance: Mapping[str, Any]) -> dict[str, Any]:
    """One scenario's reference record from the per-seed mean returns of random and the heuristic."""
    entry: dict[str, Any] = {"config_hash": scenario_hash, "overrides": dict(overrides), "seeds": list(seeds),
                             "episodes": episodes, "env_version": ENV_VERSION, **provenance}
    for agent in (BASELINE_AGENT, REFERENCE_AGENT):
        values = [per_seed[agent][s] for s in seeds]
        entry[agent] = {"mean_return": sum(values) / len(values),
                        "per_seed": {str(s): per_seed[agent][s] for s in seeds}}
    gap = entry[REFERENCE_AGENT]["mean_return"] - entry[BASELINE_AGENT]["mean_return"]
    if gap <= MIN_GAP:
        raise ValueError(f"the heuristic ({entry[REFERENCE_AGENT]['mean_return']:.4g}) does not beat random "
                         f"({entry[BASELINE_AGENT]['mean_return']:.4g}): no reference scale can be made")
    return entry


def regenerate(path: Path, scenarios: Sequence[str], overrides: Mapping[str, Any],
               evaluate: Callable[[str, str, int, int], float], provenance: Mapping[str, Any],
               seeds: int = REFERENCE_SEEDS, episodes: int = REFERENCE_EPISODES,
               checks: Mapping[int, int] | None = None) -> dict[str, Any]:
    """Re-evaluate random and the heuristic on `scenarios` and rewrite their entries in `path` (others kept).

    `evaluate(agent, scenario, seed, episodes)` returns the mean return of one cell. `checks`
    ({episodes: seeds}) adds the cells of other protocols (`--quick`'s) for `check_drift` only.
    """
    from qin_env.bench.io import write_json
    from qin_env.params import config_hash, load_config

    references = load(path)
    for scenario in scenarios:
        per_seed = {agent: {s: evaluate(agent, scenario, s, episodes) for s in range(seeds)}
                    for agent in (BASELINE_AGENT, REFERENCE_AGENT)}
        scenario_hash = config_hash(load_config(scenario, overrides))
        created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        references["scenarios"][scenario] = build_entry(scenario_hash, overrides, list(range(seeds)), episodes,
                                                        per_seed, {**provenance, "created": created})
        references["scenarios"][scenario]["checks"] = {
            str(n): {agent: {str(k): evaluate(agent, scenario, k, n) for k in range(m)}
                     for agent in (BASELINE_AGENT, REFERENCE_AGENT)}
            for n, m in (checks or {}).items() if n != episodes}
    references["baseline_agent"], references["reference_agent"] = BASELINE_AGENT, REFERENCE_AGENT
    write_json(path, references)
    return references
