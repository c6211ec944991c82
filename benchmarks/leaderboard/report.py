"""The leaderboard's human-facing outputs: LEADERBOARD.md, a static leaderboard.html, and PNG plots.

The HTML page needs no server and no network: its table sorts by a few lines of inline JS and its
plots are embedded as base64 PNGs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qin_env.bench import stats
from qin_env.bench.io import save_figure, write_text
from qin_env.bench.leaderboard.summary import HEADLINE_KPIS

PLOTS = {"iqm": "iqm.png", "profiles": "performance_profiles.png", "improvement": "probability_of_improvement.png"}


def _fixed(value: float) -> str:
    """Three decimals, without the '-0.000' of a tiny negative number."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _params_text(counts: Sequence[int]) -> str:
    if not counts:
        return "n/a"
    return f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"


def _iqm_text(row: Mapping[str, Any]) -> str:
    if "iqm" not in row:
        return "not entered"
    return f"{_fixed(row['iqm'])} [{_fixed(row['ci_low'])}, {_fixed(row['ci_high'])}]"


def table_rows(summaries: Sequence[Mapping[str, Any]], scenarios: Sequence[str]) -> list[dict[str, str]]:
    """The main table, one dict of column -> text per agent, in rank order."""
    rows = []
    for i, row in enumerate(summaries, 1):
        out = {"rank": str(i) if "iqm" in row else "-", "agent": row["agent"], "IQM [95% CI]": _iqm_text(row),
               "scenarios": f"{len(row['scenarios_entered'])}/{len(scenarios)}"}
        for kpi, title in HEADLINE_KPIS.items():
            value = row.get("kpis", {}).get(kpi)
            out[title] = "n/a" if value is None else f"{value:.3g}"
        out["parameters"] = _params_text(row.get("param_counts", []))
        rows.append(out)
    return rows


def scenario_rows(summaries: Sequence[Mapping[str, Any]], scenarios: Sequence[str]) -> list[dict[str, str]]:
    """Mean normalised score of each agent on each scenario ('-' where it is not entered)."""
    rows = []
    for row in summaries:
        out = {"agent": row["agent"]}
        for s in scenarios:
            cell = row.get("per_scenario", {}).get(s)
            out[s] = "-" if cell is None else _fixed(cell["score_mean"])
        rows.append(out)
    return rows


