"""Closed-form physics against independent PennyLane circuit simulations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from qin_env.physics import (
    bbpssw_purify,
    chsh_value,
    intercept_resend_qber,
    superdense_capacity,
    teleportation_fidelity,
    werner_swap_fidelity,
)
from qin_env.physics.circuits import (
    _werner_pair,
    bb84_qber,
    bbpssw_circuit,
    chsh_circuit,
    superdense_circuit,
    swap_fidelity_circuit,
    teleportation_fidelity_circuit,
)

FIDELITIES = [0.25, 0.5, 0.8, 0.95, 1.0]
EXACT = 1e-6  # density-matrix results against float32 closed forms
N_ROUNDS = 4000
N_SIGMA = 4.0


def _within_standard_errors(result: dict, expected: float) -> bool:
    standard_error = np.sqrt(expected * (1.0 - expected) / result["sifted"])
    return abs(result["qber"] - expected) <= N_SIGMA * standard_error


# --- Werner pair preparation ------------------------------------------------------------------


@pytest.mark.parametrize("f", FIDELITIES)
def test_depolarised_bell_pair_is_the_werner_state_of_that_fidelity(f: float) -> None:
    @qml.qnode(qml.device("default.mixed", wires=2))
    def pair() -> np.ndarray:
        _werner_pair(f, (0, 1))
        return qml.density_matrix(wires=[0, 1])

    phi = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2.0)
    bell = np.outer(phi, phi)
    werner = f * bell + (1.0 - f) / 3.0 * (np.eye(4) - bell)
    np.testing.assert_allclose(np.asarray(pair()), werner, atol=1e-12)


# --- BB84 -------------------------------------------------------------------------------------


def test_bb84_without_eve_or_noise_has_no_errors() -> None:
    result = bb84_qber(N_ROUNDS, eve_fraction=0.0, seed=1)
    assert result["sifted"] > 0
    assert result["errors"] == 0
    assert result["qber"] == 0.0


def test_sifting_keeps_about_half_the_rounds() -> None:
    sifted = bb84_qber(N_ROUNDS, eve_fraction=0.0, seed=2)["sifted"]
    assert abs(sifted - N_ROUNDS / 2) <= N_SIGMA * np.sqrt(N_ROUNDS / 4)


def test_bb84_is_reproducible_from_its_seed() -> None:
    assert bb84_qber(500, 0.3, seed=7, depolarizing_p=0.1) == bb84_qber(
        500, 0.3, seed=7, depolarizing_p=0.1
    )


def test_full_intercept_resend_drives_qber_to_a_quarter() -> None:
    result = bb84_qber(N_ROUNDS, eve_fraction=1.0, seed=3)
    expected = float(intercept_resend_qber(1.0))
    assert expected == pytest.approx(0.25)
    assert _within_standard_errors(result, expected), result


def test_partial_intercept_resend_raises_qber_in_proportion() -> None:
    result = bb84_qber(N_ROUNDS, eve_fraction=0.4, seed=4)
    expected = float(intercept_resend_qber(0.4))
    assert expected == pytest.approx(0.1)
    assert _within_standard_errors(result, expected), result


@pytest.mark.parametrize("eve_fraction", [0.0, 0.5])
@pytest.mark.parametrize("p", [0.06, 0.3])
def test_depolarising_channel_adds_two_thirds_p_under_eve(eve_fraction: float, p: float) -> None:
    result = bb84_qber(N_ROUNDS, eve_fraction=eve_fraction, seed=5, depolarizing_p=p)
    expected = float(intercept_resend_qber(eve_fraction, base_qber=2.0 * p / 3.0))
    assert _within_standard_errors(result, expected), (result, expected)


# --- Exact protocol comparisons ---------------------------------------------------------------


@pytest.mark.parametrize("f", FIDELITIES)
def test_teleportation_over_werner_pair_matches_two_f_plus_one_over_three(f: float) -> None:
    assert teleportation_fidelity_circuit(f, n_states=8, seed=11) == pytest.approx(
        float(teleportation_fidelity(f)), abs=EXACT
    )


@pytest.mark.parametrize("f1", FIDELITIES)
@pytest.mark.parametrize("f2", [0.5, 0.9, 1.0])
def test_entanglement_swap_matches_werner_swap_fidelity(f1: float, f2: float) -> None:
    assert swap_fidelity_circuit(f1, f2) == pytest.approx(
        float(werner_swap_fidelity(f1, f2)), abs=EXACT
    )


@pytest.mark.parametrize("f", FIDELITIES)
def test_superdense_bell_decoder_succeeds_with_f_and_reaches_capacity(f: float) -> None:
    result = superdense_circuit(f)
    assert result["success_probability"] == pytest.approx(f, abs=EXACT)
    assert result["mutual_information_bits"] == pytest.approx(
        float(superdense_capacity(f)), abs=EXACT
    )


@pytest.mark.parametrize("f", FIDELITIES)
def test_chsh_value_of_werner_pair_matches_scaled_tsirelson_bound(f: float) -> None:
    assert chsh_circuit(f) == pytest.approx(float(chsh_value(f)), abs=EXACT)


@pytest.mark.parametrize("f", FIDELITIES)
def test_bbpssw_round_matches_closed_form_fidelity_and_success(f: float) -> None:
    fidelity, p_success = bbpssw_circuit(f)
    expected_fidelity, expected_p = (float(x) for x in bbpssw_purify(f))
    assert fidelity == pytest.approx(expected_fidelity, abs=EXACT)
    assert p_success == pytest.approx(expected_p, abs=EXACT)


# --- Pinned PennyLane + JAX pair --------------------------------------------------------------


def test_pennylane_jax_qnode_matches_closed_form_value_and_gradient_under_jit() -> None:
    @qml.qnode(qml.device("default.qubit", wires=2), interface="jax")
    def circuit(a: jax.Array, b: jax.Array) -> jax.Array:
        qml.RX(a, wires=0)
        qml.RY(b, wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.PauliZ(1))

    # After the CNOT, <Z_1> is the earlier <Z_0 Z_1> = cos(a) cos(b).
    a, b = jnp.float32(0.7), jnp.float32(-1.3)
    value = jax.jit(circuit)(a, b)
    grad_a, grad_b = jax.jit(jax.grad(circuit, argnums=(0, 1)))(a, b)
    np.testing.assert_allclose(value, np.cos(0.7) * np.cos(-1.3), atol=1e-6)
    np.testing.assert_allclose(grad_a, -np.sin(0.7) * np.cos(-1.3), atol=1e-6)
    np.testing.assert_allclose(grad_b, -np.cos(0.7) * np.sin(-1.3), atol=1e-6)
