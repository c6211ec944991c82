"""Closed-form physics against published numbers and textbook values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env.physics import (
    SHOR_PRESKILL_QBER_THRESHOLD,
    bbpssw_purify,
    binary_entropy,
    chsh_value,
    decohered_fidelity,
    decoy_bb84_key_rate,
    detected_count_rate,
    eve_detection_probability,
    fiber_delay_s,
    fiber_transmittance,
    free_space_transmittance,
    heralded_pair_rate,
    intercept_resend_qber,
    leo_elevation_rad,
    leo_orbital_period_s,
    leo_slant_range_km,
    plob_bound,
    shor_preskill_rate,
    superdense_capacity,
    teleportation_fidelity,
    werner_swap_fidelity,
)

DISTANCES_KM = np.linspace(0.0, 200.0, 4001)


def test_fiber_loses_two_decibels_per_ten_km():
    assert float(fiber_transmittance(10.0)) == pytest.approx(10 ** -0.2, rel=1e-6)
    assert float(fiber_transmittance(50.0, alpha_db_per_km=0.16)) == pytest.approx(10**-0.8, rel=1e-6)


def test_fiber_delay_is_five_microseconds_per_km():
    assert float(fiber_delay_s(1.0)) == pytest.approx(5e-6)


def test_binary_entropy_is_one_bit_at_half_and_zero_at_the_ends():
    assert float(binary_entropy(0.5)) == pytest.approx(1.0)
    assert float(binary_entropy(0.0)) == 0.0
    assert float(binary_entropy(1.0)) == 0.0
    assert float(binary_entropy(0.11)) == pytest.approx(0.4999, abs=1e-3)


def test_shor_preskill_threshold_is_about_eleven_percent():
    # Shor & Preskill 2000: key is possible up to a QBER of about 11.0 %
    assert pytest.approx(0.110, abs=5e-4) == SHOR_PRESKILL_QBER_THRESHOLD
    assert float(shor_preskill_rate(SHOR_PRESKILL_QBER_THRESHOLD - 1e-3)) > 0.0
    assert float(shor_preskill_rate(SHOR_PRESKILL_QBER_THRESHOLD + 1e-3)) == 0.0
    assert float(shor_preskill_rate(0.0)) == pytest.approx(1.0)
    assert float(shor_preskill_rate(0.8)) == 0.0


def test_full_intercept_resend_gives_a_quarter_qber():
    assert float(intercept_resend_qber(1.0)) == pytest.approx(0.25)
    assert float(intercept_resend_qber(0.0, base_qber=0.02)) == pytest.approx(0.02)
    assert float(intercept_resend_qber(0.4)) == pytest.approx(0.1)


def test_eve_detection_matches_exact_binomial_tail():
    from scipy.stats import binom

    for q, n, t in [(0.25, 100, 0.11), (0.05, 200, 0.11), (0.1, 50, 0.08), (0.3, 7, 0.2)]:
        expected = binom.sf(np.floor(t * n), n, q)
        assert float(eve_detection_probability(q, n, t)) == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_eve_detection_grows_with_the_test_sample():
    p = [float(eve_detection_probability(0.15, n, 0.11)) for n in (10, 50, 200, 1000)]
    assert p == sorted(p) and p[-1] > 0.99
    assert float(eve_detection_probability(0.3, 0, 0.11)) == 0.0


def test_decoy_bb84_with_gys_parameters_reaches_142_km():
    # Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Table II: GYS, infinite decoys, 142.05 km
    rate = np.asarray(decoy_bb84_key_rate(DISTANCES_KM))
    assert DISTANCES_KM[rate > 0].max() == pytest.approx(142.05, abs=0.5)


def test_decoy_bb84_optimal_mean_photon_number_is_about_half():
    # Same paper: the optimal mu for GYS is 0.48 at all distances that give key
    mus = np.linspace(0.05, 1.5, 291)
    rates = np.asarray(decoy_bb84_key_rate(60.0, mu=jnp.asarray(mus)))
    assert mus[np.argmax(rates)] == pytest.approx(0.48, abs=0.03)


def test_decoy_bb84_rate_at_zero_km_is_of_order_eta_bob_mu_exp_mu():
    # At short distance the single-photon term dominates: R ~ q eta mu e^-mu (1 - H(e_d)) - leakage
    r0 = float(decoy_bb84_key_rate(0.0))
    eta, mu, ed = 0.045, 0.48, 0.033
    single = 0.5 * eta * mu * np.exp(-mu) * (1 - float(binary_entropy(ed)))
    assert 0.3 * single < r0 < single


def test_longer_fiber_gives_less_key():
    with jax.enable_x64(True):  # float32 rounding near the cut-off is ~1e-3 relative
        rate = np.asarray(decoy_bb84_key_rate(jnp.asarray(DISTANCES_KM, jnp.float64)))
    assert np.all(np.diff(rate) <= 0.0)
    assert rate[0] > 100 * rate[2000]


def test_no_point_to_point_key_rate_beats_the_plob_bound():
    eta_channel = np.asarray(fiber_transmittance(DISTANCES_KM, alpha_db_per_km=0.21))
    plob = np.asarray(plob_bound(eta_channel))
    for eta_bob, ed in [(0.045, 0.033), (1.0, 0.0)]:
        rate = np.asarray(decoy_bb84_key_rate(DISTANCES_KM, eta_bob=eta_bob, e_detector=ed, y0=0.0))
        assert np.all(rate <= plob)


def test_plob_bound_values():
    assert float(plob_bound(0.5)) == pytest.approx(1.0)
    assert float(plob_bound(0.0)) == 0.0
    assert float(plob_bound(1e-3)) == pytest.approx(1.44e-3, rel=1e-2)  # ~1.44 eta at small eta


def test_swapping_two_perfect_pairs_is_perfect_and_mixed_stays_mixed():
    assert float(werner_swap_fidelity(1.0, 1.0)) == pytest.approx(1.0)
    assert float(werner_swap_fidelity(0.25, 0.9)) == pytest.approx(0.25)
    assert float(werner_swap_fidelity(0.9, 0.9)) == pytest.approx(0.81 + 0.01 / 3)


def test_stored_pair_decays_to_a_quarter_with_time_constant():
    assert float(decohered_fidelity(1.0, 0.0, 1.0)) == pytest.approx(1.0)
    assert float(decohered_fidelity(1.0, 1.0, 1.0)) == pytest.approx(0.25 + 0.75 / np.e)
    assert float(decohered_fidelity(0.9, 1e6, 1e-3)) == pytest.approx(0.25)


def test_bbpssw_textbook_values():
    f_out, p = bbpssw_purify(0.75)
    assert float(f_out) == pytest.approx(0.788462, abs=1e-5)
    assert float(p) == pytest.approx(0.722222, abs=1e-5)
    f_half, _ = bbpssw_purify(0.5)
    assert float(f_half) == pytest.approx(0.5)  # fixed point: no gain at F = 1/2
    f_one, p_one = bbpssw_purify(1.0)
    assert float(f_one) == pytest.approx(1.0) and float(p_one) == pytest.approx(1.0)


def test_chsh_is_tsirelson_for_a_perfect_pair_and_classical_at_0p78():
    assert float(chsh_value(1.0)) == pytest.approx(2 * np.sqrt(2))
    f_local = (3 / np.sqrt(2) + 1) / 4  # ~0.7803: Werner pair stops violating CHSH
    assert float(chsh_value(f_local)) == pytest.approx(2.0)


def test_teleportation_beats_the_classical_two_thirds_only_with_entanglement():
    assert float(teleportation_fidelity(1.0)) == pytest.approx(1.0)
    assert float(teleportation_fidelity(0.5)) == pytest.approx(2 / 3)


def test_superdense_coding_carries_two_bits_on_a_perfect_pair():
    assert float(superdense_capacity(1.0)) == pytest.approx(2.0)
    assert float(superdense_capacity(0.25)) == pytest.approx(0.0, abs=1e-6)
    # Dense coding beats one plain bit only above F ~ 0.8107
    assert float(superdense_capacity(0.80)) < 1.0 < float(superdense_capacity(0.82))


def test_heralded_pair_rate_scales_with_transmittance():
    r10 = float(heralded_pair_rate(10.0, attempt_rate_hz=1e6, p_source=0.1, eta_detector=0.9))
    assert r10 == pytest.approx(1e6 * 0.1 * 10**-0.2 * 0.81, rel=1e-5)
    r60 = float(heralded_pair_rate(60.0, attempt_rate_hz=1e6, p_source=0.1, eta_detector=0.9))
    assert r60 / r10 == pytest.approx(10**-1.0, rel=1e-5)


def test_detector_dead_time_saturates_at_one_over_tau():
    assert float(detected_count_rate(1e12, 50e-9)) == pytest.approx(2e7, rel=1e-3)
    assert float(detected_count_rate(1e3, 50e-9)) == pytest.approx(1e3, rel=1e-4)


def test_leo_pass_geometry():
    assert float(leo_slant_range_km(np.pi / 2, 500.0)) == pytest.approx(500.0, rel=1e-5)
    assert float(leo_slant_range_km(0.0, 500.0)) == pytest.approx(2573.0, rel=1e-2)
    assert float(leo_orbital_period_s(500.0)) == pytest.approx(5677.0, rel=5e-3)  # ~94.6 min
    assert float(leo_elevation_rad(0.0)) == pytest.approx(np.pi / 2, abs=1e-5)
    # An overhead LEO pass stays above the horizon for a few minutes either side (~5-6 min)
    t = np.arange(-900.0, 900.0, 1.0)
    visible = t[np.asarray(leo_elevation_rad(t)) > 0]
    assert 250.0 < visible.max() < 450.0


def test_free_space_loss_is_tens_of_db_at_leo_and_worse_at_low_elevation():
    zenith_db = -10 * np.log10(float(free_space_transmittance(500.0)))
    assert 10.0 < zenith_db < 40.0  # Bourgoin et al. 2013 report ~20-40 dB downlinks
    low = float(free_space_transmittance(1500.0, elevation_rad=np.radians(15.0)))
    assert low < float(free_space_transmittance(500.0))


def test_decoy_rate_from_transmittance_equals_the_fiber_form():
    from qin_env.physics import decoy_bb84_key_rate_from_transmittance

    for length in (0.0, 40.0, 120.0):
        eta = fiber_transmittance(length, alpha_db_per_km=0.21)
        assert float(decoy_bb84_key_rate_from_transmittance(eta)) == pytest.approx(
            float(decoy_bb84_key_rate(length)), rel=1e-6
        )


def test_entanglement_based_qber_of_a_werner_pair():
    from qin_env.physics import entanglement_qber

    assert float(entanglement_qber(1.0)) == 0.0
    assert float(entanglement_qber(0.25)) == pytest.approx(0.5)
