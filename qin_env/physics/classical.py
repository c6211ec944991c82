"""Classical links: serialisation and queueing delay of a FIFO link."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range


def transmission_delay_s(bits: ArrayLike, bandwidth_bps: ArrayLike) -> jax.Array:
    """Time to put `bits` on a link of `bandwidth_bps` (serialisation delay)."""
    check_range("bits", bits, 0.0, float("inf"))
    check_range("bandwidth_bps", bandwidth_bps, 0.0, float("inf"), low_open=True)
    return as_float(bits) / bandwidth_bps


def queueing_delay_s(backlog_bits: ArrayLike, bandwidth_bps: ArrayLike) -> jax.Array:
    """Wait of a new arrival behind `backlog_bits` already queued on a FIFO link."""
    check_range("backlog_bits", backlog_bits, 0.0, float("inf"))
    check_range("bandwidth_bps", bandwidth_bps, 0.0, float("inf"), low_open=True)
    return as_float(backlog_bits) / bandwidth_bps


def served_bits(backlog_bits: ArrayLike, capacity_bits: ArrayLike) -> jax.Array:
    """Bits a work-conserving link serves in one slot: the backlog, up to its capacity."""
    check_range("backlog_bits", backlog_bits, 0.0, float("inf"))
    check_range("capacity_bits", capacity_bits, 0.0, float("inf"))
    return jnp.minimum(as_float(backlog_bits), capacity_bits)
