"""`qin train` end to end: its files, `qin evaluate` of its folder, the folder lock, --overwrite, and a
SIGKILLed run resumed to the bit.

One tiny run in this process (2 seeds x 2 updates of 32 envs x 100 steps) is the reference every test
reads; the real processes after it (the run that is killed, its resume) take every program from the
session's compilation cache. `--checkpoint-every 1` saves the training state after the first update,
where the run is killed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pytest

from qin_env import version as qin_version
from qin_env.agents.checkpoint import FINAL_CHECKPOINT, CheckpointError, load_checkpoint, load_metadata
from qin_env.bench import cli
from qin_env.bench.leaderboard.specs import ENTRIES_DIR
from qin_env.bench.train import STATE_FILE

FLAGS = ["train", "--scenario", "metro_qkd", "--agent", "mlp-ppo", "--steps", "6400", "--seeds", "2",
         "--set", "episode.max_steps=20", "--eval-episodes", "2", "--checkpoint-every", "1"]
TIMINGS = ("train_seconds", "env_steps_per_second")


def qin_train(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qin_env.bench", *FLAGS, "--out", str(out), *extra]


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str, timeout_s: float = 300) -> None:
    """Poll `condition` every 5 ms while `process` runs."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"qin train ended (status {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.005)


def in_process(argv: list[str]) -> tuple[int, str]:
    """Exit status and everything printed by `qin ARGV` run in this process."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    return status, printed.getvalue()


def leaf_arrays(path: Path) -> list[np.ndarray]:
    """A checkpoint's arrays, read with numpy alone (the recipe of qin_env.agents.checkpoint's docstring)."""
    data = path.read_bytes()
    with np.load(io.BytesIO(data[data.index(b"\n") + 1:]), allow_pickle=False) as archive:
        return [archive[name] for name in sorted(archive.files) if name.startswith("leaf_")]


def summary_without_timings(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    summary["evaluation"]["replay"] = summary["evaluation"]["replay"].replace(str(out), "OUT")
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def modification_times(out: Path) -> dict[str, int]:
    """Every file's mtime, but the lock's (each run writes its PID there)."""
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"}


def set_env_version(monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """Pretend this qin-env runs environment version `version` (a bump: the dynamics changed)."""
    monkeypatch.setitem(qin_version.VERSION_HISTORY, version,
                        qin_version.VERSION_HISTORY.get(version, "a test's pretend change of the dynamics"))
    monkeypatch.setattr(qin_version, "ENV_VERSION", version)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The uninterrupted run (in this process) and, beside it, one SIGKILLed after its first training state and
    resumed.

    The interrupted one starts with --overwrite over an older run's files; while it runs, a second
    `qin train` on its folder is tried in this process.
    """
    reference = tmp_path_factory.mktemp("reference")
    status, printed = in_process([*FLAGS, "--out", str(reference)])
    assert status == 0, printed[-2000:]
    out = tmp_path_factory.mktemp("interrupted")
    for name in ("summary.json", "metrics.csv", "checkpoint_seed7.qinckpt", ".metrics.csv.k1ll3d_x.tmp"):
        (out / name).write_text("from an older run")
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "events").write_text("old events")
    (out / "notes.txt").write_text("mine, not qin's")
    process = subprocess.Popen(qin_train(out, "--overwrite"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lock = out / ".lock"
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(process.pid), process, "lock")
        second = in_process([*FLAGS, "--out", str(out)])
        wait_for((out / STATE_FILE).exists, process, STATE_FILE)
        os.kill(process.pid, signal.SIGKILL)  # no cleanup, as when the machine dies
        process.communicate()
        after_kill = sorted(p.name for p in out.iterdir())
        killed_at = load_metadata(out / STATE_FILE)["update"]
        resumed = subprocess.run(qin_train(out, "--resume"), check=True, capture_output=True, text=True,
                                 timeout=600)
    finally:
        if process.poll() is None:  # a failed step above: end what this fixture started
            process.kill()
            process.communicate()
    return {"reference": reference, "out": out, "pid": process.pid, "second": second, "after_kill": after_kill,
            "killed_at": killed_at, "resumed": resumed.stdout}


@pytest.fixture(scope="module")
def reference(runs: dict) -> Path:
    """The folder of the uninterrupted run."""
    return runs["reference"]


@pytest.fixture(scope="module")
def interrupted(runs: dict) -> dict:
    """The interrupted run: its folder, PID, what a second run on it said, its files after the kill."""
    return runs


def test_train_writes_metrics_curve_checkpoints_and_summary(reference):
    for name in ("metrics.csv", "learning_curve.png", "checkpoint_final.qinckpt", "checkpoint_seed0.qinckpt",
                 "checkpoint_seed1.qinckpt", "summary.json"):
        assert (reference / name).stat().st_size > 0
    rows = list(csv.DictReader((reference / "metrics.csv").open()))
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert "episode_return" in rows[0]
    summary = json.loads((reference / "summary.json").read_text())
    assert set(summary["references"]) == {"random", "heuristic"}
    assert summary["parameters_per_agent_network"] > 0
    assert summary["training_seed"] == 0 and summary["evaluation"]["seed"] == 1000
    assert summary["hyperparameters"]["num_envs"] > 0 and summary["hyperparameters"]["lr"] > 0
    assert summary["env_version"] >= 1 and summary["versions"]["jax"] == jax.__version__
    assert summary["git_commit"]


def test_evaluate_accepts_a_train_folder_and_writes_mean_return(reference, tmp_path):
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(reference), "--episodes", "2",
                     "--set", "episode.max_steps=20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert isinstance(result["mean_return"], float)
    assert "model_quality" in result["kpi"]


def test_train_reports_the_evaluation_that_qin_evaluate_of_its_checkpoint_gives(reference, tmp_path):
    summary = json.loads((reference / "summary.json").read_text())
    best = next(s for s in summary["per_seed"] if s["seed"] == summary["final_checkpoint_seed"])
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(reference), "--set", "episode.max_steps=20",
                     "--seed", str(summary["evaluation"]["seed"]), "--episodes", str(summary["evaluation"]["episodes"]),
                     "--json", str(out)]) == 0
    replayed = json.loads(out.read_text())
    assert replayed["returns"] == best["returns"]
    assert replayed["mean_return"] == best["mean_return"]
    assert {s["seed"] for s in summary["per_seed"]} == {0, 1}  # training seeds, not the evaluation seed


