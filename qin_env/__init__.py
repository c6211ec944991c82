"""QIN-Gym: a multi-agent RL environment of quantum intelligence networks.

Faces over one functional JAX core (`qin_env.core`):
- PettingZoo: `qin_env.parallel_env(...)` and `qin_env.env(...)` (AEC);
- Gymnasium: `gymnasium.make("qin/Orchestrator-v1")` and `"qin/Aggregator-v1"` (the default scenario),
  `"qin/Orchestrator-SCENARIO-v1"` and `"qin/Aggregator-SCENARIO-v1"`, registered on import;
- PettingZoo's registry (1.27 and later): `pettingzoo.make("parallel", "qin/SCENARIO-v1")` and `"aec"`;
- Gymnasium vector envs: `gymnasium.make_vec("qin/Orchestrator-SCENARIO-v1", num_envs=N)` steps N envs in one
  compiled call (`qin_env.faces.vector`); `qin_env.wrappers.SB3VecEnv` hands it to Stable-Baselines3;
- JAX: `env = qin_env.make(scenario)`, `env.reset(key)`, `env.step(key, state, actions)` (JaxMARL's and gymnax's
  style, `qin_env.faces.jax_env`); `qin_env.load_params`, `qin_env.core.reset`, `qin_env.core.step`, and whole
  episodes under `lax.scan` with `qin_env.rollout.rollout` (which also fixes how episodes split their keys).
"""

from __future__ import annotations

from typing import Any

import gymnasium

from qin_env.params import DEFAULT_SCENARIO, Params, list_scenarios, load_params

__version__ = "0.1.0"
__all__ = ["DEFAULT_SCENARIO", "Params", "env", "list_scenarios", "load_params", "make", "parallel_env"]


def make(scenario: str = DEFAULT_SCENARIO, overrides: dict[str, Any] | None = None) -> Any:
    """The JAX environment object of a scenario: `reset(key)`, `step(key, state, actions)` (`qin_env.faces.jax_env`)."""
    from qin_env.faces.jax_env import JaxEnv

    return JaxEnv(scenario, overrides)


def parallel_env(
    scenario: str = DEFAULT_SCENARIO, overrides: dict[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> Any:
    """PettingZoo ParallelEnv of a scenario (see `qin_env.faces.pettingzoo`)."""
    from qin_env.faces.pettingzoo import parallel_env as make

    return make(scenario=scenario, overrides=overrides, render_mode=render_mode, max_cycles=max_cycles)


def env(
    scenario: str = DEFAULT_SCENARIO, overrides: dict[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> Any:
    """PettingZoo AEC env of a scenario (see `qin_env.faces.pettingzoo`)."""
    from qin_env.faces.pettingzoo import env as make

    return make(scenario=scenario, overrides=overrides, render_mode=render_mode, max_cycles=max_cycles)


def _register() -> None:
    """Every scenario under a versioned id: PettingZoo's registry (parallel and AEC) and Gymnasium's (per role).

    `pettingzoo.make("parallel", "qin/metro_qkd-v1")`, `gymnasium.make("qin/Orchestrator-metro_qkd-v1")`;
    `qin/Orchestrator-v1` and `qin/Aggregator-v1` are the default scenario's. The version is the
    environment version (`qin_env.version.ENV_VERSION`): a change of dynamics is a new id.
    """
    import pettingzoo

    from qin_env.version import ENV_VERSION

    roles = (("Orchestrator", "OrchestratorEnv"), ("Aggregator", "AggregatorEnv"))
    for role, entry in roles:
        gym_id = f"qin/{role}-v{ENV_VERSION}"
        if gym_id not in gymnasium.registry:
            gymnasium.register(id=gym_id, entry_point=f"qin_env.faces.gymnasium:{entry}",
                               vector_entry_point=f"qin_env.faces.vector:{role}VectorEnv")
    zoo = getattr(pettingzoo, "register", None)  # PettingZoo's registry came with 1.27
    for scenario in list_scenarios():
        for role, entry in roles:
            gym_id = f"qin/{role}-{scenario}-v{ENV_VERSION}"
            if gym_id not in gymnasium.registry:
                gymnasium.register(id=gym_id, entry_point=f"qin_env.faces.gymnasium:{entry}",
                                   vector_entry_point=f"qin_env.faces.vector:{role}VectorEnv",
                                   kwargs={"scenario": scenario})
        zoo_id = f"qin/{scenario}-v{ENV_VERSION}"
        if zoo is not None:
            for env_type, entry, registry in (("parallel", "parallel_env", pettingzoo.parallel_registry),
                                              ("aec", "env", pettingzoo.aec_registry)):
                if zoo_id not in registry:
                    zoo(env_type, zoo_id, entry_point=f"qin_env.faces.pettingzoo:{entry}",
                        kwargs={"scenario": scenario})


_register()
