"""`qin train`: PPO (VQC or MLP) on a scenario, several seeds at once, with everything a user looks at.

Writes to the output folder: `metrics.csv` (one row per update and seed), `learning_curve.png`
(mean and spread over seeds, random and heuristic as reference lines), one checkpoint per seed,
`checkpoint_final.qinckpt` (the seed with the best evaluated return), `summary.json`, and
`train_state.qinckpt`, the state between two updates (`--checkpoint-every`).

A run holds an exclusive lock on its folder (`OUT/.lock`) from start to end, writes every file
atomically, refuses a folder that is not empty unless told `--resume` (continue the run in it, to
the result an uninterrupted run gives, bit for bit) or `--overwrite` (remove its files first).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

import qin_env
from qin_env.agents.checkpoint import FINAL_CHECKPOINT
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
from qin_env.bench.io import (
    LOCK_FILE,
    exclusive_folder,
    is_temporary,
    save_figure,
    write_atomic,
    write_json,
    write_text,
)
from qin_env.bench.timing import git_commit, versions
from qin_env.version import ENV_VERSION

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
    parser.add_argument("--checkpoint-every", type=int_range("--checkpoint-every", 0), default=10, metavar="N",
                        help="save the training state every N updates and after the last one (0: after the last "
                             "only); --resume continues from the latest, and may change N: it changes no result")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the run in --out from its training state, with the flags it was started with "
                           "(a finished run is left as it is)")
    mode.add_argument("--overwrite", action="store_true",
                      help="remove a previous run's files from --out first (files of other programs are kept)")
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
    """Also log the metrics for TensorBoard when it is installed (one writer per seed, closed); False otherwise."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.csv holds the same numbers
        print("tensorboard is not installed: no TensorBoard events (metrics.csv holds the same numbers; "
              "pip install 'qin-env[tensorboard]' to get them)")
        return False
    writers: dict[int, Any] = {}
    for row in rows:
        if row["seed"] not in writers:
            writers[row["seed"]] = SummaryWriter(str(folder / f"seed{row['seed']}"))
        writer = writers[row["seed"]]
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


@dataclasses.dataclass
class RunState:
    """Where a run stands between two updates: the seeds' runner and update keys, the metrics so far, the time spent.

    Saved to `train_state.qinckpt` with the checkpoint format (arrays and JSON, no pickle): the
    runner (network params, optimiser state, env states and observations), every update's key, one
    metrics array [seeds, updates done] per name, and in the metadata the update reached, the
    run's flags (`run_record`) and its PPOConfig.
    """

    runner: Any
    """`qin_env.agents.ppo.RunnerState`, leaves [seeds, ...]."""
    keys: np.ndarray
    """[seeds, updates, ...]: the key of every update."""
    history: list[dict[str, np.ndarray]]
    """Metrics of each update done, [seeds] per name."""
    train_s: float
    """Seconds spent training so far, over every run that worked on it."""

    @property
    def updates(self) -> int:
        """Updates done."""
        return len(self.history)

    def metrics(self) -> dict[str, np.ndarray]:
        """Every metric so far as [seeds, updates done]."""
        return {name: np.stack([h[name] for h in self.history], axis=1) for name in self.history[0]}


STATE_FILE = "train_state.qinckpt"
STATE_KIND = "qin-train-state"
_RUN_FILES = ("metrics.csv", "learning_curve.png", "summary.json", STATE_FILE, FINAL_CHECKPOINT, "tensorboard")
_SEED_CHECKPOINT = re.compile(r"checkpoint_seed\d+\.qinckpt")
_FLAGS = {"overrides": "--set"}  # record fields whose flag is not --<field>


def _is_run_file(name: str) -> bool:
    return name in _RUN_FILES or bool(_SEED_CHECKPOINT.fullmatch(name))


