"""RLlib PPO on the PettingZoo face, one policy per agent role: `python -m qin_env.bench.rllib_ppo`.

Needs `pip install 'qin-env[rllib]'`. The face plugs into RLlib's `ParallelPettingZooEnv` with no
glue; the aggregators share one policy (their spaces are equal), the orchestrator and, in
`adversarial_eve`, Eve get their own. RLlib samples unmasked actions: masked values are legal but
wasted (a classical aggregator's quantum channel fails its round), which the team reward prices.
Prints one line per training iteration: the mean team return of the episodes that iteration ended.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import qin_env
from qin_env.params import DEFAULT_SCENARIO

ENV_NAME = "qin_parallel"


def role(agent: str) -> str:
    """The policy an agent plays: `aggregator` for every aggregator, else the agent's own name."""
    return "aggregator" if agent.startswith("aggregator_") else agent


def _make_env(config: dict[str, Any]) -> Any:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    return ParallelPettingZooEnv(qin_env.parallel_env(config["scenario"], max_cycles=config["max_cycles"]))


def ppo_config(scenario: str = DEFAULT_SCENARIO, max_cycles: int = 50, batch: int = 400, seed: int = 0) -> Any:
    """RLlib's `PPOConfig` for `scenario`: sampling in the driver (no env-runner processes), one policy per role."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    register_env(ENV_NAME, _make_env)
    roles = sorted({role(a) for a in qin_env.parallel_env(scenario, max_cycles=max_cycles).possible_agents})
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config={"scenario": scenario, "max_cycles": max_cycles})
        .multi_agent(policies=set(roles), policy_mapping_fn=lambda agent_id, *args, **kwargs: role(agent_id))
        .env_runners(num_env_runners=0, rollout_fragment_length=max_cycles)
        .training(train_batch_size_per_learner=batch, minibatch_size=batch // 2, num_epochs=2, lr=3e-4)
        .debugging(seed=seed)
    )


def team_return(result: dict[str, Any]) -> float:
    """Mean return of the episodes an iteration ended, summed over agents (NaN when none ended)."""
    value = result.get("env_runners", {}).get("episode_return_mean", math.nan)
    return float(value) if value is not None else math.nan


def train(scenario: str = DEFAULT_SCENARIO, iterations: int = 3, max_cycles: int = 50, batch: int = 400,
          seed: int = 0) -> list[dict[str, Any]]:
    """Build PPO on `scenario` and run `iterations` training iterations; the result dict of each."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        algo = ppo_config(scenario, max_cycles, batch, seed).build_algo()
        try:
            return [algo.train() for _ in range(iterations)]
        finally:
            algo.stop()
    finally:
        if started:
            ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, print one line per iteration."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.rllib_ppo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, choices=qin_env.list_scenarios())
    parser.add_argument("--iterations", type=int, default=3, help="PPO training iterations (>= 1)")
    parser.add_argument("--max-cycles", type=int, default=50, help="slots per episode (>= 1)")
    parser.add_argument("--batch", type=int, default=400, help="agent steps per training batch (>= 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, low in (("iterations", 1), ("max_cycles", 1), ("batch", 2)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    for i, result in enumerate(train(args.scenario, args.iterations, args.max_cycles, args.batch, args.seed)):
        print(f"iteration {i + 1}: team return {team_return(result):.3f}, "
              f"env steps {result.get('num_env_steps_sampled_lifetime', 'n/a')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
