"""`qin train` and `qin evaluate`: their refusals of bad flags and the tensorboard writer.

The end-to-end tiny run (`qin train`, then `qin evaluate` of its folder) is tests/agents/test_train_resume.py's
reference run, which its resumed twin is compared with.
"""

import re
import sys

import pytest

from qin_env.bench import cli


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
