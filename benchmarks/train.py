"""`qin train`: PPO (VQC or MLP) on a scenario, several seeds at once, with everything a user looks at.

Writes to the output folder: `metrics.csv` (one row per update and seed), `learning_curve.png`
(mean and spread over seeds, random and heuristic as reference lines), one checkpoint per seed,
`checkpoint_final.qinckpt` (the seed with the best evaluated return) and `summary.json`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from qin_env.bench.args import (
    SEED_MAX,
    Command,
    UsageError,
    add_overrides,
    add_scenario,
    add_seed,
    float_range,
    int_range,
    scenario_overrides,
)
from qin_env.bench.io import save_figure, write_atomic, write_json, write_text

AGENTS = ("vqc-ppo", "mlp-ppo")
ALGORITHMS = ("ippo", "mappo", "reinforce")  # qin_env.agents.ppo.ALGORITHMS, without importing the trainer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `qin train`."""
    add_scenario(parser)
    parser.add_argument("--agent", default="vqc-ppo", choices=AGENTS, help="the policy network: circuit or MLP")
    parser.add_argument("--steps", type=int_range("--steps", 1), default=200_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int_range("--seeds", 1), default=3, help="seeds trained at once (vmap)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--algorithm", default="ippo", choices=ALGORITHMS,
                        help="ippo: PPO, each agent its own critic; mappo: a centralised critic on the global "
                             "state; reinforce: policy gradient without a critic")
    parser.add_argument("--eval-episodes", type=int_range("--eval-episodes", 1), default=16,
                        help="evaluation episodes per seed and per reference agent")
    parser.add_argument("--eval-seed", type=int_range("--eval-seed", 0, SEED_MAX), default=1000,
                        help="seed of the evaluation episodes (the same for every trained seed and reference; "
                             "`qin evaluate --seed` with it replays them)")
    add_seed(parser, "base seed; seed k trains on split k")
    parser.add_argument("--hidden", type=int_range("--hidden", 1), nargs="+", default=None, metavar="WIDTH",
                        help="mlp-ppo hidden layer sizes (default: 64 64, SB3's; 6 gives a VQC-sized network)")
    parser.add_argument("--lr", type=float_range("--lr", 0.0, 1.0), default=None,
                        help="learning rate (default: 3e-3 for vqc-ppo, 3e-4 for mlp-ppo)")
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    """`qin train`: check the overrides, then train (see `train_command`)."""
    return train_command(args, scenario_overrides(args.set, [args.scenario]))


def ppo_config(scenario: str, agent: str, steps: int, algorithm: str, overrides: Mapping[str, Any],
               **kwargs: Any) -> Any:
    """The PPOConfig behind `qin train`'s flags (num_envs x num_steps rollouts, all team agents learn)."""
    from qin_env.agents.ppo import PPOConfig

    network = agent.removesuffix("-ppo")
    # circuit parameters are angles: they train well an order of magnitude faster than MLP weights
    defaults = {"num_envs": 32, "num_steps": 100, "lr": 3e-3 if network == "vqc" else 3e-4}
    defaults.update(kwargs)
    batch = defaults["num_envs"] * defaults["num_steps"]
    if steps < batch:
        raise ValueError(f"--steps={steps} is below one rollout of {batch} env steps "
                         f"({defaults['num_envs']} envs x {defaults['num_steps']} steps)")
    return PPOConfig(scenario=scenario, overrides=tuple(sorted(overrides.items())), network=network,
                     algorithm=algorithm, total_timesteps=steps, **defaults)


