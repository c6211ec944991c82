"""The `qin` command line: scenarios, evaluate, train, throughput, perf, leaderboard, irl.

    qin scenarios
    qin evaluate --scenario metro_qkd --agent heuristic --episodes 16 --json out.json
    qin evaluate --agent vqc-ppo --checkpoint runs/vqc      # a checkpoint file or a `qin train` folder
    qin train --scenario metro_qkd --agent vqc-ppo --steps 200000 --seeds 3 --out runs/vqc
    qin throughput --quick --json throughput.json
    qin perf --quick --json perf.json                    # every speed ratio in one run
    qin leaderboard --quick --out runs/leaderboard       # every agent on every scenario
    qin irl --scenario metro_qkd --demos 20 --out runs/irl --json irl.json
    qin --version

Each subcommand is a `qin_env.bench.args.Command` (`add_arguments(parser)` and `run(args)`);
`qin NAME --help` shows every flag with its default. Parsing imports no trainer: each `run`
imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import qin_env
from qin_env.bench import env_throughput, irl, perf, train
from qin_env.bench.args import (
    Command,
    HelpFormatter,
    add_command,
    add_json,
    add_overrides,
    add_scenario,
    add_seed,
    int_range,
    resolve_checkpoint,
    run_parsed,
    scenario_arg,
    scenario_overrides,
)
from qin_env.bench.leaderboard import command as leaderboard

__all__ = ["COMMANDS", "build_parser", "main", "scenario_arg"]


def _scenarios_arguments(parser: argparse.ArgumentParser) -> None:
    """`qin scenarios` takes no flags."""


def _scenarios(args: argparse.Namespace) -> int:
    """Print every scenario with its description."""
    from qin_env.params import list_scenarios

    for name, description in list_scenarios().items():
        print(f"{name:22s} {description}")
    return 0


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `qin evaluate`."""
    add_scenario(parser)
    parser.add_argument("--agent", required=True, help="registered name (see agents.list_agents()) or module:Class")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file or `qin train` output folder (default: none; agents that need one "
                             "say so)")
    parser.add_argument("--episodes", type=int_range("--episodes", 1), default=16, help="evaluation episodes")
    add_seed(parser, "evaluation seed; the episodes play its splits")
    add_json(parser, "write the result here, atomically")
    add_overrides(parser)


def _evaluate(args: argparse.Namespace) -> int:
    """Evaluate one agent and write the mean true return and KPIs."""
    overrides = scenario_overrides(args.set, [args.scenario])
    checkpoint = resolve_checkpoint(args.checkpoint)

    import json

    from qin_env import agents
    from qin_env.bench.evaluate import evaluate_agent
    from qin_env.bench.io import write_json

    try:
        agent = agents.make(args.agent, scenario=args.scenario, overrides=overrides, checkpoint=checkpoint)
        result = evaluate_agent(agent, args.scenario, overrides, args.episodes, args.seed)
    except (ValueError, LookupError) as err:  # LookupError: a reference agent's pin is missing or stale
        raise SystemExit(f"{args.prog}: {err}") from None
    result["checkpoint"] = args.checkpoint
    result["overrides"] = overrides
    if args.json:
        write_json(args.json, result)
    shown = {k: result[k] for k in ("agent", "scenario", "episodes", "mean_return", "std_return")}
    print(json.dumps(shown | {"kpi": result["kpi"]}, indent=2))
    return 0


SCENARIOS = Command("scenarios", "list the scenarios", _scenarios_arguments, _scenarios)
EVALUATE = Command("evaluate", "evaluate an agent on the true team reward", _evaluate_arguments, _evaluate)
COMMANDS: tuple[Command, ...] = (SCENARIOS, EVALUATE, train.COMMAND, env_throughput.COMMAND, perf.COMMAND,
                                 leaderboard.COMMAND, irl.COMMAND)


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="qin", description="QIN-Gym command line", formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"qin {qin_env.__version__}",
                        help="print the version of qin-env and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, {command.name: add_command(sub, command) for command in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `qin` and every subcommand."""
    return _build()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qin` console script (and `python -m qin_env.bench`)."""
    parser, subparsers = _build()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    command = next(c for c in COMMANDS if c.name == args.command)
    return run_parsed(subparsers[command.name], command, args)


if __name__ == "__main__":
    sys.exit(main())
