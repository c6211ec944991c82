"""`qin.fused`: a PennyLane device that simulates circuits as fused JAX statevector updates.

`default.qubit` applies every gate as a batched tensor contraction, which XLA:CPU cannot fuse with
its neighbours; under `jit(vmap)` a small circuit pays a kernel launch per gate. This device
multiplies runs of one-qubit gates on a wire into one 2x2 matrix (the gate fusion of statevector
simulators such as qsim, Isakov et al., arXiv:2111.02396) and applies every gate as elementwise
multiply-adds on the state's axes, which XLA fuses into a few loops. It is analytic only, and
differentiable by backpropagation through JAX like `default.qubit`:

``` python
dev = FusedQubit(wires=4)

@qml.qnode(dev, interface="jax", diff_method="backprop")
def circuit(x): ...
```

Results agree with `default.qubit` to float32 rounding (tests/agents/test_fused_device.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp
import pennylane as qml
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.preprocess import decompose, no_sampling, validate_device_wires, validate_measurements
from pennylane.measurements import ExpectationMP, ProbabilityMP, StateMP, VarianceMP
from pennylane.tape import QuantumScript
from pennylane.transforms import broadcast_expand, diagonalize_measurements, split_non_commuting
from pennylane.transforms.core import CompilePipeline

__all__ = ["FusedQubit", "simulate"]

_MEASUREMENTS = (ExpectationMP, ProbabilityMP, StateMP, VarianceMP)


def _native(op: qml.operation.Operator) -> bool:
    """Gates simulated directly: any one- or two-qubit gate with a matrix."""
    return op.has_matrix and 1 <= len(op.wires) <= 2


def _accepted_measurement(mp: qml.measurements.MeasurementProcess) -> bool:
    return isinstance(mp, _MEASUREMENTS)


def _matmul_2x2(a: jax.Array, b: jax.Array) -> jax.Array:
    """a @ b for 2x2 matrices, written out so XLA fuses it with the gates around it."""
    return jnp.stack([jnp.stack([a[0, 0] * b[0, 0] + a[0, 1] * b[1, 0], a[0, 0] * b[0, 1] + a[0, 1] * b[1, 1]]),
                      jnp.stack([a[1, 0] * b[0, 0] + a[1, 1] * b[1, 0], a[1, 0] * b[0, 1] + a[1, 1] * b[1, 1]])])


def _apply_one(state: jax.Array, matrix: jax.Array, axis: int) -> jax.Array:
    """A 2x2 gate on one axis of a state shaped [2] * n."""
    s0, s1 = jnp.take(state, 0, axis=axis), jnp.take(state, 1, axis=axis)
    return jnp.stack([matrix[0, 0] * s0 + matrix[0, 1] * s1, matrix[1, 0] * s0 + matrix[1, 1] * s1], axis=axis)


def _apply_cnot(state: jax.Array, control: int, target: int) -> jax.Array:
    """CNOT: flip the target axis inside the control = 1 half of the state."""
    s0, s1 = jnp.take(state, 0, axis=control), jnp.take(state, 1, axis=control)
    return jnp.stack([s0, jnp.flip(s1, axis=target if target < control else target - 1)], axis=control)


def _apply_two(state: jax.Array, matrix: jax.Array, a: int, b: int) -> jax.Array:
    """A 4x4 gate on axes (a, b), basis order |ab> as in PennyLane, as 16 elementwise multiply-adds."""
    m = matrix.reshape(2, 2, 2, 2)
    s = [[jnp.take(jnp.take(state, i, axis=a), j, axis=b - (b > a)) for j in (0, 1)] for i in (0, 1)]
    out = [[sum(m[k, l, i, j] * s[i][j] for i in (0, 1) for j in (0, 1)) for l in (0, 1)] for k in (0, 1)]
    low, high = sorted((a, b))
    if a < b:
        rows = [jnp.stack(out[k], axis=high - 1) for k in (0, 1)]
    else:  # out[k][l]: k on axis a (the higher), l on axis b (the lower)
        rows = [jnp.stack([out[k][l] for k in (0, 1)], axis=high - 1) for l in (0, 1)]
    return jnp.stack(rows, axis=low)


def simulate(tape: QuantumScript) -> Any:
    """Final state of `tape` from |0...0>, then its measurements (`MeasurementProcess.process_state`)."""
    n = len(tape.wires)
    axis = {w: i for i, w in enumerate(tape.wires)}
    dtype = jax.dtypes.canonicalize_dtype(jnp.complex128)  # complex64 unless x64 is enabled
    state = jnp.zeros((2,) * n, dtype).at[(0,) * n].set(1.0)
    pending: dict[int, jax.Array] = {}  # the fused one-qubit gates not yet applied, per axis

    def flush(axes: Sequence[int]) -> jax.Array:
        nonlocal state
        for ax in axes:
            if ax in pending:
                state = _apply_one(state, pending.pop(ax), ax)
        return state

    for op in tape.operations:
        axes = [axis[w] for w in op.wires]
        matrix = jnp.asarray(op.matrix(), dtype)
        if len(axes) == 1:
            ax = axes[0]
            pending[ax] = _matmul_2x2(matrix, pending[ax]) if ax in pending else matrix
            continue
        flush(axes)
        state = _apply_cnot(state, *axes) if op.name == "CNOT" else _apply_two(state, matrix, *axes)
    flush(list(pending))
    flat = state.reshape(-1)
    results = tuple(mp.process_state(flat, tape.wires) for mp in tape.measurements)
    return results[0] if len(results) == 1 else results


class FusedQubit(Device):
    """Analytic statevector simulator in JAX with one-qubit gate fusion; backprop through jit and vmap."""

    name = "qin.fused"

    def __init__(self, wires: int | Sequence[Any] | None = None, shots: None = None) -> None:
        if shots is not None:
            raise ValueError(f"qin.fused is analytic only: shots={shots!r} is not supported (use None)")
        super().__init__(wires=wires)

    def supports_derivatives(self, execution_config: ExecutionConfig | None = None,
                             circuit: QuantumScript | None = None) -> bool:
        """Backpropagation (or "best", which resolves to it) on analytic circuits."""
        if execution_config is None:
            return True
        return execution_config.gradient_method in {"backprop", "best"} and not (circuit and circuit.shots)

    def setup_execution_config(self, config: ExecutionConfig | None = None,
                               circuit: QuantumScript | None = None) -> ExecutionConfig:
        """Resolve "best" to backprop; keep JAX arrays (tracers under jit) all the way into `execute`."""
        config = config or ExecutionConfig()
        gradient = "backprop" if config.gradient_method == "best" else config.gradient_method
        return replace(config, gradient_method=gradient, use_device_gradient=gradient == "backprop",
                       use_device_jacobian_product=False, grad_on_execution=False, convert_to_numpy=False)

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None) -> CompilePipeline:
        """Diagonalise observables, decompose to one- and two-qubit gates, check measurements, refuse shots."""
        program = CompilePipeline()
        program.add_transform(validate_device_wires, self.wires, name=self.name)
        # process_state reads measurements in the computational basis: rotate observables into it first
        # (one tape per group of commuting observables).
        program.add_transform(split_non_commuting)
        program.add_transform(diagonalize_measurements)
        program.add_transform(decompose, stopping_condition=_native, name=self.name)
        program.add_transform(validate_measurements, analytic_measurements=_accepted_measurement, name=self.name)
        program.add_transform(no_sampling, name=self.name)
        program.add_transform(broadcast_expand)
        return program

    def execute(self, circuits: Sequence[QuantumScript],
                execution_config: ExecutionConfig | None = None) -> tuple[Any, ...]:
        """Simulate each circuit."""
        if isinstance(circuits, QuantumScript):
            return simulate(circuits)
        return tuple(simulate(tape) for tape in circuits)
