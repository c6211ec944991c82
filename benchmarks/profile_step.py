"""Where the batched core's step spends its time: compiled kernels grouped by what they compute.

`qin perf` says how fast `jit(vmap(step))` is; this says why. It traces a few batched steps with
`jax.profiler`, maps every XLA kernel to the HLO it runs, and groups the kernels into
random-number generation (threefry bits, uniform and normal transforms, with whatever model
arithmetic XLA fused into them) and the rest of the model.

    python -m qin_env.bench.profile_step [--scenario S] [--batch N] [--steps K] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from qin_env import core
from qin_env.bench.args import HelpFormatter, add_json, add_scenario, int_range
from qin_env.bench.io import publish
from qin_env.params import DEFAULT_SCENARIO, load_params
from qin_env.policies import random_policy

RANDOM = "random numbers"
MODEL = "model"
# op_name fragments JAX writes into the HLO metadata of its random-number code
RANDOM_MARKERS = ("threefry", "_uniform", "_normal", "random_bits", "random_split")
_COMPUTATION = re.compile(r"^%?([\w.\-]+) \(.*?\) -> .*? \{\n(.*?)\n\}", re.M | re.S)
_INSTRUCTION = re.compile(r"^\s*%?([\w.\-]+) = .*$", re.M)


def kernel_kinds(hlo_text: str) -> dict[str, str]:
    """Each kernel of an optimised HLO module -> RANDOM or MODEL, by the op names inside what it runs."""
    bodies = {m.group(1): m.group(2) for m in _COMPUTATION.finditer(hlo_text)}
    kinds = {}
    for m in _INSTRUCTION.finditer(hlo_text):
        line = m.group(0)
        if re.search(r" (?:while|conditional|call)\(", line):
            continue  # a container: the kernels of its bodies are traced, and counted, on their own
        called = re.findall(r"(?:calls|body|condition|to_apply)=%?([\w.\-]+)", line)
        text = line + "".join(bodies.get(c, "") for c in called)
        kinds[m.group(1)] = RANDOM if any(marker in text for marker in RANDOM_MARKERS) else MODEL
    return kinds


def profile(scenario: str = DEFAULT_SCENARIO, batch: int = 8192, steps: int = 20) -> dict[str, Any]:
    """Trace `steps` calls of the batched auto-resetting step; kernel time per step by kind and the top kernels."""
    if batch < 1 or steps < 1:
        raise ValueError(f"batch={batch}, steps={steps}: both must be in [1, inf)")
    params = load_params(scenario)
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    obs, state = jax.vmap(core.reset, in_axes=(0, None))(keys, params)
    actions = jax.vmap(lambda k, o: random_policy(k, o, params))(keys, obs)
    step = jax.jit(jax.vmap(lambda k, s, a: core.step(k, s, a, params, auto_reset=True)))
    kinds = kernel_kinds(step.lower(keys, state, actions).compile().as_text())
    for _ in range(3):  # compile and warm up
        _, state, *_ = step(keys, state, actions)
    jax.block_until_ready(state)
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder)
        start = time.perf_counter()
        for _ in range(steps):
            _, state, *_ = step(keys, state, actions)
        jax.block_until_ready(state)
        wall_s = (time.perf_counter() - start) / steps
        jax.profiler.stop_trace()
        trace_file = next(Path(folder).rglob("*.trace.json.gz"))
        events = json.loads(gzip.decompress(trace_file.read_bytes()))["traceEvents"]
    by_kernel: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and event.get("name") in kinds:
            by_kernel[event["name"]] += event["dur"]
    total = sum(by_kernel.values())
    if total == 0:
        raise RuntimeError("the trace holds no XLA kernel events; this jaxlib does not trace CPU kernels")
    by_kind = collections.Counter()
    for name, us in by_kernel.items():
        by_kind[kinds[name]] += us
    return {
        "scenario": scenario, "batch": batch, "steps": steps,
        "wall_ms_per_step": 1e3 * wall_s, "env_steps_per_s": batch / wall_s,
        "kernel_ms_per_step": total / steps / 1e3,
        "share": {kind: by_kind[kind] / total for kind in (RANDOM, MODEL)},
        "top_kernels": [{"kernel": name, "kind": kinds[name], "ms_per_step": us / steps / 1e3}
                        for name, us in by_kernel.most_common(10)],
    }


def markdown(result: dict[str, Any]) -> str:
    """The profile as a Markdown summary and table."""
    lines = [f"`jit(vmap(step))` on {result['scenario']}, batch {result['batch']:,}: "
             f"{result['wall_ms_per_step']:.2f} ms per step ({result['env_steps_per_s']:,.0f} env steps/s), "
             f"{result['kernel_ms_per_step']:.2f} ms of kernel time (both threads)",
             "", "| kind | share of kernel time |", "| --- | ---: |"]
    lines += [f"| {kind} | {share:.0%} |" for kind, share in result["share"].items()]
    lines += ["", "| kernel | kind | ms per step |", "| --- | --- | ---: |"]
    lines += [f"| {k['kernel']} | {k['kind']} | {k['ms_per_step']:.2f} |" for k in result["top_kernels"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: profile, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.profile_step", description=__doc__,
                                     formatter_class=HelpFormatter)
    add_scenario(parser)
    parser.add_argument("--batch", type=int_range("--batch", 1), default=8192, help="parallel environments")
    parser.add_argument("--steps", type=int_range("--steps", 1), default=20, help="traced steps")
    add_json(parser, "write the profile here, atomically")
    args = parser.parse_args(argv)
    result = profile(args.scenario, args.batch, args.steps)
    return publish(result, markdown(result), args.json)


if __name__ == "__main__":
    main()
