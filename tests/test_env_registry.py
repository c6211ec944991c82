"""Every scenario under a versioned id in PettingZoo's and Gymnasium's registries, each with its own name."""

from __future__ import annotations

import gymnasium
import pettingzoo
import pytest

from qin_env import list_scenarios
from qin_env.faces.pettingzoo import QINParallelEnv
from qin_env.version import ENV_VERSION

# pettingzoo.make and its registry arrived in PettingZoo 1.27; on 1.25-1.26 the envs are built directly
needs_registry = pytest.mark.skipif(not hasattr(pettingzoo, "make"), reason="PettingZoo < 1.27 has no registry")


@needs_registry
@pytest.mark.parametrize("env_type", ["parallel", "aec"])
def test_every_scenario_is_in_pettingzoo_registry_with_its_own_name(env_type):
    names = set()
    for scenario in list_scenarios():
        env = pettingzoo.make(env_type, f"qin/{scenario}-v{ENV_VERSION}")
        assert isinstance(env.unwrapped if env_type == "aec" else env, QINParallelEnv)
        assert env.unwrapped.scenario == scenario
        names.add(env.metadata["name"])
    assert names == {f"qin_{s}_v{ENV_VERSION}" for s in list_scenarios()}


@needs_registry
def test_the_unversioned_id_resolves_to_this_version_and_max_cycles_passes_through():
    env = pettingzoo.make("parallel", "qin/device_surge", max_cycles=7)
    assert env.scenario == "device_surge"
    env.reset(seed=0)
    steps = 0
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == 7


def test_gymnasium_ids_per_role_and_scenario():
    for scenario in list_scenarios():
        for role in ("Orchestrator", "Aggregator"):
            spec = gymnasium.spec(f"qin/{role}-{scenario}-v{ENV_VERSION}")
            assert spec.kwargs == {"scenario": scenario}
    env = gymnasium.make(f"qin/Orchestrator-large_scale-v{ENV_VERSION}")
    direct = gymnasium.make(f"qin/Orchestrator-v{ENV_VERSION}", scenario="large_scale")
    assert env.observation_space == direct.observation_space and env.action_space == direct.action_space
    assert env.observation_space != gymnasium.make(f"qin/Orchestrator-v{ENV_VERSION}").observation_space
