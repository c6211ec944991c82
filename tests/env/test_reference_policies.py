"""Reference policies of the benchmark: noop sends nothing, a constant is legal, the searches never lose ground,
and the oracle alone reads the hidden state."""

import json

import jax
import numpy as np
import pytest
from conftest import rollout

from qin_env import core
from qin_env.bench import best_constant
from qin_env.params import load_params
from qin_env.policies import (
    CONSTANT_FIELDS,
    REGIMES,
    constant_policy,
    heuristic_policy,
    noop_levels,
    noop_policy,
    oracle_policy,
)
from qin_env.rollout import HIDDEN, Transition, act
from qin_env.rollout import rollout as episode


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
    assert "| metro_qkd | -1.00 | 0.50 | 2.00 | 3.00 | - | -0.250 | - |" in capsys.readouterr().out
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        best_constant.main(["--from-json", str(tmp_path / "missing.json")])


def _played(transition: Transition) -> dict:
    return {"actions": transition.actions, "tap": transition.state.tap}


def test_the_oracle_plays_the_row_of_each_links_hidden_regime_and_no_other_policy_sees_it():
    # a stationary Eve taps link 0 from the first slot on; no surges: link 0 is in regime 1, the others in 0
    params = load_params("metro_qkd", {"episode.max_steps": 12, "eve.mode": "stationary", "eve.links": [0],
                                       "traffic.surge_start_prob": 0.0})
    table = np.zeros((REGIMES, params.n_aggregators, len(CONSTANT_FIELDS)), np.int32)
    table[0] = best_constant.field_sizes(params) // 2  # calm: middle levels
    table[1] = noop_levels(params)  # tapped: no round
    records, _ = jax.jit(lambda k: episode(oracle_policy(table, params), params, k, _played))(jax.random.key(3))
    episodes = np.asarray(records["actions"]["orchestrator"]).reshape(12, params.n_aggregators, 2)[..., 0]
    assert np.all(np.asarray(records["tap"])[:, 0] > 0) and not np.any(np.asarray(records["tap"])[:, 1:])
    assert np.all(episodes[1:, 0] == 0)  # tapped since the first slot: the oracle sends nothing on link 0
    assert np.all(episodes[0] == table[0, :, 0]) and np.all(episodes[1:, 1:] == table[0, 1:, 0])

    seen = {}

    def blind(key, obs, p):
        seen["blind"] = set(obs)
        return heuristic_policy(key, obs, p)

    def privileged(key, obs, p):
        seen["privileged"] = set(obs)
        return heuristic_policy(key, obs, p)

    privileged.privileged = True
    obs, state = core.reset(jax.random.key(0), params)
    for policy in (blind, privileged):
        act(policy, jax.random.key(1), obs, state, params)
    assert seen["blind"] == set(obs) and seen["privileged"] == {*obs, HIDDEN}
    assert set(core.privileged_view(state, params)) == set(core.HIDDEN_FIELDS)


def test_the_searches_never_end_below_their_start_and_the_oracle_tunes_only_the_regimes_it_meets():
    params = load_params("metro_qkd", {"episode.max_steps": 20, "eve.mode": "none", "traffic.surge_start_prob": 0.0})
    sizes = best_constant.field_sizes(params)
    found = best_constant.search(params, episodes=2, sweeps=1, progress=False)
    assert np.all(np.diff(found["sweep_returns"]) >= 0)
    assert found["evaluations"] == int(np.prod(sizes[0, :3]) + sizes.sum())
    oracle = best_constant.oracle_search(params, np.asarray(found["levels"]), episodes=2, sweeps=1, progress=False)
    shares = np.asarray(oracle["regime_shares"])
    assert shares[0].tolist() == [1.0] * params.n_aggregators and not shares[1:].any()  # no Eve, no surge
    assert oracle["evaluations"] == 1 + int(sizes.sum())  # regime 0's coordinates only
    # the oracle starts as the constant in every regime: on the same episodes it scores what the search found
    np.testing.assert_allclose(oracle["sweep_returns"][0], found["search_return"], rtol=1e-6)
    assert np.all(np.diff(oracle["sweep_returns"]) >= 0)
    levels = np.asarray(oracle["levels"])
    np.testing.assert_array_equal(levels[1:], np.repeat(np.asarray(found["levels"])[None], REGIMES - 1, axis=0))


def test_the_oracle_agent_plays_its_pin_only_through_rollouts_and_sits_out_without_one(tmp_path):
    from qin_env import agents
    from qin_env.agents.baselines import best_constants_path, pinned_oracle
    from qin_env.bench.leaderboard.specs import AgentSpec, place
    from qin_env.params import config_hash, load_config

    path = tmp_path / "pins.json"
    best_constant.pin([{"scenario": "metro_qkd", "config_hash": "h", "levels": [[0] * 8] * 3}], path)
    with pytest.raises(LookupError, match="--scenarios metro_qkd --oracle --write"):
        pinned_oracle("metro_qkd", "h", path)
    spec = AgentSpec("oracle", "oracle")
    assert "search it again with" in place(spec, "metro_qkd", "0" * 16).not_entered
    assert place(spec, "metro_qkd", config_hash(load_config("metro_qkd"))).not_entered is None
    agent = agents.make("oracle", scenario="metro_qkd")
    pinned = json.loads(best_constants_path().read_text())["scenarios"]["metro_qkd"]["oracle"]
    np.testing.assert_array_equal(agent.levels, pinned["levels"])
    assert agent.policy_fn.privileged
    with pytest.raises(TypeError, match="privileged_view"):
        agent.act(jax.random.key(0), core.reset(jax.random.key(0), agent.params)[0])
