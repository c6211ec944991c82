"""One import namespace after install: `qin_env` alone, and `import qin_env` loads the environment only."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

DIST = "qin-env"
HEAVY = ("optax", "pennylane", "torch", "stable_baselines3", "matplotlib", "ray")


def _run(code: str, cwd: Path, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=os.environ | env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_distribution_installs_the_qin_env_namespace_alone():
    dist = importlib.metadata.distribution(DIST)
    assert (dist.read_text("top_level.txt") or "").split() == ["qin_env"]
    names = {name for name, dists in importlib.metadata.packages_distributions().items() if DIST in dists}
    assert names == {"qin_env"}


def test_import_qin_env_loads_no_agent_trainer_or_benchmark_module(tmp_path):
    loaded = json.loads(_run("import json, sys, qin_env; print(json.dumps(sorted(sys.modules)))", tmp_path))
    ours = [m for m in loaded if m.startswith(("qin_env.agents", "qin_env.bench"))]
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert ours == [] and heavy == []


def test_a_user_folder_named_agents_does_not_shadow_the_registry(tmp_path):
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "__init__.py").write_text("raise ImportError('the user agents package')\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__init__.py").write_text("raise ImportError('the user benchmarks package')\n")
    code = ("from qin_env import agents; from qin_env.bench.cli import main; "
            "print(agents.make('heuristic', scenario='metro_qkd').name); main(['scenarios'])")
    out = _run(code, tmp_path, PYTHONPATH=str(tmp_path))
    assert out.splitlines()[0] == "heuristic"
    assert "metro_qkd" in out


def test_shipped_scenarios_are_package_data_of_the_namespace():
    from qin_env.params import list_scenarios, scenario_dir

    assert (scenario_dir() / "references.json").is_file()
    assert "metro_qkd" in list_scenarios()
