"""The leaderboard end to end on tiny settings: references, resuming, plug-ins, normalisation, results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from lb_settings import MAX_STEPS, SCENARIO, TINY, read_results
from lb_settings import run_leaderboard as run

from qin_env import agents
from qin_env.bench.evaluate import evaluate_agent
from qin_env.bench.leaderboard import cells, main
from qin_env.bench.leaderboard.references import normalise

SCHEMA = Path(__file__).resolve().parents[2] / "benchmarks" / "results.schema.json"
PLUGIN = "my_qin_agent:ConstantAgent"




def scores(results: dict, agent: str) -> list[float]:
    runs = results["qin-gym"][SCENARIO][agent]
    return [float(np.mean(runs[k]["absolute_metrics"]["normalised_return"])) for k in sorted(runs)]


def test_regenerating_references_says_so_loudly_and_pins_the_scenario(tiny_references):
    path, printed = tiny_references
    assert "REFERENCE SCORES REGENERATED" in printed and "NOT comparable" in printed
    entry = json.loads(path.read_text())["scenarios"][SCENARIO]
    assert entry["overrides"] == {"episode.max_steps": MAX_STEPS}
    assert entry["seeds"] == [0, 1] and entry["episodes"] == 2
    assert entry["heuristic"]["mean_return"] > entry["random"]["mean_return"]


def test_a_stale_reference_is_refused_with_the_command_that_remakes_it(tiny_references, tmp_path, capsys):
    path, _ = tiny_references
    status = main(["--out", str(tmp_path), "--references", str(path), *TINY, "--set", "episode.max_steps=9",
                   "--agents", "heuristic"])
    message = capsys.readouterr().out
    assert status == 2
    assert "stale" in message and "qin leaderboard --regenerate-references --scenarios repeater_chain" in message
    assert not (tmp_path / "cells").exists()  # refused before evaluating anything


def test_references_contradicted_by_a_fresh_evaluation_are_refused(tiny_references, tmp_path, capsys):
    path, _ = tiny_references
    tampered = json.loads(path.read_text())
    tampered["scenarios"][SCENARIO]["heuristic"]["per_seed"]["1"] += 0.5
    (tmp_path / "refs.json").write_text(json.dumps(tampered))
    assert run(tmp_path / "out", tmp_path / "refs.json", "--agents", "heuristic") == 2
    assert "environment's code changed" in capsys.readouterr().out


def test_a_cell_returns_what_evaluate_agent_returns(tiny_references, tmp_path):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "heuristic") == 0
    overrides = {"episode.max_steps": MAX_STEPS}
    expected = evaluate_agent(agents.make("heuristic", scenario=SCENARIO, overrides=overrides), SCENARIO, overrides,
                              episodes=2, seed=1)
    got = read_results(tmp_path)["qin-gym"][SCENARIO]["heuristic"]["seed_1"]["absolute_metrics"]
    np.testing.assert_allclose(got["return"], expected["returns"], rtol=1e-6)
    for name, mean in expected["kpi"].items():
        assert np.mean(got[name]) == pytest.approx(mean, rel=1e-5, abs=1e-6)


def test_step_by_step_play_matches_compiled_play_of_the_same_policy(tiny_references, tmp_path, on_path):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "heuristic,my_qin_agent:ActOnlyHeuristic") == 0
    entries = read_results(tmp_path)["qin-gym"][SCENARIO]
    for seed in ("seed_0", "seed_1"):
        compiled = entries["heuristic"][seed]["absolute_metrics"]
        stepwise = entries["my_qin_agent:ActOnlyHeuristic"][seed]["absolute_metrics"]
        assert compiled.keys() == stepwise.keys()
        # mean_fidelity is 0 for an empty memory and the pool's fidelity otherwise: float32 rounding that
        # differs between one scanned episode and separate step calls can leave 1e-7 of a pair in a pool
        # and flip a slot from 0 to 0.887 (seen on seed 0), so it is the one KPI not compared here.
        for name in compiled.keys() - {"mean_fidelity"}:
            np.testing.assert_allclose(stepwise[name], compiled[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_rerun_after_an_interruption_computes_only_the_missing_and_corrupt_cells(tiny_references, tmp_path, counted,
                                                                                capsys):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "random,heuristic") == 0
    assert len(counted) == 4
    first = read_results(tmp_path)["qin-gym"]
    files = sorted((tmp_path / "cells").glob("*.json"))
    files[0].unlink()  # the cell a killed run never wrote
    record = json.loads(files[1].read_text())
    record["result"]["returns"][0] += 1.0  # edited or bit-rotten: the checksum no longer matches
    files[1].write_text(json.dumps(record))
    (tmp_path / "cells" / ".half-written.json.tmp").write_text("{")  # a write killed before its rename
    counted.clear()
    assert run(tmp_path, path, "--agents", "random,heuristic") == 0
    assert len(counted) == 2
    assert "corrupt cache entry, recomputing it" in capsys.readouterr().out
    assert read_results(tmp_path)["qin-gym"] == first
    counted.clear()
    assert run(tmp_path, path, "--agents", "random,heuristic") == 0
    assert counted == []
    assert read_results(tmp_path)["metadata"]["cells"] == {"total": 4, "cached": 4, "computed": 0,
                                                           "corrupt_recomputed": 0}


def test_a_killed_run_resumes_without_recomputing_a_finished_cell(tiny_references, tmp_path, on_path, counted):
    path, _ = tiny_references
    argv = ["--out", str(tmp_path), "--references", str(path), *TINY, "--seeds", "6",
            "--agents", "my_qin_agent:SlowAgent"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(on_path), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "qin_env.bench.leaderboard", *argv], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(list(tmp_path.glob("cells/*.json"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()  # SIGKILL: no cleanup, as when a machine dies
    process.wait()
    finished = len(list(tmp_path.glob("cells/*.json")))
    assert 2 <= finished < 6, "the run was not interrupted between its cells"
    assert main(argv) == 0
    assert len(counted) == 6 - finished
    assert sorted(read_results(tmp_path)["qin-gym"][SCENARIO]["my_qin_agent:SlowAgent"]) == [
        f"seed_{k}" for k in range(6)]


@pytest.mark.parametrize("damage", ["truncated", "not json", "other cell", "too few episodes"])
def test_every_kind_of_damaged_cell_is_detected(tmp_path, damage):
    task = cells.make_task("random", None, None, SCENARIO, "0" * 16, {}, 0, 2)
    other = cells.make_task("random", None, None, SCENARIO, "0" * 16, {}, 1, 2)
    good = {"returns": [1.0, 2.0], "kpis": {"latency_s": [0.1, 0.2]}, "param_count": 0, "wall_s": 0.1}
    path = cells.write_cell(tmp_path, task, good)
    assert cells.read_cell(tmp_path, task) == good
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    elif damage == "not json":
        path.write_text("garbage")
    elif damage == "other cell":
        path.write_bytes(cells.write_cell(tmp_path, other, good).read_bytes())
    else:
        bad = dict(good, returns=[1.0])
        record = {"key": task.key, "result": bad, "sha256": cells._checksum(task.key, bad)}
        path.write_text(json.dumps(record))
    with pytest.raises(cells.CorruptCell):
        cells.read_cell(tmp_path, task)


def test_a_plug_in_agent_from_outside_the_package_is_scored(tiny_references, tmp_path, on_path):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "random", "--agent", PLUGIN,
               "--agent", f"{PLUGIN}@{on_path / 'level1.txt'}") == 0
    results = read_results(tmp_path)
    entries = results["qin-gym"][SCENARIO]
    assert set(entries) == {"random", PLUGIN, f"{PLUGIN}@level1"}
    level0, level1 = scores(results, PLUGIN), scores(results, f"{PLUGIN}@level1")
    assert len(level0) == 2 and all(np.isfinite(level0))
    assert level0 != level1  # the checkpoint after '@' reached the agent
    ranking = {row["agent"]: row for row in results["metadata"]["leaderboard"]["ranking"]}
    assert ranking[PLUGIN]["param_counts"] == [1]
    assert f"| {PLUGIN}@level1 |" in (tmp_path / "LEADERBOARD.md").read_text()
    assert PLUGIN in (tmp_path / "leaderboard.html").read_text()


def test_an_installed_entry_point_plug_in_takes_part_by_name_and_by_default(tiny_references, tmp_path, on_path):
    dist = on_path / "my_qin_plugin-0.1.dist-info"  # what `pip install` of a package declaring the entry point leaves
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-qin-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[qin_env.agents]\nmy-constant = my_qin_agent:ConstantAgent\n")
    try:
        assert "my-constant" in agents.list_agents()
        path, _ = tiny_references
        assert run(tmp_path, path, "--agents", "my-constant") == 0
        assert list(read_results(tmp_path)["qin-gym"][SCENARIO]) == ["my-constant"]
    finally:
        for file in dist.iterdir():
            file.unlink()
        dist.rmdir()


def test_a_failing_agent_is_reported_not_cached_and_the_run_exits_nonzero(tiny_references, tmp_path, on_path,
                                                                          capsys):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "random,my_qin_agent:BrokenAgent") == 1
    assert "RuntimeError: my policy is broken" in capsys.readouterr().out
    results = read_results(tmp_path)
    assert len(results["metadata"]["failed_cells"]) == 2
    assert set(results["qin-gym"][SCENARIO]) == {"random"}
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2
    assert "my policy is broken" in (tmp_path / "LEADERBOARD.md").read_text()


def test_normalisation_uses_only_the_fixed_references(tiny_references, tmp_path, on_path):
    path, _ = tiny_references
    reference = json.loads(path.read_text())["scenarios"][SCENARIO]
    assert normalise(reference["random"]["mean_return"], reference) == 0.0
    assert normalise(reference["heuristic"]["mean_return"], reference) == 1.0
    assert run(tmp_path / "alone", path, "--agents", PLUGIN) == 0
    assert run(tmp_path / "crowd", path, "--agents", f"random,heuristic,{PLUGIN}",
               "--agent", f"{PLUGIN}@{on_path / 'level1.txt'}") == 0
    alone, crowd = read_results(tmp_path / "alone"), read_results(tmp_path / "crowd")
    assert scores(alone, PLUGIN) == scores(crowd, PLUGIN)
    row = {r["agent"]: r for r in alone["metadata"]["leaderboard"]["ranking"]}[PLUGIN]
    row_crowd = {r["agent"]: r for r in crowd["metadata"]["leaderboard"]["ranking"]}[PLUGIN]
    assert (row["iqm"], row["ci_low"], row["ci_high"]) == (row_crowd["iqm"], row_crowd["ci_low"], row_crowd["ci_high"])


def test_results_json_validates_against_its_schema_and_the_schema_has_teeth(tiny_references, tmp_path):
    path, _ = tiny_references
    assert run(tmp_path, path, "--agents", "random,heuristic,vqc-ppo") == 0
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    results = read_results(tmp_path)
    validator.validate(results)
    meta = results["metadata"]
    assert meta["scenario_hashes"][SCENARIO] and meta["git_commit"] and meta["hardware"]["cpus"]
    assert "vqc-ppo" in meta["not_entered"]  # pinned entries are trained on the full-length scenario
    for broken in ({k: v for k, v in results.items() if k != "metadata"},
                   {**results, "qin-gym": {SCENARIO: {"random": {"run_a": {}}}}},
                   {**results, "qin-gym": {SCENARIO: {"random": {"seed_0": {"step_0": {"step_count": 0}}}}}}):
        assert not validator.is_valid(broken)
    for name in ("LEADERBOARD.md", "leaderboard.html", "iqm.png", "performance_profiles.png",
                 "probability_of_improvement.png"):
        assert (tmp_path / name).stat().st_size > 0
