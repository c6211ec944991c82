"""Leaderboard benchmarks: agents x scenarios x seeds, normalised scores, IQM with bootstrap CIs.

    qin leaderboard --quick --out runs/leaderboard
    qin leaderboard --agents random,heuristic --agent my_pkg.agents:MyAgent --out runs/mine
    qin leaderboard --agent vqc-ppo@runs/vqc --scenarios metro_qkd --seeds 10 --out runs/vqc-lb
    qin leaderboard --backend ray [--ray-address HOST:PORT] --out runs/leaderboard
    qin leaderboard --regenerate-references          # remake scenarios/references.json (says so loudly)

Modules: `specs` (which agent plays which scenario with which checkpoint), `cells` (one
(agent, scenario, seed) evaluation and its self-checking cache file), `runner` (local or Ray),
`references` (fixed random = 0 / heuristic = 1 scores), `summary` (scores, IQM, results.json),
`report` (LEADERBOARD.md, leaderboard.html, plots), `command` (the flags). How to read and
submit: docs/leaderboard.md.
"""

from qin_env.bench.leaderboard.command import main

__all__ = ["main"]
