"""Result files and machine records of the benchmarks: one atomic writer, one machine description."""

from __future__ import annotations

import json
import os
import stat

import pytest

from qin_env.agents import checkpoint
from qin_env.bench import io, timing


def test_result_files_fsync_the_file_and_then_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def record(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", record)
    path = io.write_json(tmp_path / "nested" / "result.json", {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert synced == ["file", "folder"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]  # no temporary file left


def test_a_failed_write_keeps_the_previous_result(tmp_path, monkeypatch):
    path = io.write_text(tmp_path / "table.md", "old\n")
    monkeypatch.setattr(checkpoint.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("interrupted")))
    with pytest.raises(OSError, match="interrupted"):
        io.write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_machine_info_names_the_machine_its_cpus_and_jax_devices():
    info = timing.machine_info()
    assert {"platform", "machine", "processor", "python", "cpus", "usable_cpus", "memory_bytes", "jax",
            "jax_device", "jax_devices"} <= set(info)
    assert info["cpus"] >= info["usable_cpus"] >= 1
    assert info["jax_device"] == info["jax_devices"][0]
    json.dumps(info)  # JSON-ready as it is


def test_result_files_get_the_users_normal_mode_not_the_temporary_files(tmp_path):
    """A new file gets 0o666 less the umask (as open(path, "w") would), an existing one keeps its mode."""
    old = os.umask(0o022)
    try:
        fresh = io.write_json(tmp_path / "summary.json", {"a": 1})
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        os.umask(0o002)
        assert stat.S_IMODE(io.write_json(tmp_path / "group.json", {}).stat().st_mode) == 0o664
        os.chmod(fresh, 0o640)
        io.write_json(fresh, {"a": 2})
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640 and json.loads(fresh.read_text()) == {"a": 2}
    finally:
        os.umask(old)