def test_a_checkpoint_for_another_scenario_configuration_is_refused(reference):
    with pytest.raises(SystemExit, match=r"config_hash|scenario"):
        cli.main(["evaluate", "--agent", "mlp-ppo", "--checkpoint", str(reference), "--episodes", "1"])


def test_a_checkpoint_of_another_kind_is_refused(reference):
    with pytest.raises(SystemExit, match="kind"):
        cli.main(["evaluate", "--agent", "vqc-ppo", "--checkpoint", str(reference), "--episodes", "1",
                  "--set", "episode.max_steps=20"])


def test_a_killed_run_resumes_to_the_bit_of_an_uninterrupted_one(reference, interrupted):
    out = interrupted["out"]
    assert interrupted["killed_at"] == 1  # of 2: killed in the middle of training
    assert "resuming" in interrupted["resumed"] and "at update 1 of 2" in interrupted["resumed"]
    checkpoints = sorted(p.name for p in reference.glob("*.qinckpt"))
    assert checkpoints == [FINAL_CHECKPOINT, "checkpoint_seed0.qinckpt", "checkpoint_seed1.qinckpt", STATE_FILE]
    for name in checkpoints:
        want, got = leaf_arrays(reference / name), leaf_arrays(out / name)
        assert len(want) == len(got) > 0, name
        for a, b in zip(want, got, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    assert summary_without_timings(out) == summary_without_timings(reference)


def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_folder_and_the_holder(interrupted):
    status, printed = interrupted["second"]
    assert status == 2
    assert f"--out {interrupted['out']} is in use by another run (PID {interrupted['pid']}" in printed


def test_overwrite_removes_the_previous_runs_files_and_keeps_the_others(interrupted):
    assert "summary.json" not in interrupted["after_kill"]
    assert "checkpoint_seed7.qinckpt" not in interrupted["after_kill"]
    assert "tensorboard" not in interrupted["after_kill"]
    assert ".metrics.csv.k1ll3d_x.tmp" not in interrupted["after_kill"]
    assert (interrupted["out"] / "notes.txt").read_text() == "mine, not qin's"


def test_a_resumed_run_leaves_no_half_written_file(interrupted):
    assert not [p.name for p in interrupted["out"].iterdir() if p.name.endswith(".tmp")]


def test_a_folder_that_is_not_empty_is_refused_without_resume_or_overwrite(reference):
    before = modification_times(reference)
    status, printed = in_process([*FLAGS, "--out", str(reference)])
    assert status == 2
    assert f"--out {reference} is not empty" in printed and "--resume" in printed and "--overwrite" in printed
    assert modification_times(reference) == before


def test_resume_and_overwrite_together_is_a_usage_error(tmp_path):
    status, printed = in_process([*FLAGS, "--out", str(tmp_path), "--resume", "--overwrite"])
    assert status == 2 and "not allowed with argument" in printed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, named", [
    (["--seed", "1"], "--seed was 0, now 1"),
    (["--set", "episode.max_steps=21"], "--set was {'episode.max_steps': 20}, now {'episode.max_steps': 21}"),
    (["--steps", "9600"], "--steps was 6400, now 9600"),
    (["--lr", "0.001"], "--lr was 0.0003, now 0.001"),
    (["--algorithm", "mappo"], "--algorithm was 'ippo', now 'mappo'"),
    (["--eval-episodes", "3"], "--eval-episodes was 2, now 3"),
])
def test_a_resume_with_other_flags_is_refused_naming_the_flag(reference, flags, named):
    before = modification_times(reference)
    status, printed = in_process([*FLAGS, "--out", str(reference), "--resume", *flags])
    assert status == 2
    assert f"--resume: {reference} holds a run with other flags: {named}" in printed
    assert modification_times(reference) == before


