"""Environment throughput, as ratios against a pure-Python PettingZoo reference measured in the same run.

Measures (median of repeats after warm-up, compile time apart):
- reference: mpe2 `simple_spread_v3` parallel env (3 agents), random actions, steps/s;
- the PettingZoo face of a scenario, single env, random actions;
- the batched core `jit(vmap(step))` at several batch sizes, and a `lax.scan` rollout;
- steps/s of the batched core versus network size (nodes), with a fitted cost exponent.

    python -m qin_env.bench.env_throughput [--quick] [--json FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import qin_env
from qin_env import core
from qin_env.bench.args import Command, add_json, add_scenario, main_of, output_file
from qin_env.bench.io import save_figure, write_json
from qin_env.bench.timing import machine_info, median_rate
from qin_env.params import load_params
from qin_env.policies import random_policy
from qin_env.rollout import rollout, seed_keys


def _reference_run(steps: int) -> Callable[[], int]:
    """mpe2 simple_spread_v3 (3 agents), random actions, parallel API: a warm `run() -> steps`."""
    from mpe2 import simple_spread_v3

    env = simple_spread_v3.parallel_env(N=3, max_cycles=10**9)
    env.reset(seed=0)
    for agent in env.possible_agents:
        env.action_space(agent).seed(0)

    def run() -> int:
        env.reset(seed=0)
        for _ in range(steps):
            env.step({a: env.action_space(a).sample() for a in env.agents})
        return steps

    run()
    return run


def _face_run(scenario: str, steps: int) -> tuple[Callable[[], int], float]:
    """PettingZoo face, single env, random actions, auto-restarting: a warm `run() -> steps` and its first run's s."""
    env = qin_env.parallel_env(scenario)
    env.reset(seed=0)
    for agent in env.possible_agents:
        env.action_space(agent).seed(0)

    def run() -> int:
        for _ in range(steps):
            if not env.agents:
                env.reset()
            env.step({a: env.action_space(a).sample() for a in env.agents})
        return steps

    start = time.perf_counter()
    run()
    return run, time.perf_counter() - start


def reference_steps_per_s(steps: int, repeats: int) -> dict[str, Any]:
    """mpe2 simple_spread_v3 (3 agents), random actions, parallel API."""
    rate, rates = median_rate(_reference_run(steps), repeats)
    return {"steps_per_s": rate, "repeats": rates}


def face_steps_per_s(scenario: str, steps: int, repeats: int) -> dict[str, Any]:
    """PettingZoo face, single env, random actions, auto-restarting at truncation."""
    run, warm = _face_run(scenario, steps)
    rate, rates = median_rate(run, repeats)
    return {"steps_per_s": rate, "repeats": rates, "first_run_s": warm}


def face_and_reference_interleaved(scenario: str, steps: int, repeats: int) -> dict[str, Any]:
    """The reference and the face timed in alternating repeats, so drift of the machine hits both alike.

    A single-threaded Python loop's speed drifts by tens of percent within a process on a shared
    machine (CPU frequency, neighbours); timing one after the other would fold that into the ratio.
    """
    reference, (face, warm) = _reference_run(steps), _face_run(scenario, steps)
    ref_rates, face_rates = [], []
    for _ in range(repeats):
        ref_rates += median_rate(reference, 1)[1]
        face_rates += median_rate(face, 1)[1]
    return {"reference": {"steps_per_s": statistics.median(ref_rates), "repeats": ref_rates},
            "face": {"steps_per_s": statistics.median(face_rates), "repeats": face_rates, "first_run_s": warm},
            "ratio_per_repeat": [f / r for f, r in zip(face_rates, ref_rates, strict=True)]}


def batched_steps_per_s(scenario: str, batch: int, iters: int, repeats: int,
                        overrides: dict | None = None) -> dict[str, Any]:
    """`jit(vmap(step))` with auto-reset on `batch` copies, fixed random actions."""
    params = load_params(scenario, overrides)
    keys = seed_keys(0, batch)
    obs, state = jax.vmap(core.reset, in_axes=(0, None))(keys, params)
    actions = jax.vmap(lambda k, o: random_policy(k, o, params))(keys, obs)
    step = jax.jit(jax.vmap(lambda k, s, a: core.step(k, s, a, params, auto_reset=True)))
    start = time.perf_counter()
    out = step(keys, state, actions)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - start

    def run() -> int:
        nonlocal state
        for _ in range(iters):
            _, state, *_ = step(keys, state, actions)
        jax.block_until_ready(state)
        return batch * iters

    rate, rates = median_rate(run, repeats)
    return {"batch": batch, "steps_per_s": rate, "repeats": rates, "compile_s": compile_s,
            "nodes": 1 + params.n_aggregators + params.n_pus}


