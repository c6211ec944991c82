"""Gymnasium vector faces: N copies of one agent's view stepped in one compiled call.

``` python
envs = gymnasium.make_vec("qin/Orchestrator-metro_qkd-v1", num_envs=256)  # vector_entry_point, the default
obs, info = envs.reset(seed=0)               # obs [256, obs_size]; info["action_mask"] [256, sum(nvec)]
obs, rewards, terminations, truncations, info = envs.step(envs.action_space.sample())
```

Each sub-environment is the single-agent view of `qin_env.faces.gymnasium` (the same agent,
spaces, fixed policy `others`, rewards and KPIs); the whole batch, the others' policy included,
is one `jit(vmap(...))` of the core and hands its results to Python in one copy. Sub-environment
`i` reset with seed `s + i` follows the same trajectory as `OrchestratorEnv` reset with that seed,
to float32 rounding (vmap vectorises the arithmetic differently).

Auto-reset is `AutoresetMode.SAME_STEP` (as in JAX loops and SB3): the step that ends an episode
returns the next episode's first observation, and `info["final_obs"]` (an object array, set where
`info["_final_obs"]`) and `info["final_info"]` hold the last observation and the last slot's
`kpi` and `reward_terms`. Every episode of a scenario has `episode.max_steps` slots, so
sub-environments reset together unless reset apart. `info["action_mask"]` (int8 [N, sum(nvec)])
is the mask for the next action; `action_masks()` is the same as booleans.

`qin_env.wrappers.SB3VecEnv(envs)` hands the batch to Stable-Baselines3 as its `VecEnv`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from qin_env import core
from qin_env.faces import _host
from qin_env.faces.gymnasium import Policy, _merge_overrides, _resolve_policy, checked_aggregator_index
from qin_env.params import DEFAULT_SCENARIO, Params, load_params

__all__ = ["AggregatorVectorEnv", "OrchestratorVectorEnv"]


@functools.partial(jax.jit, static_argnames=("agent",))
def _batch_reset(keys: jax.Array, params: Params, agent: str) -> tuple[jax.Array, core.State, dict, _host.Packed]:
    """Start every sub-environment's episode: (next keys, states, obs of every agent, packed (obs, masks))."""

    def one(key: jax.Array) -> tuple:
        key, key_reset = jax.random.split(key)
        obs, state = core.reset(key_reset, params)
        return key, state, obs

    keys, states, obs = jax.vmap(one)(keys)
    masks = core.action_masks(states.model_qubits, params)[agent]
    return keys, states, obs, _host.pack((obs[agent], masks))


@functools.partial(jax.jit, static_argnames=("agent", "others"))
def _batch_step(
    keys: jax.Array, states: core.State, obs: dict[str, jax.Array], actions: jax.Array, next_seeds: jax.Array,
    params: Params, agent: str, others: Policy,
) -> tuple[jax.Array, core.State, dict, _host.Packed]:
    """One slot of every sub-environment, restarting finished episodes; the host's values packed in one vector.

    Keys split as the single env's `_team_step` and `_team_reset` do, and a restart takes the
    episode key the single env's next `reset()` would draw (`next_seeds`, drawn on the host), so a
    sub-environment replays the single env of its seed episode after episode.
    """

    def one(key: jax.Array, state: core.State, obs: dict[str, jax.Array], action: jax.Array,
            next_seed: jax.Array) -> tuple:
        key, key_policy, key_step = jax.random.split(key, 3)
        acts = {**others(key_policy, obs, params), agent: action}
        last_obs, next_state, rewards, terminations, truncations, infos = core.step(key_step, state, acts, params)
        done = terminations["__all__"] | truncations["__all__"]
        key_next, key_reset = jax.random.split(jax.random.key(next_seed))
        new_obs, new_state = core.reset(key_reset, params)
        choose = functools.partial(jax.tree.map, lambda fresh, old: jnp.where(done, fresh, old))
        info = infos[agent]
        host = (rewards[agent], terminations["__all__"], truncations["__all__"], info["kpi"], info["reward_terms"],
                last_obs[agent])
        return choose(key_next, key), choose(new_state, next_state), choose(new_obs, last_obs), host

    keys, states, obs, host = jax.vmap(one)(keys, states, obs, actions, next_seeds)
    masks = core.action_masks(states.model_qubits, params)[agent]
    return keys, states, obs, _host.pack((obs[agent], masks, *host))


