"""The physics environment version 1 needs (issue 13), each against a published number or an independent model."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numeric import finite_difference
from scipy.stats import binom, poisson

from qin_env import physics as ph
from qin_env.sampling import binomial_approx, binomial_count, fidelity_estimate, poisson_count

N_SIGMA = 4.5
N_DRAWS = 200_000  # sampler tests: one array shape, one compile per sampler
EXACT = 1e-6  # density-matrix results against float32 closed forms
METRO = {"mu": 0.5, "y0": 1e-6, "e_detector": 0.015, "f_ec": 1.16}  # schema.py hardware defaults
METRO_ETA_BOB, METRO_ALPHA, METRO_PULSES_PER_SLOT = 0.2, 0.2, 1.0e6 * 0.5  # pulse rate x keygen share, dt = 1 s


def _metro_eta(length_km: float) -> float:
    return METRO_ETA_BOB * float(ph.fiber_transmittance(length_km, METRO_ALPHA))


def _metro_slot_sifted_bits(length_km: float) -> float:
    return 0.5 * METRO_PULSES_PER_SLOT * float(ph.bb84_gain(_metro_eta(length_km), METRO["mu"], METRO["y0"]))


def _key_ratio(n_sifted: float, test_fraction: float, length_km: float) -> float:
    with jax.enable_x64(True):
        kw = dict(eta=jnp.float64(_metro_eta(length_km)), **METRO)
        finite = ph.finite_key_length(jnp.float64(n_sifted), test_fraction, **kw)
        return float(finite / ph.asymptotic_key_length(jnp.float64(n_sifted), test_fraction, **kw))


# --- Heralded pair rate -----------------------------------------------------------------------


def test_heralded_rate_carries_the_half_of_a_linear_optics_bell_measurement():
    rate = ph.heralded_pair_rate_from_transmittance(0.1, attempt_rate_hz=1e5, p_source=0.2, eta_detector=0.8)
    assert float(rate) == pytest.approx(1e5 * 0.2 * 0.1 * 0.64 * 0.5, rel=1e-6)


def test_attempt_rate_is_capped_by_the_herald_round_trip_per_mode():
    kw = dict(attempt_rate_hz=1e5, p_source=0.2, eta_detector=0.8, bsm_success=1.0)
    per_attempt = 0.2 * 0.1 * 0.64
    # 50 km: one attempt per 250 us round trip, 4 kHz per mode; 50 modes reach the 100 kHz source
    assert float(ph.heralded_pair_rate_from_transmittance(0.1, length_km=50.0, **kw)) == pytest.approx(
        4e3 * per_attempt, rel=1e-6)
    assert float(ph.heralded_pair_rate_from_transmittance(0.1, length_km=50.0, modes=50, **kw)) == pytest.approx(
        1e5 * per_attempt, rel=1e-6)
    for no_cap in (None, 0.0):
        assert float(ph.heralded_pair_rate_from_transmittance(0.1, length_km=no_cap, **kw)) == pytest.approx(
            1e5 * per_attempt, rel=1e-6)


def test_heralded_pair_rate_keeps_version_0_by_default_and_takes_the_new_factors():
    eta = ph.fiber_transmittance(30.0)
    base = dict(attempt_rate_hz=1e6, p_source=0.1, eta_detector=0.9)
    assert float(ph.heralded_pair_rate(30.0)) == pytest.approx(
        float(ph.heralded_pair_rate_from_transmittance(eta, bsm_success=1.0, **base)), rel=1e-6)
    assert float(ph.heralded_pair_rate(30.0, bsm_success=0.5, modes=10)) == pytest.approx(
        float(ph.heralded_pair_rate_from_transmittance(eta, length_km=30.0, modes=10, **base)), rel=1e-6)


# --- Nested repeater rate ---------------------------------------------------------------------


@pytest.mark.parametrize(("k", "levels"), [(1, 0), (2, 1), (4, 2), (8, 3)])
def test_repeater_rate_has_one_swap_and_one_two_thirds_per_nesting_level(k: int, levels: int):
    expected = 1e3 * (2.0 / 3.0) ** levels * 0.5**levels
    assert float(ph.repeater_chain_rate(1e3, k, 0.5)) == pytest.approx(expected, rel=1e-6)


def test_repeater_rate_interpolates_log2_k_between_powers_of_two():
    r3 = float(ph.repeater_chain_rate(1e3, 3, 0.5))
    assert r3 == pytest.approx(1e3 * (1.0 / 3.0) ** np.log2(3.0), rel=1e-6)
    assert float(ph.repeater_chain_rate(1e3, 4, 0.5)) < r3 < float(ph.repeater_chain_rate(1e3, 2, 0.5))


def _nested_link_attempts(rng: np.random.Generator, level: int, size: int, p_link: float, p_swap: float):
    """Attempts until a link over 2**level segments exists: both halves made (each waits for the other), then a swap.

    A failed swap destroys both halves, which are made again; memories are perfect.
    """
    if level == 0:
        return rng.geometric(p_link, size).astype(float)
    rounds = rng.geometric(p_swap, size)
    halves = [_nested_link_attempts(rng, level - 1, int(rounds.sum()), p_link, p_swap) for _ in range(2)]
    starts = np.concatenate([[0], np.cumsum(rounds)[:-1]])
    return np.add.reduceat(np.maximum(*halves), starts)


def test_two_segments_match_a_direct_simulation_of_waiting_for_both_and_swapping():
    p_link, p_swap, n_links = 0.01, 0.5, 20_000
    attempts = _nested_link_attempts(np.random.default_rng(3), 1, n_links, p_link, p_swap)
    simulated = 1.0 / attempts.mean()
    standard_error = simulated * attempts.std() / attempts.mean() / np.sqrt(n_links)
    expected = float(ph.repeater_chain_rate(p_link, 2, p_swap))
    # The 3/2 waiting factor is exact as p -> 0: E[max of two geometrics] = (3 - 2p)/(p (2 - p)), 0.2 % off here
    assert abs(simulated - expected) < N_SIGMA * standard_error + 3e-3 * expected


@pytest.mark.parametrize("k", [4, 8])
def test_deeper_nesting_is_a_slight_lower_bound_on_the_simulated_rate(k: int):
    # The 3/2 rule takes every level's wait as memoryless; deeper links' waits vary less, so the rule overstates
    # the waiting time (an upper bound: Coopmans, Brand, Elkouss, PRA 105, 012608, 2022)
    attempts = _nested_link_attempts(np.random.default_rng(k), int(np.log2(k)), 20_000, 0.01, 0.5)
    simulated = 1.0 / attempts.mean()
    expected = float(ph.repeater_chain_rate(0.01, k, 0.5))
    assert expected < simulated < 1.12 * expected


# --- Age-averaged fidelity --------------------------------------------------------------------


def test_age_averaged_fidelity_is_the_mean_over_uniform_ages():
    with jax.enable_x64(True):
        u = (np.arange(4000) + 0.5) / 4000  # midpoint rule on [0, 1]
        for f0, dt, t_mem in [(0.97, 1.0, 2.0), (0.8, 5.0, 0.5), (1.0, 1e-3, 10.0)]:
            mean = float(np.mean(np.asarray(ph.decohered_fidelity(f0, jnp.asarray(u * dt), t_mem))))
            assert float(ph.age_averaged_fidelity(f0, dt, t_mem)) == pytest.approx(mean, abs=1e-7)


def test_audit_metro_slot_leaves_fresh_pairs_at_0p817():
    # physics-audit-v0 #17: F0 = 0.97, dt = 1 s, T = 2 s gives 0.25 + 0.72 * 2 (1 - e^-0.5) = 0.8166
    assert float(ph.age_averaged_fidelity(0.97, 1.0, 2.0)) == pytest.approx(0.8166, abs=5e-5)


def test_age_averaged_fidelity_at_zero_slot_is_f0_with_a_finite_gradient():
    assert float(ph.age_averaged_fidelity(0.9, 0.0, 2.0)) == pytest.approx(0.9, abs=1e-7)
    grad = jax.grad(ph.age_averaged_fidelity, argnums=(0, 1, 2))(0.9, 0.0, 2.0)
    assert all(np.isfinite(float(g)) for g in grad)
    assert float(grad[1]) == pytest.approx(-(0.9 - 0.25) / 2.0 / 2.0, rel=1e-5)  # d/dt of (F0-1/4)(1 - dt/2T)


def test_age_averaged_fidelity_series_for_short_slots_is_exact_in_float64():
    with jax.enable_x64(True):
        for x in (1e-8, 1e-4, 1e-3 - 1e-9, 1e-3, 2e-3):
            exact = 0.25 + 0.65 * -np.expm1(-x) / x
            assert float(ph.age_averaged_fidelity(0.9, jnp.float64(x), 1.0)) == pytest.approx(exact, abs=1e-14)


# --- Intercept-resend on an entangled pair ----------------------------------------------------


@pytest.mark.parametrize("f", [0.25, 0.5, 0.8, 0.97, 1.0])
@pytest.mark.parametrize("tap", [1.0, 0.3])
def test_intercept_resend_pair_fidelity_matches_the_measure_and_resend_circuit(f: float, tap: float):
    pytest.importorskip("pennylane")  # the `agents` extra; the rest of this file needs the environment alone
    from qin_env.physics.circuits import intercept_resend_pair_circuit

    assert intercept_resend_pair_circuit(f, tap) == pytest.approx(
        float(ph.intercept_resend_pair_fidelity(f, tap)), abs=EXACT)


def test_a_tapped_0p97_pair_keeps_fidelity_0p49():
    assert float(ph.intercept_resend_pair_fidelity(0.97, 1.0)) == pytest.approx(0.49, abs=1e-6)
    assert float(ph.intercept_resend_pair_fidelity(0.97, 0.0)) == pytest.approx(0.97, abs=1e-6)


# --- BB84 QBER ---------------------------------------------------------------------------------


def test_bb84_qber_is_a_random_bit_where_nothing_is_detected():
    assert float(ph.bb84_qber(0.0, 0.5, 0.0, 0.015)) == 0.5
    value, grads = jax.jit(jax.value_and_grad(ph.bb84_qber, argnums=(0, 2, 3)))(0.0, 0.5, 0.0, 0.015)
    assert float(value) == 0.5
    assert all(np.isfinite(float(g)) for g in grads)


def test_bb84_qber_is_the_misalignment_error_at_short_range_and_a_half_with_dark_counts_only():
    assert float(ph.bb84_qber(0.045, 0.48, 1.7e-6, 0.033)) == pytest.approx(0.033, abs=1e-4)
    assert float(ph.bb84_qber(0.0, 0.48, 1.7e-6, 0.033)) == pytest.approx(0.5, abs=1e-6)


def test_decoy_rate_is_the_gllp_formula_on_bb84_qber():
    # Written out with the single-photon terms (Ma, Qi, Zhao, Lo 2005): the key rate uses bb84_qber's E_mu
    mu, eta_bob, y0, ed, f_ec = 0.48, 0.045, 1.7e-6, 0.033, 1.22
    for length in (0.0, 50.0, 120.0):
        eta = eta_bob * float(ph.fiber_transmittance(length, 0.21))
        gain, e_mu = float(ph.bb84_gain(eta, mu, y0)), float(ph.bb84_qber(eta, mu, y0, ed))
        y1 = y0 + eta - y0 * eta
        q1, e1 = y1 * mu * np.exp(-mu), (0.5 * y0 + ed * eta) / y1
        gllp = 0.5 * (q1 * (1 - float(ph.binary_entropy(e1))) - gain * f_ec * float(ph.binary_entropy(e_mu)))
        assert float(ph.decoy_bb84_key_rate(length)) == pytest.approx(max(gllp, 0.0), rel=1e-4, abs=1e-12)


def test_gllp_rate_from_bb84_qber_reaches_the_published_142_km_gys_cut_off():
    # Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Table II: GYS, infinite decoys, 142.05 km
    lengths = np.linspace(100.0, 160.0, 1201)
    eta = 0.045 * np.asarray(ph.fiber_transmittance(lengths, 0.21))
    e_mu = np.asarray(ph.bb84_qber(eta, 0.48, 1.7e-6, 0.033))
    y1 = 1.7e-6 + eta - 1.7e-6 * eta
    q1, e1 = y1 * 0.48 * np.exp(-0.48), (0.5 * 1.7e-6 + 0.033 * eta) / y1
    gain = np.asarray(ph.bb84_gain(eta, 0.48, 1.7e-6))
    rate = q1 * (1 - np.asarray(ph.binary_entropy(e1))) - gain * 1.22 * np.asarray(ph.binary_entropy(e_mu))
    assert lengths[rate > 0].max() == pytest.approx(142.05, abs=0.5)


# --- Finite-key length -------------------------------------------------------------------------


def test_finite_key_approaches_the_asymptotic_length_as_the_block_grows():
    ratios = [_key_ratio(n, 0.05, 10.0) for n in 10.0 ** np.arange(3, 10)]
    assert ratios == sorted(ratios) and ratios[0] == 0.0
    assert _key_ratio(1e10, 0.05, 10.0) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("length_km", "test_fraction", "audit_ratio"),
    [(10.0, 0.05, 0.58), (30.0, 0.05, 0.35), (50.0, 0.05, 0.00), (10.0, 0.25, 0.74), (30.0, 0.25, 0.55),
     (50.0, 0.25, 0.21)],
)
def test_one_metro_slot_keeps_the_audits_share_of_the_asymptotic_key(length_km, test_fraction, audit_ratio):
    # physics-audit-v0, finite-key table: 15,287 / 6,202 / 2,488 sifted bits per slot at 10 / 30 / 50 km
    n_sifted = _metro_slot_sifted_bits(length_km)
    assert n_sifted == pytest.approx({10.0: 15287, 30.0: 6202, 50.0: 2488}[length_km], abs=2)
    assert _key_ratio(n_sifted, test_fraction, length_km) == pytest.approx(audit_ratio, abs=0.05)


@pytest.mark.parametrize(("n_sifted", "audit_ratio"), [(1e5, 0.83), (1e6, 0.94)])
def test_larger_blocks_keep_the_audits_share(n_sifted, audit_ratio):
    for length in (10.0, 30.0, 50.0):
        assert _key_ratio(n_sifted, 0.05, length) == pytest.approx(audit_ratio, abs=0.02)


def test_a_larger_test_fraction_gives_more_key_from_a_short_block():
    n_sifted, kw = _metro_slot_sifted_bits(30.0), dict(eta=_metro_eta(30.0), **METRO)
    assert float(ph.finite_key_length(n_sifted, 0.25, **kw)) > float(ph.finite_key_length(n_sifted, 0.05, **kw))
    # ... while asymptotically a test bit is only a lost key bit
    assert float(ph.asymptotic_key_length(n_sifted, 0.25, **kw)) < float(ph.asymptotic_key_length(n_sifted, 0.05, **kw))


def test_finite_key_never_exceeds_the_asymptotic_length():
    n = jnp.asarray(10.0 ** np.arange(2, 11, 0.5))
    for length in (0.0, 25.0, 60.0):
        kw = dict(eta=_metro_eta(length), **METRO)
        for test in (0.02, 0.1, 0.5):
            assert np.all(np.asarray(ph.finite_key_length(n, test, **kw)) <= np.asarray(
                ph.asymptotic_key_length(n, test, **kw)) * (1 + 1e-6))


def test_asymptotic_length_is_the_decoy_rate_per_sifted_bit():
    for length in (10.0, 40.0, 80.0):
        eta_channel = float(ph.fiber_transmittance(length, METRO_ALPHA))
        rate = ph.decoy_bb84_key_rate_from_transmittance(eta_channel, eta_bob=METRO_ETA_BOB, **METRO)
        sifted_gain = 0.5 * float(ph.bb84_gain(_metro_eta(length), METRO["mu"], METRO["y0"]))
        expected = 1e6 * (1 - 0.1) * float(rate) / sifted_gain
        assert float(ph.asymptotic_key_length(1e6, 0.1, eta=_metro_eta(length), **METRO)) == pytest.approx(
            expected, rel=1e-4)


def test_finite_key_is_zero_and_finite_where_no_key_can_be_had():
    # n = 0, n = 1, eta = 0 with and without dark counts, QBER 1/2 (a full tap), no test bits, no key bits
    cases = jnp.asarray([(0.0, 0.1, 0.02, 1e-6, 0.015), (1.0, 0.1, 0.02, 1e-6, 0.015), (1e5, 0.1, 0.0, 1e-6, 0.015),
                         (1e5, 0.1, 0.0, 0.0, 0.015), (1e5, 0.1, 0.02, 1e-6, 0.5), (1e5, 0.0, 0.02, 1e-6, 0.015),
                         (1e5, 1.0, 0.02, 0.0, 0.0)])

    def length(n, test, eta, y0, e_d):
        return ph.finite_key_length(n, test, eta=eta, mu=0.5, y0=y0, e_detector=e_d, f_ec=1.16)

    value, grads = jax.jit(jax.vmap(jax.value_and_grad(length, argnums=(0, 1, 2, 3, 4))))(*cases.T)
    assert np.all(np.asarray(value) == 0.0)
    assert np.all(np.isfinite(np.asarray(grads)))
    asymptotic_grad = jax.jit(jax.vmap(jax.grad(
        lambda n, test, eta, y0, e_d: ph.asymptotic_key_length(n, test, eta=eta, mu=0.5, y0=y0, e_detector=e_d,
                                                               f_ec=1.16))))(*cases.T)
    assert np.all(np.isfinite(np.asarray(asymptotic_grad)))


def test_finite_key_with_no_errors_at_all_has_no_sampling_penalty_but_the_fixed_terms():
    # e1 = 0 (no dark counts, perfect alignment): gamma -> 0, only the eps terms are charged
    kw = dict(eta=0.1, mu=0.5, y0=0.0, e_detector=0.0, f_ec=1.16)
    gap = float(ph.asymptotic_key_length(1e6, 0.1, **kw) - ph.finite_key_length(1e6, 0.1, **kw))
    assert gap == pytest.approx(6 * np.log2(21 / 1e-9) + np.log2(2 / 1e-15), rel=1e-3)


# --- Satellite passes --------------------------------------------------------------------------


def test_a_15_degree_pass_at_500_km_lasts_six_minutes_of_a_94_minute_orbit():
    # physics-audit-v0 #26: 359 s above 15 degrees of a 5668 s orbit, 6.3 % duty
    assert float(ph.leo_pass_duration_s(500.0, 15.0)) == pytest.approx(359.0, abs=1.0)
    assert float(ph.leo_orbital_period_s(500.0)) == pytest.approx(5668.0, abs=1.0)
    assert float(ph.leo_visible_fraction(500.0, 15.0)) == pytest.approx(0.063, abs=5e-4)


@pytest.mark.parametrize(("altitude_km", "min_elevation_deg"), [(500.0, 15.0), (500.0, 0.0), (1200.0, 30.0),
                                                                (400.0, 60.0)])
def test_pass_duration_matches_counting_time_above_the_elevation(altitude_km, min_elevation_deg):
    step = 0.01
    with jax.enable_x64(True):
        t = jnp.arange(-1500.0, 1500.0, step)
        elevation = np.asarray(ph.leo_elevation_rad(t, altitude_km=altitude_km))
        counted = step * np.count_nonzero(elevation >= np.radians(min_elevation_deg))
        assert float(ph.leo_pass_duration_s(altitude_km, min_elevation_deg)) == pytest.approx(counted, abs=2 * step)


def test_a_pass_at_90_degrees_takes_no_time():
    assert float(ph.leo_pass_duration_s(500.0, 90.0)) == pytest.approx(0.0, abs=1e-3)


# --- Samplers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "q"), [(124, 0.015), (305, 0.03)])
def test_binomial_count_false_alarm_rate_is_the_exact_binomial_tail(n: int, q: float):
    errors = np.asarray(binomial_count(jax.random.key(n), jnp.full(N_DRAWS, n, jnp.float32), q))
    rate = np.mean(errors > np.floor(0.06 * n))
    exact = float(ph.eve_detection_probability(q, n, 0.06))  # 6.0e-4 and 2.5e-3
    assert abs(rate - exact) < N_SIGMA * np.sqrt(exact * (1 - exact) / N_DRAWS)


def test_the_moment_matched_sampler_overstates_that_tail_several_fold():
    # Why binomial_count exists: the log-normal puts ~7e-3 in a tail whose exact weight is 6e-4
    errors = np.asarray(binomial_approx(jax.random.key(7), jnp.full(N_DRAWS, 124.0, jnp.float32), 0.015))
    assert np.mean(errors > 7) > 5 * float(ph.eve_detection_probability(0.015, 124, 0.06))


@pytest.mark.parametrize(("n", "q"), [(40, 0.3), (20, 0.8), (124, 0.015)])
def test_binomial_count_is_exactly_binomial_in_its_inverted_range(n: int, q: float):
    draws = np.asarray(binomial_count(jax.random.key(11), jnp.full(N_DRAWS, n, jnp.float32), q))
    k = np.arange(n + 1)
    empirical = np.searchsorted(np.sort(draws), k, side="right") / draws.size
    exact = binom.cdf(k, n, q)
    assert np.all(np.abs(empirical - exact) <= N_SIGMA * np.sqrt(exact * (1 - exact) / draws.size) + 1e-6)


@pytest.mark.parametrize(("n", "q"), [(40, 0.3), (4000, 0.03), (1000, 0.9), (1e6, 0.2)])
def test_binomial_count_has_the_binomial_mean_and_variance(n: float, q: float):
    draws = np.asarray(binomial_count(jax.random.key(5), jnp.full(N_DRAWS, n, jnp.float32), q), np.float64)
    mean, var = n * q, n * q * (1 - q)
    assert abs(draws.mean() - mean) < N_SIGMA * np.sqrt(var / draws.size)
    var_se = np.sqrt((2 * var**2 + var * (1 - 6 * q * (1 - q))) / draws.size)
    assert abs(draws.var() - var) < N_SIGMA * var_se + 1.0 / 12.0  # rounding a normal adds 1/12


def test_binomial_count_edges():
    key = jax.random.key(0)
    assert float(binomial_count(key, 0.0, 0.3)) == 0.0
    assert float(binomial_count(key, 50.0, 0.0)) == 0.0
    assert float(binomial_count(key, 50.0, 1.0)) == 50.0
    huge = np.asarray(binomial_count(key, jnp.full(N_DRAWS, 1e9, jnp.float32), 0.015))
    assert np.all(np.isfinite(huge)) and np.all((huge >= 0) & (huge <= 1e9))
    assert huge.mean() == pytest.approx(1.5e7, rel=1e-3)


def test_binomial_count_draws_per_lane_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(1), 64)
    counts = jax.jit(jax.vmap(binomial_count))(keys, jnp.full(64, 305.0), jnp.full(64, 0.03))
    assert counts.shape == (64,) and len(set(np.asarray(counts).tolist())) > 1


@pytest.mark.parametrize("rate", [0.5, 3.0, 40.0, 1e3, 1e6])
def test_poisson_count_has_the_poisson_mean_and_variance(rate: float):
    draws = np.asarray(poisson_count(jax.random.key(9), jnp.full(N_DRAWS, rate, jnp.float32)), np.float64)
    assert abs(draws.mean() - rate) < N_SIGMA * np.sqrt(rate / draws.size)
    assert abs(draws.var() - rate) < N_SIGMA * np.sqrt((2 * rate**2 + rate) / draws.size) + 1.0 / 12.0


def test_one_arrival_a_slot_is_zero_a_third_of_the_time():
    # Small means are counts, not a fluid: P(0) = e^-1 (the log-normal stand-in never gives 0)
    draws = np.asarray(poisson_count(jax.random.key(4), jnp.ones(N_DRAWS, jnp.float32)))
    for k in range(4):
        p = poisson.pmf(k, 1.0)
        assert abs(np.mean(draws == k) - p) < N_SIGMA * np.sqrt(p * (1 - p) / N_DRAWS)


def test_poisson_count_edges():
    key = jax.random.key(0)
    assert float(poisson_count(key, 0.0)) == 0.0
    huge = np.asarray(poisson_count(key, jnp.full(N_DRAWS, 1e12, jnp.float32)))
    assert np.all(np.isfinite(huge)) and huge.mean() == pytest.approx(1e12, rel=1e-5)


def test_fidelity_estimate_is_unbiased_with_the_binomial_variance():
    f, n = 0.9, 300.0
    estimate, has = fidelity_estimate(jax.random.key(2), jnp.full(N_DRAWS, n, jnp.float32), f)
    estimate = np.asarray(estimate, np.float64)
    q = 2 * (1 - f) / 3
    var = 9 / 4 * q * (1 - q) / n
    assert bool(np.all(np.asarray(has)))
    assert abs(estimate.mean() - f) < N_SIGMA * np.sqrt(var / estimate.size)
    assert estimate.var() == pytest.approx(var, rel=N_SIGMA * np.sqrt(2 / estimate.size) + 0.01)


def test_fidelity_estimate_without_a_sample_is_flagged_not_nan():
    estimate, has = jax.jit(fidelity_estimate)(jax.random.key(0), 0.0, 0.9)
    assert not bool(has) and float(estimate) == 0.25


# --- jit, vmap, grad, dtypes and input checks of the new functions -----------------------------

_KEY_KW = dict(eta=0.02, **METRO)
CASES = {
    "heralded_pair_rate_from_transmittance": (
        functools.partial(ph.heralded_pair_rate_from_transmittance, attempt_rate_hz=1e5, p_source=0.2,
                          eta_detector=0.8, length_km=20.0, modes=4), [0.0, 0.1, 1.0], 1.5),
    "repeater_chain_rate_segments": (lambda k: ph.repeater_chain_rate(1e3, k, 0.5), [1.0, 2.0, 8.0], 0.5),
    "age_averaged_fidelity": (lambda dt: ph.age_averaged_fidelity(0.97, dt, 2.0), [0.0, 1e-4, 1.0], -1.0),
    "intercept_resend_pair_fidelity": (lambda t: ph.intercept_resend_pair_fidelity(0.9, t), [0.0, 0.5, 1.0], 1.1),
    "bb84_qber": (lambda eta: ph.bb84_qber(eta, 0.5, 1e-6, 0.015), [1e-3, 0.01, 0.5], -0.1),
    "finite_key_length": (lambda n: ph.finite_key_length(n, 0.1, **_KEY_KW), [3e4, 1e5, 1e6], -1.0),
    "asymptotic_key_length": (lambda eta: ph.asymptotic_key_length(1e5, 0.1, **{**_KEY_KW, "eta": eta}),
                              [0.0, 0.02, 0.2], 2.0),
    "leo_pass_duration_s": (lambda e: ph.leo_pass_duration_s(500.0, e), [0.0, 15.0, 60.0], 95.0),
    "leo_visible_fraction": (ph.leo_visible_fraction, [400.0, 500.0, 1200.0], -1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_functions_agree_under_jit_and_vmap_and_follow_the_input_dtype(name):
    fn, points, _ = CASES[name]
    x = jnp.asarray(points, jnp.float32)
    plain = np.asarray(fn(x))
    assert fn(x).dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(x)), plain, rtol=1e-5, atol=1e-9)
    with jax.enable_x64(True):
        out64 = jax.jit(fn)(jnp.asarray(points, jnp.float64))
        assert out64.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out64), plain, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_functions_have_finite_gradients_matching_finite_differences(name):
    fn, points, _ = CASES[name]
    with jax.enable_x64(True):
        grad = jax.jit(jax.grad(fn))
        for p in points:
            x = jnp.float64(p)
            g = float(grad(x))
            assert np.isfinite(g)
            fd = finite_difference(fn, x, 1e-6 * max(1.0, abs(p)))
            assert g == pytest.approx(fd, rel=1e-3, abs=1e-6 * max(1.0, abs(g)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_functions_refuse_out_of_range_arguments(name):
    fn, _, bad = CASES[name]
    with pytest.raises(ValueError, match="outside the allowed range"):
        fn(bad)