def _markdown_table(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        return "(no agents)\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _protocol_text(meta: Mapping[str, Any]) -> str:
    return (f"{len(meta['seeds'])} seeds x {meta['episodes']} episodes per agent and scenario, true team reward; "
            f"score 0 = random, 1 = heuristic (fixed references in `{meta['references']['path']}`); "
            f"IQM over seeds x scenarios with a stratified bootstrap 95 % CI ({meta['bootstrap_reps']:,} "
            f"resamples). qin-env {meta['qin_env_version']}, commit {meta['git_commit']}, {meta['hardware']['cpus']} "
            f"CPUs, {meta['wall_seconds']:.0f} s, backend {meta['backend']}.")


def _notes(meta: Mapping[str, Any]) -> list[str]:
    notes = [f"- {agent} not entered on {scenario}: {reason}" for agent, reasons in meta["not_entered"].items()
             for scenario, reason in reasons.items()]
    notes += [f"- failed cell: {failure}" for failure in meta["failed_cells"]]
    return notes


def write_markdown(path: Path, summaries: Sequence[Mapping[str, Any]], scenarios: Sequence[str],
                   pairs: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> Path:
    """LEADERBOARD.md: the ranked table, per-scenario scores, probabilities of improvement, notes."""
    parts = ["# QIN-Gym leaderboard\n", _protocol_text(meta) + "\n",
             "Agents entered on every scenario are ranked by IQM; partial entries follow, their IQM over the "
             "scenarios they entered only. KPIs are means over every slot of every episode they played.\n",
             _markdown_table(table_rows(summaries, scenarios)), "\n## Normalised score per scenario\n",
             _markdown_table(scenario_rows(summaries, scenarios))]
    if pairs:
        parts += ["\n## Probability of improvement\n",
                  _markdown_table([{"X": p["x"], "Y": p["y"], "P(X > Y) [95% CI]":
                                    f"{p['probability']:.3f} [{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
                                    "scenarios": str(len(p["scenarios"]))} for p in pairs])]
    parts += ["\n" + "\n".join(f"![{name}]({file})" for name, file in PLOTS.items()) + "\n"]
    if notes := _notes(meta):
        parts += ["\n## Notes\n", "\n".join(notes) + "\n"]
    return write_text(path, "\n".join(parts))


_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], asc = th.dataset.asc !== '1';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.asc); th.dataset.asc = asc ? '1' : '0';
  const key = r => { const t = r.cells[col].textContent, n = parseFloat(t.replace(/,/g, ''));
                     return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""


def _html_table(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        return "<p>(no agents)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_html(path: Path, summaries: Sequence[Mapping[str, Any]], scenarios: Sequence[str],
               meta: Mapping[str, Any], plots: Mapping[str, Path]) -> Path:
    """leaderboard.html: one self-contained page (sortable tables, plots inline)."""
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"</figure>" for name, p in plots.items() if p.exists())
    notes = "".join(f"<li>{html.escape(n[2:])}</li>" for n in _notes(meta))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>QIN-Gym leaderboard</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{cursor:pointer;background:#f3f3f3}}td:nth-child(-n+2){{text-align:left}}img{{max-width:100%}}</style>
</head><body><h1>QIN-Gym leaderboard</h1><p>{html.escape(_protocol_text(meta).replace("`", ""))}</p>
<p>Click a column header to sort.</p>{_html_table(table_rows(summaries, scenarios))}
<h2>Normalised score per scenario</h2>{_html_table(scenario_rows(summaries, scenarios))}
{images}{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<script>{_SORT_JS}</script></body></html>
"""
    return write_text(path, page)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_iqm(path: Path, summaries: Sequence[Mapping[str, Any]]) -> Path:
    """IQM of the normalised score with its 95 % CI per agent; reference lines at random (0) and heuristic (1)."""
    plt = _pyplot()
    rows = [r for r in summaries if "iqm" in r][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5), dpi=110)
    y = np.arange(len(rows))
    iqm = np.array([r["iqm"] for r in rows])
    err = np.array([[r["iqm"] - r["ci_low"] for r in rows], [r["ci_high"] - r["iqm"] for r in rows]])
    ax.errorbar(iqm, y, xerr=err, fmt="o", color="tab:blue", capsize=4)
    ax.axvline(0, color="tab:red", linestyle=":", label="random (0)")
    ax.axvline(1, color="tab:green", linestyle="--", label="heuristic (1)")
    ax.set_yticks(y, [f"{r['agent']} ({len(r['scenarios_entered'])} sc.)" for r in rows])
    ax.set_xlabel("normalised score: IQM with 95 % stratified bootstrap CI")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_profiles(path: Path, summaries: Sequence[Mapping[str, Any]], reps: int) -> Path:
    """Performance profiles: share of runs scoring above tau, with bootstrap bands."""
    plt = _pyplot()
    rows = [r for r in summaries if "iqm" in r]
    matrices = {r["agent"]: np.array([r["per_scenario"][s]["score_per_seed"] for s in r["scenarios_entered"]]).T
                for r in rows}
    every = np.concatenate([m.ravel() for m in matrices.values()]) if matrices else np.zeros(1)
    taus = np.linspace(min(every.min(), 0.0) - 0.05, max(every.max(), 1.0) + 0.05, 101)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, matrix in matrices.items():
        profile = stats.performance_profile(matrix, taus, reps=reps)
        (line,) = ax.plot(taus, profile.point, label=label)
        ax.fill_between(taus, profile.low, profile.high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("normalised score tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_improvement(path: Path, pairs: Sequence[Mapping[str, Any]]) -> Path:
    """P(X > Y) with its 95 % CI for each pair among the top agents."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(pairs), 1) + 1.5), dpi=110)
    y = np.arange(len(pairs))
    if pairs:
        p = np.array([q["probability"] for q in pairs])
        err = np.array([[q["probability"] - q["ci_low"] for q in pairs], [q["ci_high"] - q["probability"]
                                                                            for q in pairs]])
        ax.errorbar(p, y, xerr=err, fmt="s", color="tab:purple", capsize=4)
        ax.set_yticks(y, [f"P({q['x']} > {q['y']})" for q in pairs])
    ax.axvline(0.5, color="grey", linestyle="--")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("probability of improvement (95 % CI)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path
