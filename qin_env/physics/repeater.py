"""Quantum repeater chains: the end-to-end pair rate of nested entanglement swapping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range


def repeater_chain_rate(segment_rate_hz: ArrayLike, n_segments: ArrayLike, swap_success: ArrayLike) -> jax.Array:
    """End-to-end pairs per second of a nested (doubling) chain of `n_segments` elementary links.

    One swap factor and one 2/3 waiting factor per nesting level n = log2(k), with perfect memories; for k
    not a power of two n = log2(k) is the continuous extension. The 2/3 holds for small link success.
    """
    check_range("segment_rate_hz", segment_rate_hz, 0.0, float("inf"))
    check_range("n_segments", n_segments, 1.0, float("inf"))
    check_range("swap_success", swap_success, 0.0, 1.0)
    rate = as_float(segment_rate_hz)
    levels = jnp.log2(jnp.asarray(n_segments, rate.dtype))
    per_level = 2.0 / 3.0 * jnp.asarray(swap_success, rate.dtype)
    possible = per_level > 0.0  # 0^n without NaN gradients: 1 for one segment, else 0
    # R = R0 (2/3)^n P_swap^n, n = log2 k (Sangouard, Simon, de Riedmatten, Gisin, RMP 83, 33, 2011, Sec. III, Eq. 10)
    factor = jnp.power(jnp.where(possible, per_level, 1.0), levels)
    return rate * jnp.where(possible, factor, jnp.where(levels > 0.0, 0.0, 1.0))
