"""`qin train` and `qin evaluate` end to end on a tiny run, and their refusals of bad flags."""

import csv
import json
import re
import sys

import jax
import pytest

from qin_env.bench import cli

TINY = ["--set", "episode.max_steps=20", "--eval-episodes", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--scenario", "metro_qkd", "--agent", "mlp-ppo", "--steps", "6400", "--seeds", "2",
                     "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_metrics_curve_checkpoints_and_summary(trained):
    for name in ("metrics.csv", "learning_curve.png", "checkpoint_final.qinckpt", "checkpoint_seed0.qinckpt",
                 "checkpoint_seed1.qinckpt", "summary.json"):
        assert (trained / name).stat().st_size > 0
    rows = list(csv.DictReader((trained / "metrics.csv").open()))
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert "episode_return" in rows[0]
    summary = json.loads((trained / "summary.json").read_text())
    assert set(summary["references"]) == {"random", "heuristic"}
    assert summary["parameters_per_agent_network"] > 0
    assert summary["training_seed"] == 0 and summary["evaluation"]["seed"] == 1000
    assert summary["hyperparameters"]["num_envs"] > 0 and summary["hyperparameters"]["lr"] > 0
    assert summary["env_version"] >= 1 and summary["versions"]["jax"] == jax.__version__
    assert summary["git_commit"]


def test_evaluate_accepts_a_train_folder_and_writes_mean_return(trained, tmp_path):
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(trained), "--episodes", "2",
                     "--set", "episode.max_steps=20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert isinstance(result["mean_return"], float)
    assert "model_quality" in result["kpi"]


def test_train_reports_the_evaluation_that_qin_evaluate_of_its_checkpoint_gives(trained, tmp_path):
    summary = json.loads((trained / "summary.json").read_text())
    best = next(s for s in summary["per_seed"] if s["seed"] == summary["final_checkpoint_seed"])
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(trained), "--set", "episode.max_steps=20",
                     "--seed", str(summary["evaluation"]["seed"]), "--episodes", str(summary["evaluation"]["episodes"]),
                     "--json", str(out)]) == 0
    replayed = json.loads(out.read_text())
    assert replayed["returns"] == best["returns"]
    assert replayed["mean_return"] == best["mean_return"]
    assert {s["seed"] for s in summary["per_seed"]} == {0, 1}  # training seeds, not the evaluation seed


def test_a_checkpoint_for_another_scenario_configuration_is_refused(trained):
    with pytest.raises(SystemExit, match=r"config_hash|scenario"):
        cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(trained), "--episodes", "1"])


def test_a_checkpoint_of_another_kind_is_refused(trained):
    with pytest.raises(SystemExit, match="kind"):
        cli.main(["evaluate", "--agent", "vqc-ppo", "--checkpoint", str(trained), "--episodes", "1",
                  "--set", "episode.max_steps=20"])


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--agent", "heuristic", "--episodes", "0"], "--episodes=0 is outside the allowed range"),
    (["evaluate", "--agent", "heuristic", "--scenario", "nowhere"], "valid scenarios"),
    (["train", "--out", "x", "--steps", "-5"], "--steps=-5 is outside the allowed range"),
    (["train", "--out", "x", "--steps", "5"], "--steps=5 is below one rollout of 3200 env steps"),
    (["train", "--out", "x", "--lr", "1.5"], "--lr=1.5 is outside the allowed range (0, 1)"),
    (["evaluate", "--agent", "heuristic", "--seed", str(2**31)], "--seed=2147483648 is outside the allowed range"),
])
def test_bad_flags_name_the_flag_and_the_range(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_agent_lists_the_valid_ones():
    with pytest.raises(SystemExit, match="Valid agents"):
        cli.main(["evaluate", "--agent", "heuristc", "--episodes", "1"])


@pytest.mark.parametrize("agent", ["best-constant", "oracle"])
def test_a_reference_agent_on_a_configuration_without_a_pin_names_the_search_that_makes_it(agent):
    with pytest.raises(SystemExit, match=re.escape("search it again with python -m qin_env.bench.best_constant "
                                                   "--scenarios metro_qkd")):
        cli.main(["evaluate", "--agent", agent, "--episodes", "1", "--set", "episode.max_steps=21"])


def test_missing_checkpoint_folder_is_reported_as_a_bad_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(tmp_path), "--episodes", "1"])
    assert exit_info.value.code == 2
    assert f"--checkpoint folder {tmp_path} has no checkpoint_final.qinckpt" in capsys.readouterr().err


def test_tensorboard_gets_one_event_file_per_seed_holding_every_row(tmp_path):
    """The real SummaryWriter (the `tensorboard` extra): one closed writer per seed, 50 rows -> 50 scalars each."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from qin_env.bench.train import write_tensorboard

    rows = [{"seed": s, "update": u, "env_steps": 10 * u, "episode_return": float(u + s)}
            for s in (0, 1) for u in range(50)]
    assert write_tensorboard(tmp_path, rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0", "seed1"]
    for s in (0, 1):
        assert len(list((tmp_path / f"seed{s}").iterdir())) == 1
        events = EventAccumulator(str(tmp_path / f"seed{s}")).Reload().Scalars("episode_return")
        assert [(e.step, e.value) for e in events] == [(10 * u, float(u + s)) for u in range(50)]


def test_a_missing_tensorboard_is_said_not_skipped_silently(tmp_path, monkeypatch, capsys):
    from qin_env.bench.train import write_tensorboard

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert not write_tensorboard(tmp_path, [{"seed": 0, "update": 0, "env_steps": 1, "episode_return": 0.0}])
    assert "tensorboard is not installed" in capsys.readouterr().out