def scan_steps_per_s(scenario: str, batch: int, length: int, repeats: int) -> dict[str, Any]:
    """A whole `lax.scan` rollout (`qin_env.rollout`, auto-resetting), random policy inside, vmapped over copies."""
    params = load_params(scenario)

    def team_return(key: jax.Array) -> jax.Array:
        rewards, _ = rollout(random_policy, params, key, lambda tr: tr.rewards["orchestrator"], length, auto_reset=True)
        return rewards.sum()

    run_jit = jax.jit(jax.vmap(team_return))
    keys = seed_keys(1, batch)
    start = time.perf_counter()
    jax.block_until_ready(run_jit(keys))
    compile_s = time.perf_counter() - start

    def run() -> int:
        jax.block_until_ready(run_jit(keys))
        return batch * length

    rate, rates = median_rate(run, repeats)
    return {"batch": batch, "length": length, "steps_per_s": rate, "repeats": rates, "compile_s": compile_s}


def vector_and_dummy_interleaved(scenario: str, num_envs: int, steps: int, repeats: int) -> dict[str, Any]:
    """The batched Gymnasium vector face against SB3's `DummyVecEnv` of the same single env, alternating repeats.

    Both step `num_envs` orchestrator views with fixed random actions (the others played by the heuristic);
    rates are env steps/s (vector steps x `num_envs`); the DummyVecEnv runs `steps // 10` vector steps.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from qin_env.faces.gymnasium import OrchestratorEnv
    from qin_env.faces.vector import OrchestratorVectorEnv

    vector = OrchestratorVectorEnv(num_envs, scenario)
    dummy = DummyVecEnv([lambda: OrchestratorEnv(scenario)] * num_envs)
    vector.reset(seed=0)
    dummy.seed(0)
    dummy.reset()
    actions = np.random.default_rng(0).integers(0, vector.single_action_space.nvec,
                                                size=(num_envs, len(vector.single_action_space.nvec)))
    start = time.perf_counter()
    vector.step(actions)
    compile_s = time.perf_counter() - start
    dummy.step(actions)
    dummy_steps = max(1, steps // 10)

    def run_vector() -> int:
        for _ in range(steps):
            vector.step(actions)
        return steps * num_envs

    def run_dummy() -> int:
        for _ in range(dummy_steps):
            dummy.step(actions)
        return dummy_steps * num_envs

    vec_rates, dummy_rates = [], []
    for _ in range(repeats):
        vec_rates += median_rate(run_vector, 1)[1]
        dummy_rates += median_rate(run_dummy, 1)[1]
    return {"num_envs": num_envs,
            "vector": {"steps_per_s": statistics.median(vec_rates), "repeats": vec_rates, "compile_s": compile_s},
            "dummy": {"steps_per_s": statistics.median(dummy_rates), "repeats": dummy_rates}}


SCALE_TOPOLOGIES = ((1, 9), (3, 10), (5, 40), (10, 100), (20, 100), (20, 200))


def scaling(batch: int, iters: int, repeats: int, topologies=SCALE_TOPOLOGIES) -> dict[str, Any]:
    """Batched steps/s versus node count and the fitted exponent of per-step cost in nodes."""
    rows = []
    for n_agg, pus in tqdm(topologies, desc="scaling", leave=False):
        overrides = {"topology.n_aggregators": n_agg, "topology.pus_per_aggregator": pus,
                     "topology.quantum_aggregators": [], "topology.classical_aggregators": []}
        rows.append(batched_steps_per_s("metro_qkd", batch, iters, repeats, overrides))
    nodes = np.array([r["nodes"] for r in rows], float)
    cost = 1.0 / np.array([r["steps_per_s"] for r in rows])
    exponent = float(np.polyfit(np.log(nodes), np.log(cost), 1)[0])
    return {"batch": batch, "rows": rows, "cost_exponent": exponent}


def plot_scaling(result: dict[str, Any], out: Path) -> Path:
    """Steps/s of the batched core versus nodes, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = [r["nodes"] for r in result["rows"]]
    rates = [r["steps_per_s"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.loglog(nodes, rates, "o-", label=f"jit(vmap(step)), batch {result['batch']}")
    ax.set_xlabel("nodes (orchestrator + aggregators + processing units)")
    ax.set_ylabel("env steps per second")
    ax.set_title(f"QIN core throughput vs network size (cost ~ nodes^{result['cost_exponent']:.2f})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out)
    plt.close(fig)
    return out


def run(quick: bool = False, scenario: str = "metro_qkd") -> dict[str, Any]:
    """All measurements in one process; ratios are against the reference of this same run."""
    repeats = 3 if quick else 5
    steps = 300 if quick else 2000
    iters = 5 if quick else 20
    tasks = ["reference", "face", "batch 1", "batch 1024", "batch 8192", "scan", "scaling"]
    result: dict[str, Any] = {"scenario": scenario, "quick": quick, "jax": jax.__version__, "machine": machine_info()}
    bar = tqdm(tasks, desc="throughput")
    for task in bar:
        bar.set_postfix_str(task)
        if task == "reference":
            result["reference"] = reference_steps_per_s(steps, repeats)
        elif task == "face":
            result["face"] = face_steps_per_s(scenario, steps, repeats)
        elif task.startswith("batch"):
            batch = int(task.split()[1])
            result[task.replace(" ", "_")] = batched_steps_per_s(scenario, batch, iters if batch > 1 else steps,
                                                                 repeats)
        elif task == "scan":
            result["scan"] = scan_steps_per_s(scenario, 1024, 200, repeats)
        else:
            result["scaling"] = scaling(1024, max(3, iters // 2), repeats)
    ref = result["reference"]["steps_per_s"]
    result["ratios"] = {
        "face": result["face"]["steps_per_s"] / ref,
        "batch_1": result["batch_1"]["steps_per_s"] / ref,
        "batch_1024": result["batch_1024"]["steps_per_s"] / ref,
        "batch_8192": result["batch_8192"]["steps_per_s"] / ref,
        "scan_1024": result["scan"]["steps_per_s"] / ref,
    }
    return result


def markdown(result: dict[str, Any]) -> str:
    """The README table of one run."""
    ref = result["reference"]["steps_per_s"]
    rows = [("mpe2 simple_spread_v3 (reference)", ref, 1.0),
            ("PettingZoo face, single env", result["face"]["steps_per_s"], result["ratios"]["face"])]
    for b in ("1", "1024", "8192"):
        r = result[f"batch_{b}"]
        rows.append((f"core jit(vmap(step)), batch {b}", r["steps_per_s"], r["steps_per_s"] / ref))
    rows.append(("core lax.scan rollout, batch 1024 x 200", result["scan"]["steps_per_s"],
                 result["ratios"]["scan_1024"]))
    lines = ["| what | env steps/s | ratio to reference |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {rate:,.0f} | {ratio:,.1f} |" for name, rate, ratio in rows]
    lines.append("")
    lines.append(f"Step cost grows as nodes^{result['scaling']['cost_exponent']:.2f} "
                 f"(batch {result['scaling']['batch']}, "
                 + ", ".join(f"{r['nodes']} nodes: {r['steps_per_s']:,.0f}/s" for r in result["scaling"]["rows"])
                 + ").")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `qin throughput` (and `python -m qin_env.bench.env_throughput`)."""
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (about a minute)")
    add_scenario(parser, "scenario to measure")
    add_json(parser, "write all figures here, atomically")
    parser.add_argument("--plot", type=output_file("--plot"), default=None, help="write the scaling plot PNG here")


def run_command(args: argparse.Namespace) -> int:
    """Run, print the table, write the JSON and the scaling plot."""
    result = run(args.quick, args.scenario)
    print(markdown(result))
    if args.plot:
        plot_scaling(result["scaling"], args.plot)
    if args.json:
        write_json(args.json, result)
    return 0


COMMAND = Command("throughput", "env steps/s against a PettingZoo reference", add_arguments, run_command,
                  description=__doc__)


def main(argv: list[str] | None = None, prog: str = "python -m qin_env.bench.env_throughput") -> int:
    """Command line of this module alone."""
    return main_of(COMMAND, argv, prog)


if __name__ == "__main__":
    jnp.zeros(1)  # initialise the backend before timing
    raise SystemExit(main())
