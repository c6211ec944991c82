"""From cell results to the leaderboard: normalised scores, IQM with bootstrap CIs, KPIs, results.json.

A run's score on a scenario is its cell's mean true return over episodes, normalised by that
scenario's fixed references only (random 0, heuristic 1): `normalise` sees nothing of the other
entries. An agent's aggregate is rliable's IQM over its `[seeds, scenarios]` score matrix with a
stratified bootstrap 95 % interval (`qin_env.bench.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qin_env.bench import stats
from qin_env.bench.leaderboard.references import normalise

ENV_NAME = "qin-gym"
HEADLINE_KPIS = {  # KPI (qin_env.core.KPI_UNITS) -> column title
    "latency_s": "latency (s)",
    "leaked_bits": "leaked bits / slot",
    "eve_detected": "detection rate",
    "model_quality": "model quality",
}


def score_matrix(cells: Mapping[tuple[str, int], Mapping[str, Any]], references: Mapping[str, Any],
                 scenarios: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    """Normalised scores [seeds, scenarios] of one agent from its cells keyed (scenario, seed)."""
    return np.array([[normalise(float(np.mean(cells[(s, k)]["returns"])), references[s]) for s in scenarios]
                     for k in seeds])


def agent_summary(label: str, cells: Mapping[tuple[str, int], Mapping[str, Any]], references: Mapping[str, Any],
                  scenarios: Sequence[str], seeds: Sequence[int], reps: int = stats.DEFAULT_REPS) -> dict[str, Any]:
    """One agent's row: IQM and CI over the scenarios it entered, per-scenario scores, mean KPIs, parameters."""
    entered = [s for s in scenarios if all((s, k) in cells for k in seeds)]
    out: dict[str, Any] = {"agent": label, "scenarios_entered": entered,
                           "not_entered": [s for s in scenarios if s not in entered]}
    if not entered:
        return out
    matrix = score_matrix(cells, references, entered, seeds)
    interval = stats.iqm_interval(matrix, reps=reps)
    out["iqm"], out["ci_low"], out["ci_high"] = float(interval.point), float(interval.low), float(interval.high)
    out["per_scenario"] = {
        s: {"score_mean": float(matrix[:, j].mean()), "score_per_seed": matrix[:, j].tolist(),
            "return_mean": float(np.mean([np.mean(cells[(s, k)]["returns"]) for k in seeds]))}
        for j, s in enumerate(entered)}
    kpi_names = sorted(cells[(entered[0], seeds[0])]["kpis"])
    out["kpis"] = {n: float(np.mean([np.mean(cells[(s, k)]["kpis"][n]) for s in entered for k in seeds]))
                   for n in kpi_names}
    counts = sorted({c for s in entered for k in seeds if (c := cells[(s, k)].get("param_count")) is not None})
    out["param_counts"] = counts
    return out


def rank(summaries: Sequence[dict[str, Any]], n_scenarios: int) -> list[dict[str, Any]]:
    """Agents entered on every scenario by IQM (best first), then the partial entries, then those entered nowhere."""
    def key(row: dict[str, Any]) -> tuple[int, float]:
        if "iqm" not in row:
            return (2, 0.0)
        return (0 if len(row["scenarios_entered"]) == n_scenarios else 1, -row["iqm"])

    return sorted(summaries, key=key)


def improvement_pairs(summaries: Sequence[dict[str, Any]], top: int = 4,
                      reps: int = stats.DEFAULT_REPS) -> list[dict[str, Any]]:
    """P(X > Y) with its interval for each pair among the `top` ranked agents, on the scenarios both entered."""
    ranked = [row for row in summaries if "iqm" in row][:top]
    pairs = []
    for i, x in enumerate(ranked):
        for y in ranked[i + 1:]:
            common = [s for s in x["scenarios_entered"] if s in y["scenarios_entered"]]
            if not common:
                continue
            sx = np.array([x["per_scenario"][s]["score_per_seed"] for s in common]).T
            sy = np.array([y["per_scenario"][s]["score_per_seed"] for s in common]).T
            interval = stats.probability_of_improvement_interval(sx, sy, reps=reps)
            pairs.append({"x": x["agent"], "y": y["agent"], "scenarios": common, "probability": float(interval.point),
                          "ci_low": float(interval.low), "ci_high": float(interval.high)})
    return pairs


def marl_eval_block(cells_by_agent: Mapping[str, Mapping[tuple[str, int], Mapping[str, Any]]],
                    references: Mapping[str, Any], step_counts: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """`{env: {task: {algorithm: {run: {"step_0": {...}, "absolute_metrics": {...}}}}}}`, marl-eval's layout."""
    tasks: dict[str, Any] = {}
    for label, cells in cells_by_agent.items():
        for (scenario, seed), result in sorted(cells.items()):
            metrics = {"return": result["returns"],
                       "normalised_return": [normalise(r, references[scenario]) for r in result["returns"]],
                       **result["kpis"]}
            run = {"step_0": {"step_count": step_counts.get((label, scenario), 0), **metrics},
                   "absolute_metrics": dict(metrics)}
            tasks.setdefault(scenario, {}).setdefault(label, {})[f"seed_{seed}"] = run
    return {ENV_NAME: tasks}
