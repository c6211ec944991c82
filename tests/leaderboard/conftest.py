"""Fixtures of the leaderboard tests: references for the tiny settings, a plug-in module outside the package."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lb_settings import PLUGIN_SOURCE, TINY

from qin_env.bench.leaderboard import cells, main, runner


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding `my_qin_agent.py`, a module no installed package knows about."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "my_qin_agent.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (folder / "level1.txt").write_text("1")
    return folder


@pytest.fixture(scope="session")
def tiny_references(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """References for the tiny settings, made by `--regenerate-references`; returns (file, what it printed)."""
    import contextlib
    import io

    path = tmp_path_factory.mktemp("refs") / "references.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["--regenerate-references", "--references", str(path), *TINY])
    assert status == 0, printed.getvalue()
    return path, printed.getvalue()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[cells.CellTask]:
    """Every cell the runner evaluates from now on, in order."""
    seen: list[cells.CellTask] = []

    def counting(task: cells.CellTask) -> dict:
        seen.append(task)
        return cells.evaluate_cell(task)

    monkeypatch.setattr(runner, "evaluate_cell", counting)
    return seen


@pytest.fixture
def on_path(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test plug-in's folder on sys.path."""
    monkeypatch.syspath_prepend(str(plugin_dir))
    return plugin_dir
