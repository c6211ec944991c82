"""`--backend ray` on a local Ray instance gives the local backend's results, cell for cell.

Ray is a test dependency (`make` installs `.[dev,ray]`); its start-up (about 15 s here, with the
workers' imports) stays in this one test, which runs one worker so each agent compiles once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lb_settings import SCENARIO, TINY, read_results

from qin_env.bench.leaderboard import main

PLUGIN = "my_qin_agent:ConstantAgent"


# Ray starts its processes with fork+exec from this (JAX-threaded) process; exec follows at once, so
# JAX's fork warning does not apply.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_ray_and_local_backends_agree_cell_for_cell(tiny_references, plugin_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    import ray

    monkeypatch.syspath_prepend(str(plugin_dir))  # the Ray workers must import the plug-in too
    path, _ = tiny_references
    common = ["--references", str(path), *TINY, "--agents", f"random,{PLUGIN}"]
    assert main(["--out", str(tmp_path / "local"), *common]) == 0
    assert main(["--out", str(tmp_path / "ray"), "--backend", "ray", "--ray-cpus", "1", *common]) == 0
    assert not ray.is_initialized()  # the instance it started is shut down
    local, distributed = read_results(tmp_path / "local"), read_results(tmp_path / "ray")
    assert distributed["metadata"]["backend"] == "ray"
    assert distributed["metadata"]["cells"]["computed"] == 4
    assert distributed["qin-gym"] == local["qin-gym"]
    assert set(local["qin-gym"][SCENARIO]) == {"random", PLUGIN}
    ranking = {r["agent"]: r["iqm"] for r in distributed["metadata"]["leaderboard"]["ranking"]}
    assert ranking == {r["agent"]: r["iqm"] for r in local["metadata"]["leaderboard"]["ranking"]}
