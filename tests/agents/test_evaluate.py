"""`evaluate_agent`: every path plays the episodes of `qin_env.rollout`, so one policy and seed give one result."""

import numpy as np

from qin_env import agents
from qin_env.agents.ppo import evaluate_policy
from qin_env.bench.evaluate import evaluate_agent
from qin_env.policies import heuristic_policy

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
    # the same keys; only float32 rounding of one step call per slot against one scanned episode may differ
    np.testing.assert_allclose(stepwise["returns"], compiled["returns"], rtol=1e-6)
    assert stepwise["kpi"].keys() == compiled["kpi"].keys()
    for name, value in compiled["kpi"].items():
        np.testing.assert_allclose(stepwise["kpi"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_trainers_evaluation_and_qin_evaluate_agree_exactly():
    trainer = evaluate_policy(heuristic_policy, "metro_qkd", SHORT, episodes=3, key=5)
    bench = evaluate_agent(agents.make("heuristic", overrides=SHORT), "metro_qkd", SHORT, episodes=3, seed=5)
    assert trainer["returns"].tolist() == bench["returns"]
    assert trainer["mean_return"] == bench["mean_return"]
    assert trainer["kpis"] == bench["kpi"]
