"""Variational-quantum-circuit actor-critic: one data re-uploading circuit, two linear readouts.

Architecture, per layer l = 0 .. n_layers-1, on `n_qubits` qubits starting in |0...0>:

    theta_l = W_in[l] @ obs + b_in[l]             trainable input scaling and projection [n_qubits, obs_dim]
    RX(theta_l[i]) on qubit i                       angle encoding, re-uploaded in every layer
    RY(rot[l, i, 0]) RZ(rot[l, i, 1]) on qubit i    variational rotations
    CNOT(i, i+1 mod n) for i = 0 .. n-1             entangling ring

then the readout z_i = <Z_i> for every qubit, and two linear heads on the same z:

    logits = out_scale * (z @ W_out + b_out)        trainable output scaling, one factor per logit
    value  = z @ w_v + b_v

The actor and the critic share one circuit (one set of expectations, two linear readouts): it halves the
circuit evaluations per step and the qubit count a node spends on learning, at the price of coupling the
two losses through the circuit's parameters; the readouts are classical and cheap.

Three backends compute the same expectations:
- "pennylane": a PennyLane QNode on `default.qubit`, `interface="jax"`, `diff_method="backprop"`, built
  once per (n_qubits, n_layers) and traced by `jax.jit` / `jax.vmap` like any JAX function;
- "pennylane-fused": the same QNode on `qin.fused` (agents/fused_device.py), a PennyLane device that fuses
  one-qubit gates and applies gates as elementwise updates XLA can fuse;
- "fused": the same circuit as a statevector in plain JAX (2^n amplitudes; one-qubit gates as elementwise
  updates of the state reshaped to [2]*n, the CNOT ring as one fixed permutation of amplitudes), so XLA
  compiles one small fused program.
tests/agents/test_vqc.py holds them equal to 1e-5 in outputs and gradients. "fused" is the default; on CPU it
runs about 5x faster than the QNode on default.qubit, and about as fast as the QNode on qin.fused
(`qin perf`).

`circuit_qubits(params)` gives the width the trainer uses by default: the computation share of a
quantum node's qubit budget in the scenario.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from qin_env.agents.networks import ActorCritic
from qin_env.params import Params
from qin_env.policies import heuristic_width_level

BACKENDS = ("fused", "pennylane", "pennylane-fused")


def _ring(n_qubits: int) -> list[tuple[int, int]]:
    """(control, target) pairs of the CNOT ring; none for a single qubit."""
    return [(i, (i + 1) % n_qubits) for i in range(n_qubits)] if n_qubits > 1 else []


# --- PennyLane backend ------------------------------------------------------------------------


@functools.cache
def eager_qnode(n_qubits: int, n_layers: int, device_name: str = "default.qubit") -> qml.QNode:
    """The plain (not jitted) PennyLane QNode `(rot[L,n,2], angles[L,n]) -> <Z_i>[n]`, built once per shape.

    `device_name`: "default.qubit" or "qin.fused" (agents/fused_device.py).
    """
    if device_name == "qin.fused":
        from qin_env.agents.fused_device import FusedQubit

        device = FusedQubit(wires=n_qubits)
    else:
        device = qml.device(device_name, wires=n_qubits)

    @qml.qnode(device, interface="jax", diff_method="backprop")
    def circuit(rot: jax.Array, angles: jax.Array) -> list:
        # Data re-uploading with trainable input scaling (Pérez-Salinas et al., Quantum 4, 226, 2020;
        # Skolik et al., Quantum 6, 720, 2022): the encoding is repeated before every variational layer.
        for layer in range(n_layers):
            for q in range(n_qubits):
                qml.RX(angles[layer, q], wires=q)
                qml.RY(rot[layer, q, 0], wires=q)
                qml.RZ(rot[layer, q, 1], wires=q)
            for control, target in _ring(n_qubits):
                qml.CNOT(wires=[control, target])
        return [qml.expval(qml.PauliZ(q)) for q in range(n_qubits)]

    return circuit


def _pennylane_expectations(rot: jax.Array, angles: jax.Array, device_name: str = "default.qubit") -> jax.Array:
    n_layers, n_qubits = angles.shape
    return jnp.stack(eager_qnode(n_qubits, n_layers, device_name)(rot, angles))


# --- fused statevector backend ----------------------------------------------------------------


@functools.cache
def _basis_bits(n_qubits: int) -> np.ndarray:
    """Bit of qubit i in basis index x, [2^n, n]; qubit 0 is the most significant bit, as in PennyLane."""
    index = np.arange(2**n_qubits)
    return (index[:, None] >> (n_qubits - 1 - np.arange(n_qubits))) & 1


@functools.cache
def _ring_gather(n_qubits: int) -> np.ndarray:
    """Indices g with psi_after = psi_before[g] for the CNOT ring, a classical reversible map f of basis states."""
    bits = _basis_bits(n_qubits).copy()
    for control, target in _ring(n_qubits):
        bits[:, target] ^= bits[:, control]
    image = bits @ (1 << (n_qubits - 1 - np.arange(n_qubits)))  # f(x)
    gather = np.empty_like(image)
    gather[image] = np.arange(2**n_qubits)  # psi_after[f(x)] = psi_before[x]
    return gather


def _one_qubit_gates(angles: jax.Array, rot: jax.Array) -> jax.Array:
    """RZ(rz) RY(ry) RX(theta) per qubit as [n, 2, 2] complex matrices (RX applied first)."""
    cx, sx = jnp.cos(angles / 2), jnp.sin(angles / 2)
    cy, sy = jnp.cos(rot[:, 0] / 2), jnp.sin(rot[:, 0] / 2)
    phase = jnp.exp(-0.5j * rot[:, 1])  # RZ = diag(phase, conj(phase))
    # RY @ RX with RX = [[c, -is], [-is, c]] and RY = [[c, -s], [s, c]]
    yx = jnp.stack([jnp.stack([cy * cx + 1j * sy * sx, -sy * cx - 1j * cy * sx], -1),
                    jnp.stack([sy * cx - 1j * cy * sx, cy * cx - 1j * sy * sx], -1)], -2)
    return yx * jnp.stack([phase, jnp.conj(phase)], -1)[:, :, None]


def _apply_one_qubit_gates(state: jax.Array, gates: jax.Array) -> jax.Array:
    """Gate q (2x2) on axis q of a state shaped [2]*n, for every qubit."""
    # Written as elementwise multiply-adds rather than einsum/matmul: XLA fuses them into one loop,
    # about twice as fast on CPU under vmap as batched 2x2 dot products (1.1 M vs 0.5 M circuits/s, batch 1024).
    for q, gate in enumerate(gates):
        s0, s1 = jnp.take(state, 0, axis=q), jnp.take(state, 1, axis=q)
        state = jnp.stack([gate[0, 0] * s0 + gate[0, 1] * s1, gate[1, 0] * s0 + gate[1, 1] * s1], axis=q)
    return state


def _fused_expectations(rot: jax.Array, angles: jax.Array) -> jax.Array:
    n_layers, n_qubits = angles.shape
    gather, signs = _ring_gather(n_qubits), 1.0 - 2.0 * _basis_bits(n_qubits)
    gates = _one_qubit_gates(angles[0], rot[0])
    # The first layer acts on |0...0>, a product state: its image is the tensor product of first columns.
    state = functools.reduce(jnp.kron, list(gates[:, :, 0]))[gather]
    for layer in range(1, n_layers):
        gates = _one_qubit_gates(angles[layer], rot[layer])
        state = _apply_one_qubit_gates(state.reshape((2,) * n_qubits), gates).reshape(-1)[gather]
    probs = jnp.real(state) ** 2 + jnp.imag(state) ** 2
    return probs @ signs.astype(probs.dtype)


def circuit_expectations(rot: jax.Array, angles: jax.Array, backend: str = "fused") -> jax.Array:
    """<Z_i> of the circuit for rotations rot[L, n, 2] and encoding angles[L, n]; one input, batch by vmap."""
    if backend == "fused":
        return _fused_expectations(rot, angles)
    if backend == "pennylane":
        return _pennylane_expectations(rot, angles)
    if backend == "pennylane-fused":
        return _pennylane_expectations(rot, angles, "qin.fused")
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


# --- actor-critic -----------------------------------------------------------------------------


def encoding_angles(circuit: dict[str, jax.Array], obs: jax.Array) -> jax.Array:
    """theta[l] = W_in[l] @ obs + b_in[l] for every layer, [L, n]: the trainable input scaling."""
    return jnp.einsum("lqd,d->lq", circuit["w_in"], obs) + circuit["b_in"]


def circuit_qubits(params: Params) -> int:
    """Qubits of an agent's circuit: the computation share of a quantum node's qubit budget.

    The share is the model width the scenario's operator (the heuristic orchestrator) allocates,
    the rest of the budget holding memory; capped by the budget. Reads only static fields of
    `params`, so it also works on params built inside a trace (`jax.eval_shape`, `jit`).
    """
    width = int(params.model_qubits_levels[heuristic_width_level(params)])
    budget = params.memory_levels - 1  # memory levels are 0 .. hardware.qubit_budget
    return max(1, min(width, budget))


def vqc_actor_critic(obs_dim: int, n_logits: int, *, n_qubits: int = 4, n_layers: int = 3,
                     backend: str = "fused") -> ActorCritic:
    """Actor-critic whose features are the <Z_i> of one data re-uploading circuit (shared by both heads)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if n_qubits < 1 or n_layers < 1:
        raise ValueError(f"need n_qubits >= 1 and n_layers >= 1, got {n_qubits} and {n_layers}")

    def init(key: jax.Array) -> dict[str, Any]:
        k_in, k_rot, k_actor, k_critic = jax.random.split(key, 4)
        circuit = {
            "w_in": jax.random.normal(k_in, (n_layers, n_qubits, obs_dim), jnp.float32) / np.sqrt(obs_dim),
            "b_in": jnp.zeros((n_layers, n_qubits), jnp.float32),
            "rot": jax.random.uniform(k_rot, (n_layers, n_qubits, 2), jnp.float32, 0.0, 2 * np.pi),
        }
        # Small actor weights start the policy near uniform (as the MLP's 0.01-scaled last layer does);
        # trainable output scaling lets it sharpen past the [-1, 1] range of <Z> (Jerbi et al., NeurIPS 2021).
        actor = {"w": 0.01 * jax.random.normal(k_actor, (n_qubits, n_logits), jnp.float32),
                 "b": jnp.zeros(n_logits, jnp.float32), "scale": jnp.ones(n_logits, jnp.float32)}
        critic = {"w": jax.random.normal(k_critic, (n_qubits, 1), jnp.float32) / np.sqrt(n_qubits),
                  "b": jnp.zeros(1, jnp.float32)}
        return {"circuit": circuit, "actor": actor, "critic": critic}

    def apply(params: dict[str, Any], obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        circuit = params["circuit"]
        z = circuit_expectations(circuit["rot"], encoding_angles(circuit, obs), backend)
        actor, critic = params["actor"], params["critic"]
        logits = actor["scale"] * (z @ actor["w"] + actor["b"])
        return logits, (z @ critic["w"] + critic["b"])[0]

    config = {"obs_dim": obs_dim, "n_logits": n_logits, "n_qubits": n_qubits, "n_layers": n_layers,
              "backend": backend}
    return ActorCritic(init, apply, "vqc", config)
