"""Tiny leaderboard settings shared by the tests: one short scenario, two seeds of two short episodes.

Every test uses the same scenario, overrides and episode count, so the agents' compiled episode
functions (cached per process in qin_env.bench.leaderboard.cells) compile once for the whole folder.
"""

from __future__ import annotations

import json
from pathlib import Path

SCENARIO = "repeater_chain"
MAX_STEPS = 8
TINY = ["--scenarios", SCENARIO, "--set", f"episode.max_steps={MAX_STEPS}", "--seeds", "2", "--episodes", "2",
        "--bootstrap-reps", "200", "--no-progress"]

PLUGIN_SOURCE = '''
"""A user's agent outside the qin-env package: every agent plays one fixed action level."""

import numpy as np

import qin_env
from qin_env import core


class ConstantAgent:
    """Plays action level `level` in every component (read from a plain-text checkpoint when given)."""

    name = "constant"
    param_count = 1

    def __init__(self, scenario="metro_qkd", overrides=None, checkpoint=None):
        self.params = qin_env.load_params(scenario, overrides)
        self.level = int(open(checkpoint).read()) if checkpoint else 0

    def act(self, key, obs):
        return {a: np.minimum(self.level, np.asarray(core.action_nvec(self.params, a)) - 1).astype(np.int32)
                for a in core.agent_names(self.params)}


class ActOnlyHeuristic:
    """The heuristic without its policy_fn, so the leaderboard plays it one `act` call per slot."""

    name = "act-only-heuristic"

    def __init__(self, scenario="metro_qkd", overrides=None):
        from qin_env import agents

        self._inner = agents.make("heuristic", scenario=scenario, overrides=overrides)

    def act(self, key, obs):
        return self._inner.act(key, obs)


class SlowAgent(ConstantAgent):
    """ConstantAgent taking 50 ms per decision, so a run can be killed between its cells."""

    def act(self, key, obs):
        import time

        time.sleep(0.05)
        return super().act(key, obs)


class BrokenAgent(ConstantAgent):
    """An agent whose code fails: its cells are reported, never cached, and the others still score."""

    def act(self, key, obs):
        raise RuntimeError("my policy is broken")
'''


def read_results(out: Path) -> dict:
    """results.json of a leaderboard folder."""
    return json.loads((out / "results.json").read_text())


def run_leaderboard(out: Path, references: Path, *extra: str) -> int:
    """`qin leaderboard` on the tiny settings with the given references."""
    from qin_env.bench.leaderboard import main

    return main(["--out", str(out), "--references", str(references), *TINY, *extra])
