"""Every physics function under jit, vmap and grad, in float32 and float64, and its input checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numeric import finite_difference

from qin_env import physics as ph

# name -> (function of one array argument, smooth interior points, an invalid value)
CASES = {
    "fiber_transmittance": (ph.fiber_transmittance, [0.0, 10.0, 80.0], -1.0),
    "fiber_delay_s": (ph.fiber_delay_s, [0.0, 10.0, 500.0], -0.1),
    "binary_entropy": (ph.binary_entropy, [0.01, 0.3, 0.5, 0.9], 1.2),
    "shor_preskill_rate": (ph.shor_preskill_rate, [0.01, 0.02, 0.08], -0.01),
    "intercept_resend_qber": (ph.intercept_resend_qber, [0.0, 0.4, 1.0], 1.5),
    "eve_detection_probability": (
        functools.partial(ph.eve_detection_probability, n_test=100, threshold=0.11),
        [0.05, 0.12, 0.25], 2.0,
    ),
    "decoy_bb84_key_rate": (ph.decoy_bb84_key_rate, [0.0, 25.0, 100.0], -5.0),
    "decoy_bb84_key_rate_from_transmittance": (
        ph.decoy_bb84_key_rate_from_transmittance, [0.01, 0.1, 0.6], 1.5,
    ),
    "bb84_gain": (ph.bb84_gain, [0.0, 0.01, 0.5], -0.2),
    "entanglement_qber": (ph.entanglement_qber, [0.3, 0.8, 1.0], 0.1),
    "plob_bound": (ph.plob_bound, [0.0, 0.3, 0.9], 1.1),
    "werner_swap_fidelity": (lambda f: ph.werner_swap_fidelity(f, 0.9), [0.3, 0.8, 1.0], 0.2),
    "decohered_fidelity": (lambda t: ph.decohered_fidelity(0.95, t, 0.01), [0.0, 1e-3, 0.05], -1.0),
    "bbpssw_purify": (lambda f: ph.bbpssw_purify(f)[0], [0.3, 0.75, 0.99], 1.01),
    "bbpssw_success": (lambda f: ph.bbpssw_purify(f)[1], [0.3, 0.75, 0.99], 0.1),
    "chsh_value": (ph.chsh_value, [0.25, 0.8, 1.0], 0.0),
    "teleportation_fidelity": (ph.teleportation_fidelity, [0.25, 0.8, 1.0], 1.5),
    "superdense_capacity": (ph.superdense_capacity, [0.3, 0.8, 0.99], -0.5),
    "heralded_pair_rate": (ph.heralded_pair_rate, [0.0, 20.0, 100.0], -3.0),
    "detected_count_rate": (lambda r: ph.detected_count_rate(r, 50e-9), [0.0, 1e5, 1e8], -1.0),
    "free_space_transmittance": (ph.free_space_transmittance, [300.0, 800.0, 1500.0], -1.0),
    "leo_slant_range_km": (ph.leo_slant_range_km, [0.2, 0.8, 1.5], None),
    "leo_elevation_rad": (ph.leo_elevation_rad, [-300.0, 10.0, 200.0], None),
    "leo_orbital_period_s": (ph.leo_orbital_period_s, [400.0, 550.0, 1200.0], -10.0),
    "transmission_delay_s": (lambda b: ph.transmission_delay_s(b, 1e9), [0.0, 1e6, 1e9], -1.0),
    "queueing_delay_s": (lambda b: ph.queueing_delay_s(b, 1e9), [0.0, 1e6, 1e9], -1.0),
    "served_bits": (lambda b: ph.served_bits(b, 1e6), [1e3, 5e5, 2e6], -1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_and_vmap_agree_with_plain_calls(name):
    fn, points, _ = CASES[name]
    x = jnp.asarray(points, jnp.float32)
    plain = np.array([float(fn(jnp.float32(p))) for p in points])
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(x)), plain, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(np.asarray(jax.vmap(fn)(x)), plain, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(np.asarray(fn(x)), plain, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_is_finite_and_matches_finite_differences(name):
    fn, points, _ = CASES[name]
    with jax.enable_x64(True):
        for p in points:
            x = jnp.float64(p)
            g = float(jax.grad(fn)(x))
            assert np.isfinite(g)
            fd = finite_difference(fn, x, 1e-6 * max(1.0, abs(p)))
            assert g == pytest.approx(fd, rel=1e-3, abs=1e-6 * max(1.0, abs(g)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_follows_the_input(name):
    fn, points, _ = CASES[name]
    assert fn(jnp.asarray(points, jnp.float32)).dtype == jnp.float32
    with jax.enable_x64(True):
        out64 = fn(jnp.asarray(points, jnp.float64))
        assert out64.dtype == jnp.float64
        np.testing.assert_allclose(
            np.asarray(out64), np.asarray(fn(jnp.asarray(points, jnp.float32))), rtol=1e-3, atol=1e-9
        )


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[2] is not None))
def test_invalid_argument_raises_value_error_naming_the_range(name):
    fn, _, bad = CASES[name]
    with pytest.raises(ValueError, match="outside the allowed range"):
        fn(bad)


def test_invalid_argument_inside_an_array_is_reported():
    with pytest.raises(ValueError, match=r"f1=1\.2"):
        ph.werner_swap_fidelity(jnp.array([0.9, 1.2]), 0.9)


def test_broadcasting_over_two_arrays():
    out = ph.werner_swap_fidelity(jnp.ones((3, 1)) * 0.9, jnp.array([0.5, 0.8, 1.0]))
    assert out.shape == (3, 3)
