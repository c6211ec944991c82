"""`qin perf`: its figures from raw measurements, their targets, the table and the files it writes."""

import json

import pytest

from qin_env.bench import cli, perf

RAW = {
    "env_reference": {"steps_per_s": 4000.0},
    "env_face": {"steps_per_s": 3800.0},
    "env_batched": {"steps_per_s": 1_000_000.0},
    "env_federated": {"steps_per_s": 200_000.0},
    "env_vector": {"num_envs": 256, "vector": {"steps_per_s": 30_000.0}, "dummy": {"steps_per_s": 1_200.0}},
    "scaling": {"batch": 256, "cost_exponent": 0.9,
                "rows": [{"nodes": 11, "steps_per_s": 5e5}, {"nodes": 1011, "steps_per_s": 1e4}]},
    "circuit_eager": {"evals_per_s": 40.0},
    "circuit_qnode": {"evals_per_s": 200_000.0},
    "circuit_qnode_default_qubit": {"evals_per_s": 100_000.0},
    "circuit_fused": {"evals_per_s": 1_000_000.0},
    "train_sb3": {"steps_per_s": 500.0},
    "train_mlp": {"steps_per_s": 15_000.0},
    "train_vqc": {"steps_per_s": 12_000.0},
}


def test_ratios_are_measured_over_their_references():
    ratios = perf._ratios(RAW)
    assert ratios == pytest.approx({"env_batched_ratio": 250.0, "env_federated_ratio": 50.0,
                                    "env_face_ratio": 0.95, "env_vector_ratio": 25.0, "circuit_ratio": 5000.0,
                                    "circuit_limit_ratio": 0.2, "train_ratio": 30.0, "train_vqc_ratio": 24.0,
                                    "scale_exponent": 0.9})
    assert set(ratios) == set(perf.TARGETS)


@pytest.mark.parametrize(("key", "value", "ok"), [
    ("env_face_ratio", 1.0, True), ("env_face_ratio", 0.999, False),
    ("scale_exponent", 1.1, True), ("scale_exponent", 1.2, False),
])
def test_targets_compare_in_the_right_direction(key, value, ok):
    assert perf.met(key, value) is ok


def test_cli_writes_json_table_and_plot(monkeypatch, tmp_path, capsys):
    interleaved = {"reference": RAW["env_reference"], "face": RAW["env_face"], "ratio_per_repeat": [0.95]}
    raw = {k: v for k, v in RAW.items() if k not in ("env_reference", "env_face")}
    plan = [("env_face_and_reference", lambda: dict(interleaved)), *((n, lambda v=v: v) for n, v in raw.items())]
    monkeypatch.setattr(perf, "_plan", lambda quick: plan)
    out = tmp_path / "perf.json"
    assert cli.main(["perf", "--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["env_batched_ratio"] == pytest.approx(250.0)
    assert result["entries"]["env_face_ratio"]["met"] is False
    assert result["entries"]["train_ratio"]["met"] is True
    assert result["quick"] is True and result["repeats"] >= 5
    assert {"jax", "pennylane"} <= set(result["versions"]) and result["machine"]["cpus"] >= 1
    assert (tmp_path / "perf_steps_vs_nodes.png").stat().st_size > 0
    table = capsys.readouterr().out
    assert all(f"`{key}`" in table for key in perf.TARGETS)
    assert "| `env_face_ratio` | 0.95 | >= 1 | **no** |" in table


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_cli_refuses_a_folder_as_output_path(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["perf", flag, str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"{flag} {tmp_path} is a folder; give a file path" in capsys.readouterr().err
