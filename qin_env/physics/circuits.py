"""Circuit-level PennyLane simulations of the protocols the closed forms in this package describe.

They are independent references for tests, not part of the hot path: NumPy interface, exact
density matrices from `default.mixed`, and seeded NumPy sampling where a protocol is statistical.
A Werner pair of fidelity F is made as |Phi+> followed by a depolarising channel on one qubit.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pennylane as qml

_PHI_PLUS = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2.0)
_PAULI_X = np.array([[0.0, 1.0], [1.0, 0.0]])
_PAULI_Z = np.array([[1.0, 0.0], [0.0, -1.0]])


def _werner_pair(fidelity: float, wires: tuple[int, int]) -> None:
    """Queue |Phi+> on `wires` and depolarise its first qubit so its Bell fidelity is `fidelity`."""
    qml.Hadamard(wires=wires[0])
    qml.CNOT(wires=wires)
    # DepolarizingChannel(p) applies X, Y, Z with p/3 each, moving |Phi+> onto the other three
    # Bell states with p/3 each: a Werner state of fidelity 1 - p.
    qml.DepolarizingChannel(1.0 - fidelity, wires=wires[0])


def _bell_fidelity(rho: np.ndarray) -> float:
    """<Phi+| rho |Phi+> for a two-qubit density matrix."""
    return float(np.real(_PHI_PLUS @ rho @ _PHI_PLUS))


def _mixed_device(n_wires: int) -> qml.devices.Device:
    return qml.device("default.mixed", wires=n_wires)


# --- BB84 -------------------------------------------------------------------------------------

_Z_BASIS, _X_BASIS = 0, 1


@cache
def _bb84_outcome_table(depolarizing_p: float) -> np.ndarray:
    """P(read 1)[bit, prepared basis, measured basis] for one qubit through the channel."""
    dev = _mixed_device(1)

    @qml.qnode(dev)
    def read(bit: int, prep_basis: int, meas_basis: int) -> np.ndarray:
        if bit:
            qml.PauliX(wires=0)
        if prep_basis == _X_BASIS:
            qml.Hadamard(wires=0)
        if depolarizing_p > 0.0:
            qml.DepolarizingChannel(depolarizing_p, wires=0)
        if meas_basis == _X_BASIS:
            qml.Hadamard(wires=0)
        return qml.probs(wires=0)

    table = np.empty((2, 2, 2))
    for bit in range(2):
        for prep in range(2):
            for meas in range(2):
                table[bit, prep, meas] = read(bit, prep, meas)[1]
    # Drop float round-off so that deterministic outcomes stay deterministic when sampled.
    return np.clip(np.round(table, 12), 0.0, 1.0)


def bb84_qber(n_rounds: int, eve_fraction: float, seed: int, depolarizing_p: float = 0.0) -> dict:
    """Run `n_rounds` of BB84 with an intercept-resend Eve and a depolarising channel; sift.

    Outcome probabilities come from `default.mixed` circuits; bits, bases, Eve's choices and all
    measurement outcomes are drawn from a NumPy generator seeded with `seed`.
    """
    rng = np.random.default_rng(seed)
    ideal = _bb84_outcome_table(0.0)
    noisy = _bb84_outcome_table(float(depolarizing_p))

    # Random bits in random bases from Alice, random bases for Bob (Bennett & Brassard 1984).
    alice_bit = rng.integers(0, 2, n_rounds)
    alice_basis = rng.integers(0, 2, n_rounds)
    bob_basis = rng.integers(0, 2, n_rounds)

    # Eve measures an intercepted qubit in a random basis and resends her result in that basis
    # (Gisin et al., RMP 74, 145, 2002, Sec. VI.A).
    intercepted = rng.random(n_rounds) < eve_fraction
    eve_basis = rng.integers(0, 2, n_rounds)
    eve_bit = (rng.random(n_rounds) < ideal[alice_bit, alice_basis, eve_basis]).astype(int)
    sent_bit = np.where(intercepted, eve_bit, alice_bit)
    sent_basis = np.where(intercepted, eve_basis, alice_basis)

    bob_bit = (rng.random(n_rounds) < noisy[sent_bit, sent_basis, bob_basis]).astype(int)

    sifted = alice_basis == bob_basis
    n_sifted = int(sifted.sum())
    errors = int((alice_bit[sifted] != bob_bit[sifted]).sum())
    return {"sifted": n_sifted, "errors": errors, "qber": errors / n_sifted if n_sifted else 0.0}


# --- Teleportation ----------------------------------------------------------------------------


def _haar_angles(rng: np.random.Generator, n_states: int) -> np.ndarray:
    """(theta, phi) with RZ(phi) RY(theta)|0> Haar-random up to a global phase."""
    amps = rng.normal(size=(n_states, 2)) + 1j * rng.normal(size=(n_states, 2))
    amps /= np.linalg.norm(amps, axis=1, keepdims=True)
    theta = 2.0 * np.arccos(np.clip(np.abs(amps[:, 0]), 0.0, 1.0))
    phi = np.angle(amps[:, 1]) - np.angle(amps[:, 0])
    return np.stack([theta, phi], axis=1)


def teleportation_fidelity_circuit(
    pair_fidelity: float, n_states: int = 20, seed: int = 0
) -> float:
    """Average fidelity of `n_states` Haar-random qubits teleported over a Werner pair.

    A Werner pair makes teleportation a depolarising channel, so every input has the same
    fidelity and the average is exact however few states are drawn.
    """
    dev = _mixed_device(3)

    @qml.qnode(dev)
    def teleport(theta: float, phi: float) -> np.ndarray:
        qml.RY(theta, wires=0)
        qml.RZ(phi, wires=0)
        _werner_pair(pair_fidelity, (1, 2))
        # Bell measurement of (0, 1) and Pauli corrections on 2, with the measurements deferred
        # into controlled gates (Bennett et al., PRL 70, 1895, 1993; Nielsen & Chuang Fig. 4.15).
        qml.CNOT(wires=[0, 1])
        qml.Hadamard(wires=0)
        qml.CNOT(wires=[1, 2])
        qml.CZ(wires=[0, 2])
        return qml.density_matrix(wires=[2])

    fidelities = []
    for theta, phi in _haar_angles(np.random.default_rng(seed), n_states):
        psi = np.array([np.cos(theta / 2.0), np.exp(1j * phi) * np.sin(theta / 2.0)])
        rho = np.asarray(teleport(theta, phi))
        fidelities.append(np.real(np.conj(psi) @ rho @ psi))
    return float(np.mean(fidelities))


# --- Entanglement swapping --------------------------------------------------------------------


def swap_fidelity_circuit(f1: float, f2: float) -> float:
    """Bell fidelity of pair (0, 3) once a Bell measurement joins Werner pairs (0, 1), (2, 3)."""

    @qml.qnode(_mixed_device(4))
    def swap() -> np.ndarray:
        _werner_pair(f1, (0, 1))
        _werner_pair(f2, (2, 3))
        # Swapping is teleporting qubit 1 to qubit 3 (Zukowski et al., PRL 71, 4287, 1993).
        qml.CNOT(wires=[1, 2])
        qml.Hadamard(wires=1)
        qml.CNOT(wires=[2, 3])
        qml.CZ(wires=[1, 3])
        return qml.density_matrix(wires=[0, 3])

    return _bell_fidelity(np.asarray(swap()))


# --- Intercept-resend on an entangled pair ----------------------------------------------------


def intercept_resend_pair_circuit(pair_fidelity: float, tap_fraction: float = 1.0) -> float:
    """Bell fidelity of a Werner pair whose qubit 0 Eve measures, with probability `tap_fraction`, and resends.

    She picks Z or X with probability 1/2 each; the state is the exact mixture of the three density matrices.
    """

    # Wire 2 holds Eve's outcome once PennyLane defers the mid-circuit measurement; it is traced out.
    @qml.qnode(_mixed_device(3))
    def pair(basis: int | None) -> np.ndarray:
        _werner_pair(pair_fidelity, (0, 1))
        if basis is not None:
            # Measure in her basis, resend the eigenstate found (intercept-resend: Gisin et al., RMP 74, 145, Sec. VI.A)
            if basis == _X_BASIS:
                qml.Hadamard(wires=0)
            qml.measure(0)
            if basis == _X_BASIS:
                qml.Hadamard(wires=0)
        return qml.density_matrix(wires=[0, 1])

    tapped = 0.5 * (np.asarray(pair(_Z_BASIS)) + np.asarray(pair(_X_BASIS)))
    rho = (1.0 - tap_fraction) * np.asarray(pair(None)) + tap_fraction * tapped
    return _bell_fidelity(rho)


# --- Superdense coding ------------------------------------------------------------------------


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0.0]
    return float(-(p * np.log2(p)).sum())


def superdense_circuit(pair_fidelity: float) -> dict:
    """Decoding success and mutual information of superdense coding over a Werner pair.

    Two bits (z, x) are encoded as X^x Z^z on Alice's qubit and read by Bob's Bell measurement,
    which returns (z, x) on wires (0, 1) for a perfect pair (Bennett & Wiesner, PRL 69, 2881, 1992).
    """

    @qml.qnode(_mixed_device(2))
    def send(z: int, x: int) -> np.ndarray:
        _werner_pair(pair_fidelity, (0, 1))
        if z:
            qml.PauliZ(wires=0)
        if x:
            qml.PauliX(wires=0)
        qml.CNOT(wires=[0, 1])
        qml.Hadamard(wires=0)
        return qml.probs(wires=[0, 1])

    # channel[message, outcome] with message index 2 z + x, the same ordering as the outcomes.
    channel = np.array([np.asarray(send(z, x)) for z in range(2) for x in range(2)])
    success = float(np.mean(np.diag(channel)))
    # I(M; Y) = H(Y) - H(Y | M) for uniformly chosen messages.
    h_out = _entropy_bits(channel.mean(axis=0))
    h_out_given_msg = float(np.mean([_entropy_bits(row) for row in channel]))
    return {"success_probability": success, "mutual_information_bits": h_out - h_out_given_msg}


# --- CHSH -------------------------------------------------------------------------------------


def chsh_circuit(pair_fidelity: float) -> float:
    """CHSH value of a Werner pair with Alice measuring Z, X and Bob (Z ± X)/sqrt(2)."""
    bob_plus = qml.Hermitian((_PAULI_Z + _PAULI_X) / np.sqrt(2.0), wires=1)
    bob_minus = qml.Hermitian((_PAULI_Z - _PAULI_X) / np.sqrt(2.0), wires=1)

    @qml.qnode(_mixed_device(2))
    def correlators() -> tuple:
        _werner_pair(pair_fidelity, (0, 1))
        return (
            qml.expval(qml.PauliZ(0) @ bob_plus),
            qml.expval(qml.PauliZ(0) @ bob_minus),
            qml.expval(qml.PauliX(0) @ bob_plus),
            qml.expval(qml.PauliX(0) @ bob_minus),
        )

    a0b0, a0b1, a1b0, a1b1 = (float(e) for e in correlators())
    # S = E(A0,B0) + E(A0,B1) + E(A1,B0) - E(A1,B1) (Clauser, Horne, Shimony, Holt, PRL 23, 880)
    return a0b0 + a0b1 + a1b0 - a1b1


# --- BBPSSW purification ----------------------------------------------------------------------


def bbpssw_circuit(f: float) -> tuple[float, float]:
    """(fidelity of the kept pair given success, success probability) of one BBPSSW round.

    Pairs (a1, b1) = wires (0, 1) and (a2, b2) = wires (2, 3) are Werner pairs of fidelity f.
    """

    @qml.qnode(_mixed_device(4))
    def purify() -> np.ndarray:
        _werner_pair(f, (0, 1))
        _werner_pair(f, (2, 3))
        # Bilateral CNOT from the source pair onto the target pair, then both target qubits are
        # measured in Z and the source kept on coincidence (Bennett et al., PRL 76, 722, 1996).
        qml.CNOT(wires=[0, 2])
        qml.CNOT(wires=[1, 3])
        return qml.density_matrix(wires=[0, 1, 2, 3])

    # Index the state as rho[source, target, source', target'] (wire 0 is most significant).
    rho = np.asarray(purify()).reshape(4, 4, 4, 4)
    coincidences = (0b00, 0b11)
    kept = sum(rho[:, t, :, t] for t in coincidences)
    p_success = float(np.real(np.trace(kept)))
    return _bell_fidelity(kept / p_success), p_success
