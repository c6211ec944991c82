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

    assert (scenario_dir() / "references.json").is_file() and (scenario_dir() / "best_constants.json").is_file()
    assert "metro_qkd" in list_scenarios()


BLOCK_EXTRAS = f"import sys\nfor name in {HEAVY!r}:\n    sys.modules[name] = None  # as if not installed\n"


def test_the_environment_and_the_cli_run_without_any_extra(tmp_path):
    code = BLOCK_EXTRAS + (
        "import gymnasium, qin_env\n"
        "from qin_env import agents\n"
        "from qin_env.bench.cli import main\n"
        "env = qin_env.parallel_env('metro_qkd'); env.reset(seed=0)\n"
        "env.step({a: env.action_space(a).sample() for a in env.agents})\n"
        "solo = gymnasium.make('qin/Orchestrator-v1'); solo.reset(seed=0); solo.step(solo.action_space.sample())\n"
        "print(agents.make('heuristic', scenario='metro_qkd').name); main(['scenarios'])\n")
    out = _run(code, tmp_path)
    assert out.splitlines()[0] == "heuristic" and "metro_qkd" in out


def test_a_missing_extra_is_named_with_its_install_line(tmp_path):
    code = BLOCK_EXTRAS + (
        "import gymnasium, qin_env\n"
        "from qin_env.bench.cli import main\n"
        "status = main(['train', '--scenario', 'metro_qkd', '--agent', 'vqc-ppo', '--out', 'run'])\n"
        "print('status', status)\n"
        "env = qin_env.parallel_env('metro_qkd', render_mode='rgb_array'); env.reset(seed=0)\n"
        "try:\n    env.render()\nexcept gymnasium.error.DependencyNotInstalled as err:\n    print('render:', err)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "status 1" in out.stdout, out.stderr
    assert "pip install 'qin-env[agents]'" in out.stderr
    assert "render: " in out.stdout and "pip install 'qin-env[plots]'" in out.stdout
    assert not (tmp_path / "run" / "summary.json").exists()


def _requirements() -> list:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(line) for line in lines]


def test_dependencies_are_ranges_and_the_lock_lies_inside_them():
    """Users install beside other stacks: no exact pin in pyproject; constraints.txt is the verified set."""
    lock = {}
    for line in (Path(__file__).parents[1] / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for req in _requirements():
        if req.name == DIST:
            continue
        assert all(spec.operator != "==" for spec in req.specifier), f"{req} is an exact pin: declare a range"
        key = req.name.lower().replace("_", "-")
        assert key in lock, f"{req.name} is missing from constraints.txt"
        assert req.specifier.contains(lock[key], prereleases=True), f"constraints.txt {req.name}=={lock[key]} " \
                                                                     f"lies outside {req}"
        assert importlib.metadata.version(req.name) == lock[key], f"installed {req.name} is not the locked one"
