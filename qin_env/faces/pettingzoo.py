"""# QIN: quantum intelligence network (`qin_v1`)

| Import             | `import qin_env; qin_env.parallel_env("metro_qkd")` (or `qin_env.env(...)` for AEC)  |
|--------------------|--------------------------------------------------------------------------------------|
| Actions            | MultiDiscrete                                                                        |
| Parallel API       | Yes                                                                                  |
| Manual Control     | No                                                                                   |
| Agents             | `["orchestrator", "aggregator_0", ..., "aggregator_{A-1}"]`, plus `"eve"`          |
| Action Shape       | orchestrator `(2A,)`, aggregator `(6,)`, eve `(2,)`                                  |
| Observation Shape  | orchestrator `(10A + 2,)`, aggregator `(16,)`, eve `(3A + 1,)`                       |
| Observation Values | [0, 1], float32                                                                      |
| State Shape        | all observations concatenated in `possible_agents` order                             |
| State Values       | [0, 1], float32                                                                      |

A learning federation over a quantum network. An orchestrator trains models with `A` aggregators,
each reaching it over one long-haul link (fiber, repeater chain or LEO satellite) and serving
processing units that learn from device data. Each slot of `episode.dt_s` seconds the orchestrator
sets the training effort of every group and each aggregator decides how to send its update:
in the clear, post-quantum encrypted, one-time padded with QKD key, teleported over stored
entangled pairs, or superdense coded. It also splits the quantum channel between QKD and
entanglement generation, sizes its quantum memory and throttles device traffic. An eavesdropper
taps links (intercept-resend), reading plain updates, raising the QBER and injecting poisoned
updates where they are not authenticated. `A` and everything else come from the scenario file
(`qin_env.list_scenarios()`); the dynamics live in `qin_env.core`, this module only adapts them.

### Agents

`orchestrator`, `aggregator_0` ... `aggregator_{A-1}`, and `eve` only in scenarios with
`eve.mode = "agent"` (such as `adversarial_eve`); other eavesdroppers are part of the environment.
Every agent acts every slot.

### Action space

Every action is a MultiDiscrete vector of indices into the scenario's `[actions]` levels.

* `orchestrator`: two components per aggregator, `[episodes_0, model_qubits_0, episodes_1, ...]`:
  `episodes` indexes `actions.episodes` (training episodes of the group's next round; 0 episodes
  means no round), `model_qubits` indexes `actions.model_qubits` (computation qubits of the model).
* `aggregator_i`: `[channel, payload, keygen_share, test_fraction, memory_qubits, throttle]`:
  * `channel`: 0 plain, 1 pqc (post-quantum encryption), 2 qkd (one-time pad from the QKD key
    pool), 3 teleport (over stored pairs), 4 superdense (up to two bits per stored pair); legacy
    classical aggregators may only use plain or pqc;
  * `payload`: size of the update, an index into `actions.payload_bits` / `actions.payload_qubits`;
  * `keygen_share`: index into `actions.keygen_share`, the share of quantum-channel time spent on
    QKD (the rest generates entangled pairs);
  * `test_fraction`: index into `actions.test_fraction`, sifted bits sacrificed to estimate QBER;
  * `memory_qubits`: 0 ... `hardware.qubit_budget` qubits of pair memory; computation comes first
    and memory beyond the budget is clipped and penalised;
  * `throttle`: index into `actions.throttle`, the share of device traffic admitted.
* `eve`: `[target, level]`: `target` 0 taps nothing, `i + 1` taps link `i`; `level` picks an
  intercept fraction of 0.25, 0.5 or 1.0.

`infos[agent]["action_mask"]` marks the allowed values as one writable `np.int8` vector over the
concatenated components, the same form as on the Gymnasium face (TorchRL's, RLlib's and
MaskablePPO's). `"action_mask_parts"` is the same mask as a tuple with one array per component,
the form Gymnasium's `MultiDiscrete.sample(mask)` takes; the action spaces are
`qin_env.faces.spaces.MaskedMultiDiscrete`, whose `sample` takes either form (PettingZoo's
`api_test` calls `action_space(agent).sample(info["action_mask"])`).
Masked values are legal but wasted: a classical aggregator's
quantum channel fails its round, and memory over the budget is clipped.

### Observation space

Every entry is normalised into [0, 1].

* `orchestrator`: ten fields per aggregator (aggregator 0's ten, then aggregator 1's, ...), then
  `time` and the mean model quality. The fields: `quality` (the orchestrator's model of the
  group), `local_quality` (mean of the group's learners), `latency` (last round over twice
  `reward.slo_s`), `delivered` (last update arrived in time), `buffer_fill`, `key_fill` (secret key
  over `qkd.key_pool_max_bits`), `pair_fill` (stored pairs over memory capacity),
  `fidelity_estimate` ((F - 1/4) / (3/4) of the fidelity estimated from a sacrificed sample of
  fresh pairs; the true fidelity is hidden), `qber_estimate` (over 0.5), `alarm` (QBER alarm).
* `aggregator_i`: its own link's ten fields, then `model_qubits` (over the qubit budget),
  `episodes` (of the last round, over the largest level), `arrivals` (device bits of the last slot
  over the buffer), `channel` ((log10 transmittance + 6) / 6), `quantum_share` (1 fully quantum
  payload, 0 classical, 0.5 hybrid) and `time` (slot over `episode.max_steps`).
* `eve`: per link `plain_traffic` (plain bits sent over the largest payload), `alarm`, `tapping`;
  then `time`.

### Rewards

The orchestrator and the aggregators share one team reward, the sum of the terms reported in
`infos[agent]["reward_terms"]`: `quality` (mean model quality held this slot above the initial
quality), `latency` (rounds over the SLO), `leak` (plain bits read by Eve), `budget` (qubits
over-allocated) and `drop` (device traffic throttled or lost), weighted by the `[reward]` table.
`eve` earns leaked bits and pays for each tap detected by a QBER alarm.

### Episodes and infos

No agent terminates; every agent is truncated after `episode.max_steps` slots (`max_cycles`).
`infos[agent]` after a step holds `kpi` and `reward_terms` (network-wide, the same for every
agent), `budget_clipped_qubits` (qubits requested over the budgets this slot, all aggregators),
`action_mask` and `action_mask_parts`; after `reset` only the two masks. The KPIs (Python floats):

| KPI                 | meaning                                                                   |
|---------------------|---------------------------------------------------------------------------|
| `latency_s`         | s: longest end-to-end time of this slot's learning rounds (0 when none)   |
| `slo_violation`     | share of this slot's rounds slower than `reward.slo_s`                    |
| `leaked_bits`       | bits of unencrypted update read by the eavesdropper this slot             |
| `secret_key_bits`   | secret key bits distilled this slot from full finite-key blocks, all links |
| `qber`              | highest estimated QBER over links that ran QKD this slot                  |
| `eve_detected`      | 1 if a tapped link raised a QBER alarm this slot                          |
| `epr_pairs`         | entangled pairs heralded end to end this slot, all links                  |
| `mean_fidelity`     | mean Werner fidelity of stored pairs (0 when none are stored)             |
| `fidelity_estimate` | mean fidelity estimate the agents see, quantum and hybrid links (0.25: none yet) |
| `pairs_used`        | pairs consumed by teleported or superdense-coded updates this slot        |
| `superdense_bits`   | classical bits delivered by superdense coding this slot, all links        |
| `links_up`          | links with a usable quantum channel this slot                             |
| `budget_violation`  | qubits over-allocated (clipped) as a share of all qubit budgets           |
| `model_quality`     | surrogate: mean quality of the per-aggregator models; federated: global test accuracy |
| `dropped_bits`      | device bits refused by throttling or lost to buffer overflow this slot    |
| `key_pool_bits`     | secret key stored over all links after the slot                           |
| `stored_pairs`      | pairs stored in memories over all links after the slot                    |
| `alarms`            | links whose QBER estimate exceeded `qkd.alarm_qber` this slot             |
| `delivered_updates` | aggregator updates that reached the orchestrator in time                  |
| `poisoned_updates`  | poisoned updates accepted this slot                                       |
| `throttled_bits`    | device bits refused by throttling this slot                               |
| `update_bits`       | bits of update payload sent this slot, all links                          |
| `extraction_agreement` | share of probe inputs where Eve's copy and the global model agree (federated; else 0) |

### Arguments

``` python
qin_env.parallel_env(scenario="metro_qkd", overrides=None, render_mode=None, max_cycles=None)
```

`scenario`: a shipped scenario name or a path to a TOML file.

`overrides`: dotted-key parameter overrides, e.g. `{"eve.mode": "stationary"}` (see `qin_env.schema`).

`render_mode`: None, `"human"` or `"rgb_array"`.

`max_cycles`: slots per episode; overrides `episode.max_steps` when given.

`reset(seed=...)` seeds the JAX key; `reset()` without a seed continues the current key stream.
The same seed and actions give the same trajectory. `env.core_state` and `env.params` expose the
core's `State` and `Params`.

### Version History

* v1: the physics of the step made honest and the return redefined (environment version 1;
  version-0 checkpoints, leaderboard cells and scenario files are refused). Superdense coding
  sends its encoded qubit over the lossy channel; repeater rates follow the nested 3/2 formula;
  heralding pays the Bell measurement's 1/2 and a round-trip cap; fresh pairs decohere within
  their slot; a satellite passes once per orbit; agents see a sampled fidelity estimate, not the
  fidelity; QBER tests draw exact binomial tails; key is distilled from finite-key blocks. The
  reward pays the quality held every slot; delivered value caps quality, payload size carries
  information, poisoning plants a backdoor that clean rounds repair, surges start and end at
  random, teleportation's bits queue, a new model width applies from the next slot, classical
  aggregators run a fixed classical model, random play respects the masks. Observation field
  `pair_fidelity` is now `fidelity_estimate`; KPIs `superdense_bits`, `pairs_used`, `links_up`,
  `fidelity_estimate` are new.
* v0: first release.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.spaces import Box
from jax.flatten_util import ravel_pytree
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from qin_env import core
from qin_env.faces import _host
from qin_env.faces.spaces import MaskedMultiDiscrete
from qin_env.params import DEFAULT_SCENARIO, Params, config_hash, load_config, params_from_config
from qin_env.version import ENV_VERSION

_KERNEL_CACHE_SIZE = 32  # configurations whose compiled kernels stay cached
_MASK_CACHE_SIZE = 4096  # width vectors whose action masks stay cached per configuration


def _slices(start: int, sizes: list[int]) -> list[slice]:
    """Consecutive slices of the given sizes from `start`."""
    ends = start + np.cumsum(sizes, dtype=np.int64)
    return [slice(int(e - size), int(e)) for e, size in zip(ends, sizes, strict=True)]


class _ResetHost(NamedTuple):
    """What a reset hands to Python."""

    obs: jax.Array  # every agent's observation, concatenated in agent order
    model_qubits: jax.Array  # [A], from which the host rebuilds the action masks


class _StepHost(NamedTuple):
    """What a step hands to Python; per-agent values are in agent order."""

    obs: jax.Array
    rewards: jax.Array
    terminations: jax.Array
    truncations: jax.Array
    kpi: jax.Array  # in `_Layout.kpi_names` order
    reward_terms: jax.Array  # in `_Layout.term_names` order
    clipped: jax.Array  # budget-clipped qubits
    model_qubits: jax.Array


class _Layout:
    """Where each agent's values lie in the flat vectors of a configuration, and its action masks.

    The action masks are rebuilt from the computation qubits on the host (`masks`): in the compiled
    step they ran apart from the main chain and, with a second job on the cores, tripled its median time.
    """

    def __init__(self, params: Params, infos: dict[str, Any]) -> None:
        self.params = params
        self.agents = core.agent_names(params)
        self.obs_sizes = [core.obs_size(params, a) for a in self.agents]
        self.nvecs = [np.asarray(core.action_nvec(params, a), np.int64) for a in self.agents]
        self.nvec_flat = np.concatenate(self.nvecs)
        found = infos[self.agents[0]]["kpi"]
        self.kpi_names = [k for k in core.KPI_UNITS if k in found] + sorted(set(found) - set(core.KPI_UNITS))
        self.term_names = list(infos[self.agents[0]]["reward_terms"])
        self.obs_slices = _slices(0, self.obs_sizes)
        self.n_obs = self.obs_slices[-1].stop
        self.action_slices = _slices(0, [len(v) for v in self.nvecs])
        self.mask_slices = _slices(0, [int(v.sum()) for v in self.nvecs])  # within the concatenated masks
        self.component_slices = [_slices(0, v.tolist()) for v in self.nvecs]  # within one agent's mask
        self._mask_cache: dict[bytes, np.ndarray] = {}

    def masks(self, model_qubits: np.ndarray) -> np.ndarray:
        """Every agent's flat `core.action_masks`, concatenated in agent order as int8.

        Widths take few values (the scenario's levels), so masks are kept per width vector: a step
        then costs a dictionary look-up and a copy instead of rebuilding them.
        """
        digest = model_qubits.tobytes()
        masks = self._mask_cache.get(digest)
        if masks is None:
            by_agent = core.action_masks(model_qubits, self.params, xp=np)
            masks = np.concatenate([by_agent[a] for a in self.agents]).astype(np.int8)
            if len(self._mask_cache) < _MASK_CACHE_SIZE:
                self._mask_cache[digest] = masks
        return masks.copy()


class _Kernels(NamedTuple):
    """Compiled functions of one configuration; the core state travels as one flat vector."""

    start: Callable  # key -> (key, packed state, packed _ResetHost)
    advance: Callable  # (key, packed state, actions) -> (key, packed state, packed _StepHost)
    pack: Callable  # State -> packed state
    unpack: Callable  # packed state -> State
    layout: _Layout


def _make_kernels(params: Params) -> _Kernels:
    """Jit reset and step of one configuration around the core.

    The key is split inside; the core state is raveled into one float32 vector (its integer
    fields are small counts, exact in float32), and everything the face hands to Python is packed
    into one more (`_host.pack`), so a step passes three buffers each way and costs one
    device-to-host copy.
    """
    step = functools.partial(core.step, params=params)
    key = jax.random.PRNGKey(0)
    _, state_shape = jax.eval_shape(core.reset, key, params)
    *_, infos_shape = jax.eval_shape(step, key, state_shape, core.default_actions(params))
    layout = _Layout(params, infos_shape)
    agents = layout.agents
    odd = {str(x.dtype) for x in jax.tree.leaves(state_shape)} - {"float32", "int32", "bool"}
    if odd:  # a PRNG key or a wide integer in the state would not survive a float32 round trip
        raise TypeError(f"core.State fields of dtype {sorted(odd)} cannot travel as float32; update the face")
    _, unravel = ravel_pytree(jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), state_shape))

    def pack(state: core.State) -> jax.Array:
        return ravel_pytree(state)[0]

    def start(key: jax.Array) -> tuple[jax.Array, jax.Array, _host.Packed]:
        key, sub = jax.random.split(key)
        obs, state = core.reset(sub, params)
        return key, pack(state), _host.pack(_ResetHost(jnp.concatenate([obs[a] for a in agents]), state.model_qubits))

    def advance(key: jax.Array, packed: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array, _host.Packed]:
        key, sub = jax.random.split(key)
        by_agent = {a: actions[s] for a, s in zip(agents, layout.action_slices, strict=True)}
        obs, state, rewards, terminations, truncations, infos = step(sub, unravel(packed), by_agent)
        first = infos[agents[0]]
        host = _StepHost(
            obs=jnp.concatenate([obs[a] for a in agents]),
            rewards=jnp.stack([rewards[a] for a in agents]),
            terminations=jnp.stack([terminations[a] for a in agents]),
            truncations=jnp.stack([truncations[a] for a in agents]),
            kpi=jnp.stack([first["kpi"][k] for k in layout.kpi_names]),
            reward_terms=jnp.stack([first["reward_terms"][k] for k in layout.term_names]),
            clipped=jnp.stack([infos[a]["budget_clipped_qubits"] for a in agents]),
            model_qubits=state.model_qubits,
        )
        return key, pack(state), _host.pack(host)

    return _Kernels(jax.jit(start), jax.jit(advance), jax.jit(pack), jax.jit(unravel), layout)


_KERNELS: dict[str, _Kernels] = {}


def _kernels(config: Mapping[str, Any], params: Params) -> _Kernels:
    """Compiled kernels of a configuration, shared by every env of it (keyed by the config's hash)."""
    digest = config_hash(config)
    if digest not in _KERNELS:
        if len(_KERNELS) >= _KERNEL_CACHE_SIZE:
            del _KERNELS[next(iter(_KERNELS))]
        _KERNELS[digest] = _make_kernels(params)
    return _KERNELS[digest]


class QINParallelEnv(ParallelEnv):
    """PettingZoo ParallelEnv over the functional JAX core of one scenario."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "qin_v1", "render_modes": ["human", "rgb_array"], "is_parallelizable": True, "render_fps": 4,
    }

    def __init__(
        self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None, max_cycles: int | None = None,
    ) -> None:
        """Load and validate the scenario; the episode starts at `reset`."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, {', '.join(self.metadata['render_modes'])}")
        self.scenario = scenario
        self.metadata = {**type(self).metadata, "name": f"qin_{Path(scenario).stem}_v{ENV_VERSION}"}  # env_v1 naming
        self.overrides = dict(overrides or {})
        if max_cycles is not None:
            self.overrides["episode.max_steps"] = max_cycles
        self.render_mode = render_mode
        self._build()
        self.agents: list[str] = []
        self.num_steps = 0
        self._key: jax.Array | None = None
        self._packed: jax.Array | None = None  # the core State, raveled
        self._state_vector: np.ndarray | None = None
        self._kpi: dict[str, float] | None = None

    def _build(self) -> None:
        """Params, spaces and compiled kernels from the scenario and overrides."""
        _host.claim_process()
        config = load_config(self.scenario, self.overrides)
        self.params = params_from_config(config)
        self._kernels = _kernels(config, self.params)
        layout = self._kernels.layout
        self.possible_agents = list(layout.agents)
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.observation_spaces = {
            a: Box(0.0, 1.0, (n,), np.float32) for a, n in zip(self.possible_agents, layout.obs_sizes, strict=True)
        }
        self.action_spaces = {
            a: MaskedMultiDiscrete(v) for a, v in zip(self.possible_agents, layout.nvecs, strict=True)
        }
        self.state_space = Box(0.0, 1.0, (layout.n_obs,), np.float32)

    @property
    def core_state(self) -> core.State | None:
        """The core's `State` of the running episode (None before the first reset)."""
        return None if self._packed is None else self._kernels.unpack(self._packed)

    @core_state.setter
    def core_state(self, state: core.State) -> None:
        self._packed = self._kernels.pack(state)

    def observation_space(self, agent: str) -> Box:
        """Observation space of `agent` (the same object every call)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> MaskedMultiDiscrete:
        """Action space of `agent` (the same object every call)."""
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode; a seed restarts the key stream, None continues it (or draws one)."""
        del options
        _host.claim_process()
        if seed is not None or self._key is None:
            seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
            self._key = jax.random.PRNGKey(seed)
        self._key, self._packed, host = self._kernels.start(self._key)
        h = host.unpack()  # the one device-to-host copy
        layout = self._kernels.layout
        self._state_vector = h.obs.copy()
        self.agents = list(self.possible_agents)
        self.num_steps = 0
        self._kpi = None
        masks = layout.masks(h.model_qubits)
        obs = {a: h.obs[s] for a, s in zip(self.possible_agents, layout.obs_slices, strict=True)}
        return obs, {a: self._mask_info(i, masks) for i, a in enumerate(self.possible_agents)}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one slot with every live agent's action."""
        if self._packed is None or not self.agents:
            raise RuntimeError("step() needs a running episode: call reset() first")
        _host.claim_process()
        flat_actions = self._flat_actions(actions)
        self._key, self._packed, host = self._kernels.advance(self._key, self._packed, flat_actions)
        h = host.unpack()  # the one device-to-host copy of the step
        layout, agents = self._kernels.layout, self.possible_agents
        self._state_vector = h.obs.copy()
        self.num_steps += 1
        obs = {a: h.obs[s] for a, s in zip(agents, layout.obs_slices, strict=True)}
        rewards = dict(zip(agents, h.rewards.tolist(), strict=True))
        terminations = dict(zip(agents, h.terminations.tolist(), strict=True))
        truncations = dict(zip(agents, h.truncations.tolist(), strict=True))
        self._kpi = kpi = dict(zip(layout.kpi_names, h.kpi.tolist(), strict=True))
        reward_terms = dict(zip(layout.term_names, h.reward_terms.tolist(), strict=True))
        clipped = h.clipped.tolist()
        masks = layout.masks(h.model_qubits)
        infos = {
            a: {"kpi": dict(kpi), "reward_terms": dict(reward_terms), "budget_clipped_qubits": clipped[i],
                **self._mask_info(i, masks)}
            for i, a in enumerate(agents)
        }
        self.agents = [a for a in agents if not (terminations[a] or truncations[a])]
        return obs, rewards, terminations, truncations, infos

    def _mask_info(self, index: int, masks: np.ndarray) -> dict[str, Any]:
        """One agent's action mask: flat, and per component (for Gymnasium's `MultiDiscrete.sample(mask)`)."""
        layout = self._kernels.layout
        own = masks[layout.mask_slices[index]]
        return {"action_mask": own, "action_mask_parts": tuple(own[s] for s in layout.component_slices[index])}

    def _flat_actions(self, actions: Mapping[str, Any]) -> np.ndarray:
        """Check every action against its space; pack them in agent order as one int32 vector."""
        if len(actions) != len(self.agents) or any(actions.get(a) is None for a in self.agents):
            unknown = [a for a in actions if a not in self.agents]
            if unknown:
                raise ValueError(f"actions for unknown or finished agents {unknown}; live agents: {self.agents}")
            missing = [a for a in self.agents if actions.get(a) is None]
            raise ValueError(f"missing actions for live agents {missing}")
        layout = self._kernels.layout
        flat = np.zeros(len(layout.nvec_flat), np.int64)
        for agent in self.agents:
            i = self._index[agent]
            value = np.asarray(actions[agent])
            if value.shape != layout.nvecs[i].shape or not _integral(value):
                raise self._action_error(agent, value)
            flat[layout.action_slices[i]] = value
        if ((flat < 0) | (flat >= layout.nvec_flat)).any():
            bad = next(a for a in self.agents if not self.action_spaces[a].contains(np.asarray(actions[a], np.int64)))
            raise self._action_error(bad, np.asarray(actions[bad]))
        return flat.astype(np.int32)

    def _action_error(self, agent: str, value: np.ndarray) -> ValueError:
        """The error that names the agent, its action and its space."""
        space = self.action_spaces[agent]
        if value.shape != space.shape:
            return ValueError(f"action for {agent} = {value} has shape {value.shape}, expected {space.shape} "
                              f"of {space}")
        if not _integral(value):
            return ValueError(f"action for {agent} = {value} is not integer; expected a member of {space}")
        return ValueError(f"action for {agent} = {value} is outside {space}")

    def state(self) -> np.ndarray:
        """Global state: every agent's current observation concatenated in `possible_agents` order."""
        if self._state_vector is None:
            raise RuntimeError("state() needs a running episode: call reset() first")
        return self._state_vector.copy()

    def render(self) -> np.ndarray | None:
        """The network as a picture (`rgb_array`) or in a window (`human`)."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "You are calling render method without specifying any render mode. You can specify the render_mode "
                f'at initialization, e.g. qin_env.parallel_env("{self.scenario}", render_mode="rgb_array")')
            return None
        if self._packed is None:
            raise RuntimeError("render() needs a running episode: call reset() first")
        from qin_env import render as drawing

        if self.render_mode == "rgb_array":
            return drawing.render_rgb(self.core_state, self.params, self._kpi)
        drawing.render_human(self.core_state, self.params, self._kpi)
        return None

    def close(self) -> None:
        """Close the `human` window, if this env opened one."""
        if self.render_mode == "human":
            from qin_env import render as drawing

            drawing.close_human()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without compiled kernels, params or device arrays; they are rebuilt on load."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("_kernels", "params")}
        out["_key"] = None if self._key is None else np.asarray(self._key)
        out["_packed"] = None if self._packed is None else np.asarray(self._packed)
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the episode; params and kernels come back from the scenario and overrides."""
        spaces = state["observation_spaces"], state["action_spaces"]
        self.__dict__.update(state)
        self._build()
        self.observation_spaces, self.action_spaces = spaces  # keep the spaces' seeded generators
        self._key = None if self._key is None else jnp.asarray(self._key)
        self._packed = None if self._packed is None else jnp.asarray(self._packed)


def _integral(value: np.ndarray) -> bool:
    """Whether an action array holds integers (integer dtype, or floats with whole values)."""
    return value.dtype.kind in "iu" or (value.dtype.kind == "f" and bool(np.all(np.mod(value, 1) == 0)))


def parallel_env(
    scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> QINParallelEnv:
    """The PettingZoo ParallelEnv of a scenario."""
    return QINParallelEnv(scenario, overrides, render_mode, max_cycles)


def env(
    scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> AECEnv:
    """The PettingZoo AEC env of a scenario (the parallel env under `parallel_to_aec`, order enforced)."""
    return parallel_to_aec(parallel_env(scenario, overrides, render_mode, max_cycles))
