"""Heterogeneous agents stacked on one leading axis, so one `jax.vmap` runs every agent's network.

The env's agents differ: the orchestrator sees 10*A+2 numbers and picks (episodes, width) per
aggregator; an aggregator sees 16 and picks six components of different sizes. An `AgentStack`
pads every learner to a common layout:

- observations to the longest length D (zeros), giving [N, D];
- actions to K components (the most any learner has) of M choices (the largest component), so
  logits are [K*M] per agent, read as a [K, M] grid of per-component softmaxes.

A static mask rules out the padding: padded choices of a real component are invalid, and a padded
component has the single choice 0, so it is deterministic, adds exactly zero log-probability and
zero entropy, and is dropped by `unpad_actions`. The env's dynamic action mask is AND-ed on top.
Agent dicts exist only at this boundary, as in JaxMARL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from qin_env import core
from qin_env.params import Params

MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class AgentStack:
    """The learners of a scenario in stack order, with the padded observation and action layout."""

    names: tuple[str, ...]  # learners, in stack order
    all_names: tuple[str, ...]  # every agent of the scenario (learners and fixed-policy agents)
    obs_sizes: tuple[int, ...]  # per learner
    nvecs: tuple[tuple[int, ...], ...]  # per learner
    all_obs_sizes: tuple[int, ...]  # per agent of all_names

    @classmethod
    def from_params(cls, params: Params, learners: Sequence[str] | None = None) -> AgentStack:
        """Stack `learners` (default: every agent of the scenario) in the order given."""
        all_names = tuple(core.agent_names(params))
        names = all_names if learners is None else tuple(learners)
        unknown = [n for n in names if n not in all_names]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(f"learners must be distinct agents of {params.scenario!r} ({all_names}); got {names}")
        return cls(
            names=names,
            all_names=all_names,
            obs_sizes=tuple(core.obs_size(params, n) for n in names),
            nvecs=tuple(tuple(int(x) for x in core.action_nvec(params, n)) for n in names),
            all_obs_sizes=tuple(core.obs_size(params, n) for n in all_names),
        )

    @property
    def n_agents(self) -> int:
        """N, the length of the leading agent axis."""
        return len(self.names)

    @property
    def obs_dim(self) -> int:
        """D, the padded observation length."""
        return max(self.obs_sizes)

    @property
    def n_components(self) -> int:
        """K, the padded number of action components."""
        return max(len(v) for v in self.nvecs)

    @property
    def n_choices(self) -> int:
        """M, the padded number of choices per component."""
        return max(max(v) for v in self.nvecs)

    @property
    def n_logits(self) -> int:
        """K*M logits per agent."""
        return self.n_components * self.n_choices

    @property
    def global_state_dim(self) -> int:
        """Length of the concatenation of every agent's observation (MAPPO's global state)."""
        return sum(self.all_obs_sizes)

    def input_dim(self, agent_id: bool = False) -> int:
        """Network input length: D, plus N for an appended agent one-hot when parameters are shared."""
        return self.obs_dim + (self.n_agents if agent_id else 0)

    def _gather_index(self) -> np.ndarray:
        """[N, K, M] index into each learner's flat mask; -1 marks padding."""
        k, m = self.n_components, self.n_choices
        index = np.full((self.n_agents, k, m), -1, np.int32)
        for i, nvec in enumerate(self.nvecs):
            start = 0
            for j, n in enumerate(nvec):
                index[i, j, :n] = np.arange(start, start + n)
                start += n
        return index

    def static_mask(self) -> np.ndarray:
        """[N, K*M] choices that exist: real choices, and choice 0 of a padded component."""
        index = self._gather_index()
        padded_component = np.all(index < 0, axis=-1, keepdims=True)
        first = np.arange(self.n_choices) == 0
        return ((index >= 0) | (padded_component & first)).reshape(self.n_agents, -1)

    def component_mask(self) -> np.ndarray:
        """[N, K] True for real action components."""
        return np.array([[j < len(v) for j in range(self.n_components)] for v in self.nvecs])

    def pad_obs(self, obs: Mapping[str, jax.Array]) -> jax.Array:
        """Learners' observations [..., N, D], zero-padded at the end."""
        d = self.obs_dim
        return jnp.stack([_pad_last(jnp.asarray(obs[n], jnp.float32), d) for n in self.names], axis=-2)

    def network_inputs(self, obs: Mapping[str, jax.Array], agent_id: bool = False) -> jax.Array:
        """Network inputs [..., N, input_dim]: padded observations, with an agent one-hot if asked."""
        x = self.pad_obs(obs)
        if not agent_id:
            return x
        eye = jnp.broadcast_to(jnp.eye(self.n_agents, dtype=x.dtype), (*x.shape[:-2], self.n_agents, self.n_agents))
        return jnp.concatenate([x, eye], axis=-1)

    def global_state(self, obs: Mapping[str, jax.Array]) -> jax.Array:
        """Every agent's observation concatenated [..., G]: the global state of a centralised critic."""
        return jnp.concatenate([jnp.asarray(obs[n], jnp.float32) for n in self.all_names], axis=-1)

    def masks(self, flat_masks: Mapping[str, jax.Array]) -> jax.Array:
        """[..., N, K*M] valid choices: the static layout AND the env's flat per-agent masks.

        `flat_masks` is `core.action_masks(state.model_qubits, params)` or `{a: infos[a]["action_mask"]}`.
        """
        index = self._gather_index()
        out = []
        for i, name in enumerate(self.names):
            flat = jnp.asarray(flat_masks[name], bool)
            ones = jnp.ones((*flat.shape[:-1], 1), bool)
            flat = jnp.concatenate([flat, ones], axis=-1)  # index -1 reads this True
            out.append(flat[..., index[i]].reshape(*flat.shape[:-1], -1))
        return jnp.stack(out, axis=-2) & jnp.asarray(self.static_mask())

    def unpad_actions(self, actions: jax.Array) -> dict[str, jax.Array]:
        """[..., N, K] padded actions to each learner's MultiDiscrete action (padding dropped)."""
        pairs = zip(self.names, self.nvecs, strict=True)
        return {name: actions[..., i, : len(nvec)].astype(jnp.int32) for i, (name, nvec) in enumerate(pairs)}

    def pad_actions(self, actions: Mapping[str, jax.Array]) -> jax.Array:
        """Learners' MultiDiscrete actions to the padded [..., N, K] layout (padded components 0)."""
        k = self.n_components
        return jnp.stack([_pad_last(jnp.asarray(actions[n], jnp.int32), k) for n in self.names], axis=-2)

    def _grid(self, logits: jax.Array, mask: jax.Array) -> jax.Array:
        """Masked logits as [..., K, M]."""
        logits = jnp.where(mask, logits, MASKED_LOGIT)
        return logits.reshape(*logits.shape[:-1], self.n_components, self.n_choices)

    def sample(self, key: jax.Array, logits: jax.Array, mask: jax.Array) -> jax.Array:
        """Padded actions [..., K] drawn from per-component softmaxes over the valid choices."""
        return jax.random.categorical(key, self._grid(logits, mask), axis=-1).astype(jnp.int32)

    def greedy(self, logits: jax.Array, mask: jax.Array) -> jax.Array:
        """The most likely valid choice of every component [..., K]."""
        return jnp.argmax(self._grid(logits, mask), axis=-1).astype(jnp.int32)

    def log_prob_entropy(self, logits: jax.Array, mask: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Joint log-probability of padded `actions` [..., K] and the summed component entropies."""
        log_p = jax.nn.log_softmax(self._grid(logits, mask), axis=-1)
        taken = jnp.take_along_axis(log_p, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
        p = jnp.exp(log_p)
        entropy = -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=(-2, -1))
        return jnp.sum(taken, axis=-1), entropy

    def probabilities(self, logits: jax.Array, mask: jax.Array) -> jax.Array:
        """Per-component choice probabilities [..., K, M] (rows of padded components are one-hot at 0)."""
        return jax.nn.softmax(self._grid(logits, mask), axis=-1)


def _pad_last(x: jax.Array, size: int) -> jax.Array:
    pad = [(0, 0)] * (x.ndim - 1) + [(0, size - x.shape[-1])]
    return jnp.pad(x, pad)
