"""`evaluate_agent`: agents without a compiled policy are played step by step, with the same numbers."""

import numpy as np

from qin_env import agents
from qin_env.bench.evaluate import evaluate_agent

SHORT = {"episode.max_steps": 12}


class _ActOnly:
    """The heuristic seen only through `act`: what a plug-in or an SB3 agent offers."""

    def __init__(self) -> None:
        self._inner = agents.make("heuristic", overrides=SHORT)
        self.name = "heuristic-act-only"

    def act(self, key, obs):
        return self._inner.act(key, obs)


def test_stepwise_evaluation_matches_the_compiled_one():
    stepwise = evaluate_agent(_ActOnly(), "metro_qkd", SHORT, episodes=2, seed=3)
    compiled = evaluate_agent(agents.make("heuristic", overrides=SHORT), "metro_qkd", SHORT, episodes=2, seed=3)
    np.testing.assert_allclose(stepwise["returns"], compiled["returns"], rtol=1e-5, atol=1e-5)
    assert set(stepwise["kpi"]) == set(compiled["kpi"])
