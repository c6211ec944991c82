"""`qin leaderboard` refuses bad flags before evaluating anything, naming the flag and what it accepts."""

from __future__ import annotations

import pytest

from qin_env.bench.leaderboard import main
from qin_env.bench.leaderboard.command import QUICK_EPISODES, QUICK_SEEDS, _settings, build_parser
from qin_env.bench.leaderboard.specs import parse_agent


@pytest.mark.parametrize(("argv", "message"), [
    (["--seeds", "0"], "--seeds=0 is outside the allowed range [1, 1000]"),
    (["--seeds", "many"], "--seeds='many' is not an integer"),
    (["--episodes", "0"], "--episodes=0 is outside the allowed range [1, 10000]"),
    (["--bootstrap-reps", "10"], "--bootstrap-reps=10 is outside the allowed range [100, 1000000]"),
    (["--backend", "dask"], "--backend: invalid choice: 'dask' (choose from 'local', 'ray')"),
    (["--scenarios", "metro_qkd,atlantis"], "--scenarios: unknown atlantis; valid scenarios: adversarial_eve"),
    (["--scenarios", ","], "--scenarios=',' names nothing"),
    (["--agents", "heuristik"], "unknown agent 'heuristik'; valid agents: random, heuristic"),
    (["--agent", "no_such_module_xyz:Agent"], "cannot import module 'no_such_module_xyz'"),
    (["--agent", "qin_env.agents.baselines:Missing"], "module 'qin_env.agents.baselines' has no attribute 'Missing'"),
    (["--agent", "vqc-ppo@/no/such/checkpoint"], "checkpoint '/no/such/checkpoint' does not exist"),
    (["--agent", "vqc-ppo@"], "nothing after '@'"),
    (["--agents", "random,random"], "entries named twice: random"),
    (["--ray-address", "10.0.0.1:6379"], "--ray-address needs --backend ray"),
    (["--set", "episode.max_steps"], "--set 'episode.max_steps' must look like KEY=VALUE"),
    (["--set", "episode.max_steps=0"], "--set: episode.max_steps=0 in overrides: outside the allowed range"),
    (["--set", "episode.no_such_key=1"], "--set: unknown parameter 'episode.no_such_key'"),
    (["--set", "episode.max_steps=" + "9" * 400], "--set episode.max_steps=999"),
    (["--ray-cpus", "0"], "--ray-cpus=0 is outside the allowed range [1, inf)"),
])
def test_bad_flags_are_refused_with_the_flag_and_its_allowed_values(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_out_is_required_except_when_regenerating_references(capsys):
    with pytest.raises(SystemExit):
        main(["--agents", "random"])
    assert "--out DIR is required" in capsys.readouterr().err


def test_quick_sets_seeds_and_episodes_and_explicit_flags_win(tmp_path):
    parser = build_parser()
    quick = _settings(parser, parser.parse_args(["--quick", "--out", str(tmp_path), "--agents", "random"]))
    assert (len(quick.seeds), quick.episodes) == (QUICK_SEEDS, QUICK_EPISODES)
    mixed = _settings(parser, parser.parse_args(["--quick", "--seeds", "3", "--out", str(tmp_path)]))
    assert (mixed.seeds, mixed.episodes) == ([0, 1, 2], QUICK_EPISODES)
    assert {"random", "heuristic", "vqc-ppo", "mlp-ppo", "sb3-ppo"} <= {s.label for s in mixed.specs}


def test_agent_with_a_checkpoint_is_labelled_by_the_checkpoint(tmp_path):
    (tmp_path / "run7.qinckpt").write_bytes(b"x")
    spec = parse_agent(f"vqc-ppo@{tmp_path / 'run7.qinckpt'}")
    assert (spec.label, spec.agent, spec.checkpoint) == ("vqc-ppo@run7", "vqc-ppo", str(tmp_path / "run7.qinckpt"))
    assert parse_agent("my_pkg.mod:Agent").label == "my_pkg.mod:Agent"
