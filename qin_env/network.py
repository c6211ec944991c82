"""Per-link channel figures of the topology at a given time: transmittance, delay, pair supply."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from qin_env import physics as ph
from qin_env.params import Params

SPEED_OF_LIGHT_KM_PER_S = 299_792.458


class LinkChannel(NamedTuple):
    """Each link's quantum channel in one slot, and its classical delay."""

    eta_segment: jax.Array  # transmittance of one elementary segment (the whole link without repeaters)
    eta_direct: jax.Array  # end-to-end transmittance of a photon sent straight through
    quantum_delay_s: jax.Array  # one-way time of flight of a photon
    classical_delay_s: jax.Array  # one-way delay of the classical link
    up: jax.Array  # the quantum channel is usable (a satellite above its lowest elevation; fiber always)


def satellite_elevation_rad(time_s: jax.Array, params: Params) -> jax.Array:
    """Elevation of each link's satellite at `time_s`: an overhead pass every orbital period."""
    altitude = params.hw["satellite_altitude_km"]
    period = ph.leo_orbital_period_s(altitude)
    since = jnp.mod(time_s - params.satellite_culmination_s + 0.5 * period, period) - 0.5 * period
    return ph.leo_elevation_rad(since, altitude_km=altitude)


def link_channel(time_s: jax.Array, params: Params) -> LinkChannel:
    """The channel of every link at `time_s`.

    A satellite link carries photons only while the satellite is above
    `hardware.satellite_min_elevation_deg`; its classical traffic goes over the ground network (a relay
    of the link's fiber length), lit or dark.
    """
    elevation = satellite_elevation_rad(time_s, params)
    visible = elevation >= jnp.deg2rad(params.hw["satellite_min_elevation_deg"])
    slant_km = ph.leo_slant_range_km(jnp.maximum(elevation, 0.0), params.hw["satellite_altitude_km"])
    eta_space = jnp.where(visible, ph.free_space_transmittance(slant_km, elevation_rad=elevation), 0.0)
    fiber_delay = ph.fiber_delay_s(params.link_length_km)
    return LinkChannel(
        eta_segment=jnp.where(params.is_satellite, eta_space, params.eta_fiber),
        eta_direct=jnp.where(params.is_satellite, eta_space, params.eta_fiber ** params.repeater_segments),
        quantum_delay_s=jnp.where(params.is_satellite, slant_km / SPEED_OF_LIGHT_KM_PER_S, fiber_delay),
        classical_delay_s=fiber_delay,
        up=~params.is_satellite | visible,
    )


def fresh_pair_supply(
    eta_segment: jax.Array, tap_fraction: jax.Array, params: Params
) -> tuple[jax.Array, jax.Array]:
    """(end-to-end pairs per second, their Werner fidelity when heralded) of each link.

    Each segment heralds pairs by two-photon detection; repeater links join `k` segments by nested
    swapping. Eve intercepts and resends on one segment.
    """
    hw = params.hw
    k = params.repeater_segments
    segment_km = params.link_length_km / k
    segment_rate = ph.heralded_pair_rate_from_transmittance(
        eta_segment, attempt_rate_hz=hw["pair_attempt_rate_hz"], p_source=hw["p_source"],
        eta_detector=hw["eta_detector"], bsm_success=hw["bsm_success"],
        length_km=jnp.where(params.is_satellite, 0.0, segment_km), modes=hw["herald_modes"])
    rate = ph.repeater_chain_rate(segment_rate, k, hw["swap_success"])
    f_source = hw["source_fidelity"]
    f_tapped = ph.intercept_resend_pair_fidelity(f_source, tap_fraction)
    # Werner parameters p = (4F-1)/3 multiply under swapping (Dür et al., PRA 59, 169, 1999, Eq. 11)
    p_clean, p_tapped = (4.0 * f_source - 1.0) / 3.0, (4.0 * f_tapped - 1.0) / 3.0
    fidelity = 0.25 + 0.75 * jnp.power(p_clean, k - 1.0) * p_tapped
    return rate, fidelity
