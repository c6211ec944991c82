"""`qin irl`: learn the orchestrator's reward from expert demonstrations, train on it, and measure both.

    qin irl --scenario metro_qkd --demos 20 --seeds 5 --reward-model both --out runs/irl --json irl.json

Writes into `--out`: `demonstrations.qinckpt` (the dataset), per reward model and seed the learned
reward (`reward_<model>_seed<k>.qinckpt`), the orchestrator trained on learned rewards alone inside
the AIRL loop (`orchestrator_<model>_seed<k>.qinckpt`) and the one trained afresh on the frozen reward
(`orchestrator_retrained_<model>_seed<k>.qinckpt`; both load with `qin_env.agents.trained.load_trained`), the expert
(`expert.qinckpt` when it is a PPO policy), `reward_vs_true_<model>.png` (learned against true
reward on held-out transitions) and the JSON also written to `--json`. Method and numbers: docs/irl.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qin_env.bench.args import (
    Command,
    UsageError,
    add_json,
    add_overrides,
    add_scenario,
    add_seed,
    command_parser,
    int_range,
    main_of,
    scenario_overrides,
)
from qin_env.bench.io import save_figure, write_json

QUICK = {"expert_steps": 16_384, "irl_steps": 16_384, "policy_steps": 16_384, "num_envs": 16, "num_steps": 64,
         "eval_episodes": 8, "heldout_episodes": 4}
FULL = {"expert_steps": 300_000, "irl_steps": 300_000, "policy_steps": 200_000, "num_envs": 64, "num_steps": 128,
        "eval_episodes": 32, "heldout_episodes": 10}


# --reward-loss -> (IRLConfig.rank_weight, IRLConfig.adversarial_g)
REWARD_LOSSES = {"ranking": (1.0, False), "airl": (0.0, True), "airl+ranking": (1.0, True)}


DESCRIPTION = """\
Inverse RL for the orchestrator: AIRL with a variational-circuit (or MLP) reward, then PPO on
the learned reward alone (docs/irl.md)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `qin irl`."""
    add_scenario(p)
    p.add_argument("--demos", type=int_range("--demos", 1, 10_000), default=20, help="expert demonstration episodes")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_json(p)
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of the whole pipeline")
    p.add_argument("--seeds", type=int_range("--seeds", 1, 64), default=1, help="IRL seeds trained at once (vmap)")
    add_seed(p)
    p.add_argument("--reward-model", choices=["vqc", "mlp", "both"], default="vqc",
                   help="the learned reward's network: variational circuit, MLP, or one run of each")
    p.add_argument("--expert-steps", type=int_range("--expert-steps", 0, 100_000_000), default=None,
                   help="PPO steps of the true-reward expert, 0: the heuristic is the expert "
                        f"(default: {FULL['expert_steps']:,}; with --quick {QUICK['expert_steps']:,})")
    p.add_argument("--irl-steps", type=int_range("--irl-steps", 1, 100_000_000), default=None,
                   help="env steps per seed of the policy inside the AIRL loop "
                        f"(default: {FULL['irl_steps']:,}; with --quick {QUICK['irl_steps']:,})")
    p.add_argument("--policy-steps", type=int_range("--policy-steps", 1, 100_000_000), default=None,
                   help="env steps per seed of PPO on the frozen learned reward "
                        f"(default: {FULL['policy_steps']:,}; with --quick {QUICK['policy_steps']:,})")
    p.add_argument("--demo-actions", choices=["greedy", "sampled"], default="greedy",
                   help="the PPO expert's demonstrated actions: its most likely ones, or samples of its policy "
                        "(graded, Boltzmann-like demonstrations; the heuristic expert is deterministic either way)")
    p.add_argument("--negatives", choices=["random", "noisy-expert", "none"], default="random",
                   help="extra non-expert samples for the discriminator: random-orchestrator rollouts, expert "
                        "rollouts with 25/50/75/100 %% random orchestrator steps (D-REX), or none")
    p.add_argument("--reward-loss", choices=list(REWARD_LOSSES), default="ranking",
                   help="what trains the reward model g: the D-REX ranking of the demonstrations above --demos expert "
                        "rollouts at each of 25/50/75/100 %% random orchestrator steps (AIRL's discriminator then "
                        "trains only the shaping), AIRL's discriminator alone, or both (docs/irl.md)")
    add_overrides(p)


def build_parser(prog: str = "qin irl") -> argparse.ArgumentParser:
    """The arguments of `qin irl`."""
    return command_parser(COMMAND, prog)


def iqm(values: Sequence[float]) -> float:
    """Inter-quartile mean: the mean after trimming a quarter from each end (Agarwal et al., NeurIPS 2021)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, np.float64), 0.25))


