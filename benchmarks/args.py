"""The argument layer of every command line here: one type per kind of flag value, one `--set` parser.

A subcommand of `qin` is a `Command`: a name, a one-line help, `add_arguments(parser)` and
`run(args) -> int`. `qin_env.bench.cli` builds its subparsers from a list of them, and a module
that also runs as `python -m` builds the same parser with `main_of`. Every parser shows each
flag's default in `--help` (`HelpFormatter`). A bad flag found after parsing (an override the
scenario refuses, a missing checkpoint) is raised as `UsageError` and reported as argparse
reports its own errors: usage line, message, exit status 2.

This module stays light: it imports nothing heavier than `qin_env.params`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

SEED_MAX = 2**31 - 1  # jax.random.PRNGKey keeps 32 bits without x64: larger seeds would collide
_INT64_MAX = 2**63 - 1  # a --set integer beyond it overflows the float checks of qin_env.params


class UsageError(Exception):
    """A flag refused after parsing; the command line prints it as an argparse error (exit status 2)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's defaults formatter that keeps descriptions' line breaks and marks required flags."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a help that says its default itself (one computed at run time) keeps its words
        text = action.help or ""
        if "(default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        return f"{text} (default: %(default)s)"


@dataclasses.dataclass(frozen=True)
class Command:
    """One subcommand: `qin NAME ...` runs `run(args)` on what `add_arguments` declared."""

    name: str
    """The word after `qin`."""
    help: str
    """One line, shown in `qin --help`."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    """Declares the flags on the parser it is given."""
    run: Callable[[argparse.Namespace], int]
    """Runs the command on the parsed flags; returns the exit status."""
    description: str | None = None
    """The longer text of `qin NAME --help` (default: `help`)."""


def _prepare(parser: argparse.ArgumentParser, command: Command) -> argparse.ArgumentParser:
    command.add_arguments(parser)
    parser.set_defaults(prog=parser.prog)  # for messages printed while running
    return parser


def add_command(subparsers: Any, command: Command) -> argparse.ArgumentParser:
    """Add `command` as a subparser of `subparsers` (from `ArgumentParser.add_subparsers`)."""
    parser = subparsers.add_parser(command.name, help=command.help, description=command.description or command.help,
                                   formatter_class=HelpFormatter)
    return _prepare(parser, command)


def command_parser(command: Command, prog: str) -> argparse.ArgumentParser:
    """A standalone parser of `command` (for `python -m`), the same flags as `qin NAME`."""
    parser = argparse.ArgumentParser(prog=prog, description=command.description or command.help,
                                     formatter_class=HelpFormatter)
    return _prepare(parser, command)


# The module a command may import that comes with an extra of pyproject.toml, and that extra.
EXTRA_OF_MODULE = {"pennylane": "agents", "optax": "agents", "torch": "sb3", "stable_baselines3": "sb3",
                   "matplotlib": "plots", "ray": "ray"}


def run_parsed(parser: argparse.ArgumentParser, command: Command, args: argparse.Namespace) -> int:
    """Run `command` on parsed `args`; a `UsageError` becomes `parser.error` (exit status 2), a missing
    extra a one-line message naming it (exit status 1)."""
    try:
        return int(command.run(args) or 0)
    except UsageError as err:
        parser.error(str(err))
    except ModuleNotFoundError as err:
        module = (err.name or "").split(".")[0]
        if module not in EXTRA_OF_MODULE:
            raise
        extra = EXTRA_OF_MODULE[module]
        print(f"{parser.prog}: this needs {module}, which is not installed: pip install 'qin-env[{extra}]'",
              file=sys.stderr)
        return 1


def main_of(command: Command, argv: Sequence[str] | None, prog: str) -> int:
    """Parse `argv` with `command`'s own parser and run it: the `main` of a module run as `python -m`."""
    parser = command_parser(command, prog)
    return run_parsed(parser, command, parser.parse_args(argv))


# ---------------------------------------------------------------- value types

