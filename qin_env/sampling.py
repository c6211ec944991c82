"""Moment-matched count samplers: cheap under `vmap`, with the exact mean and variance.

`jax.random.poisson` and `jax.random.binomial` under `vmap` cost about three times more step
throughput than one normal draw (measured on a prototype step, batch 8,192). Every count in the
model is a large aggregate (bits, pairs, test errors) where only the first two moments matter,
so a log-normal with the same mean and variance stands in: non-negative, one normal and one exp.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def moment_matched_count(key: jax.Array, mean: ArrayLike, var: ArrayLike) -> jax.Array:
    """Non-negative draw with the given mean and variance (log-normal; zero where mean is zero)."""
    mean = jnp.asarray(mean, jnp.float32)
    safe_mean = jnp.maximum(mean, 1e-12)
    sigma2 = jnp.log1p(jnp.maximum(var, 0.0) / jnp.square(safe_mean))
    z = jax.random.normal(key, jnp.shape(mean), jnp.float32)
    draw = safe_mean * jnp.exp(jnp.sqrt(sigma2) * z - 0.5 * sigma2)
    return jnp.where(mean > 0.0, draw, 0.0)


def poisson_approx(key: jax.Array, rate: ArrayLike) -> jax.Array:
    """Poisson-like count: mean and variance both equal `rate`."""
    return moment_matched_count(key, rate, rate)


def binomial_approx(key: jax.Array, n: ArrayLike, p: ArrayLike) -> jax.Array:
    """Binomial-like count of successes in `n` trials of probability `p`, capped at `n`."""
    n = jnp.asarray(n, jnp.float32)
    p = jnp.asarray(p, jnp.float32)
    return jnp.minimum(moment_matched_count(key, n * p, n * p * (1.0 - p)), n)