def metrics_rows(metrics: Mapping[str, np.ndarray], steps_per_update: int) -> list[dict[str, Any]]:
    """Per-update, per-seed rows of the metrics returned by `train` (arrays [seeds, updates])."""
    names = sorted(metrics)
    n_seeds, n_updates = np.shape(metrics[names[0]])[:2]
    rows = []
    for seed in range(n_seeds):
        for update in range(n_updates):
            row = {"seed": seed, "update": update, "env_steps": (update + 1) * steps_per_update}
            row.update({name: float(np.asarray(metrics[name])[seed, update]) for name in names})
            rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Atomically write rows as CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_tensorboard(folder: Path, rows: list[dict[str, Any]]) -> bool:
    """Also log the metrics for TensorBoard when it is installed (one run per seed); False otherwise."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.csv holds the same numbers
        return False
    writers: dict[int, Any] = {}
    for row in rows:
        writer = writers.setdefault(row["seed"], SummaryWriter(str(folder / f"seed{row['seed']}")))
        for name, value in row.items():
            if name not in ("seed", "update", "env_steps") and np.isfinite(value):
                writer.add_scalar(name, value, row["env_steps"])
    for writer in writers.values():
        writer.close()
    return True


def plot_learning_curve(path: Path, returns: np.ndarray, steps_per_update: int, references: Mapping[str, float],
                        title: str) -> Path:
    """Mean episode return over seeds with its min-max spread, and baseline reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = (np.arange(returns.shape[1]) + 1) * steps_per_update
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    with warnings.catch_warnings():  # updates before the first finished episode are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(returns, axis=0)
        low, high = np.nanmin(returns, axis=0), np.nanmax(returns, axis=0)
    ax.plot(x, mean, color="tab:purple", label=f"mean of {returns.shape[0]} seeds")
    ax.fill_between(x, low, high, color="tab:purple", alpha=0.2, label="min-max over seeds")
    styles = {"heuristic": ("tab:green", "--"), "random": ("tab:red", ":")}
    for name, value in references.items():
        color, style = styles.get(name, ("grey", "-."))
        ax.axhline(value, color=color, linestyle=style, label=f"{name} ({value:.1f})")
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("episode return (true team reward)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def train_command(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Train, evaluate each seed against the baselines, write metrics, curve, checkpoints and summary."""
    from qin_env import agents
    from qin_env.agents.checkpoint import FINAL_CHECKPOINT
    from qin_env.agents.ppo import make_policy_fn, make_train, network_param_count
    from qin_env.agents.trained import save_trained
    from qin_env.bench.evaluate import evaluate_agent
    from qin_env.params import load_params

    try:
        extra = {"hidden": tuple(args.hidden)} if getattr(args, "hidden", None) else {}
        if getattr(args, "lr", None) is not None:
            extra["lr"] = args.lr
        config = ppo_config(args.scenario, args.agent, args.steps, args.algorithm, overrides, **extra)
        env_params = load_params(args.scenario, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None  # a --steps below one rollout
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    steps_per_update = config.num_envs * config.num_steps
    n_updates = config.total_timesteps // steps_per_update
    print(f"training {args.agent} ({config.algorithm}) on {args.scenario}: {args.seeds} seeds x {n_updates} updates "
          f"x {steps_per_update} env steps; {network_param_count(config)} parameters per agent network")
    bar = tqdm(total=n_updates * args.seeds, desc="updates (all seeds)", unit="update")
    start = time.perf_counter()
    train = jax.jit(jax.vmap(make_train(config, progress=lambda: bar.update(1))))
    result = jax.block_until_ready(train(jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)))
    bar.close()
    train_s = time.perf_counter() - start
    metrics = {k: np.asarray(v) for k, v in result["metrics"].items()}
    rows = metrics_rows(metrics, steps_per_update)
    write_csv(out / "metrics.csv", rows)
    write_tensorboard(out / "tensorboard", rows)

    references = {name: evaluate_agent(agents.make(name, scenario=args.scenario, overrides=overrides),
                                       args.scenario, overrides, args.eval_episodes, args.eval_seed)["mean_return"]
                  for name in ("random", "heuristic")}
    seeds = []
    for seed in tqdm(range(args.seeds), desc="evaluating seeds"):
        params = jax.tree.map(lambda x, s=seed: x[s], result["params"])
        policy = make_policy_fn(config, params)
        agent = agents.baselines.PolicyAgent(args.agent, policy, env_params)
        evaluation = evaluate_agent(agent, args.scenario, overrides, args.eval_episodes, args.eval_seed)
        path = save_trained(out / f"checkpoint_seed{seed}.qinckpt", config, params,
                            {"seed": seed, "mean_return": evaluation["mean_return"]})
        seeds.append({**evaluation, "seed": seed, "eval_seed": args.eval_seed, "checkpoint": path.name})
    best = max(seeds, key=lambda s: s["mean_return"])
    write_atomic(out / FINAL_CHECKPOINT, (out / best["checkpoint"]).read_bytes())
    curve = plot_learning_curve(out / "learning_curve.png", metrics["episode_return"], steps_per_update, references,
                                f"{args.agent} on {args.scenario} ({config.algorithm})")
    summary = {
        "agent": args.agent, "scenario": args.scenario, "overrides": overrides, "algorithm": config.algorithm,
        "steps_per_seed": n_updates * steps_per_update, "seeds": args.seeds, "train_seconds": train_s,
        "env_steps_per_second": n_updates * steps_per_update * args.seeds / train_s,
        "parameters_per_agent_network": network_param_count(config),
        "references": references, "per_seed": seeds, "final_checkpoint_seed": best["seed"],
        "evaluation": {"seed": args.eval_seed, "episodes": args.eval_episodes,
                       "replay": f"qin evaluate --agent {args.agent} --scenario {args.scenario} --checkpoint {out} "
                                 f"--seed {args.eval_seed} --episodes {args.eval_episodes}"
                                 + "".join(f" --set {k}={json.dumps(v)}" for k, v in sorted(overrides.items()))},
        "mean_return": float(np.mean([s["mean_return"] for s in seeds])),
    }
    write_json(out / "summary.json", summary)
    print(f"trained in {train_s:.0f} s ({summary['env_steps_per_second']:,.0f} env steps/s); "
          f"mean return over seeds {summary['mean_return']:.2f} (random {references['random']:.2f}, "
          f"heuristic {references['heuristic']:.2f})")
    print(f"metrics: {out / 'metrics.csv'}\nlearning curve: {curve}\n"
          f"final checkpoint: {out / FINAL_CHECKPOINT}")
    return 0


COMMAND = Command("train", "train a PPO agent (vqc-ppo or mlp-ppo)", add_arguments, run,
                  description=__doc__)
