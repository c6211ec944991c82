"""The `qin.fused` PennyLane device: the same results and gradients as default.qubit, under jit and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from qin_env.agents.fused_device import FusedQubit

pytestmark = [pytest.mark.filterwarnings("ignore:Explicitly requested dtype complex128:UserWarning"),
              pytest.mark.filterwarnings("ignore:jax.core.is_concrete is deprecated:DeprecationWarning")]


def _circuit(x):
    """Every path of the device: fused one-qubit runs, CNOT both ways, general two-qubit gates in both
    wire orders, a three-qubit gate it must decompose, and four kinds of measurement."""
    qml.Hadamard(0)
    qml.RX(x[0], 1)
    qml.CRY(x[1], wires=[2, 0])
    qml.CNOT([1, 2])
    qml.CNOT([2, 0])
    qml.Rot(x[2], x[0], x[1], wires=2)
    qml.SWAP([0, 2])
    qml.IsingXX(x[1], wires=[1, 0])
    qml.CZ([0, 1])
    qml.S(1)
    qml.Toffoli([0, 1, 2])
    qml.PhaseShift(x[2], 0)
    qml.RY(x[0] * x[1], 2)
    return (qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliX(1) @ qml.PauliY(0)), qml.probs(wires=[2, 0]),
            qml.var(qml.PauliZ(1)))


def _qnodes(n_wires: int = 3):
    reference = qml.QNode(_circuit, qml.device("default.qubit", wires=n_wires), interface="jax",
                          diff_method="backprop")
    return reference, qml.QNode(_circuit, FusedQubit(wires=n_wires), interface="jax", diff_method="backprop")


def test_results_and_gradients_match_default_qubit_under_jit_and_vmap():
    xs = jnp.asarray(np.random.default_rng(0).uniform(-np.pi, np.pi, (8, 3)), jnp.float32)

    def values_and_gradients(qnode):
        def scalar(x):
            z, xy, probs, var = qnode(x)
            return z + 0.5 * xy + probs[1] - var

        return jax.jit(lambda xs: (jax.vmap(qnode)(xs), jax.vmap(jax.grad(scalar))(xs)))(xs)

    (want, want_grad), (got, got_grad) = (values_and_gradients(q) for q in _qnodes())
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)
    np.testing.assert_allclose(got_grad, want_grad, atol=1e-5)
    assert np.std(want[1]) > 0.1 and np.all(np.abs(want_grad).max(axis=0) > 0.1)  # nothing trivially constant


def test_float64_matches_to_roundoff():
    reference, fused = _qnodes()
    with jax.enable_x64(True):
        x = jnp.asarray([0.3, -1.1, 2.2], jnp.float64)
        for got, want in zip(fused(x), reference(x), strict=True):
            assert jnp.asarray(got).dtype == jnp.float64
            np.testing.assert_allclose(got, want, atol=1e-12)


def test_refuses_shots_and_sampling():
    with pytest.raises(ValueError, match="analytic only"):
        FusedQubit(wires=2, shots=100)

    @qml.qnode(FusedQubit(wires=1), interface="jax")
    def sampled():
        qml.Hadamard(0)
        return qml.sample(wires=0)

    with pytest.raises(qml.exceptions.DeviceError):
        sampled()
