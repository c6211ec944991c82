"""Optical fiber links: loss, delay, heralded entanglement rate, detector saturation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range

SPEED_OF_LIGHT_IN_FIBER_KM_PER_S = 2.0e5  # c / n with n ~ 1.5 (standard single-mode fiber)


def fiber_transmittance(length_km: ArrayLike, alpha_db_per_km: ArrayLike = 0.2) -> jax.Array:
    """Fraction of photons surviving `length_km` of fiber with attenuation `alpha_db_per_km`."""
    check_range("length_km", length_km, 0.0, float("inf"))
    check_range("alpha_db_per_km", alpha_db_per_km, 0.0, float("inf"))
    length_km = as_float(length_km)
    # Beer-Lambert loss in decibels: eta = 10^(-alpha L / 10) (Gisin et al., RMP 74, 145, 2002, Sec. II.F)
    return jnp.power(10.0, -jnp.asarray(alpha_db_per_km, length_km.dtype) * length_km / 10.0)


def fiber_delay_s(length_km: ArrayLike) -> jax.Array:
    """One-way propagation delay of light through `length_km` of fiber, in seconds."""
    check_range("length_km", length_km, 0.0, float("inf"))
    return as_float(length_km) / SPEED_OF_LIGHT_IN_FIBER_KM_PER_S


def heralded_pair_rate(
    length_km: ArrayLike,
    *,
    attempt_rate_hz: ArrayLike = 1.0e6,
    p_source: ArrayLike = 0.1,
    alpha_db_per_km: ArrayLike = 0.2,
    eta_detector: ArrayLike = 0.9,
) -> jax.Array:
    """Heralded entangled pairs per second over a fiber link with a midpoint source.

    Each attempt the source emits a pair with probability `p_source`; each photon crosses half
    the link and must be detected, so the link succeeds with `p_source * eta(L) * eta_det^2`.
    """
    check_range("length_km", length_km, 0.0, float("inf"))
    check_range("attempt_rate_hz", attempt_rate_hz, 0.0, float("inf"))
    check_range("p_source", p_source, 0.0, 1.0)
    check_range("eta_detector", eta_detector, 0.0, 1.0)
    eta_link = fiber_transmittance(length_km, alpha_db_per_km)
    # Two-photon heralding, each arm eta(L/2)*eta_d (Barrett & Kok, PRA 71, 060310(R), 2005, Eq. 5)
    p_success = p_source * eta_link * jnp.square(jnp.asarray(eta_detector, eta_link.dtype))
    return attempt_rate_hz * p_success


def detected_count_rate(incident_rate_hz: ArrayLike, dead_time_s: ArrayLike) -> jax.Array:
    """Counts per second registered by a detector with non-paralysable dead time."""
    check_range("incident_rate_hz", incident_rate_hz, 0.0, float("inf"))
    check_range("dead_time_s", dead_time_s, 0.0, float("inf"))
    rate = as_float(incident_rate_hz)
    # Non-paralysable dead time: R_obs = R / (1 + R tau) (Knoll, Radiation Detection, 4th ed., Eq. 4.23)
    return rate / (1.0 + rate * dead_time_s)
