"""What a leaderboard cell's key holds (plug-in code and distribution, environment version), resuming a
killed `qin leaderboard`, and refusing a crafted sb3-ppo checkpoint before any cell runs."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lb_settings import MAX_STEPS, PLUGIN_SOURCE, SCENARIO, TINY, read_results
from lb_settings import run_leaderboard as run

from qin_env import version as qin_version
from qin_env.agents.checkpoint import save_checkpoint
from qin_env.bench.leaderboard import cells, main


def cell_files(out: Path) -> dict[str, tuple[int, int]]:
    """Each cached cell's (inode, mtime): a rewritten file changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("cells/*.json")}


def bump_env_version(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pretend the dynamics changed: this qin-env now runs the next environment version (returned)."""
    bumped = qin_version.ENV_VERSION + 1
    monkeypatch.setitem(qin_version.VERSION_HISTORY, bumped, "a test's pretend change of the dynamics")
    monkeypatch.setattr(qin_version, "ENV_VERSION", bumped)
    return bumped


# ---------------------------------------------------------------- resuming a killed run

def test_a_killed_leaderboard_recomputes_only_its_unfinished_cells_and_ends_as_an_uninterrupted_one(
        tiny_references, tmp_path, on_path, counted):
    path, _ = tiny_references
    flags = ["--references", str(path), *TINY, "--seeds", "3", "--agents", "my_qin_agent:SlowAgent"]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(on_path), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "qin_env.bench.leaderboard", "--out", str(killed), *flags],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list(killed.glob("cells/*.json")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first cell"
        time.sleep(0.005)
    process.kill()  # SIGKILL, by its PID
    process.wait()
    finished = cell_files(killed)
    assert 1 <= len(finished) < 3, "the run was not interrupted between its cells"
    assert main(["--out", str(killed), *flags]) == 0
    assert len(counted) == 3 - len(finished)
    after = cell_files(killed)
    assert {name: after[name] for name in finished} == finished  # finished cells untouched
    assert len(after) == 3
    assert read_results(killed)["metadata"]["cells"]["cached"] == len(finished)
    assert main(["--out", str(tmp_path / "whole"), *flags]) == 0
    assert read_results(killed)["qin-gym"] == read_results(tmp_path / "whole")["qin-gym"]


# ---------------------------------------------------------------- plug-in keys

def test_an_edited_plug_in_gets_new_cells_and_an_unchanged_one_keeps_its_own(tiny_references, tmp_path, monkeypatch,
                                                                          counted):
    path, _ = tiny_references
    folder = tmp_path / "plugin"
    folder.mkdir()
    module = folder / "edited_qin_agent.py"
    module.write_text(textwrap.dedent(PLUGIN_SOURCE))
    monkeypatch.syspath_prepend(str(folder))
    agent = "edited_qin_agent:ConstantAgent"
    assert cells.plugin_source(agent) == {"module": "edited_qin_agent", "module_sha256": cells.file_sha256(module),
                                          "distribution": None, "version": None}
    out = tmp_path / "out"
    assert run(out, path, "--agents", agent) == 0
    assert len(counted) == 2
    assert run(out, path, "--agents", agent) == 0
    assert len(counted) == 2  # unchanged: both cells cached
    module.write_text(module.read_text() + "\n# a user's edit\n")
    assert run(out, path, "--agents", agent) == 0
    assert len(counted) == 4  # edited: both cells computed again
    assert len(cell_files(out)) == 4


def test_an_entry_point_plug_ins_key_holds_its_distribution_version_and_module_hash(on_path, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(version: str) -> None:  # what `pip install` of a package declaring the entry point leaves
        for old in site.glob("*.dist-info"):
            shutil.rmtree(old)
        dist = site / f"key_qin_plugin-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: key-qin-plugin\nVersion: {version}\n")
        (dist / "entry_points.txt").write_text("[qin_env.agents]\nkey-constant = my_qin_agent:ConstantAgent\n")

    def key() -> dict:
        source = cells.plugin_source("key-constant")
        return cells.make_task("key-constant", None, None, SCENARIO, "0" * 16, {}, 0, 2, source).key

    install("0.1")
    first = key()
    assert first["agent_source"] == {"module": "my_qin_agent", "distribution": "key-qin-plugin", "version": "0.1",
                                     "module_sha256": cells.file_sha256(on_path / "my_qin_agent.py")}
    assert key() == first
    install("0.2")
    assert key()["agent_source"]["version"] == "0.2"  # so its cells are computed again


def test_qin_envs_own_agents_have_no_plug_in_source():
    for name in ("random", "heuristic", "sb3-ppo", "vqc-ppo", "mlp-ppo", "qin_env.agents.baselines:RandomAgent"):
        assert cells.plugin_source(name) is None, name


# ---------------------------------------------------------------- environment version

def test_cached_cells_of_another_environment_version_are_not_reused_and_are_counted(tiny_references, tmp_path,
                                                                                    monkeypatch, counted, capsys):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "random") == 0
    assert len(counted) == 2
    made_under = qin_version.ENV_VERSION
    assert {json.loads(p.read_text())["key"]["env_version"] for p in (tmp_path / "cells").glob("*.json")} == {
        made_under}
    capsys.readouterr()
    with monkeypatch.context() as patch:
        bumped = bump_env_version(patch)
        # references of another version are refused too: these are the same numbers declared for the bump
        refs = json.loads(path.read_text())
        for entry in refs["scenarios"].values():
            entry["env_version"] = bumped
        bumped_refs = tmp_path / "bumped_references.json"
        bumped_refs.write_text(json.dumps(refs))
        assert run(tmp_path, path, "--agents", "random") == 2  # the references name the version they were made under
        assert "made under environment version" in capsys.readouterr().out
        assert run(tmp_path, bumped_refs, "--agents", "random") == 0
        assert len(counted) == 4  # the old version's cells are not the new one's
        assert "2 cached of another environment version ignored" in capsys.readouterr().out
        meta = read_results(tmp_path)["metadata"]
        assert (meta["env_version"], meta["cached_cells_of_other_env_versions"]) == (bumped, 2)
    assert run(tmp_path, path, "--agents", "random") == 0
    assert len(counted) == 4  # back on the old version: its cells are still there
    meta = read_results(tmp_path)["metadata"]
    assert meta["cells"]["cached"] == 2 and meta["cached_cells_of_other_env_versions"] == 2


# ---------------------------------------------------------------- a crafted sb3-ppo checkpoint

class _Touch:
    """Unpickling this creates a marker file: the payload an attacker hides in SB3's zip."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_sb3_checkpoint(path: Path, marker: Path, scenario: str, overrides: dict) -> Path:
    """An old-format sb3-ppo checkpoint for `scenario`, valid SHA-256 and metadata, whose SB3 zip runs code."""
    payload = pickle.dumps(_Touch(marker))
    serialized = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(payload).decode()}
    data = {"policy_class": serialized, "observation_space": serialized, "an_added_key": serialized,
            "policy_kwargs": {}, "n_steps": 2048}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", payload)
        archive.writestr("_stable_baselines3_version", "2.9.2")
    metadata = {"kind": "sb3-ppo", "scenario": scenario, "overrides": overrides, "timesteps": 40960,
                "network": {"policy": "MlpPolicy", "net_arch": {"pi": [64, 64], "vf": [64, 64]}}}
    return save_checkpoint(path, {"sb3_zip": np.frombuffer(buffer.getvalue(), np.uint8)}, metadata)


def test_a_crafted_sb3_checkpoint_is_refused_before_any_cell_and_runs_no_code(tiny_references, tmp_path, capsys):
    path, _ = tiny_references
    marker = tmp_path / "marker"
    evil = crafted_sb3_checkpoint(tmp_path / "evil.qinckpt", marker, SCENARIO, {"episode.max_steps": MAX_STEPS})
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path / "out", path, "--agents", "random", "--agent", f"sb3-ppo@{evil}")
    assert not marker.exists()
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "--agent sb3-ppo@evil: " in message and "evil.qinckpt stores stable-baselines3's own zip" in message
    assert "convert_sb3 OLD.qinckpt NEW.qinckpt" in message
    assert not (tmp_path / "out" / "cells").exists()  # refused before any cell ran