class _VectorView(VectorEnv):
    """N sub-environments of one agent's single-agent view; subclasses choose the agent."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self, agent: str, num_envs: int, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", max_episode_steps: int | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} must be an integer >= 1")
        _host.claim_process()
        self.params = load_params(scenario, _merge_overrides(overrides, max_episode_steps))
        self.scenario, self.agent, self.num_envs = scenario, agent, int(num_envs)
        self.others = _resolve_policy(others)
        self.render_mode = None
        self.single_observation_space = spaces.Box(0.0, 1.0, (core.obs_size(self.params, agent),), np.float32)
        self.single_action_space = spaces.MultiDiscrete(np.asarray(core.action_nvec(self.params, agent), np.int64))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._nvec = self.single_action_space.nvec
        self._rngs: list[np.random.Generator] | None = None
        self._keys: jax.Array | None = None
        self._states: core.State | None = None
        self._obs: dict[str, jax.Array] | None = None
        self._mask: np.ndarray | None = None
        self._next_seeds: np.ndarray | None = None  # [N] episode seed each sub-environment restarts with
        self._reset_fn = functools.partial(_batch_reset, agent=agent)
        self._step_fn = functools.partial(_batch_step, agent=agent, others=self.others)

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start every sub-environment; seed `s` seeds sub-environment `i` with `s + i` (or a list, one each)."""
        del options
        _host.claim_process()
        if seed is None:
            if self._rngs is None:
                self._rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        else:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int | np.integer) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset(seed=...) got {len(seeds)} seeds for num_envs={self.num_envs}")
            self._rngs = [np.random.default_rng(s) for s in seeds]  # gymnasium's np_random of the same seed
        # the single env's draw of its episode key, one per sub-environment; then the next episode's
        keys = jax.vmap(jax.random.key)(self._draw(range(self.num_envs)))
        self._next_seeds = self._draw(range(self.num_envs))
        self._keys, self._states, self._obs, host = self._reset_fn(keys, self.params)
        obs, mask = host.unpack()
        self._mask = np.asarray(mask, np.int8)
        return np.array(obs, np.float32), {"action_mask": self._mask.copy(),
                                           "_action_mask": np.ones(self.num_envs, bool)}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One slot of every sub-environment; a finished episode restarts in the same call (SAME_STEP)."""
        if self._states is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        _host.claim_process()
        act = self._check_actions(actions)
        self._keys, self._states, self._obs, host = self._step_fn(self._keys, self._states, self._obs, act,
                                                                  self._next_seeds, self.params)
        obs, mask, rewards, terminated, truncated, kpi, terms, last_obs = host.unpack()
        self._mask = np.asarray(mask, np.int8)
        terminated, truncated = terminated.astype(bool), truncated.astype(bool)
        done = terminated | truncated
        running = ~done
        info: dict[str, Any] = {
            "kpi": kpi, "_kpi": running, "reward_terms": terms, "_reward_terms": running,
            "action_mask": self._mask.copy(), "_action_mask": np.ones(self.num_envs, bool)}
        if done.any():
            self._next_seeds[done] = self._draw(np.flatnonzero(done))
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = last_obs[i].copy()
            info["final_obs"], info["_final_obs"] = final_obs, done
            info["final_info"] = {"kpi": kpi, "_kpi": done, "reward_terms": terms, "_reward_terms": done}
            info["_final_info"] = done
        return np.array(obs, np.float32), rewards.astype(np.float32), terminated, truncated, info

    def _draw(self, envs: Any) -> np.ndarray:
        """An episode seed per listed sub-environment from its generator, as the single env's reset draws one."""
        return np.array([self._rngs[i].integers(0, 2**32 - 1) for i in envs], np.uint32)

    def action_masks(self) -> np.ndarray:
        """The allowed values of every sub-environment's next action, [N, sum(nvec)] booleans."""
        if self._mask is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before action_masks()")
        return self._mask.astype(bool)

    def _check_actions(self, actions: Any) -> np.ndarray:
        """The batch of actions as int32 [N, n], or a ValueError naming the agent, the shape and the range."""
        try:
            arr = np.asarray(actions)
            numeric = arr.dtype.kind in "iuf"
        except (TypeError, ValueError):
            arr, numeric = None, False
        shape = (self.num_envs, len(self._nvec))
        if not numeric or arr.shape != shape:
            raise ValueError(f"actions for {self.agent!r} must be integers of shape {shape} (num_envs, components), "
                             f"got {getattr(arr, 'shape', None)} of {type(actions).__name__}")
        bad = (arr != np.floor(arr)) | (arr < 0) | (arr >= self._nvec)
        if bad.any():
            env, component = map(int, np.argwhere(bad)[0])
            raise ValueError(f"actions[{env}, {component}] = {arr[env, component]} for {self.agent!r} is outside "
                             f"0 <= a < {int(self._nvec[component])} (single_action_space {self.single_action_space})")
        return arr.astype(np.int32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scenario!r}, num_envs={self.num_envs})"


class OrchestratorVectorEnv(_VectorView):
    """`num_envs` copies of `OrchestratorEnv` in one compiled step."""

    def __init__(
        self, num_envs: int = 1, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", max_episode_steps: int | None = None,
    ) -> None:
        super().__init__("orchestrator", num_envs, scenario, overrides, others, max_episode_steps)


class AggregatorVectorEnv(_VectorView):
    """`num_envs` copies of `AggregatorEnv` (aggregator `aggregator_index`) in one compiled step."""

    def __init__(
        self, num_envs: int = 1, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", max_episode_steps: int | None = None, aggregator_index: int = 0,
    ) -> None:
        self.aggregator_index = checked_aggregator_index(scenario, overrides, aggregator_index)
        super().__init__(f"aggregator_{self.aggregator_index}", num_envs, scenario, overrides, others,
                         max_episode_steps)

