"""Training throughput: the JAX PPO trainer against stable-baselines3 PPO, measured in one run.

Environment steps per second while training on `metro_qkd`:
- reference: stable-baselines3 PPO (default MlpPolicy, 64x64) on the Gymnasium face `qin/Orchestrator-v1`;
- the JAX trainer with an MLP actor-critic of SB3's default size (64, 64);
- the JAX trainer with the variational-circuit actor-critic (4 qubits, 3 layers, fused statevector).
Compile time is reported apart; rates are medians over repeats of a warm, compiled train call.

    python -m qin_env.bench.train_speed [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
from typing import Any

import jax

from qin_env.bench.args import HelpFormatter, add_json
from qin_env.bench.io import publish
from qin_env.bench.timing import machine_info, median_rate, timed


def sb3_steps_per_s(steps: int, repeats: int) -> dict[str, Any]:
    """SB3 PPO learning on the orchestrator view (the other agents: the heuristic)."""
    import gymnasium
    import torch
    from stable_baselines3 import PPO

    # On 2 cores torch's intra-op threads fight XLA's for the CPU (SB3 drops to ~50 steps/s);
    # one torch thread is SB3's fastest setting here (~600 steps/s), so the reference is fair.
    torch.set_num_threads(1)
    import qin_env  # noqa: F401 - registers the ids

    env = gymnasium.make("qin/Orchestrator-v1")
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, seed=0, device="cpu", verbose=0)
    model.learn(512)  # warm-up: the face's compile and torch's first passes

    def run() -> int:
        model.learn(steps, reset_num_timesteps=False)
        return steps

    rate, rates = median_rate(run, repeats)
    return {"steps_per_s": rate, "repeats": rates, "steps": steps, "torch_threads": 1}


def jax_steps_per_s(network: str, steps: int, repeats: int) -> dict[str, Any]:
    """The JAX trainer on all team agents, one seed, `steps` env steps per call."""
    from qin_env.agents.ppo import PPOConfig, make_train, network_param_count

    config = PPOConfig(scenario="metro_qkd", network=network, hidden=(64, 64), num_envs=32, num_steps=128,
                       total_timesteps=steps)
    train = jax.jit(make_train(config))
    _, compile_s = timed(lambda: jax.block_until_ready(train(jax.random.PRNGKey(0))))
    seeds = iter(range(1, repeats + 1))

    def run() -> int:
        jax.block_until_ready(train(jax.random.PRNGKey(next(seeds))))
        return (steps // (32 * 128)) * 32 * 128

    rate, rates = median_rate(run, repeats)
    return {"steps_per_s": rate, "repeats": rates, "first_call_s": compile_s,
            "parameters_per_agent_network": network_param_count(config)}


def run(quick: bool = False) -> dict[str, Any]:
    """All three measurements and the ratios against the SB3 reference of this same run."""
    repeats = 3 if quick else 5
    result: dict[str, Any] = {"quick": quick, "jax": jax.__version__, "machine": machine_info()}
    result["sb3"] = sb3_steps_per_s(1024 if quick else 4096, repeats)
    result["jax_mlp"] = jax_steps_per_s("mlp", 32 * 128 * (4 if quick else 16), repeats)
    result["jax_vqc"] = jax_steps_per_s("vqc", 32 * 128 * (4 if quick else 16), repeats)
    ref = result["sb3"]["steps_per_s"]
    result["train_ratio"] = result["jax_mlp"]["steps_per_s"] / ref
    result["train_vqc_ratio"] = result["jax_vqc"]["steps_per_s"] / ref
    return result


def markdown(result: dict[str, Any]) -> str:
    """A table of one run."""
    ref = result["sb3"]["steps_per_s"]
    rows = [("stable-baselines3 PPO, MlpPolicy, Gymnasium face (reference)", ref),
            ("JAX PPO, MLP (64, 64), all team agents", result["jax_mlp"]["steps_per_s"]),
            ("JAX PPO, VQC 4 qubits x 3 layers, all team agents", result["jax_vqc"]["steps_per_s"])]
    lines = ["| trainer | env steps/s | ratio |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {rate:,.0f} | {rate / ref:,.1f} |" for name, rate in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: run, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.train_speed", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    add_json(parser, "write all figures here, atomically")
    args = parser.parse_args(argv)
    result = run(args.quick)
    return publish(result, markdown(result), args.json)


if __name__ == "__main__":
    main()
