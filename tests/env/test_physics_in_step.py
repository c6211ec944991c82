"""The physics of version 1 as the step applies it, each item against an independent number."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import constant_actions, rollout

from qin_env import core
from qin_env import physics as ph
from qin_env.params import load_params
from qin_env.rollout import rollout as episode

KEY = jax.random.key(0)
ONE_LINK = {"topology.n_aggregators": 1, "topology.quantum_aggregators": [0], "topology.classical_aggregators": [],
            "eve.mode": "none",
            "topology.link_length_min_km": 20.0, "topology.link_length_max_km": 20.0}
PAIRS = {"channel": core.TELEPORT, "keygen_share": 0, "memory_qubits": 6}  # all channel time to pairs


@functools.partial(jax.jit, static_argnames=("n_keys", "steps"))
def first_steps(params, actions, n_keys=1, steps=1):
    """States and KPIs after `steps` slots from reset under fixed actions, for `n_keys` keys: ([K] state, [K] kpi).

    Params are traced, so scenarios that differ only in numbers share one compiled step.
    """
    def run(key):
        _, state = core.reset(key, params)
        for k in jax.random.split(key, steps):
            _, state, _, _, _, infos = core.step(k, state, actions, params)
        return state, infos["orchestrator"]["kpi"]
    return jax.vmap(run)(jax.random.split(KEY, n_keys))


@functools.partial(jax.jit, static_argnames=("steps",))
def episode_kpis(params, actions, steps):
    """KPIs [T] of `steps` slots under fixed actions, params traced."""
    records, _ = episode(lambda key, obs, params: actions, params, KEY, steps=steps)
    return records["kpi"]


def test_superdense_bits_per_pair_follow_the_lossy_channel_and_fall_with_distance():
    per_pair = {}
    for km in (10.0, 30.0):
        params = load_params("metro_qkd", {**ONE_LINK, "topology.link_length_min_km": km,
                                           "topology.link_length_max_km": km, "hardware.memory_coherence_s": 1e6})
        fill = constant_actions(params, orchestrator={"episodes": 0}, aggregator=PAIRS)
        send = constant_actions(params, aggregator={**PAIRS, "channel": core.SUPERDENSE, "payload": 2})
        state, _ = first_steps(params, fill, n_keys=1, steps=2)
        state = jax.tree.map(lambda x: x[0], state)
        _, _, _, _, _, infos = jax.jit(core.step)(KEY, state, send, params)
        kpi = infos["orchestrator"]["kpi"]
        assert float(kpi["pairs_used"]) > 0.0
        # the encoded qubit crosses the link: eta(L) * eta_d * C(F) bits per pair (Bowen 2001, with erasures)
        eta = 10.0 ** (-0.2 * km / 10.0)
        per_pair[km] = float(kpi["superdense_bits"]) / float(kpi["pairs_used"])
        assert per_pair[km] <= eta * 0.8 * float(ph.superdense_capacity(0.97)) * (1 + 1e-6)
        assert per_pair[km] == pytest.approx(eta * 0.8 * float(ph.superdense_capacity(0.97)), rel=1e-4)
    assert per_pair[30.0] < per_pair[10.0] / 2.0


@pytest.mark.parametrize("segments", [2, 4, 8])
def test_repeater_chain_rate_matches_the_nested_three_halves_formula(segments):
    length = 200.0
    params = load_params("repeater_chain", {
        "topology.n_aggregators": 1, "topology.repeater_links": [0], "topology.quantum_aggregators": [0],
        "topology.repeater_segments": segments, "topology.link_length_min_km": length,
        "topology.link_length_max_km": length})
    hw = {k: float(v) for k, v in params.hw.items()}
    _, kpi = first_steps(params, constant_actions(params, orchestrator={"episodes": 0}, aggregator=PAIRS), 64)
    segment_km = length / segments
    attempts = min(hw["pair_attempt_rate_hz"], hw["herald_modes"] * 2.0e5 / segment_km)
    segment_rate = attempts * hw["p_source"] * 10 ** (-0.2 * segment_km / 10) * hw["eta_detector"] ** 2 * 0.5
    nesting = math.log2(segments)
    # R = R0 (2/3)^n p_swap^n, n = log2 k (Sangouard et al., RMP 83, 33, 2011, Sec. III)
    expected = segment_rate * (2.0 / 3.0) ** nesting * hw["swap_success"] ** nesting
    mean = float(np.mean(kpi["epr_pairs"]))  # Poisson counts of one 1 s slot, 64 episodes
    assert abs(mean - expected) < 5.0 * math.sqrt(expected / 64) + 1e-3 * expected


def test_a_fresh_pair_after_one_slot_has_the_age_averaged_fidelity():
    params = load_params("metro_qkd", {**ONE_LINK, "episode.dt_s": 1.0, "hardware.memory_coherence_s": 2.0})
    state, _ = first_steps(params, constant_actions(params, orchestrator={"episodes": 0}, aggregator=PAIRS))
    f0, dt, t_mem = 0.97, 1.0, 2.0
    expected = 0.25 + (f0 - 0.25) * (t_mem / dt) * (1.0 - math.exp(-dt / t_mem))  # 0.8166
    assert float(state.pair_fidelity[0, 0]) == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.8166, abs=1e-4)


def test_a_tapped_pair_has_the_measure_and_resend_fidelity():
    params = load_params("metro_qkd", {**ONE_LINK, "eve.mode": "stationary", "eve.intercept_fraction": 1.0,
                                       "hardware.memory_coherence_s": 1e6})
    state, _ = first_steps(params, constant_actions(params, orchestrator={"episodes": 0}, aggregator=PAIRS))
    # random Z/X measure-and-resend is the Pauli channel I/2 + X/4 + Z/4: F' = (2F + 1)/6
    assert float(state.pair_fidelity[0, 0]) == pytest.approx((2 * 0.97 + 1) / 6, abs=1e-5)


def test_satellite_leo_has_lit_and_dark_slots_in_the_share_the_orbit_implies():
    params = load_params("satellite_leo")
    (_, kpi), _ = rollout(params, KEY, params.max_steps, actions=constant_actions(params))
    fiber_links = 2.0  # two hybrid fiber links are always up
    lit = np.asarray(kpi["links_up"]) - fiber_links
    assert set(np.unique(lit)) == {0.0, 1.0}
    r, earth, gm = 6371.0 + 500.0, 6371.0, 398600.4418
    e_min = math.radians(15.0)
    # central angle at the lowest elevation: lambda = arccos(R_E cos e / r) - e (Vallado, Eq. 11-7)
    half_angle = math.acos(earth * math.cos(e_min) / r) - e_min
    pass_s = 2.0 * half_angle / math.sqrt(gm / r**3)  # about 359 s
    assert abs(lit.sum() - pass_s / float(params.dt_s)) <= 1.0
    assert 0 < lit.sum() < params.max_steps / 4


def test_the_observed_fidelity_estimate_is_unbiased_with_the_binomial_variance():
    params = load_params("metro_qkd", {**ONE_LINK, "hardware.memory_coherence_s": 1e6,
                                       "hardware.pair_test_fraction": 0.02})
    state, kpi = first_steps(params, constant_actions(params, orchestrator={"episodes": 0}, aggregator=PAIRS), 2048)
    truth = float(ph.age_averaged_fidelity(0.97, 1.0, 1e6))
    n = np.floor(0.02 * np.asarray(kpi["epr_pairs"]))
    q = 2.0 * (1.0 - truth) / 3.0  # entanglement_qber of the sample
    variance = np.mean(2.25 * q * (1.0 - q) / n)
    estimates = np.asarray(state.fidelity_estimate[:, 0])
    assert abs(estimates.mean() - truth) < 4.0 * math.sqrt(variance / estimates.size)
    assert estimates.var() == pytest.approx(variance, rel=0.15)
    assert float(ph.entanglement_qber(truth)) == pytest.approx(q)


def test_the_false_alarm_rate_without_eve_is_the_exact_binomial_tail():
    pulses = 2.0e4
    params = load_params("metro_qkd", {**ONE_LINK, "topology.link_length_min_km": 10.0,
                                       "topology.link_length_max_km": 10.0, "hardware.pulse_rate_hz": pulses,
                                       "hardware.e_detector": 0.015, "qkd.alarm_qber": 0.06})
    acts = constant_actions(params, aggregator={"channel": core.PQC, "keygen_share": 3, "test_fraction": 3})
    _, kpi = first_steps(params, acts, 8192)
    hw = {k: float(v) for k, v in params.hw.items()}
    eta = hw["eta_bob"] * 10 ** (-0.2 * 10.0 / 10)
    gain = hw["y0"] + 1 - math.exp(-eta * hw["mu"])
    qber = (0.5 * hw["y0"] + hw["e_detector"] * (1 - math.exp(-eta * hw["mu"]))) / gain
    n_test = math.floor(0.25 * 0.5 * pulses * 0.75 * gain)
    exact = float(ph.eve_detection_probability(qber, n_test, 0.06))
    rate = float(np.mean(kpi["alarms"]))
    assert 50 <= n_test <= 400 and 1e-4 < exact < 0.05
    assert abs(rate - exact) < 4.5 * math.sqrt(exact * (1 - exact) / 8192) + 1.0 / 8192


def test_finite_key_per_sifted_bit_rises_toward_the_asymptotic_rate_as_blocks_grow():
    pulse_rate, steps, ratios = 4.8e5, 1800, []
    for block in (1e4, 1e5, 1e6, 1e7):
        params = load_params("metro_qkd", {**ONE_LINK, "topology.link_length_min_km": 10.0,
                                           "topology.link_length_max_km": 10.0, "hardware.pulse_rate_hz": pulse_rate,
                                           "qkd.block_bits": block, "qkd.key_pool_max_bits": 1e12})
        hw = {k: float(v) for k, v in params.hw.items()}
        eta = hw["eta_bob"] * 10 ** (-0.2)
        sifted = 0.5 * pulse_rate * 0.75 * (hw["y0"] + 1 - math.exp(-eta * hw["mu"]))  # per slot, deterministic
        slots_per_block = math.ceil(block / sifted)
        acts = constant_actions(params, orchestrator={"episodes": 0},
                                aggregator={"channel": core.PQC, "keygen_share": 3, "test_fraction": 1})
        key_bits = np.asarray(episode_kpis(params, acts, steps)["secret_key_bits"], np.float64)
        blocks = steps // slots_per_block
        assert np.count_nonzero(key_bits) == blocks
        # GLLP, the asymptotic limit (Lo, Ma, Chen, PRL 94, 230504), on the key share of the same slots
        asymptotic = pulse_rate * 0.75 * 0.95 * float(ph.decoy_bb84_key_rate_from_transmittance(
            10 ** (-0.2), mu=hw["mu"], eta_bob=hw["eta_bob"], y0=hw["y0"], e_detector=hw["e_detector"],
            f_ec=hw["f_ec"]))
        ratios.append(key_bits.sum() / (blocks * slots_per_block * asymptotic))
    assert ratios == sorted(ratios) and ratios[-1] <= 1.0 + 1e-3
    assert ratios[0] < 0.8 and ratios[-1] > 0.95


@pytest.mark.parametrize("overrides", [
    {"hardware.y0": 0.0, "topology.link_length_min_km": 1000.0, "topology.link_length_max_km": 1000.0,
     "hardware.alpha_db_per_km": 1.0},
    {"hardware.y0": 0.0, "hardware.eta_bob": 0.0},
    {"hardware.y0": 0.0, "hardware.e_detector": 0.0, "qkd.alarm_qber": 0.0, "qkd.abort_qber": 0.0},
])
def test_zero_transmittance_and_zero_dark_counts_give_finite_everything(overrides):
    params = load_params("metro_qkd", overrides)
    acts = constant_actions(params, aggregator={"channel": core.QKD, "keygen_share": 2, "memory_qubits": 2})
    _, state = core.reset(KEY, params)
    step = jax.jit(core.step)
    for k in jax.random.split(KEY, 3):
        obs, state, rewards, _, _, infos = step(k, state, acts, params)
    leaves = [*jax.tree.leaves(obs), *jax.tree.leaves(state), *jax.tree.leaves(rewards),
              *jax.tree.leaves(infos["orchestrator"]["kpi"]), *jax.tree.leaves(infos["orchestrator"]["reward_terms"])]
    assert all(bool(jnp.all(jnp.isfinite(jnp.asarray(x, jnp.float32)))) for x in leaves)


def test_satellite_below_the_horizon_gives_finite_everything_and_no_key():
    params = load_params("satellite_leo", {"hardware.y0": 0.0})
    acts = constant_actions(params, aggregator={"channel": core.QKD, "keygen_share": 3, "memory_qubits": 2})
    (rewards, kpi), state = rollout(params, KEY, 20, actions=acts)  # the pass is mid-episode: dark at first
    assert float(jnp.max(kpi["links_up"])) == 2.0
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in [rewards, *jax.tree.leaves(kpi), *jax.tree.leaves(state)])
