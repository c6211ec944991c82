"""Per-link channel figures of the topology at a given time: transmittance, delay, pair supply."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qin_env import physics as ph
from qin_env.params import Params

SPEED_OF_LIGHT_KM_PER_S = 299_792.458


def satellite_elevation_rad(time_s: jax.Array, params: Params) -> jax.Array:
    """Elevation of each link's satellite at `time_s` (passes repeat every pass period)."""
    period = params.hw["satellite_pass_period_s"]
    since_culmination = jnp.mod(time_s + params.satellite_phase_s + 0.5 * period, period) - 0.5 * period
    return ph.leo_elevation_rad(since_culmination, altitude_km=params.hw["satellite_altitude_km"])


def link_channel(time_s: jax.Array, params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(transmittance of one elementary segment, end-to-end direct transmittance, one-way delay s)."""
    elevation = satellite_elevation_rad(time_s, params)
    visible = elevation >= jnp.deg2rad(params.hw["satellite_min_elevation_deg"])
    slant_km = ph.leo_slant_range_km(jnp.maximum(elevation, 0.0), params.hw["satellite_altitude_km"])
    eta_space = jnp.where(visible, ph.free_space_transmittance(slant_km, elevation_rad=elevation), 0.0)
    eta_segment = jnp.where(params.is_satellite, eta_space, params.eta_fiber)
    eta_direct = jnp.where(params.is_satellite, eta_space, params.eta_fiber ** params.repeater_segments)
    delay = jnp.where(params.is_satellite, slant_km / SPEED_OF_LIGHT_KM_PER_S, ph.fiber_delay_s(params.link_length_km))
    return eta_segment, eta_direct, delay


def fresh_pair_supply(
    eta_segment: jax.Array, tap_fraction: jax.Array, params: Params
) -> tuple[jax.Array, jax.Array]:
    """(end-to-end pairs per second, their Werner fidelity) of each link, swapping where needed."""
    hw = params.hw
    k = params.repeater_segments
    segment_rate = hw["pair_attempt_rate_hz"] * hw["p_source"] * eta_segment * jnp.square(hw["eta_detector"])
    # k segments joined by k-1 probabilistic swaps; nested waiting costs about (2/3) per nesting level
    # (Sangouard, Simon, de Riedmatten, Gisin, RMP 83, 33, 2011, Eq. 10 and the "two-thirds" factor)
    rate = segment_rate * hw["swap_success"] ** (k - 1.0) * (2.0 / 3.0) ** jnp.log2(k)
    # A measured-and-resent photon leaves only classical correlation: that pair becomes F = 1/2
    f_source = hw["source_fidelity"]
    f_tapped = (1.0 - tap_fraction) * f_source + tap_fraction * 0.5
    # Werner parameters p = (4F-1)/3 multiply under swapping (Dür et al., PRA 59, 169, 1999, Eq. 11);
    # Eve taps one of the k segments
    p_clean, p_tapped = (4.0 * f_source - 1.0) / 3.0, (4.0 * f_tapped - 1.0) / 3.0
    fidelity = 0.25 + 0.75 * jnp.power(p_clean, k - 1.0) * p_tapped
    return rate, fidelity
