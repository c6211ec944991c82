"""Free-space and satellite (LEO) optical links: diffraction, atmosphere, pass geometry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range

EARTH_RADIUS_KM = 6371.0
EARTH_GM_KM3_PER_S2 = 398600.4418


def free_space_transmittance(
    distance_km: ArrayLike,
    *,
    elevation_rad: ArrayLike = jnp.pi / 2,
    tx_aperture_m: ArrayLike = 0.3,
    rx_aperture_m: ArrayLike = 1.0,
    wavelength_m: ArrayLike = 800e-9,
    pointing_loss_db: ArrayLike = 3.0,
    zenith_atmospheric_transmittance: ArrayLike = 0.8,
) -> jax.Array:
    """Photon transmittance of a ground-satellite optical link seen at `elevation_rad`."""
    check_range("distance_km", distance_km, 0.0, float("inf"))
    check_range("tx_aperture_m", tx_aperture_m, 0.0, float("inf"), low_open=True)
    check_range("rx_aperture_m", rx_aperture_m, 0.0, float("inf"), low_open=True)
    check_range("zenith_atmospheric_transmittance", zenith_atmospheric_transmittance, 0.0, 1.0)
    distance_m = as_float(distance_km) * 1e3
    dt = distance_m.dtype
    divergence_rad = 2.44 * jnp.asarray(wavelength_m, dt) / jnp.asarray(tx_aperture_m, dt)
    # Geometric (diffraction) loss eta = (D_R / (D_T + L theta))^2 (Bourgoin et al., NJP 15, 023006, 2013, Eq. 6)
    eta_geo = jnp.minimum(1.0, (rx_aperture_m / (tx_aperture_m + distance_m * divergence_rad)) ** 2)
    sin_e = jnp.clip(jnp.sin(jnp.asarray(elevation_rad, dt)), 1e-3, 1.0)
    # Plane-parallel atmosphere: T(e) = T_zenith^(1/sin e) (airmass law; Bourgoin et al. 2013, Sec. 3.2)
    eta_atm = jnp.power(jnp.asarray(zenith_atmospheric_transmittance, dt), 1.0 / sin_e)
    eta_point = jnp.power(10.0, -jnp.asarray(pointing_loss_db, dt) / 10.0)
    return eta_geo * eta_atm * eta_point


def leo_slant_range_km(elevation_rad: ArrayLike, altitude_km: ArrayLike = 500.0) -> jax.Array:
    """Distance from a ground station to a satellite at `altitude_km` seen at `elevation_rad`."""
    check_range("altitude_km", altitude_km, 0.0, float("inf"), low_open=True)
    e = as_float(elevation_rad)
    r = EARTH_RADIUS_KM + jnp.asarray(altitude_km, e.dtype)
    # Law of cosines in the Earth-centre triangle (Vallado, Fundamentals of Astrodynamics, Eq. 11-7 form)
    return jnp.sqrt(r**2 - (EARTH_RADIUS_KM * jnp.cos(e)) ** 2) - EARTH_RADIUS_KM * jnp.sin(e)


def leo_elevation_rad(
    t_s: ArrayLike, *, altitude_km: ArrayLike = 500.0, pass_center_s: ArrayLike = 0.0
) -> jax.Array:
    """Elevation of a circular-orbit satellite on an overhead pass culminating at `pass_center_s`.

    Negative values mean the satellite is below the horizon; the Earth's rotation is neglected,
    so passes repeat every orbital period.
    """
    check_range("altitude_km", altitude_km, 0.0, float("inf"), low_open=True)
    t = as_float(t_s)
    r = EARTH_RADIUS_KM + jnp.asarray(altitude_km, t.dtype)
    omega = jnp.sqrt(EARTH_GM_KM3_PER_S2 / r**3)
    gamma = omega * (t - pass_center_s)
    # tan e = (cos g - R_E/r) / |sin g| for central angle g (Vallado, Eq. 11-7)
    return jnp.arctan2(jnp.cos(gamma) - EARTH_RADIUS_KM / r, jnp.abs(jnp.sin(gamma)))


def leo_orbital_period_s(altitude_km: ArrayLike = 500.0) -> jax.Array:
    """Period of a circular orbit at `altitude_km` (Kepler's third law)."""
    check_range("altitude_km", altitude_km, 0.0, float("inf"), low_open=True)
    r = EARTH_RADIUS_KM + as_float(altitude_km)
    return 2.0 * jnp.pi * jnp.sqrt(r**3 / EARTH_GM_KM3_PER_S2)


def leo_visible_fraction(altitude_km: ArrayLike = 500.0, min_elevation_deg: ArrayLike = 15.0) -> jax.Array:
    """Fraction of each orbit that an overhead pass spends above `min_elevation_deg` (Earth's rotation neglected)."""
    check_range("altitude_km", altitude_km, 0.0, float("inf"), low_open=True)
    check_range("min_elevation_deg", min_elevation_deg, 0.0, 90.0)
    e = jnp.deg2rad(as_float(min_elevation_deg))
    r = EARTH_RADIUS_KM + jnp.asarray(altitude_km, e.dtype)
    # Central angle where elevation is e: tan e = (cos g - R_E/r)/sin g solved, g = arccos(R_E cos e / r) - e (Vallado)
    half_angle = jnp.arccos(EARTH_RADIUS_KM * jnp.cos(e) / r) - e
    return half_angle / jnp.pi


def leo_pass_duration_s(altitude_km: ArrayLike = 500.0, min_elevation_deg: ArrayLike = 15.0) -> jax.Array:
    """Seconds an overhead pass of a circular orbit spends above `min_elevation_deg` (as `leo_elevation_rad`)."""
    fraction = leo_visible_fraction(altitude_km, min_elevation_deg)
    return fraction * leo_orbital_period_s(jnp.asarray(altitude_km, fraction.dtype))
