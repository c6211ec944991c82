"""Eager argument checks that vanish under tracing (jit, vmap, grad)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def as_float(x: ArrayLike) -> jax.Array:
    """Convert to a floating JAX array, keeping float32/float64 as given."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_range(
    name: str, x: ArrayLike, low: float, high: float, *, low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError naming `name` when a concrete value lies outside [low, high].

    Traced values (inside jit/vmap/grad) cannot be inspected and are left to the caller's
    contract: the checks are for eager calls, where a user's bad number should fail loudly.
    """
    if isinstance(x, jax.core.Tracer):
        return
    values = np.asarray(x, dtype=np.float64)
    bad_low = values <= low if low_open else values < low
    bad_high = values >= high if high_open else values > high
    bad = bad_low | bad_high | np.isnan(values)
    if np.any(bad):
        offender = float(values[bad].flat[0]) if values.ndim else float(values)
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{name}={offender:.6g} is outside the allowed range {lo}{low}, {high}{hi}")
