"""Reference policies of the benchmark: noop sends nothing, a constant is legal, the search never loses ground."""

import json

import jax
import numpy as np
import pytest
from conftest import rollout

from qin_env import core
from qin_env.bench import best_constant
from qin_env.params import load_params
from qin_env.policies import CONSTANT_FIELDS, constant_policy, noop_policy


def test_noop_trains_sends_and_throttles_nothing():
    params = load_params("metro_qkd")
    (_, kpi), _ = rollout(params, jax.random.PRNGKey(0), 40, policy=noop_policy)
    for name in ("update_bits", "pairs_used", "delivered_updates", "leaked_bits", "throttled_bits", "latency_s"):
        assert not np.any(np.asarray(kpi[name])), name
    assert np.all(np.diff(np.asarray(kpi["model_quality"])) <= 0.0)  # no round, no learning: it only decays


def test_a_constant_beyond_the_masks_plays_as_the_largest_allowed_level():
    params = load_params("metro_qkd")  # aggregator 2 is a legacy classical node
    sizes = best_constant.field_sizes(params)
    greedy = sizes - 1  # the top level of every component, for every aggregator
    obs, _ = core.reset(jax.random.PRNGKey(0), params)
    actions = constant_policy(greedy, params)(None, obs, params)
    masks = core.action_masks(np.zeros(params.n_aggregators), params, np)
    for name, action in actions.items():
        bounds = np.cumsum([0, *core.action_nvec(params, name)])
        assert all(masks[name][lo + a] for lo, a in zip(bounds[:-1], np.asarray(action), strict=True)), name
    channel = core.AGGREGATOR_COMPONENTS.index("channel")
    assert actions["aggregator_2"][channel] == 1  # pqc, the highest channel a classical node may use
    assert actions["aggregator_0"][channel] == sizes[0, CONSTANT_FIELDS.index("channel")] - 1


def test_the_search_never_ends_below_its_start_and_reports_every_evaluation():
    params = load_params("metro_qkd", {"episode.max_steps": 20})
    found = best_constant.search(params, episodes=2, sweeps=1, progress=False)
    sizes = best_constant.field_sizes(params)
    assert np.all(np.diff(found["sweep_returns"]) >= 0)
    assert found["evaluations"] == int(np.prod(sizes[0, :3]) + sizes.sum())
    again = best_constant.evaluator(params, 2, best_constant.SEARCH_SEED)(np.asarray([found["levels"]]))
    np.testing.assert_allclose(again[0], found["search_return"], rtol=1e-6)


def test_a_missing_or_stale_pin_is_refused_with_the_command_that_remakes_it(tmp_path):
    from qin_env.agents.baselines import pinned_constant

    path = tmp_path / "pins.json"
    with pytest.raises(LookupError, match="--scenarios metro_qkd --write"):
        pinned_constant("metro_qkd", "abc", path)
    best_constant.pin([{"scenario": "metro_qkd", "config_hash": "old", "levels": [[0] * 8] * 3, "seconds": 1.0}], path)
    with pytest.raises(LookupError, match=r"config hash old .* not this abc"):
        pinned_constant("metro_qkd", "abc", path)
    assert pinned_constant("metro_qkd", "old", path)["levels"] == [[0] * 8] * 3


def test_the_best_constant_agent_plays_its_pin_and_sits_out_scenarios_without_one():
    from qin_env import agents
    from qin_env.agents.baselines import best_constants_path
    from qin_env.bench.leaderboard.specs import AgentSpec, place
    from qin_env.params import config_hash, load_config

    pins = json.loads(best_constants_path().read_text())["scenarios"]
    agent = agents.make("best-constant", scenario="metro_qkd")
    np.testing.assert_array_equal(agent.levels, pins["metro_qkd"]["levels"])
    spec = AgentSpec("best-constant", "best-constant")
    assert place(spec, "metro_qkd", config_hash(load_config("metro_qkd"))).not_entered is None
    stale = place(spec, "metro_qkd", "0" * 16).not_entered  # the scenario as it is no longer
    assert "search it again with python -m qin_env.bench.best_constant --scenarios metro_qkd --write" in stale


def test_the_headroom_table_and_plot_redraw_from_an_earlier_json(tmp_path, capsys):
    rows = [{"scenario": "metro_qkd", "noop": -1.0, "random": 0.5, "heuristic": 2.0, "best_constant": 3.0,
             "heuristic_gain_over_span": -0.25, "check_episodes": 4}]
    source = tmp_path / "rows.json"
    source.write_text(json.dumps({"rows": rows}))
    best_constant.main(["--from-json", str(source), "--plot", str(tmp_path / "h.png"), "--scenarios", "metro_qkd"])
    assert "| metro_qkd | -1.00 | 0.50 | 2.00 | 3.00 | -0.250 |" in capsys.readouterr().out
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        best_constant.main(["--from-json", str(tmp_path / "missing.json")])
