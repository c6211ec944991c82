"""The `qin` argument layer: every flag shows its default, one `--set` parser, one integer-range type."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

import qin_env
from qin_env.bench import cli
from qin_env.bench.args import command_parser, int_range, override_pair

HUGE = "9" * 400
# modules `qin --help` and a refused flag must not load: trainers, circuits, plotting, Ray
HEAVY = ("optax", "pennylane", "torch", "stable_baselines3", "matplotlib", "ray", "qin_env.agents.ppo",
         "qin_env.agents.vqc", "qin_env.agents.baselines", "qin_env.agents.trained", "qin_env.agents.irl")


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _flag_blocks(help_text: str) -> dict[str, str]:
    """Each option of a --help text -> its line(s) joined: `--steps STEPS env steps per seed (default: ...)`."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            blocks[current] = line.strip()
        elif current is not None and line.startswith("   ") and line.strip():
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


def test_qin_help_lists_every_subcommand(capsys):
    out = _help([], capsys)
    for name in ("scenarios", "evaluate", "train", "throughput", "perf", "leaderboard", "irl"):
        assert name in out


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_every_flag_of_every_subcommand_shows_its_help_and_default(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per flag: no wrapping inside "(default: ...)"
    blocks = _flag_blocks(_help([command.name], capsys))
    for action in command_parser(command, "qin")._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = action.option_strings[0]
        block = blocks[flag]
        assert action.help, f"{flag} has no help"
        if action.required:
            assert block.endswith("(required)"), block
        elif "(default" in action.help:  # a default computed at run time, said in words
            assert "(default: " in block, block
        else:
            assert block.endswith(f"(default: {action.default})"), block


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"qin {qin_env.__version__}\n"


def test_python_m_qin_env_bench_is_the_qin_command():
    out = subprocess.run([sys.executable, "-m", "qin_env.bench", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert (out.returncode, out.stdout) == (0, f"qin {qin_env.__version__}\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("episode.max_steps=50", ("episode.max_steps", 50)),
    ("eve.intercept_fraction = 0.5", ("eve.intercept_fraction", 0.5)),
    ("eve.links=[0, 2]", ("eve.links", [0, 2])),
    ("eve.mode=bursty", ("eve.mode", "bursty")),
    ('eve.mode="bursty"', ("eve.mode", "bursty")),
    ("some.flag=true", ("some.flag", True)),
])
def test_set_values_are_toml_scalars_or_arrays_or_bare_words(text, expected):
    assert override_pair(text) == expected


SET_COMMANDS = {
    "evaluate": ["evaluate", "--agent", "heuristic", "--episodes", "1"],
    "train": ["train", "--agent", "mlp-ppo", "--steps", "3200", "--seeds", "1"],
    "irl": ["irl", "--quick"],
    "leaderboard": ["leaderboard", "--agents", "random", "--scenarios", "metro_qkd"],
}
BAD_SETS = [
    ("episode.max_steps", "--set 'episode.max_steps' must look like KEY=VALUE"),
    ("=50", "--set '=50' must look like KEY=VALUE"),
    ("episode.no_such_key=1", "--set: unknown parameter 'episode.no_such_key'"),
    ("episode.max_steps=0", "--set: episode.max_steps=0 in overrides: outside the allowed range [1, 100000]"),
    ("eve.mode=sometimes", "--set: eve.mode='sometimes' in overrides: allowed values are"),
    (f"episode.max_steps={HUGE}", "--set episode.max_steps=999"),
    (f"episode.max_steps={'9' * 5000}", "--set episode.max_steps=999"),
    (f"eve.links=[0, {HUGE}]", "--set eve.links=[0, 999"),
]


@pytest.mark.parametrize("name", SET_COMMANDS)
@pytest.mark.parametrize(("pair", "message"), BAD_SETS, ids=[p[:30] for p, _ in BAD_SETS])
def test_a_bad_set_pair_is_an_argparse_error_naming_the_key(name, pair, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*SET_COMMANDS[name], "--out", str(out), "--set", pair] if name != "evaluate"
                 else [*SET_COMMANDS[name], "--set", pair])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert f"usage: qin {name}" in err and message in err
    assert "Traceback" not in err and not out.exists()


def test_a_missing_scenario_file_is_refused_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--agent", "heuristic", "--scenario", str(tmp_path / "nowhere.toml")])
    assert exit_info.value.code == 2
    assert "--scenario=" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "low", "high", "text", "message"), [
    ("--seeds", 1, None, "0", "--seeds=0 is outside the allowed range [1, inf)"),
    ("--top", 2, 20, "21", "--top=21 is outside the allowed range [2, 20]"),
    ("--top", 2, 20, "two", "--top='two' is not an integer"),
    ("--seed", 0, 2**31 - 1, "1" * 5000, "--seed='1111"),
])
def test_int_range_errors_name_the_flag_and_the_range(flag, low, high, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        int_range(flag, low, high)(text)
    assert message in str(err.value) and len(str(err.value)) < 200


def test_int_range_accepts_its_bounds():
    parse = int_range("--top", 2, 20)
    assert (parse("2"), parse("20"), int_range("--seeds", 1)("1000000")) == (2, 20, 1_000_000)


def test_help_and_a_refused_flag_load_no_trainer():
    code = ("import json, sys\nfrom qin_env.bench.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['train', '--out', 'x', '--steps', '0'],\n"
            "             ['evaluate', '--agent', 'vqc-ppo', '--set', 'episode.max_steps=0']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    loaded = json.loads(out.stdout.splitlines()[-1])
    assert [m for m in loaded if m.startswith(HEAVY)] == []


def test_a_set_value_nested_too_deep_is_a_usage_error_naming_the_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--agent", "heuristic", "--set", "episode.max_steps=" + "[" * 50_000 + "]" * 50_000])
    assert exit_info.value.code == 2
    assert "--set episode.max_steps=...: the value is nested too deep to parse" in capsys.readouterr().err
