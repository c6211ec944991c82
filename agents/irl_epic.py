"""EPIC pseudometric between reward functions (Gleave et al., ICLR 2021, "Quantifying Differences in Reward Functions").

EPIC(R_A, R_B) = D_rho(C(R_A), C(R_B)): canonicalise each reward so that potential shaping drops
out, then take the Pearson distance D_rho(X, Y) = sqrt((1 - rho(X, Y)) / 2) over a coverage
distribution of transitions. The canonically shaped reward (their Definition 4.1) is

    C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

with S, S' ~ D_S and A ~ D_A independent. The expectations are sample means, as in the reference
implementation (evaluating-rewards, `epic_sample.sample_canon_shaping`, which averages over n
zipped (a, s') samples); here over the full grid of an action sample times a state sample (the
product of the marginals, A and S' independent as in the definition), and one state sample serves
both S and S'. So for any potential phi, C(R + gamma phi(s') - phi(s)) = C(R) + const exactly, and
EPIC is invariant to shaping and to positive rescaling up to float rounding.

Rewards are batched functions `R(s [B, Ds], a [B, Da], s' [B, Ds]) -> [B]`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

BatchedReward = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _mean_over_samples(reward: BatchedReward, first: jax.Array, actions: jax.Array, states: jax.Array,
                       chunk: int) -> jax.Array:
    """E_{A, S'}[R(x, A, S')] for each row x of `first` [B, Ds], as [B] (evaluated in chunks of rows)."""
    k, m = actions.shape[0], states.shape[0]
    a_grid = jnp.repeat(actions, m, axis=0)  # [K*M]
    s_grid = jnp.tile(states, (k, 1))  # [K*M]

    def one(x: jax.Array) -> jax.Array:
        return jnp.mean(reward(jnp.broadcast_to(x, (k * m, x.shape[-1])), a_grid, s_grid))

    pad = (-first.shape[0]) % chunk
    padded = jnp.concatenate([first, jnp.broadcast_to(first[:1], (pad, first.shape[-1]))])
    out = jax.lax.map(jax.vmap(one), padded.reshape(-1, chunk, first.shape[-1]))
    return out.reshape(-1)[: first.shape[0]]


def canonicalize(reward: BatchedReward, obs: jax.Array, action: jax.Array, next_obs: jax.Array,
                 state_samples: jax.Array, action_samples: jax.Array, gamma: float, chunk: int = 16) -> jax.Array:
    """Sample-based canonically shaped reward C(R) at each transition (Gleave et al. 2021, Def. 4.1)."""
    raw = reward(obs, action, next_obs)
    from_next = _mean_over_samples(reward, next_obs, action_samples, state_samples, chunk)  # E[R(s', A, S')]
    from_here = _mean_over_samples(reward, obs, action_samples, state_samples, chunk)  # E[R(s, A, S')]
    overall = jnp.mean(_mean_over_samples(reward, state_samples, action_samples, state_samples, chunk))
    return raw + gamma * from_next - from_here - gamma * overall


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (no linear relation can be measured)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denom) if denom > 0 else 0.0


def pearson_distance(x: np.ndarray, y: np.ndarray) -> float:
    """D_rho = sqrt((1 - rho) / 2), in [0, 1] (Gleave et al. 2021, Def. 4.4)."""
    return float(np.sqrt(max(0.0, 1.0 - pearson(x, y)) / 2.0))


def epic_distance(reward_a: BatchedReward, reward_b: BatchedReward, obs: jax.Array, action: jax.Array,
                  next_obs: jax.Array, state_samples: jax.Array, action_samples: jax.Array,
                  gamma: float) -> dict[str, float | np.ndarray]:
    """EPIC distance of two rewards on the transitions (obs, action, next_obs); also returns both canonical rewards."""
    can_a = np.asarray(canonicalize(reward_a, obs, action, next_obs, state_samples, action_samples, gamma))
    can_b = np.asarray(canonicalize(reward_b, obs, action, next_obs, state_samples, action_samples, gamma))
    if not (np.all(np.isfinite(can_a)) and np.all(np.isfinite(can_b))):
        raise ValueError("a canonicalised reward is not finite; EPIC is undefined")
    return {"distance": pearson_distance(can_a, can_b), "pearson": pearson(can_a, can_b),
            "canonical_a": can_a, "canonical_b": can_b}
