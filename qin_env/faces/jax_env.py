"""The JAX face: an environment object in the style of JaxMARL and gymnax, pure functions over the core.

``` python
env = qin_env.make("metro_qkd")
obs, state = env.reset(key)                                   # obs: {agent: [obs_size]}
obs, state, rewards, dones, infos = env.step(key, state, actions)   # auto-resets a finished episode
step = jax.jit(jax.vmap(env.step))                            # batch with vmap, compile with jit
```

`step` follows JaxMARL's `MultiAgentEnv.step`: `dones[agent]` is termination or truncation,
`dones["__all__"]` ends the episode, and a finished episode restarts in the same call (the
returned obs and state are the new episode's; `infos[agent]["final_observation"]` keeps the last
one). `step_env` is the same step without the restart. The scenario's `Params` are closed over,
so `jax.jit(env.step)` folds them as constants, as `qin_env.rollout.compiled_rollouts` does.
Spaces are Gymnasium's (`Box`, `MultiDiscrete`); `action_masks(state)` gives every agent's flat mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from gymnasium.spaces import Box, MultiDiscrete

from qin_env import core
from qin_env.params import DEFAULT_SCENARIO, Params, load_params

__all__ = ["JaxEnv", "make"]


class JaxEnv:
    """One scenario as pure `reset(key)` / `step(key, state, actions)` functions (jit-, vmap- and scan-able)."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 params: Params | None = None) -> None:
        self.name = str(scenario)
        self.params = load_params(scenario, dict(overrides or {})) if params is None else params
        self.agents = core.agent_names(self.params)
        self.num_agents = len(self.agents)
        self.max_steps = int(self.params.max_steps)
        self.observation_spaces = {a: Box(0.0, 1.0, (core.obs_size(self.params, a),), np.float32)
                                   for a in self.agents}
        self.action_spaces = {a: MultiDiscrete(np.asarray(core.action_nvec(self.params, a), np.int64))
                              for a in self.agents}

    def reset(self, key: jax.Array) -> tuple[dict[str, jax.Array], core.State]:
        """Start an episode: (every agent's observation, the core state)."""
        return core.reset(key, self.params)

    def step(self, key: jax.Array, state: core.State, actions: Mapping[str, jax.Array]
             ) -> tuple[dict[str, jax.Array], core.State, dict, dict, dict]:
        """One slot, restarting a finished episode: (obs, state, rewards, dones, infos)."""
        obs, state, rewards, terminations, truncations, infos = core.step(key, state, dict(actions), self.params,
                                                                          auto_reset=True)
        return obs, state, rewards, _dones(terminations, truncations), infos

    def step_env(self, key: jax.Array, state: core.State, actions: Mapping[str, jax.Array]
                 ) -> tuple[dict[str, jax.Array], core.State, dict, dict, dict]:
        """One slot without the restart (JaxMARL's `step_env`): (obs, state, rewards, dones, infos)."""
        obs, state, rewards, terminations, truncations, infos = core.step(key, state, dict(actions), self.params)
        return obs, state, rewards, _dones(terminations, truncations), infos

    def observation_space(self, agent: str) -> Box:
        """Observation space of `agent`: a [0, 1] float32 vector."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> MultiDiscrete:
        """Action space of `agent`: indices into the scenario's action levels."""
        return self.action_spaces[agent]

    def action_masks(self, state: core.State) -> dict[str, jax.Array]:
        """Every agent's allowed action values, flat over its components (1 allowed), for the next step."""
        return core.action_masks(state.model_qubits, self.params)

    def __repr__(self) -> str:
        return f"JaxEnv({self.name!r}, agents={self.agents})"


def _dones(terminations: dict[str, jax.Array], truncations: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {name: terminations[name] | truncations[name] for name in terminations}


def make(scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None) -> JaxEnv:
    """The JaxMARL/gymnax-style environment object of a scenario (a shipped name or a TOML path)."""
    return JaxEnv(scenario, overrides)
