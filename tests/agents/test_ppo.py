"""IPPO / MAPPO / REINFORCE trainers and the padded multi-agent stack they run on."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core, load_params
from qin_env.agents import networks
from qin_env.agents.multiagent import AgentStack, action_masks_from_obs
from qin_env.agents.ppo import PPOConfig, evaluate_policy, make_policy_fn, make_train, network_param_count
from qin_env.policies import heuristic_policy, random_policy

SHORT = (("episode.max_steps", 50),)
TINY = PPOConfig(scenario="many_to_one_fusion", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                 update_epochs=2, num_minibatches=2)


def _finite(metrics: dict) -> bool:
    return all(np.all(np.isfinite(np.asarray(v))) for k, v in metrics.items() if k != "episode_return")


# ---------------------------------------------------------------- the padded stack

def test_stack_layout_covers_the_largest_agent():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    assert stack.names == ("orchestrator", "aggregator_0", "aggregator_1", "aggregator_2")
    assert (stack.obs_dim, stack.n_components, stack.n_choices) == (32, 6, 9)
    assert stack.n_logits == 54


def test_unknown_learner_is_refused():
    with pytest.raises(ValueError, match="learners"):
        AgentStack.from_params(load_params("metro_qkd"), ["orchestrator", "eve"])


def test_padding_round_trip_is_exact():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    obs, _ = core.reset(jax.random.key(0), params)
    actions = random_policy(jax.random.key(1), obs, params)
    padded = stack.pad_actions(actions)
    back = stack.unpad_actions(padded)
    assert all(np.array_equal(back[n], actions[n]) for n in stack.names)
    x = np.asarray(stack.pad_obs(obs))
    for i, n in enumerate(stack.names):
        size = core.obs_size(params, n)
        assert np.array_equal(x[i, :size], np.asarray(obs[n])) and not x[i, size:].any()


def test_padded_choices_get_no_probability_mass():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    _, state = core.reset(jax.random.key(0), params)
    mask = stack.masks(core.action_masks(state, params))
    logits = 10.0 * jax.random.normal(jax.random.key(2), (stack.n_agents, stack.n_logits))
    probs = np.asarray(stack.probabilities(logits, mask))
    grid_mask = np.asarray(mask).reshape(probs.shape)
    assert np.all(probs[~grid_mask] == 0.0)
    padded_component = ~stack.component_mask()
    assert np.all(probs[padded_component][:, 0] == 1.0)
    actions = stack.sample(jax.random.key(3), jnp.broadcast_to(logits, (512, *logits.shape)), mask)
    assert np.all(np.asarray(actions)[:, padded_component] == 0)


def test_log_prob_and_entropy_match_the_unpadded_heads():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    _, state = core.reset(jax.random.key(0), params)
    env_masks = core.action_masks(state, params)
    mask = stack.masks(env_masks)
    logits = jax.random.normal(jax.random.key(4), (stack.n_agents, stack.n_logits))
    actions = stack.sample(jax.random.key(5), logits, mask)
    log_p, entropy = stack.log_prob_entropy(logits, mask, actions)
    grid = logits.reshape(stack.n_agents, stack.n_components, stack.n_choices)
    for i, (name, nvec) in enumerate(zip(stack.names, stack.nvecs, strict=True)):
        flat = jnp.concatenate([grid[i, j, :n] for j, n in enumerate(nvec)])
        ref_p, ref_h = networks.log_prob_entropy(flat, nvec, actions[i, : len(nvec)], env_masks[name])
        np.testing.assert_allclose([log_p[i], entropy[i]], [ref_p, ref_h], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scenario", ["metro_qkd", "teacher_student"])
def test_masks_rebuilt_from_observations_match_the_env(scenario):
    params = load_params(scenario)
    obs, state = core.reset(jax.random.key(0), params)
    step = jax.jit(lambda k, s, a: core.step(k, s, a, params))
    for key in jax.random.split(jax.random.key(1), 30):
        rebuilt, truth = action_masks_from_obs(obs, params), core.action_masks(state, params)
        assert all(np.array_equal(rebuilt[n], truth[n]) for n in truth)
        obs, state, *_ = step(key, state, random_policy(key, obs, params))


# ---------------------------------------------------------------- training

def test_param_count_is_one_learners_network():
    stack = AgentStack.from_params(load_params("metro_qkd"))
    net = networks.mlp_actor_critic(stack.obs_dim, stack.n_logits, (64, 64))
    assert network_param_count(PPOConfig()) == networks.param_count(net.init(jax.random.key(0)))


def test_train_is_deterministic_for_a_fixed_key():
    train = jax.jit(make_train(TINY))
    a, b = train(jax.random.key(7)), train(jax.random.key(7))
    assert jax.tree.all(jax.tree.map(lambda x, y: np.array_equal(x, y, equal_nan=True), a, b))
    assert _finite(a["metrics"])


def test_vmap_trains_several_seeds_at_once():
    out = jax.jit(jax.vmap(make_train(TINY)))(jax.random.split(jax.random.key(0), 2))
    n_updates = TINY.total_timesteps // (TINY.num_envs * TINY.num_steps)
    assert out["metrics"]["actor_loss"].shape == (2, n_updates)
    assert _finite(out["metrics"])
    first = jax.tree.leaves(out["params"])[0]
    assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("variant", [
    {"algorithm": "mappo", "share_parameters": True},
    {"algorithm": "reinforce", "learners": ("orchestrator",), "num_steps": 50, "total_timesteps": 400,
     "overrides": SHORT},
])
def test_other_algorithms_produce_finite_metrics(variant):
    config = dataclasses.replace(TINY, **variant)
    out = jax.jit(make_train(config))(jax.random.key(0))
    assert _finite(out["metrics"])
    assert jax.tree.all(jax.tree.map(lambda x: bool(np.all(np.isfinite(x))), out["params"]))


def test_ippo_improves_the_team_return_from_random_init():
    config = PPOConfig(scenario="metro_qkd", overrides=SHORT, num_envs=32, num_steps=50,
                       total_timesteps=32 * 50 * 20, update_epochs=4, num_minibatches=4)
    out = jax.jit(make_train(config))(jax.random.key(0))
    returns = np.asarray(out["metrics"]["episode_return"])  # one episode per rollout per env
    assert returns[-3:].mean() > returns[:3].mean() + 3.0
    trained = make_policy_fn(config, out["params"])
    result = evaluate_policy(trained, config.scenario, dict(config.overrides), episodes=8, key=jax.random.key(1))
    assert np.isfinite(result["mean_return"]) and result["mean_return"] > returns[:3].mean()


# ---------------------------------------------------------------- evaluation

def test_evaluate_policy_of_the_heuristic_matches_a_plain_rollout():
    overrides = {"episode.max_steps": 20}
    params = load_params("metro_qkd", overrides)
    key = jax.random.key(3)
    result = evaluate_policy(heuristic_policy, "metro_qkd", overrides, episodes=2, key=key)
    step = jax.jit(lambda k, s, a: core.step(k, s, a, params))
    for e, k in enumerate(jax.random.split(key, 2)):
        k_reset, k_run = jax.random.split(k)
        obs, state = core.reset(k_reset, params)
        total = 0.0
        for k_t in jax.random.split(k_run, params.max_steps):
            k_act, k_step = jax.random.split(k_t)
            obs, state, rewards, *_ = step(k_step, state, heuristic_policy(k_act, obs, params))
            total += float(rewards["orchestrator"])
        np.testing.assert_allclose(result["returns"][e], total, rtol=1e-5, atol=1e-5)
    assert result["mean_return"] == pytest.approx(float(np.mean(result["returns"])))


def test_vqc_actor_critic_trains_through_the_same_stack():
    pytest.importorskip("qin_env.agents.vqc")
    one_update = TINY.num_envs * TINY.num_steps
    config = dataclasses.replace(TINY, network="vqc", n_qubits=3, n_layers=1, total_timesteps=one_update)
    out = jax.jit(make_train(config))(jax.random.key(0))
    assert _finite(out["metrics"])
    assert network_param_count(config) < network_param_count(dataclasses.replace(config, network="mlp"))