def test_resuming_a_finished_run_says_it_is_complete_and_trains_nothing(reference):
    before = modification_times(reference)
    status, printed = in_process([*FLAGS, "--out", str(reference), "--resume", "--checkpoint-every", "5"])
    assert status == 0
    assert "the run is complete (2 updates" in printed and "training" not in printed
    assert modification_times(reference) == before


def test_every_checkpoint_records_the_environment_version(reference):
    for path in reference.glob("*.qinckpt"):
        assert load_metadata(path)["env_version"] == qin_version.ENV_VERSION


def test_a_checkpoint_of_another_environment_version_is_refused_saying_why(reference, monkeypatch):
    made_under = qin_version.ENV_VERSION
    set_env_version(monkeypatch, made_under + 1)
    expected = qin_version.version_mismatch(f"checkpoint {FINAL_CHECKPOINT}", made_under)
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        load_checkpoint(reference / FINAL_CHECKPOINT)
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        load_metadata(reference / FINAL_CHECKPOINT)
    status, printed = in_process([*FLAGS, "--out", str(reference), "--resume"])
    assert status == 2 and f"checkpoint {STATE_FILE} was made under environment version {made_under}" in printed


def raw_entries(path: Path) -> dict[str, bytes]:
    """A checkpoint's archive entries, unchecked."""
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data[data.index(b"\n") + 1:])) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def raw_metadata(entries: dict[str, bytes]) -> dict:
    return json.loads(np.load(io.BytesIO(entries["metadata.json.npy"]), allow_pickle=False).tobytes())


def resigned(path: Path, out: Path, change: Callable[[dict], None]) -> Path:
    """A copy of a checkpoint with `change` applied to its metadata and a valid SHA-256 again."""
    entries = raw_entries(path)
    metadata = raw_metadata(entries)
    change(metadata)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(json.dumps(metadata).encode(), np.uint8), allow_pickle=False)
    entries["metadata.json.npy"] = buffer.getvalue()
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_STORED) as archive:
        for name, entry in entries.items():
            archive.writestr(name, entry)
    digest = hashlib.sha256(payload.getvalue()).hexdigest().encode()
    out.write_bytes(b"QIN-CHECKPOINT v1 sha256=%s\n" % digest + payload.getvalue())
    return out


def test_a_checkpoint_made_before_versioning_is_version_0(reference, tmp_path, monkeypatch):
    old = resigned(reference / FINAL_CHECKPOINT, tmp_path / "old.qinckpt", lambda m: m.pop("env_version"))
    pinned = [p for p in sorted(ENTRIES_DIR.glob("*/*.qinckpt")) if "env_version" not in raw_metadata(raw_entries(p))]
    set_env_version(monkeypatch, 0)
    for path in [old, *pinned]:
        assert "env_version" not in load_metadata(path)  # loads under version 0
    set_env_version(monkeypatch, 1)
    for path in [old, *pinned]:
        with pytest.raises(CheckpointError, match="made under environment version 0"):
            load_metadata(path)


def test_a_checkpoint_whose_env_version_is_not_an_integer_is_refused(reference, tmp_path):
    odd = resigned(reference / FINAL_CHECKPOINT, tmp_path / "odd.qinckpt", lambda m: m.update(env_version="0"))
    with pytest.raises(CheckpointError, match="metadata field 'env_version' is '0', expected an integer"):
        load_metadata(odd)
