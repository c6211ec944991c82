"""The functional core: pure, compiled, batched, deterministic, and always finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import constant_actions, rollout

from qin_env import core
from qin_env.params import load_params
from qin_env.policies import heuristic_policy, random_policy

KPIS = ("latency_s", "slo_violation", "leaked_bits", "secret_key_bits", "qber", "eve_detected", "epr_pairs",
        "mean_fidelity", "budget_violation", "model_quality", "dropped_bits")


@pytest.fixture(scope="module")
def params():
    return load_params("metro_qkd")


def _tree_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_every_kpi_is_reported_with_a_documented_unit(params):
    _obs, state = core.reset(jax.random.PRNGKey(0), params)
    _, _, _, _, _, infos = core.step(jax.random.PRNGKey(1), state, constant_actions(params), params)
    for agent in core.agent_names(params):
        kpi = infos[agent]["kpi"]
        assert set(KPIS) <= set(kpi)
        assert all(jnp.shape(v) == () and jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating) for v in kpi.values())
    assert set(KPIS) <= set(core.KPI_UNITS)


def test_same_key_same_actions_give_bit_identical_results(params):
    a, _ = rollout(params, jax.random.PRNGKey(3), 40, policy=random_policy)
    b, _ = rollout(params, jax.random.PRNGKey(3), 40, policy=random_policy)
    c, _ = rollout(params, jax.random.PRNGKey(4), 40, policy=random_policy)
    assert _tree_equal(a, b)
    assert not _tree_equal(a, c)


def test_jit_matches_eager_step(params):
    _obs, state = core.reset(jax.random.PRNGKey(0), params)
    acts = constant_actions(params)
    eager = core.step(jax.random.PRNGKey(5), state, acts, params)
    compiled = jax.jit(core.step)(jax.random.PRNGKey(5), state, acts, params)
    for x, y in zip(jax.tree.leaves(eager), jax.tree.leaves(compiled), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-5, atol=1e-5)


def test_vmap_over_keys_equals_one_by_one(params):
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    _obs_b, state_b = jax.vmap(core.reset, in_axes=(0, None))(keys, params)
    acts = jax.tree.map(lambda x: jnp.broadcast_to(x, (4, *x.shape)), constant_actions(params))
    out_b = jax.jit(jax.vmap(core.step, in_axes=(0, 0, 0, None)))(keys, state_b, acts, params)
    for i in range(4):
        _obs, state = core.reset(keys[i], params)
        single = jax.jit(core.step)(keys[i], state, constant_actions(params), params)
        for x, y in zip(jax.tree.leaves(out_b), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(np.asarray(x[i], np.float64), np.asarray(y, np.float64), rtol=1e-5, atol=1e-4)


def test_episode_truncates_at_max_steps_and_never_terminates():
    params = load_params("metro_qkd", {"episode.max_steps": 5})
    _, state = core.reset(jax.random.PRNGKey(0), params)
    for t in range(5):
        _obs, state, _, terms, truncs, _ = core.step(jax.random.PRNGKey(t), state, constant_actions(params), params)
        assert not bool(terms["__all__"])
        assert bool(truncs["orchestrator"]) == (t == 4)


def test_auto_reset_restarts_and_keeps_the_final_observation():
    params = load_params("metro_qkd", {"episode.max_steps": 3})
    obs, state = core.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(core.step, static_argnames="auto_reset")
    for t in range(3):
        obs, state, _, _, truncs, infos = step(jax.random.PRNGKey(t), state, constant_actions(params), params,
                                               auto_reset=True)
    assert bool(truncs["__all__"])
    assert int(state.t) == 0
    final = infos["orchestrator"]["final_observation"]
    assert float(final[-2]) == pytest.approx(1.0)  # time fraction of the last observation
    assert float(obs["orchestrator"][-2]) == 0.0


def test_observations_are_float32_inside_the_unit_box(params):
    (_, _kpi), state = rollout(params, jax.random.PRNGKey(0), 30, policy=random_policy)
    obs = core.observations(state, params)
    for agent, o in obs.items():
        assert o.dtype == jnp.float32 and o.shape == (core.obs_size(params, agent),)
        assert bool(jnp.all((o >= 0) & (o <= 1)))


def test_action_masks_match_the_action_spaces(params):
    _, state = core.reset(jax.random.PRNGKey(0), params)
    masks = core.action_masks(state.model_qubits, params)
    for agent in core.agent_names(params):
        assert masks[agent].shape == (sum(core.action_nvec(params, agent)),)
    nvec = core.action_nvec(params, "aggregator_2")
    parts = dict(zip(core.AGGREGATOR_COMPONENTS, np.split(np.asarray(masks["aggregator_2"]), np.cumsum(nvec)[:-1]),
                     strict=True))
    assert parts["channel"].tolist() == [True, True, False, False, False]  # aggregator 2 is legacy classical


def test_scan_rollout_under_vmap_trains_thousands_of_copies(params):
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    out = jax.vmap(lambda k: rollout(params, k, 10, policy=heuristic_policy)[0][0])(keys)
    assert out.shape == (64, 10)
    assert bool(jnp.all(jnp.isfinite(out)))


def test_named_action_places_levels_by_component_name_and_refuses_unknown_ones():
    params = load_params("metro_qkd")
    action = core.named_action(params, "aggregator_0", channel=core.QKD, memory_qubits=2)
    assert action.tolist() == [core.QKD, 0, 0, 0, 2, 0]
    orchestrator = core.named_action(params, "orchestrator", episodes=3, model_qubits=1)
    assert orchestrator.tolist() == [3, 1] * params.n_aggregators
    with pytest.raises(ValueError, match="aggregator_0 has no action component width; its components: channel"):
        core.named_action(params, "aggregator_0", width=1)
    with pytest.raises(ValueError, match=r"orchestrator episodes=9 is outside the allowed range \[0, 4\]"):
        core.named_action(params, "orchestrator", episodes=9)


@pytest.mark.parametrize("change, message", [
    (lambda acts: acts | {"aggregator_0": jnp.zeros(1, jnp.int32)},
     r"action of aggregator_0 has shape \(1,\); its space needs shape \(6,\)"),
    (lambda acts: acts | {"eve": jnp.zeros(2, jnp.int32)}, r"unknown: eve"),
    (lambda acts: {k: v for k, v in acts.items() if k != "aggregator_1"}, r"missing: aggregator_1"),
])
def test_actions_of_the_wrong_shape_or_agents_are_refused_when_the_step_is_traced(change, message):
    params = load_params("metro_qkd")
    _, state = core.reset(jax.random.PRNGKey(0), params)
    with pytest.raises(ValueError, match=message):
        jax.jit(core.step)(jax.random.PRNGKey(1), state, change(constant_actions(params)), params)
