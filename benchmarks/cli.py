"""The `qin` command line: scenarios, evaluate, train, throughput, perf, leaderboard, irl.

    qin scenarios
    qin evaluate --scenario metro_qkd --agent heuristic --episodes 16 --json out.json
    qin evaluate --agent vqc-ppo --checkpoint runs/vqc      # a checkpoint file or a `qin train` folder
    qin train --scenario metro_qkd --agent vqc-ppo --steps 200000 --seeds 3 --out runs/vqc
    qin throughput --quick --json throughput.json
    qin perf --quick --json perf.json                    # every speed ratio in one run
    qin leaderboard --quick --out runs/leaderboard       # every agent on every scenario
    qin irl --scenario metro_qkd --demos 20 --out runs/irl --json irl.json

The last three own their arguments: `qin perf --help` shows them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FINAL_CHECKPOINT = "checkpoint_final.qinckpt"


def _positive_int(flag: str, low: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{flag}={value} is outside the allowed range [{low}, inf)")
        return value

    return parse


def scenario_arg(text: str) -> str:
    """argparse type of --scenario: a scenario name or a .toml path, else an error listing the names."""
    from qin_env.params import list_scenarios

    if text.endswith(".toml") or text in list_scenarios():
        return text
    raise argparse.ArgumentTypeError(f"--scenario={text!r} is unknown; valid scenarios: "
                                     f"{', '.join(list_scenarios())} (or a path to a .toml file)")


def _overrides(pairs: Sequence[str] | None) -> dict[str, Any]:
    """`--set key=value` pairs; values parsed as TOML scalars or arrays (`eve.links=[0, 2]`)."""
    import tomllib

    out: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise SystemExit(f"qin: --set {pair!r} must look like key=value (for example eve.mode=\"bursty\")")
        key, text = pair.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()  # a bare word: a string such as stationary
    return out


def resolve_checkpoint(path: str | None) -> str | None:
    """A checkpoint file, or the final checkpoint inside a `qin train` output folder."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        final = p / FINAL_CHECKPOINT
        if not final.exists():
            raise SystemExit(f"qin: --checkpoint folder {p} has no {FINAL_CHECKPOINT} (is it a `qin train` output?)")
        return str(final)
    if not p.exists():
        raise SystemExit(f"qin: --checkpoint {p} does not exist")
    return str(p)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """Print every scenario with its description."""
    from qin_env.params import list_scenarios

    for name, description in list_scenarios().items():
        print(f"{name:22s} {description}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate one agent and write the mean true return and KPIs."""
    import json

    from qin_env import agents
    from qin_env.bench.evaluate import evaluate_agent
    from qin_env.bench.io import write_json

    overrides = _overrides(args.set)
    try:
        agent = agents.make(args.agent, scenario=args.scenario, overrides=overrides,
                            checkpoint=resolve_checkpoint(args.checkpoint))
        result = evaluate_agent(agent, args.scenario, overrides, args.episodes, args.seed)
    except ValueError as err:
        raise SystemExit(f"qin evaluate: {err}") from None
    result["checkpoint"] = args.checkpoint
    result["overrides"] = overrides
    if args.json:
        write_json(args.json, result)
    shown = {k: result[k] for k in ("agent", "scenario", "episodes", "mean_return", "std_return")}
    print(json.dumps(shown | {"kpi": result["kpi"]}, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a PPO agent (VQC or MLP) and write metrics, the learning curve and checkpoints."""
    from qin_env.bench.train import train_command

    return train_command(args, _overrides(args.set))


def cmd_throughput(args: argparse.Namespace) -> int:
    """Environment steps per second against the mpe2 reference."""
    from qin_env.bench import env_throughput

    argv = (["--quick"] if args.quick else []) + (["--json", str(args.json)] if args.json else [])
    env_throughput.main(argv)
    return 0


# Subcommands that parse their own arguments: `qin NAME ...` calls `MODULE.main(argv, prog="qin NAME")`.
DELEGATED = {
    "perf": ("qin_env.bench.perf", "every speed ratio against its reference, in one run"),
    "leaderboard": ("qin_env.bench.leaderboard", "evaluate agents on scenarios: IQM with bootstrap CIs"),
    "irl": ("qin_env.bench.irl", "inverse RL: learn the reward from demonstrations, then train on it"),
}


def _delegate(command: str, argv: Sequence[str]) -> int:
    import importlib

    module = importlib.import_module(DELEGATED[command][0])
    return int(module.main(list(argv), prog=f"qin {command}") or 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="qin", description="QIN-Gym command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scenarios", help="list the scenarios")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("evaluate", help="evaluate an agent on the true team reward")
    p.add_argument("--scenario", type=scenario_arg, default="metro_qkd")
    p.add_argument("--agent", required=True, help="registered name (see agents.list_agents()) or module:Class")
    p.add_argument("--checkpoint", default=None, help="checkpoint file or `qin train` output folder")
    p.add_argument("--episodes", type=_positive_int("--episodes"), default=16)
    p.add_argument("--seed", type=_positive_int("--seed", 0), default=0)
    p.add_argument("--json", type=Path, default=None, help="write the result here (atomically)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="scenario override, repeatable")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a PPO agent (vqc-ppo or mlp-ppo)")
    p.add_argument("--scenario", type=scenario_arg, default="metro_qkd")
    p.add_argument("--agent", default="vqc-ppo", choices=["vqc-ppo", "mlp-ppo"])
    p.add_argument("--steps", type=_positive_int("--steps"), default=200_000, help="env steps per seed")
    p.add_argument("--seeds", type=_positive_int("--seeds"), default=3, help="seeds trained at once (vmap)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--algorithm", default="ippo", choices=["ippo", "mappo", "reinforce"])
    p.add_argument("--eval-episodes", type=_positive_int("--eval-episodes"), default=16)
    p.add_argument("--seed", type=_positive_int("--seed", 0), default=0, help="base seed; seed k trains on split k")
    p.add_argument("--hidden", type=_positive_int("--hidden"), nargs="+", default=None,
                   help="mlp-ppo hidden layer sizes (default 64 64, SB3's; 6 gives a VQC-sized network)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 3e-3 for vqc-ppo, 3e-4 for mlp-ppo)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="scenario override, repeatable")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("throughput", help="env steps/s against a PettingZoo reference")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=cmd_throughput)

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed in --help; main() hands its argv over
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qin` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
