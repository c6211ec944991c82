"""Which checkpoint an entry plays each scenario with, and the committed references and entries are current."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from qin_env.agents.checkpoint import save_checkpoint
from qin_env.bench.leaderboard import references
from qin_env.bench.leaderboard.command import QUICK_EPISODES, QUICK_SEEDS
from qin_env.bench.leaderboard.specs import ENTRIES_DIR, TRAINED_AGENTS, AgentSpec, place
from qin_env.params import config_hash, list_scenarios, load_config


def _hash(scenario: str) -> str:
    return config_hash(load_config(scenario))


def _checkpoint(path: Path, scenario: str, **metadata) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, {"w": np.zeros(3, np.float32)}, {"kind": "vqc-ppo", "scenario": scenario,
                                                                  "network": {"param_count": 3}, **metadata})


def test_trained_agents_play_their_pinned_entry_and_sit_out_scenarios_without_one(tmp_path):
    _checkpoint(tmp_path / "vqc-ppo" / "metro_qkd.qinckpt", "metro_qkd")
    spec = AgentSpec("vqc-ppo", "vqc-ppo")
    assert place(spec, "metro_qkd", _hash("metro_qkd"), tmp_path).checkpoint == str(
        tmp_path / "vqc-ppo" / "metro_qkd.qinckpt")
    missing = place(spec, "satellite_leo", _hash("satellite_leo"), tmp_path)
    assert missing.checkpoint is None
    assert "make_entries --agents vqc-ppo --scenarios satellite_leo" in missing.not_entered


def test_a_checkpoint_enters_only_the_scenario_and_configuration_it_was_trained_for(tmp_path):
    path = _checkpoint(tmp_path / "one.qinckpt", "metro_qkd")
    spec = AgentSpec("vqc-ppo@one", "vqc-ppo", str(path))
    assert place(spec, "metro_qkd", _hash("metro_qkd")).checkpoint == str(path)
    assert "trained on 'metro_qkd'" in place(spec, "repeater_chain", _hash("repeater_chain")).not_entered
    assert "config hash" in place(spec, "metro_qkd", "0123456789abcdef").not_entered


def test_a_folder_of_per_scenario_checkpoints_or_train_outputs_is_searched_per_scenario(tmp_path):
    _checkpoint(tmp_path / "metro_qkd.qinckpt", "metro_qkd")
    _checkpoint(tmp_path / "repeater_chain" / "checkpoint_final.qinckpt", "repeater_chain")
    spec = AgentSpec("mlp-ppo@x", "mlp-ppo", str(tmp_path))
    assert place(spec, "metro_qkd", _hash("metro_qkd")).checkpoint.endswith("metro_qkd.qinckpt")
    assert place(spec, "repeater_chain", _hash("repeater_chain")).checkpoint.endswith(
        "repeater_chain/checkpoint_final.qinckpt")
    assert "no checkpoint for satellite_leo" in place(spec, "satellite_leo", _hash("satellite_leo")).not_entered


def test_agents_without_checkpoints_play_every_scenario():
    assert place(AgentSpec("heuristic", "heuristic"), "metro_qkd", _hash("metro_qkd")).checkpoint is None
    assert place(AgentSpec("heuristic", "heuristic"), "metro_qkd", _hash("metro_qkd")).not_entered is None


def test_committed_references_cover_every_scenario_as_it_is_now():
    path = references.default_path()
    table = references.load(path)
    for scenario in list_scenarios():
        entry = references.for_scenario(table, scenario, _hash(scenario), {}, path)  # raises when stale
        assert entry["seeds"] == list(range(references.REFERENCE_SEEDS))
        assert entry["episodes"] == references.REFERENCE_EPISODES
        assert entry["heuristic"]["mean_return"] > entry["random"]["mean_return"]
        quick = entry["checks"][str(QUICK_EPISODES)]  # the --quick cells, for check_drift
        assert sorted(quick["heuristic"]) == [str(k) for k in range(QUICK_SEEDS)]


@pytest.mark.parametrize("agent", TRAINED_AGENTS)
def test_committed_entries_fit_the_scenarios_as_they_are_now(agent):
    pinned = sorted((ENTRIES_DIR / agent).glob("*.qinckpt"))
    manifest = json.loads((ENTRIES_DIR / "manifest.json").read_text())["entries"].get(agent, {})
    assert sorted(p.stem for p in pinned) == sorted(manifest)
    for path in pinned:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest[path.stem]["sha256"]
        placement = place(AgentSpec(agent, agent), path.stem, _hash(path.stem))
        assert placement.checkpoint == str(path), placement.not_entered


def test_drift_is_checked_on_the_reference_and_the_quick_protocol_cells(tmp_path):
    reference = {"episodes": 32, "overrides": {}, "random": {"per_seed": {"0": -30.0}},
                 "heuristic": {"per_seed": {"0": 10.0}},
                 "checks": {"4": {"random": {"0": -31.0}, "heuristic": {"0": 10.5}}}}
    check = references.check_drift
    check(reference, "heuristic", 0, 32, 10.0, "metro_qkd", tmp_path)
    check(reference, "heuristic", 0, 4, 10.5, "metro_qkd", tmp_path)
    check(reference, "heuristic", 3, 4, 99.0, "metro_qkd", tmp_path)  # no stored cell to compare with
    check(reference, "vqc-ppo", 0, 32, 99.0, "metro_qkd", tmp_path)  # not a reference agent
    for episodes, value in ((32, 10.01), (4, 10.6)):
        with pytest.raises(references.StaleReferences, match="environment's code changed"):
            check(reference, "heuristic", 0, episodes, value, "metro_qkd", tmp_path)
