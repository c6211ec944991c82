"""RLlib PPO trains on the PettingZoo face through `ParallelPettingZooEnv`, one policy per agent role."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qin_env
from qin_env.bench import rllib_ppo

SLOTS, BATCH = 20, 200


def test_every_agent_plays_the_policy_of_its_role():
    """Aggregators share `aggregator`; the orchestrator and Eve play their own."""
    agents = qin_env.parallel_env("adversarial_eve").possible_agents
    assert {rllib_ppo.role(a) for a in agents} == {"aggregator", "orchestrator", "eve"}
    assert {rllib_ppo.role(a) for a in agents if a.startswith("aggregator_")} == {"aggregator"}


def test_the_command_line_refuses_a_bad_budget(capsys):
    with pytest.raises(SystemExit):
        rllib_ppo.main(["--batch", "1"])
    assert "--batch must be >= 2, got 1" in capsys.readouterr().err


@pytest.mark.slow
def test_one_ppo_iteration_updates_a_module_per_role():
    """One iteration samples BATCH env steps, every aggregator's into the shared module, and moves both modules."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        algo = rllib_ppo.ppo_config("metro_qkd", SLOTS, BATCH, seed=0).build_algo()

        def weights(module: str) -> dict[str, np.ndarray]:
            return {k: v.detach().cpu().numpy().copy() for k, v in algo.get_module(module).state_dict().items()}

        before = {m: weights(m) for m in ("aggregator", "orchestrator")}
        result = algo.train()
        after = {m: weights(m) for m in before}
        algo.stop()
    finally:
        ray.shutdown()
    runners = result["env_runners"]
    assert runners["num_env_steps_sampled_lifetime"] == BATCH
    n_aggregators = sum(a.startswith("aggregator_") for a in qin_env.parallel_env("metro_qkd").possible_agents)
    steps = runners["num_module_steps_sampled"]
    assert steps["aggregator"] == n_aggregators * steps["orchestrator"] == n_aggregators * BATCH
    assert math.isfinite(rllib_ppo.team_return(result))
    for module in before:
        assert any(not np.array_equal(before[module][k], after[module][k]) for k in before[module]), module