def plot_rewards(path: Path, agreement: dict[str, Any], title: str) -> Path:
    """Learned against true reward on held-out transitions: canonicalised (what EPIC compares) and raw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = agreement["plot"]
    expert = np.asarray(data["from_expert"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    panels = [("canonical_true", "canonical_learned", "canonicalised (EPIC)", agreement["epic_distance"]),
              ("true", "learned", "raw: true R(s,a,s') vs learned f(s,s')", agreement["reward_pearson"])]
    for ax, (xk, yk, name, value) in zip(axes, panels, strict=True):
        x, y = np.asarray(data[xk]), np.asarray(data[yk])
        ax.scatter(x[~expert], y[~expert], s=4, alpha=0.4, color="tab:red", label="random orchestrator")
        ax.scatter(x[expert], y[expert], s=4, alpha=0.4, color="tab:blue", label="expert")
        label = "EPIC distance" if xk.startswith("canonical") else "Pearson"
        ax.set_title(f"{name}\n{label} {value:.3f}", fontsize=9)
        ax.set_xlabel("true reward")
        ax.set_ylabel("learned reward")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, markerscale=3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    """Run the IRL experiment and write its checkpoints, plots and JSON; returns the exit status."""
    prog = args.prog
    overrides = scenario_overrides(args.set, [args.scenario])
    rank_weight, adversarial_g = REWARD_LOSSES[args.reward_loss]
    budget = dict(QUICK if args.quick else FULL)
    for flag in ("expert_steps", "irl_steps", "policy_steps"):
        if getattr(args, flag) is not None:
            budget[flag] = getattr(args, flag)
    rollout = budget["num_envs"] * budget["num_steps"]
    for flag in ("irl_steps", "policy_steps"):
        if budget[flag] < rollout:
            raise UsageError(f"--{flag.replace('_', '-')}={budget[flag]} is below one rollout of {rollout} "
                             f"env steps ({budget['num_envs']} envs x {budget['num_steps']} steps)")

    import jax
    from tqdm import tqdm

    from qin_env.agents.checkpoint import save_checkpoint
    from qin_env.agents.irl import IRLConfig, evaluate_seeds, reward_param_counts
    from qin_env.agents.irl_data import collect_demonstrations, save_demonstrations
    from qin_env.agents.irl_pipeline import (
        choose_expert,
        concatenate,
        noise_ranked_rollouts,
        random_orchestrator,
        reward_agreement,
        run_irl,
    )
    from qin_env.agents.ppo import evaluate_policy, make_policy_fn
    from qin_env.agents.trained import save_trained

    try:
        base = IRLConfig(scenario=args.scenario, overrides=tuple(sorted(overrides.items())),
                         irl_timesteps=budget["irl_steps"], policy_timesteps=budget["policy_steps"],
                         num_envs=budget["num_envs"], num_steps=budget["num_steps"], rank_weight=rank_weight,
                         adversarial_g=adversarial_g)
        base.env_params()
    except ValueError as err:
        raise SystemExit(f"{prog}: {err}") from None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    bars: list[Any] = []

    def progress(desc: str, total: int):
        if bars:
            bars[-1].close()  # stages run one after another
        bar = tqdm(total=total, desc=desc, unit="update")
        bars.append(bar)
        return lambda: bar.update(1)

    start = time.perf_counter()
    expert = choose_expert(base, budget["expert_steps"], args.seed, budget["eval_episodes"], progress)
    if expert.params is not None:
        save_trained(out / "expert.qinckpt", base.ppo_config(budget["expert_steps"]), expert.params,
                     {"mean_return": expert.mean_return})
    eval_key = 10_000 + args.seed
    random_return = evaluate_policy(random_orchestrator, args.scenario, overrides, budget["eval_episodes"],
                                    eval_key)["mean_return"]
    print(f"expert: {expert.name} (true return {expert.mean_return:.2f}; candidates {expert.candidates}); "
          f"random orchestrator {random_return:.2f}")
    demo_policy, demo_name = expert.policy, expert.name
    if args.demo_actions == "sampled" and expert.params is not None:
        demo_policy = make_policy_fn(base.ppo_config(budget["expert_steps"]), expert.params, greedy=False)
        demo_name = f"{expert.name}-sampled"
    demos = collect_demonstrations(demo_policy, args.scenario, overrides, args.demos, args.seed + 1, demo_name)
    save_demonstrations(out / "demonstrations.qinckpt", demos)
    n_held = budget["heldout_episodes"]
    heldout = concatenate([
        collect_demonstrations(expert.policy, args.scenario, overrides, n_held, args.seed + 2, expert.name),
        collect_demonstrations(random_orchestrator, args.scenario, overrides, n_held, args.seed + 3, "random")])

    # extra discriminator negatives (observations and actions, never rewards), distinct from the held-out episodes
    negatives = None
    if args.negatives == "random":
        negatives = collect_demonstrations(random_orchestrator, args.scenario, overrides, args.demos, args.seed + 4,
                                           "random")
    elif args.negatives == "noisy-expert":
        per_level = max(1, args.demos // 4)
        negatives = concatenate(noise_ranked_rollouts(expert.policy, demos, per_level, args.seed + 40)[1:])
    ranked = noise_ranked_rollouts(expert.policy, demos, args.demos, args.seed + 50) if rank_weight > 0 else None
    models = ["vqc", "mlp"] if args.reward_model == "both" else [args.reward_model]
    results: dict[str, Any] = {}
    span = expert.mean_return - random_return
    for kind in models:
        config = dataclasses.replace(base, reward_model=kind)
        t0 = time.perf_counter()
        run = run_irl(config, demos, args.seeds, args.seed, negatives, progress, ranked)
        train_s = time.perf_counter() - t0
        returns = evaluate_seeds(run["final_config"], run["policy_params"], budget["eval_episodes"], eval_key)
        loop_returns = evaluate_seeds(run["final_config"], run["loop_policy_params"], budget["eval_episodes"],
                                      eval_key)
        per_seed = []
        agreements = []
        for s in range(args.seeds):
            reward_params = jax.tree.map(lambda x, s=s: np.asarray(x[s]), run["reward_params"])
            agreement = reward_agreement(config, reward_params, heldout, n_held, args.seed + s)
            agreements.append(agreement)
            model_config = config.model().config
            save_checkpoint(out / f"reward_{kind}_seed{s}.qinckpt", reward_params,
                            {"kind": f"irl-reward-{kind}", "scenario": demos.scenario, "overrides": overrides,
                             "network": model_config, "gamma": config.gamma, "seed": args.seed + s,
                             "form": "f(s,s') = g(s') + gamma h(s') - h(s); c: the discriminator's offset"})
            for name, params, value, how in (
                    ("orchestrator", run["loop_policy_params"], loop_returns[s], "the AIRL loop's learned rewards"),
                    ("orchestrator_retrained", run["policy_params"], returns[s], "the frozen final learned reward")):
                save_trained(out / f"{name}_{kind}_seed{s}.qinckpt", run["final_config"],
                             jax.tree.map(lambda x, s=s: np.asarray(x[s]), params),
                             {"trained_on": f"{how} ({kind}, reward_{kind}_seed{s}.qinckpt)",
                              "mean_return": float(value)})
            per_seed.append({
                "seed": args.seed + s, "true_return": float(loop_returns[s]),
                "normalized_return": float((loop_returns[s] - random_return) / span),
                "retrained_true_return": float(returns[s]),
                "retrained_normalized_return": float((returns[s] - random_return) / span),
                "epic_distance": agreement["epic_distance"], "reward_pearson": agreement["reward_pearson"],
                "canonical_pearson": agreement["canonical_pearson"],
                "final_disc_accuracy": float(run["loop_metrics"]["disc_accuracy"][s, -1])})
        median_seed = int(np.argsort([a["epic_distance"] for a in agreements])[len(agreements) // 2])
        plot = plot_rewards(out / f"reward_vs_true_{kind}.png", agreements[median_seed],
                            f"{kind} reward on {demos.scenario}, held-out transitions (seed {args.seed + median_seed})")
        counts = reward_param_counts(config)
        results[kind] = {
            "normalized_return": iqm([p["normalized_return"] for p in per_seed]),
            "epic_distance": iqm([p["epic_distance"] for p in per_seed]),
            "reward_pearson": iqm([p["reward_pearson"] for p in per_seed]),
            "retrained_normalized_return": iqm([p["retrained_normalized_return"] for p in per_seed]),
            "reward_model_params": counts["reward_model"], "potential_params": counts["potential"],
            "offset_params": counts["offset"],
            "policy_params": counts["policy"], "train_seconds": train_s, "per_seed": per_seed, "plot": plot.name,
        }
        print(f"{kind} reward: normalized return IQM {results[kind]['normalized_return']:.3f} (retrained on the "
              f"frozen reward: {results[kind]['retrained_normalized_return']:.3f}), "
              f"EPIC distance IQM {results[kind]['epic_distance']:.3f}, "
              f"Pearson IQM {results[kind]['reward_pearson']:.3f} ({args.seeds} seeds, {train_s:.0f} s)")
    for bar in bars:
        bar.close()
    primary = results[models[0]]
    summary = {
        "scenario": demos.scenario, "overrides": overrides, "demos": args.demos, "seeds": args.seeds,
        "quick": args.quick, "budget": budget, "negatives": args.negatives, "reward_loss": args.reward_loss,
        "demo_actions": args.demo_actions,
        "demo_return": float(demos.episode_returns().mean()), "expert": expert.name,
        "expert_candidates": expert.candidates,
        "expert_return": expert.mean_return, "random_return": random_return,
        "aggregate": "IQM over seeds (trimmed mean, a quarter cut at each end)",
        "normalized_return_of": "the orchestrator trained by PPO inside the AIRL loop on the learned reward only; "
                                "retrained_normalized_return: a fresh PPO orchestrator on the frozen final reward",
        "reward_model": models[0], "normalized_return": primary["normalized_return"],
        "retrained_normalized_return": primary["retrained_normalized_return"],
        "epic_distance": primary["epic_distance"], "reward_pearson": primary["reward_pearson"],
        "reward_model_params": primary["reward_model_params"], "policy_params": primary["policy_params"],
        "reward_models": results, "seconds": time.perf_counter() - start,
    }
    write_json(out / "irl.json", summary)
    if args.json is not None:
        write_json(args.json, summary)
    print(f"wrote {out} ({summary['seconds']:.0f} s)")
    return 0


COMMAND = Command("irl", "inverse RL: learn the reward from demonstrations, then train on it", add_arguments, run,
                  description=DESCRIPTION)


def main(argv: Sequence[str] | None = None, prog: str = "qin irl") -> int:
    """`qin irl` as a function, and `python -m qin_env.bench.irl`; returns the exit status."""
    return main_of(COMMAND, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m qin_env.bench.irl"))
