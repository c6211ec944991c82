"""Circuit evaluations/s of the VQC policy, compiled and batched, as ratios against eager PennyLane in the same run.

The policy circuit of agents/vqc.py with 4 qubits, 3 layers, obs_dim 16 (median of repeats after warm-up,
compile time apart):
- reference: the plain PennyLane QNode called eagerly on one input at a time (encoding angles precomputed,
  so only the circuit is timed);
- `jax.jit(jax.vmap(apply))` of the whole actor-critic at batch 1024 with each backend of agents/vqc.py:
  the QNode on `default.qubit` ("pennylane"), the same QNode on `qin.fused` ("pennylane-fused",
  agents/fused_device.py) and the hand-fused statevector ("fused");
- the same for a gradient of a batch loss (the training step's cost).

`circuit_ratio` = the compiled PennyLane QNode on qin.fused / eager QNode (target at least 1,000);
`circuit_limit_ratio` = the same compiled QNode / the hand-fused statevector (target at least 0.7);
`*_default_qubit` are the same two ratios with the QNode on default.qubit.

    python -m qin_env.bench.circuit_speed [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import pennylane as qml

from qin_env.agents.vqc import eager_qnode, encoding_angles, vqc_actor_critic
from qin_env.bench.args import HelpFormatter, add_json
from qin_env.bench.io import publish
from qin_env.bench.timing import machine_info, median_rate

N_QUBITS, N_LAYERS, OBS_DIM, N_LOGITS, BATCH = 4, 3, 16, 54, 1024
REPEATS = 5



def _inputs(seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """Agent parameters and a batch of observations, the same for every measurement."""
    params = vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=N_QUBITS, n_layers=N_LAYERS).init(jax.random.PRNGKey(seed))
    obs = np.random.default_rng(seed).standard_normal((BATCH, OBS_DIM)).astype(np.float32)
    return params, obs


def eager_evals_per_s(calls: int, repeats: int) -> dict[str, Any]:
    """The plain QNode in a Python loop over single inputs, as a user without jit would run it."""
    params, obs = _inputs()
    qnode = eager_qnode(N_QUBITS, N_LAYERS)
    rot = params["circuit"]["rot"]
    angles = list(jax.jit(jax.vmap(encoding_angles, in_axes=(None, 0)))(params["circuit"], obs[:calls]))

    def run() -> int:
        for a in angles:
            jax.block_until_ready(qnode(rot, a))
        return calls

    start = time.perf_counter()
    jax.block_until_ready(qnode(rot, angles[0]))
    first_s = time.perf_counter() - start
    run()  # warm-up
    rate, rates = median_rate(run, repeats)
    return {"evals_per_s": rate, "repeats": rates, "calls": calls, "first_call_s": first_s}


def compiled_evals_per_s(backend: str, iters: int, repeats: int, grad: bool = False) -> dict[str, Any]:
    """`jit(vmap(apply))` at batch BATCH, or the jitted gradient of a batch loss when `grad`."""
    ac = vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=N_QUBITS, n_layers=N_LAYERS, backend=backend)
    params, obs = _inputs()
    batched = jax.vmap(ac.apply, in_axes=(None, 0))
    if grad:
        def loss(p: dict[str, Any], o: jax.Array) -> jax.Array:
            logits, values = batched(p, o)
            return jnp.mean(jax.nn.logsumexp(logits, axis=-1)) + jnp.mean(values**2)

        fn = jax.jit(jax.grad(loss))
    else:
        fn = jax.jit(batched)
    start = time.perf_counter()
    jax.block_until_ready(fn(params, obs))
    compile_s = time.perf_counter() - start

    def run() -> int:
        for _ in range(iters):
            out = fn(params, obs)
        jax.block_until_ready(out)
        return BATCH * iters

    run()  # warm-up
    rate, rates = median_rate(run, repeats)
    return {"backend": backend, "grad": grad, "batch": BATCH, "evals_per_s": rate, "repeats": rates,
            "compile_s": compile_s}


def run(quick: bool = False) -> dict[str, Any]:
    """All measurements in one process; ratios are against the eager reference of this same run."""
    calls, iters = (50, 10) if quick else (200, 50)
    result: dict[str, Any] = {
        "quick": quick, "n_qubits": N_QUBITS, "n_layers": N_LAYERS, "obs_dim": OBS_DIM, "n_logits": N_LOGITS,
        "batch": BATCH, "repeats": REPEATS, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "pennylane": qml.__version__, "device": str(jax.devices()[0]), "machine": machine_info(),
    }
    with warnings.catch_warnings():
        # PennyLane asks for complex128 states, which JAX truncates to complex64 without x64.
        warnings.filterwarnings("ignore", "Explicitly requested dtype complex128")
        warnings.filterwarnings("ignore", "jax.core.is_concrete is deprecated")
        result["eager"] = eager_evals_per_s(calls, REPEATS)
        for backend in ("pennylane", "pennylane-fused", "fused"):
            result[f"{backend}_jit"] = compiled_evals_per_s(backend, iters, REPEATS)
            result[f"{backend}_grad"] = compiled_evals_per_s(backend, max(2, iters // 5), REPEATS, grad=True)
    eager, fused, device, default = (result[k]["evals_per_s"] for k in ("eager", "fused_jit", "pennylane-fused_jit",
                                                                         "pennylane_jit"))
    result["circuit_ratio"] = device / eager
    result["circuit_limit_ratio"] = device / fused
    result["circuit_ratio_default_qubit"] = default / eager
    result["circuit_limit_ratio_default_qubit"] = default / fused
    result["grad_limit_ratio"] = result["pennylane-fused_grad"]["evals_per_s"] / result["fused_grad"]["evals_per_s"]
    return result


def markdown(result: dict[str, Any]) -> str:
    """The README table of one run."""
    eager = result["eager"]["evals_per_s"]
    rows = [("eager PennyLane QNode, one input per call (reference)", result["eager"], "eager")]
    for key, what in (("pennylane_jit", "jit(vmap(apply)), QNode on default.qubit"),
                      ("pennylane-fused_jit", "jit(vmap(apply)), QNode on qin.fused"),
                      ("fused_jit", "jit(vmap(apply)), hand-fused statevector (default)"),
                      ("pennylane_grad", "jit(grad(batch loss)), QNode on default.qubit"),
                      ("pennylane-fused_grad", "jit(grad(batch loss)), QNode on qin.fused"),
                      ("fused_grad", "jit(grad(batch loss)), hand-fused statevector")):
        rows.append((f"{what}, batch {result['batch']}", result[key], f"{result[key]['compile_s']:.2f}"))
    lines = [f"VQC policy circuit, {result['n_qubits']} qubits x {result['n_layers']} layers, "
             f"obs_dim {result['obs_dim']}; jax {result['jax']}, PennyLane {result['pennylane']}, "
             f"{result['device']}, {result['machine']['cpus']} CPUs.", "",
             "| what | circuit evaluations/s | ratio to eager | compile s |", "| --- | ---: | ---: | ---: |"]
    for name, r, compile_s in rows:
        if compile_s == "eager":
            compile_s = f"(first call {r['first_call_s']:.2f})"
        lines.append(f"| {name} | {r['evals_per_s']:,.0f} | {r['evals_per_s'] / eager:,.0f} | {compile_s} |")
    lines += ["", f"circuit_ratio (QNode on qin.fused, compiled / eager) = {result['circuit_ratio']:,.0f} "
              f"(target >= 1,000); circuit_limit_ratio (the same / hand-fused) = {result['circuit_limit_ratio']:.2f} "
              f"(target >= 0.7; on default.qubit {result['circuit_limit_ratio_default_qubit']:.2f}); "
              f"for gradients {result['grad_limit_ratio']:.2f}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: run, print the table, write JSON atomically."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.circuit_speed", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls per repeat (about half a minute)")
    add_json(parser, "write all figures here, atomically")
    args = parser.parse_args(argv)
    result = run(args.quick)
    return publish(result, markdown(result), args.json)


if __name__ == "__main__":
    jnp.zeros(1)  # initialise the backend before timing
    main()
