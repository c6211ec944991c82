"""Gymnasium faces: one learning agent of the QIN team, the others played by a fixed policy.

Both environments wrap the functional core (`qin_env.core`) for single-agent libraries such as
Stable-Baselines3. The agent you control acts; every other agent of the scenario (aggregators,
the orchestrator, and the eavesdropper where `eve.mode = "agent"`) is played by the fixed policy
`others`; then one slot of `episode.dt_s` seconds is simulated. The whole step (the others'
policy and `core.step`) is one jitted function, compiled once per scenario and policy and shared
by every instance.

| Id                    | Class             | Agent controlled                 |
|-----------------------|-------------------|----------------------------------|
| `qin/Orchestrator-v1` | `OrchestratorEnv` | `"orchestrator"`                 |
| `qin/Aggregator-v1`   | `AggregatorEnv`   | `"aggregator_{aggregator_index}"`|

OrchestratorEnv
    Action: `MultiDiscrete` of length 2 A (A = `topology.n_aggregators`); for each aggregator `i`,
    component `2 i` is the index into `actions.episodes` (local training episodes this round, 0 skips
    the round) and `2 i + 1` the index into `actions.model_qubits` (qubits of the variational model).
    Observation: `Box(0, 1, (10 A + 2,), float32)`; for each aggregator in turn the ten fields of
    `core.ORCHESTRATOR_FIELDS` (quality, local_quality, latency, delivered, buffer_fill, key_fill,
    pair_fill, fidelity_estimate, qber_estimate, alarm), then the elapsed share of the episode and the
    mean model quality.

AggregatorEnv
    Action: `MultiDiscrete` of six components, `core.AGGREGATOR_COMPONENTS`: channel (plain, pqc,
    qkd, teleport, superdense: `params.CHANNEL_MODES`), payload (index into `actions.payload_bits`),
    keygen_share (index into `actions.keygen_share`), test_fraction (index into
    `actions.test_fraction`), memory_qubits (0 .. `hardware.qubit_budget`) and throttle (index into
    `actions.throttle`). Observation: `Box(0, 1, (16,), float32)`, the fields of
    `core.AGGREGATOR_FIELDS`: the ten link fields above for its own link, then model_qubits,
    episodes, arrivals, channel (transmittance score), quantum_share and time.

Reward: the team reward of `core.step` (progress of the mean model quality minus the weighted
latency, leak, qubit-budget and dropped-traffic penalties), the same for every team member.

Episodes never terminate; they are truncated after `episode.max_steps` slots (`terminated` is
always False). `info` (from `step`) holds `"kpi"`: `{name: float}`, the KPIs of the slot with the
units in `core.KPI_UNITS`; `"reward_terms"`: `{name: float}`, the weighted terms that sum to the
reward; `"action_mask"`: `np.int8` array over the concatenated action components, 1 where a
choice is allowed next step (legacy classical aggregators have no quantum channel or memory).
`reset` returns `{"action_mask": ...}` only. `env.action_masks()` is the same mask as booleans,
sb3-contrib's MaskablePPO convention.

Arguments
    scenario: name of a shipped scenario (`qin_env.list_scenarios()`) or a path to a TOML file.
    overrides: dotted-key parameter overrides, e.g. `{"eve.mode": "stationary"}`.
    others: `"heuristic"` or `"random"` (`qin_env.policies.POLICIES`), or a callable
        `(key, obs_dict, params) -> action_dict` with the same contract, jit-able, playing every
        agent but the controlled one.
    render_mode: None, `"rgb_array"` (`render()` returns an image) or `"human"` (a window,
        refreshed every step).
    max_episode_steps: overrides `episode.max_steps`. (Passed to `gymnasium.make` instead, it adds
        a `TimeLimit` wrapper and leaves the scenario's own length in place.)
    aggregator_index: (`AggregatorEnv` only) which aggregator to control, default 0.

Same seed, same arguments ⇒ the same trajectory: the JAX key of an episode is drawn from
`self.np_random` in `reset`.

Version history
    v1: environment version 1, the physics of the step and the return redefined (see the
        PettingZoo face's version history); version-0 checkpoints are refused.
    v0: first release.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium
import jax
import numpy as np
from gymnasium import spaces

from qin_env import core
from qin_env.faces import _host
from qin_env.faces.spaces import MaskedMultiDiscrete
from qin_env.params import DEFAULT_SCENARIO, Params, load_config, load_params
from qin_env.policies import POLICIES

Policy = Callable[[jax.Array, dict[str, jax.Array], Params], dict[str, jax.Array]]

__all__ = ["AggregatorEnv", "OrchestratorEnv"]


@functools.partial(jax.jit, static_argnames=("agent",))
def _team_reset(key: jax.Array, params: Params, agent: str) -> tuple[jax.Array, core.State, dict, _host.Packed]:
    """Start an episode; returns (next key, state, every agent's obs, what the host needs: obs, action mask)."""
    key, key_reset = jax.random.split(key)
    obs, state = core.reset(key_reset, params)
    mask = core.action_masks(state.model_qubits, params)[agent]
    return key, state, obs, _host.pack((obs[agent], mask))


@functools.partial(jax.jit, static_argnames=("agent", "others"))
def _team_step(
    key: jax.Array, state: core.State, obs: dict[str, jax.Array], action: jax.Array, params: Params,
    agent: str, others: Policy,
) -> tuple[jax.Array, core.State, dict, _host.Packed]:
    """The fixed policy plays everyone, `action` replaces `agent`'s, then one slot of the core.

    Returns (next key, state, every agent's obs, what the host needs, packed for one transfer:
    agent's obs, reward, terminated, truncated, kpi, reward terms, action mask).
    """
    key, key_policy, key_step = jax.random.split(key, 3)
    actions = {**others(key_policy, obs, params), agent: action}
    obs, state, rewards, terminations, truncations, infos = core.step(key_step, state, actions, params)
    info = infos[agent]
    host = (obs[agent], rewards[agent], terminations["__all__"], truncations["__all__"], info["kpi"],
            info["reward_terms"], info["action_mask"])
    return key, state, obs, _host.pack(host)


def _merge_overrides(overrides: Mapping[str, Any] | None, max_episode_steps: int | None) -> dict[str, Any]:
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"overrides must be a dict of dotted keys, got {type(overrides).__name__}")
    merged = dict(overrides or {})
    if max_episode_steps is not None:
        merged["episode.max_steps"] = max_episode_steps
    return merged


