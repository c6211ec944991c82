"""The physics must show through the environment's KPIs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import constant_actions, rollout

from qin_env import core
from qin_env import physics as ph
from qin_env.params import load_params

KEY = jax.random.PRNGKey(0)
QKD_ACTION = {"channel": core.QKD, "payload": 1, "keygen_share": 2, "test_fraction": 1, "memory_qubits": 2}


def test_full_intercept_resend_drives_qber_to_a_quarter_stops_key_and_is_detected():
    params = load_params("metro_qkd", {"eve.mode": "stationary", "eve.intercept_fraction": 1.0})
    (_, kpi), _ = rollout(params, KEY, 20, actions=constant_actions(params, aggregator=QKD_ACTION))
    expected = float(ph.intercept_resend_qber(1.0, base_qber=0.015))  # 0.2575 with the detector error
    assert float(jnp.mean(kpi["qber"][5:])) == pytest.approx(expected, abs=0.02)
    assert float(jnp.max(kpi["secret_key_bits"])) == 0.0
    assert bool(jnp.all(kpi["eve_detected"] == 1.0))


def test_without_eve_key_flows_and_no_alarm_is_raised():
    params = load_params("metro_qkd", {"eve.mode": "none"})
    (_, kpi), _ = rollout(params, KEY, 20, actions=constant_actions(params, aggregator=QKD_ACTION))
    assert float(jnp.min(kpi["secret_key_bits"])) > 0.0
    assert float(jnp.max(kpi["eve_detected"])) == 0.0
    assert float(jnp.mean(kpi["qber"])) < 0.03


def test_longer_fibers_lower_the_key_rate():
    def key_bits(min_km, max_km):
        params = load_params("metro_qkd", {"eve.mode": "none", "topology.link_length_min_km": min_km,
                                           "topology.link_length_max_km": max_km, "hardware.pulse_rate_hz": 1e7})
        (_, kpi), _ = rollout(params, KEY, 40, actions=constant_actions(params, aggregator=QKD_ACTION))
        return float(jnp.mean(kpi["secret_key_bits"]))

    short, long, longer = key_bits(5.0, 10.0), key_bits(40.0, 60.0), key_bits(90.0, 120.0)
    assert short > long > longer > 0.0


def test_a_device_surge_raises_latency():
    def mean_latency(factor):
        params = load_params("device_surge", {"traffic.surge_factor": factor})
        (_, kpi), _ = rollout(params, KEY, params.max_steps, actions=constant_actions(params))
        return float(jnp.mean(kpi["latency_s"]))

    assert mean_latency(6.0) > 1.3 * mean_latency(1.0)


def test_a_larger_test_fraction_detects_a_partial_eavesdropper_sooner():
    params = load_params("metro_qkd", {"eve.mode": "stationary", "eve.intercept_fraction": 0.3,
                                       "actions.keygen_share": [0.05], "actions.test_fraction": [0.02, 0.3]})
    keys = jax.random.split(KEY, 32)

    def first_detection(test_index):
        acts = constant_actions(params, aggregator={"channel": core.QKD, "payload": 1, "test_fraction": test_index,
                                                       "memory_qubits": 2})
        detected = jax.vmap(lambda k: rollout(params, k, 30, actions=acts)[0][1]["eve_detected"])(keys)
        first = jnp.where(jnp.any(detected > 0, axis=1), jnp.argmax(detected > 0, axis=1), 30)
        return float(jnp.mean(first))

    small, large = first_detection(0), first_detection(1)
    assert large < small
    assert large <= 1.0


def test_pairs_stored_longer_deliver_lower_teleportation_fidelity():
    # fill the memory with keygen share 0 (all channel time to entanglement), then stop generating
    params = load_params("metro_qkd", {"eve.mode": "none", "actions.keygen_share": [0.0, 1.0],
                                       "hardware.memory_coherence_s": 5.0})
    fill = constant_actions(params, aggregator={"channel": core.PQC, "keygen_share": 0, "memory_qubits": 2})
    hold = constant_actions(params, aggregator={"channel": core.PQC, "keygen_share": 1, "memory_qubits": 2})
    _, state = core.reset(KEY, params)
    step = jax.jit(core.step)
    for t in range(3):
        _, state, *_ = step(jax.random.PRNGKey(t), state, fill, params)
    fidelities = []
    for t in range(6):
        _obs, state, _, _, _, infos = step(jax.random.PRNGKey(10 + t), state, hold, params)
        fidelities.append(float(ph.teleportation_fidelity(infos["orchestrator"]["kpi"]["mean_fidelity"])))
    assert np.all(np.diff(fidelities) < 0)
    expected = ph.teleportation_fidelity(ph.decohered_fidelity(0.97, 6.0, 5.0))
    assert fidelities[-1] == pytest.approx(float(expected), abs=0.02)


def test_qubit_budget_over_allocation_is_clipped_and_reported():
    params = load_params("metro_qkd", {"eve.mode": "none"})
    # orchestrator asks for 6 computation qubits (in use from the next slot), aggregators for all 8
    # memory qubits: budget is 8, the 2 qubits in use at reset leave 6, then the 6 leave 2
    acts = constant_actions(params, orchestrator={"episodes": 3, "model_qubits": 2},
                            aggregator={"channel": core.PQC, "memory_qubits": 8})
    _, state = core.reset(KEY, params)
    step = jax.jit(core.step)
    modes = float(params.hw["memory_modes_per_qubit"])
    for in_use, next_width in ((2, 6), (6, 6)):
        assert float(state.model_qubits[0]) == in_use
        _obs, state, _, _, _, infos = step(KEY, state, acts, params)
        assert float(state.model_qubits[0]) == next_width
        assert float(infos["orchestrator"]["kpi"]["budget_violation"]) > 0.0
        # two quantum links ask in_use qubits too many; the classical one asks 8 memory and 4 width qubits
        assert float(infos["aggregator_0"]["budget_clipped_qubits"]) == 2 * in_use + 12
        assert float(state.pairs[0]) <= (8 - in_use) * modes + 1e-3
    mask = np.asarray(infos["aggregator_0"]["action_mask"])
    nvec = core.action_nvec(params, "aggregator_0")
    parts = dict(zip(core.AGGREGATOR_COMPONENTS, np.split(mask, np.cumsum(nvec)[:-1]), strict=True))
    assert parts["memory_qubits"].tolist() == [True, True, True, False, False, False, False, False, False]
