"""Worker processes: a fork after JAX started is refused with a clear error; spawn works."""

from __future__ import annotations

import subprocess
import sys

FORKED = """
import gymnasium, qin_env
parent = gymnasium.make("qin/Orchestrator-v1"); parent.reset(seed=0)  # JAX runs in this process
vec = gymnasium.make_vec("qin/Orchestrator-v1", num_envs=2, vectorization_mode="async",
                         vector_kwargs={"context": "fork"})
"""

SPAWNED = """
import gymnasium, numpy as np, qin_env
if __name__ == "__main__":
    vec = gymnasium.make_vec("qin/Orchestrator-v1", num_envs=2, vectorization_mode="async",
                             vector_kwargs={"context": "spawn"})
    obs, _ = vec.reset(seed=0)
    obs, rewards, *_ = vec.step(vec.action_space.sample())
    assert obs.shape[0] == 2 and np.isfinite(rewards).all()
    vec.close()
    print("spawned ok")
"""


def _python(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "main.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_a_worker_forked_after_jax_started_raises_instead_of_hanging(tmp_path):
    out = _python(FORKED, tmp_path)
    assert out.returncode != 0
    assert "forked from one that had already started JAX" in out.stderr and "'spawn'" in out.stderr


def test_spawned_workers_run_the_env(tmp_path):
    out = _python(SPAWNED, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "spawned ok" in out.stdout