def checked_aggregator_index(scenario: str, overrides: Mapping[str, Any] | None, index: Any) -> int:
    """`index` as an int, or a ValueError naming the allowed range of the scenario's aggregators."""
    n_aggregators = load_config(scenario, _merge_overrides(overrides, None))["topology.n_aggregators"]
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n_aggregators:
        raise ValueError(f"aggregator_index={index!r} must be an integer in the allowed range "
                         f"[0, {n_aggregators - 1}] of scenario {scenario!r}")
    return int(index)


def _resolve_policy(others: str | Policy) -> Policy:
    if callable(others):
        return others
    if isinstance(others, str) and others in POLICIES:
        return POLICIES[others]
    raise ValueError(f"others={others!r} is not a fixed policy; use one of {', '.join(POLICIES)} "
                     "or a callable (key, obs_dict, params) -> action_dict")


class _SingleAgentView(gymnasium.Env):
    """One agent of the team as a Gymnasium env; subclasses choose the agent."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self, agent: str, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", render_mode: str | None = None, max_episode_steps: int | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, {', '.join(self.metadata['render_modes'])}")
        _host.claim_process()
        self.params = load_params(scenario, _merge_overrides(overrides, max_episode_steps))
        self.agent = agent
        self.others = _resolve_policy(others)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (core.obs_size(self.params, agent),), np.float32)
        self.action_space = MaskedMultiDiscrete(np.asarray(core.action_nvec(self.params, agent), np.int64))
        self._key: jax.Array | None = None
        self._state: core.State | None = None
        self._obs: dict[str, jax.Array] | None = None
        self._kpi: dict[str, float] | None = None
        self._mask: np.ndarray | None = None
        self._build_fns()

    def _build_fns(self) -> None:
        """Bind the shared jitted functions to this env's agent and policy."""
        self._reset_fn = functools.partial(_team_reset, agent=self.agent)
        self._step_fn = functools.partial(_team_step, agent=self.agent, others=self.others)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; `seed` fixes the whole trajectory (with the same actions)."""
        _host.claim_process()
        super().reset(seed=seed)
        key = jax.random.key(int(self.np_random.integers(0, 2**32 - 1)))
        self._key, self._state, self._obs, host = self._reset_fn(key, self.params)
        obs, mask = host.unpack()
        self._kpi = None
        self._mask = np.asarray(mask, np.int8)
        if self.render_mode == "human":
            self.render()
        return np.array(obs, np.float32), {"action_mask": self._mask.copy()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play one slot: the fixed policy acts for the others, `action` for this agent."""
        if self._state is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        _host.claim_process()
        act = self._check_action(action)
        self._key, self._state, self._obs, host = self._step_fn(self._key, self._state, self._obs, act, self.params)
        obs, reward, terminated, truncated, kpi, reward_terms, mask = host.unpack()
        self._kpi = {k: float(v) for k, v in kpi.items()}
        self._mask = np.asarray(mask, np.int8)
        info = {"kpi": dict(self._kpi), "reward_terms": {k: float(v) for k, v in reward_terms.items()},
                "action_mask": self._mask.copy()}
        if self.render_mode == "human":
            self.render()
        return np.array(obs, np.float32), float(reward), bool(terminated), bool(truncated), info

    def action_masks(self) -> np.ndarray:
        """The allowed values of the next action, flat over the components, as booleans: sb3-contrib's
        MaskablePPO calls this (its `ActionMasker` convention); the same mask as `info["action_mask"]`."""
        if self._state is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before action_masks()")
        return self._mask.astype(bool)

    def _check_action(self, action: Any) -> np.ndarray:
        """The action as int32, or a ValueError naming the agent and its space."""
        space = self.action_space
        try:
            arr = np.asarray(action)
            numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        except (TypeError, ValueError):
            arr, numeric = None, False
        ok = (numeric and arr.shape == space.shape and bool(np.all(arr == np.floor(arr)))
              and bool(np.all((arr >= 0) & (arr < space.nvec))))
        if not ok:
            raise ValueError(f"action {action!r} for agent {self.agent!r} is outside its space {space} "
                             f"(integers 0 <= a[j] < nvec[j], shape {space.shape})")
        return arr.astype(np.int32)

    def render(self) -> np.ndarray | None:
        """`rgb_array`: an (H, W, 3) uint8 image of the network; `human`: draws it in a window."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called with render_mode=None; pass render_mode to the constructor")
            return None
        if self._state is None:
            raise RuntimeError(f"{type(self).__name__}: call reset() before render()")
        from qin_env import render  # matplotlib is only imported when drawing

        state = jax.device_get(self._state)
        if self.render_mode == "rgb_array":
            return render.render_rgb(state, self.params, self._kpi)
        render.render_human(state, self.params, self._kpi)
        return None

    def close(self) -> None:
        """Close the `human` window (shared by every env of the process); safe to call twice."""
        if self.render_mode == "human":
            from qin_env import render

            render.close_human()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_reset_fn", None)
        state.pop("_step_fn", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_fns()


class OrchestratorEnv(_SingleAgentView):
    """Controls `"orchestrator"`: episodes and model width of every aggregator's round."""

    def __init__(
        self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", render_mode: str | None = None, max_episode_steps: int | None = None,
    ) -> None:
        super().__init__("orchestrator", scenario, overrides, others, render_mode, max_episode_steps)


class AggregatorEnv(_SingleAgentView):
    """Controls `"aggregator_{aggregator_index}"`: channel, payload, key, memory and throttling of one link."""

    def __init__(
        self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        others: str | Policy = "heuristic", render_mode: str | None = None, max_episode_steps: int | None = None,
        aggregator_index: int = 0,
    ) -> None:
        self.aggregator_index = checked_aggregator_index(scenario, overrides, aggregator_index)
        super().__init__(f"aggregator_{self.aggregator_index}", scenario, overrides, others, render_mode,
                         max_episode_steps)
