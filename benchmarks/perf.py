"""`qin perf`: every speed figure of the project as a ratio against a reference measured in the same process.

These machines are shared and noisy, so absolute rates drift between runs; a ratio to a reference
timed minutes earlier in the same process does not. Every figure is the median of at least five
repeats after a warm-up call, with compile time recorded apart.

| key | measured | reference | target |
| --- | --- | --- | --- |
| env_batched_ratio | metro_qkd core, jit(vmap(step)), batch 8,192 | mpe2 simple_spread_v3, random actions | >= 200 |
| env_federated_ratio | metro_fl core (federated model), jit(vmap(step)), batch 8,192 | same | >= 25 |
| env_face_ratio | PettingZoo face of metro_qkd, single env (repeats alternate with the reference's) | same | >= 1 |
| env_vector_ratio | Gymnasium vector face, 256 orchestrator envs in one call | SB3 DummyVecEnv of the 256 | >= 20 |
| circuit_ratio | policy QNode (4 qubits, 3 layers) on qin.fused, jit(vmap), batch 1,024 | eager QNode | >= 1,000 |
| circuit_limit_ratio | the same compiled QNode | the hand-fused statevector of agents/vqc.py | >= 0.7 |
| train_ratio | JAX PPO, MLP (64, 64), env steps/s while training | SB3 PPO on the Gymnasium face | >= 20 |
| train_vqc_ratio | JAX PPO with the VQC policy | the same reference | >= 2 |
| scale_exponent | fitted exponent of step cost versus nodes, 11 to 1,011+ nodes | - | <= 1.1 |

    qin perf [--quick] [--json FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import datetime
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from qin_env.bench.args import Command, main_of, output_file
from qin_env.bench.io import write_json
from qin_env.bench.timing import machine_info, versions

REPEATS = 5
TARGETS: dict[str, tuple[str, float]] = {
    "env_batched_ratio": (">=", 200.0),
    "env_federated_ratio": (">=", 25.0),
    "env_face_ratio": (">=", 1.0),
    "env_vector_ratio": (">=", 20.0),
    "circuit_ratio": (">=", 1000.0),
    "circuit_limit_ratio": (">=", 0.7),
    "train_ratio": (">=", 20.0),
    "train_vqc_ratio": (">=", 2.0),
    "scale_exponent": ("<=", 1.1),
}
WHAT = {
    "env_batched_ratio": "metro_qkd core jit(vmap(step)), batch 8,192 / mpe2 simple_spread_v3",
    "env_federated_ratio": "metro_fl core (federated learning model) jit(vmap(step)), batch 8,192 / mpe2 "
                           "simple_spread_v3",
    "env_face_ratio": "PettingZoo face of metro_qkd, single env / mpe2 simple_spread_v3",
    "env_vector_ratio": "Gymnasium vector face (OrchestratorVectorEnv, 256 envs, one compiled call) / SB3 DummyVecEnv "
                        "of 256 OrchestratorEnv, metro_qkd",
    "circuit_ratio": "PennyLane policy QNode on qin.fused under jit(vmap), batch 1,024 / eager QNode (default.qubit)",
    "circuit_limit_ratio": "the same compiled QNode / hand-fused JAX statevector",
    "train_ratio": "JAX PPO, MLP (64, 64) / stable-baselines3 PPO, env steps/s while training",
    "train_vqc_ratio": "JAX PPO, VQC 4 qubits x 3 layers / stable-baselines3 PPO",
    "scale_exponent": "fitted exponent of step cost versus node count",
}
# Topologies (aggregators, PUs per aggregator) of the scaling fit: 11 to 4,021 nodes (1,011 in --quick).
SCALE_FULL = ((1, 9), (3, 10), (5, 40), (10, 100), (20, 100), (20, 200))
SCALE_QUICK = ((1, 9), (5, 40), (10, 100))


def _plan(quick: bool) -> list[tuple[str, Callable[[], Any]]]:
    """The measurements in run order, each a name and a thunk (imports stay inside: they are heavy)."""
    from qin_env.bench import circuit_speed, env_throughput, train_speed

    steps = 400 if quick else 2000
    iters = 4 if quick else 20
    calls, circuit_iters = (40, 10) if quick else (200, 50)
    train_steps = 32 * 128 * (2 if quick else 16)
    return [
        ("env_face_and_reference", lambda: env_throughput.face_and_reference_interleaved("metro_qkd", steps, REPEATS)),
        ("env_vector", lambda: env_throughput.vector_and_dummy_interleaved("metro_qkd", 256, steps // 10, REPEATS)),
        ("env_batched", lambda: env_throughput.batched_steps_per_s("metro_qkd", 8192, iters, REPEATS)),
        ("env_federated", lambda: env_throughput.batched_steps_per_s("metro_fl", 8192, iters, REPEATS)),
        ("scaling", lambda: env_throughput.scaling(256 if quick else 1024, max(3, iters // 2), REPEATS,
                                                   SCALE_QUICK if quick else SCALE_FULL)),
        ("circuit_eager", lambda: circuit_speed.eager_evals_per_s(calls, REPEATS)),
        *((name, lambda b=backend: circuit_speed.compiled_evals_per_s(b, circuit_iters, REPEATS))
          for name, backend in (("circuit_qnode", "pennylane-fused"), ("circuit_qnode_default_qubit", "pennylane"),
                                ("circuit_fused", "fused"))),
        ("train_sb3", lambda: train_speed.sb3_steps_per_s(1024 if quick else 4096, REPEATS)),
        ("train_mlp", lambda: train_speed.jax_steps_per_s("mlp", train_steps, REPEATS)),
        ("train_vqc", lambda: train_speed.jax_steps_per_s("vqc", train_steps, REPEATS)),
    ]


def _ratios(raw: dict[str, Any]) -> dict[str, float]:
    """The figures of the issues from the raw measurements of one run."""
    env_ref = raw["env_reference"]["steps_per_s"]
    sb3 = raw["train_sb3"]["steps_per_s"]
    pennylane = raw["circuit_qnode"]["evals_per_s"]
    return {
        "env_batched_ratio": raw["env_batched"]["steps_per_s"] / env_ref,
        "env_federated_ratio": raw["env_federated"]["steps_per_s"] / env_ref,
        "env_face_ratio": raw["env_face"]["steps_per_s"] / env_ref,
        "env_vector_ratio": raw["env_vector"]["vector"]["steps_per_s"] / raw["env_vector"]["dummy"]["steps_per_s"],
        "circuit_ratio": pennylane / raw["circuit_eager"]["evals_per_s"],
        "circuit_limit_ratio": pennylane / raw["circuit_fused"]["evals_per_s"],
        "train_ratio": raw["train_mlp"]["steps_per_s"] / sb3,
        "train_vqc_ratio": raw["train_vqc"]["steps_per_s"] / sb3,
        "scale_exponent": raw["scaling"]["cost_exponent"],
    }


def met(key: str, value: float) -> bool:
    """Whether `value` meets the target of `key`."""
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target


def run(quick: bool = False) -> dict[str, Any]:
    """Every measurement in one process, then the ratios; the result is what `--json` writes."""
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # start the backend before anything is timed
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    raw: dict[str, Any] = {}
    bar = tqdm(_plan(quick), desc="qin perf", unit="measurement")
    with warnings.catch_warnings():
        # PennyLane asks for complex128 states, which JAX truncates to complex64 without x64.
        warnings.filterwarnings("ignore", "Explicitly requested dtype complex128")
        warnings.filterwarnings("ignore", "jax.core.is_concrete is deprecated")
        for name, measure in bar:
            bar.set_postfix_str(name)
            raw[name] = measure()
    raw["env_reference"], raw["env_face"] = (raw["env_face_and_reference"].pop(k) for k in ("reference", "face"))
    ratios = _ratios(raw)
    entries = {key: {"value": value, "target": f"{TARGETS[key][0]} {TARGETS[key][1]:g}", "met": met(key, value),
                     "what": WHAT[key]} for key, value in ratios.items()}
    return {**ratios, "entries": entries, "raw": raw, "quick": quick, "repeats": REPEATS, "started": started,
            "wall_s": time.perf_counter() - start, "versions": versions(), "machine": machine_info()}


def markdown(result: dict[str, Any]) -> str:
    """The table `qin perf` prints: each figure, its target, whether it holds, and the raw rates."""
    raw = result["raw"]
    detail = {
        "env_batched_ratio": f"{raw['env_batched']['steps_per_s']:,.0f} vs {raw['env_reference']['steps_per_s']:,.0f}"
                             " steps/s",
        "env_federated_ratio": f"{raw['env_federated']['steps_per_s']:,.0f} vs "
                               f"{raw['env_reference']['steps_per_s']:,.0f} steps/s",
        "env_face_ratio": f"{raw['env_face']['steps_per_s']:,.0f} vs {raw['env_reference']['steps_per_s']:,.0f}"
                          " steps/s",
        "env_vector_ratio": f"{raw['env_vector']['vector']['steps_per_s']:,.0f} vs "
                            f"{raw['env_vector']['dummy']['steps_per_s']:,.0f} steps/s",
        "circuit_ratio": f"{raw['circuit_qnode']['evals_per_s']:,.0f} vs {raw['circuit_eager']['evals_per_s']:,.0f}"
                         " circuits/s",
        "circuit_limit_ratio": f"{raw['circuit_qnode']['evals_per_s']:,.0f} vs "
                               f"{raw['circuit_fused']['evals_per_s']:,.0f} circuits/s",
        "train_ratio": f"{raw['train_mlp']['steps_per_s']:,.0f} vs {raw['train_sb3']['steps_per_s']:,.0f} steps/s",
        "train_vqc_ratio": f"{raw['train_vqc']['steps_per_s']:,.0f} vs {raw['train_sb3']['steps_per_s']:,.0f} steps/s",
        "scale_exponent": ", ".join(f"{r['nodes']:,}: {r['steps_per_s']:,.0f}/s" for r in raw["scaling"]["rows"]),
    }
    lines = ["| key | value | target | met | measured vs reference |", "| --- | ---: | --- | --- | --- |"]
    for key, entry in result["entries"].items():
        value = entry["value"]
        shown = f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}"
        lines.append(f"| `{key}` | {shown} | {entry['target']} | {'yes' if entry['met'] else '**no**'} | "
                     f"{detail[key]} |")
    m = result["machine"]
    default_qubit = raw["circuit_qnode_default_qubit"]["evals_per_s"]
    lines += ["", f"The same QNode on default.qubit: {default_qubit:,.0f} circuits/s, "
              f"{default_qubit / raw['circuit_eager']['evals_per_s']:,.0f} x eager, "
              f"{default_qubit / raw['circuit_fused']['evals_per_s']:.2f} x hand-fused.",
              f"{'quick' if result['quick'] else 'full'} run, {result['wall_s']:.0f} s, medians of "
              f"{result['repeats']} repeats; {m['usable_cpus']} CPUs ({m['processor']}), {m['jax_device']}, "
              f"jax {result['versions']['jax']}, PennyLane {result['versions']['pennylane']}."]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `qin perf`."""
    parser.add_argument("--quick", action="store_true", help="fewer steps per repeat (under 3 minutes on 2 cores)")
    parser.add_argument("--json", type=output_file("--json"), default=None, metavar="FILE",
                        help="write every figure and raw measurement here (default: not written)")
    parser.add_argument("--plot", type=output_file("--plot"), default=None, metavar="FILE",
                        help="steps/s versus node count PNG (default: beside --json, *_steps_vs_nodes.png; "
                             "none without --json)")


def run_command(args: argparse.Namespace) -> int:
    """Run the suite, print the table, write the JSON and the scaling plot (both atomically)."""
    result = run(args.quick)
    print(markdown(result))
    plot = args.plot or (args.json.with_name(f"{args.json.stem}_steps_vs_nodes.png") if args.json else None)
    if plot is not None:
        from qin_env.bench.env_throughput import plot_scaling

        plot_scaling(result["raw"]["scaling"], plot)
        result["plot"] = str(plot)
    if args.json:
        write_json(args.json, result)
    return 0


COMMAND = Command("perf", "every speed ratio against its reference, in one run", add_arguments, run_command,
                  description=__doc__)


def main(argv: Sequence[str] | None = None, prog: str = "python -m qin_env.bench.perf") -> int:
    """`python -m qin_env.bench.perf`, the same as `qin perf`."""
    return main_of(COMMAND, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