def run_record(args: argparse.Namespace, config: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The flags a run's result depends on, as JSON: a `--resume` must give the same ones."""
    from qin_env.params import config_hash, load_config

    return {"scenario": args.scenario, "config_hash": config_hash(load_config(args.scenario, overrides)),
            "agent": args.agent, "algorithm": args.algorithm, "steps": args.steps, "seeds": args.seeds,
            "seed": args.seed, "overrides": json.loads(json.dumps(overrides)), "lr": config.lr,
            "hidden": list(config.hidden), "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed}


def _check_same_run(out: Path, metadata: Mapping[str, Any], record: Mapping[str, Any], ppo_config: Mapping[str, Any]
                    ) -> None:
    """Refuse a `--resume` whose flags (or the config they give) differ from the recorded run's, naming each."""
    if metadata.get("kind") != STATE_KIND or not isinstance(metadata.get("run"), dict):
        raise UsageError(f"--resume: {out / STATE_FILE} is not a qin train state (kind {metadata.get('kind')!r})")
    recorded = metadata["run"]
    problems = [f"{_FLAGS.get(field, '--' + field.replace('_', '-'))} was {recorded.get(field)!r}, now {value!r}"
                for field, value in record.items() if field != "config_hash" and recorded.get(field) != value]
    if not problems and recorded.get("config_hash") != record["config_hash"]:
        problems = [f"--scenario {record['scenario']} hashes to {record['config_hash']}, not "
                    f"{recorded.get('config_hash')} as when the run started (its file was edited)"]
    if not problems:
        problems = [f"PPOConfig.{field} was {value!r}, now {ppo_config.get(field)!r} (another qin-env version?)"
                    for field, value in (metadata.get("ppo_config") or {}).items() if ppo_config.get(field) != value]
    if problems:
        raise UsageError(f"--resume: {out} holds a run with other flags: {'; '.join(problems)}. Resume with the "
                         "recorded flags, or start again with --overwrite")


def _prepare_folder(out: Path, args: argparse.Namespace, record: dict[str, Any], ppo_config: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """Apply --resume / --overwrite to the locked `out`; the metadata of the state to resume from, if any."""
    from qin_env.agents.checkpoint import CheckpointError, load_metadata

    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    leftovers = [name for name in present if is_temporary(name)]  # writes a killed run never finished
    if getattr(args, "overwrite", False):
        removed = [name for name in present if _is_run_file(name) or name in leftovers]
        for name in removed:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
            else:
                (out / name).unlink()
        if removed:
            print(f"--overwrite: removed the previous run's {', '.join(removed)} from {out}")
        return None
    if not getattr(args, "resume", False):
        if present:
            shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
            raise UsageError(f"--out {out} is not empty (it holds {shown}); pass --resume to continue the run in "
                             "it, --overwrite to replace it, or choose an empty folder")
        return None
    for name in leftovers:
        (out / name).unlink()
    if not (out / STATE_FILE).is_file():
        if others := [name for name in present if name not in leftovers]:
            raise UsageError(f"--resume: {out} holds no training state {STATE_FILE} to resume from (it holds "
                             f"{', '.join(others[:5])}); start again with --overwrite")
        print(f"--resume: nothing to resume in {out} yet; starting the run")
        return None
    try:
        metadata = load_metadata(out / STATE_FILE)
    except CheckpointError as err:
        raise UsageError(f"--resume: {err}") from None
    _check_same_run(out, metadata, record, ppo_config)
    return metadata


def _state_template(seeds_trainer: Any, seed_keys: jax.Array, updates: int) -> dict[str, Any]:
    """Shapes and dtypes of a saved state after `updates` updates (the `like=` of its loader)."""
    runner, keys = jax.eval_shape(seeds_trainer.start, seed_keys)
    one_key = jax.ShapeDtypeStruct((keys.shape[0], *keys.shape[2:]), keys.dtype)
    _, metrics = jax.eval_shape(seeds_trainer.update, runner, one_key)
    return {"runner": runner, "keys": keys,
            "metrics": {name: jax.ShapeDtypeStruct((*m.shape, updates), m.dtype) for name, m in metrics.items()}}


def save_state(out: Path, state: RunState, config: Any, record: Mapping[str, Any]) -> Path:
    """Atomically save where the run stands (`RunState`) and the metrics rows so far."""
    from qin_env.agents.checkpoint import save_checkpoint
    from qin_env.agents.trained import config_to_json

    tree = {"runner": jax.device_get(state.runner), "keys": state.keys, "metrics": state.metrics()}
    metadata = {"kind": STATE_KIND, "scenario": record["scenario"], "overrides": record["overrides"],
                "run": dict(record), "ppo_config": config_to_json(config), "update": state.updates,
                "train_seconds": state.train_s}
    path = save_checkpoint(out / STATE_FILE, tree, metadata)
    write_csv(out / "metrics.csv", metrics_rows(state.metrics(), config.num_envs * config.num_steps))
    return path


def load_state(out: Path, metadata: Mapping[str, Any], seeds_trainer: Any, seed_keys: jax.Array) -> RunState:
    """The `RunState` saved in `out`, every array checked against the shapes this run's config gives."""
    from qin_env.agents.checkpoint import CheckpointError, load_checkpoint

    updates = metadata.get("update")
    if type(updates) is not int or not 1 <= updates <= seeds_trainer.num_updates:
        raise UsageError(f"--resume: {out / STATE_FILE} records update {updates!r} of {seeds_trainer.num_updates}")
    try:
        tree, _ = load_checkpoint(out / STATE_FILE, expected={"kind": STATE_KIND},
                                  like=_state_template(seeds_trainer, seed_keys, updates))
    except CheckpointError as err:
        raise UsageError(f"--resume: {err}") from None
    history = [{name: m[:, u] for name, m in tree["metrics"].items()} for u in range(updates)]
    return RunState(tree["runner"], tree["keys"], history, float(metadata.get("train_seconds", 0.0)))


def train_command(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Train (or resume), evaluate each seed against the baselines, write metrics, curve, checkpoints and summary."""
    from qin_env.agents.trained import config_to_json
    from qin_env.params import load_params

    try:
        extra = {"hidden": tuple(args.hidden)} if getattr(args, "hidden", None) else {}
        if getattr(args, "lr", None) is not None:
            extra["lr"] = args.lr
        config = ppo_config(args.scenario, args.agent, args.steps, args.algorithm, overrides, **extra)
        env_params = load_params(args.scenario, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None  # a --steps below one rollout
    record = run_record(args, config, overrides)
    with exclusive_folder(args.out):
        resumed = _prepare_folder(args.out, args, record, json.loads(json.dumps(config_to_json(config))))
        finished = config.total_timesteps // (config.num_envs * config.num_steps)
        if resumed is not None and resumed["update"] == finished and (args.out / "summary.json").is_file():
            print(f"{args.out}: the run is complete ({resumed['update']} updates, summary.json written); "
                  "nothing to resume")
            return 0
        return _train_and_report(args, overrides, env_params, config, record, resumed)


def _train_and_report(args: argparse.Namespace, overrides: dict[str, Any], env_params: Any, config: Any,
                      record: dict[str, Any], resumed: Mapping[str, Any] | None) -> int:
    """The run itself, in the locked output folder: train from scratch or from `resumed`, then evaluate and write."""
    from qin_env import agents
    from qin_env.agents.checkpoint import package_versions
    from qin_env.agents.ppo import make_policy_fn, make_seeds_trainer, network_param_count
    from qin_env.agents.trained import save_trained
    from qin_env.bench.evaluate import evaluate_agent

    out: Path = args.out
    steps_per_update = config.num_envs * config.num_steps
    seeds_trainer = make_seeds_trainer(config)
    n_updates = seeds_trainer.num_updates
    seed_keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    print(f"training {args.agent} ({config.algorithm}) on {args.scenario}: {args.seeds} seeds x {n_updates} updates "
          f"x {steps_per_update} env steps; {network_param_count(config)} parameters per agent network")
    start = time.perf_counter()
    if resumed is None:
        runner, keys = seeds_trainer.start(seed_keys)
        state = RunState(runner, np.asarray(keys), [], 0.0)
    else:
        state = load_state(out, resumed, seeds_trainer, seed_keys)
        print(f"resuming {out} at update {state.updates} of {n_updates}")
        if (saved := resumed.get("versions")) != (now := package_versions()):
            print(f"note: the run started under {saved} and resumes under {now}; its remaining updates may "
                  "differ in the last bits from an uninterrupted run's")
    prior_s = state.train_s
    bar = tqdm(total=n_updates * args.seeds, initial=state.updates * args.seeds, desc="updates (all seeds)",
               unit="update")
    every = getattr(args, "checkpoint_every", 10)
    for update in range(state.updates, n_updates):
        state.runner, metrics = seeds_trainer.update(state.runner, state.keys[:, update])
        state.history.append(jax.device_get(metrics))
        bar.update(args.seeds)
        if update + 1 == n_updates or (every and (update + 1) % every == 0):
            state.train_s = prior_s + time.perf_counter() - start
            save_state(out, state, config, record)
    bar.close()
    train_s = state.train_s  # as of the last update, whose state is always saved
    metrics = state.metrics()
    rows = metrics_rows(metrics, steps_per_update)
    write_csv(out / "metrics.csv", rows)
    shutil.rmtree(out / "tensorboard", ignore_errors=True)  # a resumed run rewrites every event, not twice
    write_tensorboard(out / "tensorboard", rows)

    references = {name: evaluate_agent(agents.make(name, scenario=args.scenario, overrides=overrides),
                                       args.scenario, overrides, args.eval_episodes, args.eval_seed)["mean_return"]
                  for name in ("random", "heuristic")}
    seeds = []
    for seed in tqdm(range(args.seeds), desc="evaluating seeds"):
        params = jax.tree.map(lambda x, s=seed: x[s], state.runner.params)
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
    from qin_env.agents.trained import config_to_json

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
        # what reproduces the run: the training seed (seeds are its vmap splits), every hyperparameter, the
        # environment version and the packages and commit it ran on
        "training_seed": args.seed, "hyperparameters": config_to_json(config),
        "env_version": ENV_VERSION, "qin_env_version": qin_env.__version__, "git_commit": git_commit(),
        "versions": versions(),
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
