"""Actor-critic function pairs and MultiDiscrete heads shared by every trainable agent.

An `ActorCritic` is a pair of pure functions: `init(key) -> params` and
`apply(params, obs) -> (logits, value)` for ONE observation vector; batch with `jax.vmap`.
`logits` concatenates one block per MultiDiscrete component (sizes `nvec`); each block is a
softmax head. The variational-circuit agents (agents/vqc.py) and the MLP below share this API,
so the trainers never know which one they train.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

MASKED_LOGIT = -1e9


class ActorCritic(NamedTuple):
    """A policy-and-value network as two pure functions plus what describes it."""

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
    kind: str
    config: dict[str, Any]


def param_count(params: Any) -> int:
    """Number of trainable scalars in a parameter pytree."""
    return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))


def _dense_init(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict[str, jax.Array]:
    # Orthogonal init as in PPO implementations (Engstrom et al., ICLR 2020, "implementation matters")
    w = jax.nn.initializers.orthogonal(scale)(key, (n_in, n_out), jnp.float32)
    return {"w": w, "b": jnp.zeros(n_out, jnp.float32)}


def mlp_actor_critic(obs_dim: int, n_logits: int, hidden: Sequence[int] = (64, 64)) -> ActorCritic:
    """Separate tanh MLP actor and critic (stable-baselines3's default `MlpPolicy` shape is (64, 64))."""
    sizes = [obs_dim, *hidden]

    def init(key: jax.Array) -> dict[str, Any]:
        keys = iter(jax.random.split(key, 2 * len(sizes)))
        params: dict[str, Any] = {}
        for head, n_out, out_scale in (("actor", n_logits, 0.01), ("critic", 1, 1.0)):
            layers = [_dense_init(next(keys), a, b, float(np.sqrt(2))) for a, b in itertools.pairwise(sizes)]
            layers.append(_dense_init(next(keys), sizes[-1], n_out, out_scale))
            params[head] = layers
        return params

    def forward(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
        for layer in layers[:-1]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        return x @ layers[-1]["w"] + layers[-1]["b"]

    def apply(params: dict[str, Any], obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return forward(params["actor"], obs), forward(params["critic"], obs)[0]

    return ActorCritic(init, apply, "mlp", {"obs_dim": obs_dim, "n_logits": n_logits, "hidden": list(hidden)})


def _blocks(nvec: Sequence[int]) -> list[tuple[int, int]]:
    starts = np.cumsum([0, *nvec[:-1]])
    return [(int(s), int(n)) for s, n in zip(starts, nvec, strict=True)]


def masked_logits(logits: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Rule out masked choices (mask False) before any softmax."""
    return logits if mask is None else jnp.where(mask, logits, MASKED_LOGIT)


def sample_action(key: jax.Array, logits: jax.Array, nvec: Sequence[int],
                  mask: jax.Array | None = None) -> jax.Array:
    """One MultiDiscrete action (int32 vector) from concatenated per-component logits."""
    logits = masked_logits(logits, mask)
    keys = jax.random.split(key, len(nvec))
    return jnp.stack([jax.random.categorical(k, logits[s:s + n]) for k, (s, n) in
                      zip(keys, _blocks(nvec), strict=True)]).astype(jnp.int32)


def greedy_action(logits: jax.Array, nvec: Sequence[int], mask: jax.Array | None = None) -> jax.Array:
    """The most likely choice of every component."""
    logits = masked_logits(logits, mask)
    return jnp.stack([jnp.argmax(logits[s:s + n]) for s, n in _blocks(nvec)]).astype(jnp.int32)


def log_prob_entropy(logits: jax.Array, nvec: Sequence[int], action: jax.Array,
                     mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Joint log-probability of `action` and the summed entropy of the component softmaxes."""
    logits = masked_logits(logits, mask)
    log_p, entropy = 0.0, 0.0
    for j, (s, n) in enumerate(_blocks(nvec)):
        logp = jax.nn.log_softmax(logits[s:s + n])
        log_p = log_p + logp[action[j]]
        entropy = entropy - jnp.sum(jnp.exp(logp) * logp)
    return log_p, entropy