def _shown(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters for an error message (a 400-digit number stays readable)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def int_range(flag: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in [low, high] (no upper bound when `high` is None), errors naming `flag`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={_shown(text)!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{flag}={_shown(str(value))} is outside the allowed range "
                                             f"[{low}, {'inf)' if high is None else f'{high}]'}")
        return value

    return parse


def float_range(flag: str, low: float, high: float) -> Callable[[str], float]:
    """argparse type: a finite number strictly between `low` and `high`, errors naming `flag`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={_shown(text)!r} is not a number") from None
        if not (math.isfinite(value) and low < value < high):
            raise argparse.ArgumentTypeError(f"{flag}={value} is outside the allowed range ({low:g}, {high:g})")
        return value

    return parse


def comma_names(flag: str) -> Callable[[str], list[str]]:
    """argparse type: a comma-separated list of names, refusing one that names nothing."""
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} names nothing; give a comma-separated list")
        return names

    return parse


def output_file(flag: str) -> Callable[[str], Path]:
    """argparse type: a file path to write, refusing an existing folder."""
    def parse(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{flag} {path} is a folder; give a file path")
        return path

    return parse


def input_file(flag: str) -> Callable[[str], Path]:
    """argparse type: a file that must exist."""
    def parse(text: str) -> Path:
        path = Path(text)
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{flag} {path}: no such file")
        return path

    return parse


def scenario_arg(text: str) -> str:
    """argparse type of --scenario: a scenario name or a .toml path, else an error listing the names."""
    from qin_env.params import list_scenarios

    if text.endswith(".toml"):
        if not Path(text).is_file():
            raise argparse.ArgumentTypeError(f"--scenario={text!r}: no such scenario file")
        return text
    if text in list_scenarios():
        return text
    raise argparse.ArgumentTypeError(f"--scenario={text!r} is unknown; valid scenarios: "
                                     f"{', '.join(list_scenarios())} (or a path to a .toml file)")


# ---------------------------------------------------------------- --set KEY=VALUE

def _too_large(value: Any) -> bool:
    if isinstance(value, list):
        return any(_too_large(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX


def override_pair(text: str) -> tuple[str, Any]:
    """argparse type of --set: `KEY=VALUE`, VALUE a TOML scalar or array (`eve.links=[0, 2]`) or a bare word."""
    key, sep, value_text = text.partition("=")
    key, value_text = key.strip(), value_text.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set {_shown(text)!r} must look like KEY=VALUE, "
                                         "e.g. episode.max_steps=50 or eve.mode=bursty")
    too_large = argparse.ArgumentTypeError(f"--set {key}={_shown(value_text)}: the integer is too large "
                                           "(at most 64 bits)")
    try:
        value = tomllib.loads(f"v = {value_text}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text  # a bare word: a string such as stationary
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise too_large from None
    except RecursionError:
        raise argparse.ArgumentTypeError(f"--set {key}=...: the value is nested too deep to parse") from None
    if _too_large(value):
        raise too_large
    return key, value


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """The repeatable `--set KEY=VALUE` flag (parsed into `(key, value)` pairs; see `scenario_overrides`)."""
    parser.add_argument("--set", action="append", type=override_pair, default=[], metavar="KEY=VALUE",
                        help="scenario override, repeatable; VALUE is TOML (50, 0.5, true, [0, 2]) or a bare word "
                             "such as bursty (default: none)")


def scenario_overrides(pairs: Iterable[tuple[str, Any]] | None, scenarios: Sequence[str]) -> dict[str, Any]:
    """The `--set` pairs as a dict, checked against every scenario in `scenarios` (UsageError naming the key)."""
    from qin_env.params import load_config

    overrides = dict(pairs or ())
    for scenario in scenarios:
        try:
            load_config(scenario)
        except ValueError as err:
            raise UsageError(f"--scenario: {err}") from None
        try:
            load_config(scenario, overrides)
        except (ValueError, OverflowError, TypeError) as err:
            raise UsageError(f"--set: {err} (scenario {scenario})") from None
    return overrides


# ---------------------------------------------------------------- shared flags

def add_scenario(parser: argparse.ArgumentParser, help: str = "scenario name or path to a .toml file") -> None:
    """The `--scenario` flag, default the project's default scenario."""
    from qin_env.params import DEFAULT_SCENARIO

    parser.add_argument("--scenario", type=scenario_arg, default=DEFAULT_SCENARIO, help=help)


def add_seed(parser: argparse.ArgumentParser, help: str = "base seed") -> None:
    """The `--seed` flag: an integer in [0, SEED_MAX], default 0."""
    parser.add_argument("--seed", type=int_range("--seed", 0, SEED_MAX), default=0, help=help)


def add_json(parser: argparse.ArgumentParser, help: str = "also write the result JSON here, atomically") -> None:
    """The `--json FILE` flag, default unset."""
    parser.add_argument("--json", type=output_file("--json"), default=None, metavar="FILE",
                        help=f"{help} (default: not written)")


def resolve_checkpoint(path: str | None, flag: str = "--checkpoint") -> str | None:
    """A checkpoint file, or the final checkpoint inside a `qin train` output folder (UsageError otherwise)."""
    from qin_env.agents.checkpoint import FINAL_CHECKPOINT

    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        final = p / FINAL_CHECKPOINT
        if not final.is_file():
            raise UsageError(f"{flag} folder {p} has no {FINAL_CHECKPOINT} (is it a `qin train` output?)")
        return str(final)
    if not p.exists():
        raise UsageError(f"{flag} {p} does not exist")
    return str(p)
