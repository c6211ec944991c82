"""IPPO / MAPPO / REINFORCE trainers and the padded multi-agent stack they run on.

Compiling a trainer costs far more than running it, so every claim about an IPPO run reads one
module-scoped run (`ippo_run`: two seeds trained at once); the other algorithms and the circuit
network each compile once, at the smallest size that still trains.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core, load_params
from qin_env.agents import networks
from qin_env.agents.multiagent import AgentStack
from qin_env.agents.ppo import PPOConfig, evaluate_policy, make_policy_fn, make_train, network_param_count
from qin_env.policies import heuristic_policy, random_policy

SHORT = (("episode.max_steps", 50),)
# IPPO on 50-slot metro_qkd episodes: every rollout is one whole episode, so each update's
# `episode_return` is the return of the policy it rolled out with.
LEARNING = PPOConfig(scenario="metro_qkd", overrides=SHORT, num_envs=16, num_steps=50,
                     total_timesteps=16 * 50 * 10, update_epochs=4, num_minibatches=2, lr=1e-3)
SEEDS = 2
# Return gain from the first three updates to the last three that counts as learning. Measured on
# six seeds of environment version 1: LEARNING gains 1.55-2.85, and LEARNING at learning rate 0 within ±0.35.
LEARNING_MARGIN = 1.0
# The smallest run that exercises an algorithm end to end: one aggregator, one rollout, one epoch.
TINY = PPOConfig(scenario="many_to_one_fusion", num_envs=2, num_steps=8, total_timesteps=2 * 8,
                 update_epochs=1, num_minibatches=1)
# Agents of two action components (eve) beside six-component ones, and a classical aggregator whose
# quantum channels the env masks: every kind of padding and masking the stack handles.
MIXED = "adversarial_eve"
step = jax.jit(core.step)


class Run(NamedTuple):
    """A compiled `train` over a batch of seeds, the keys it ran on and what it returned."""

    train: Callable[[jax.Array], dict]
    keys: jax.Array
    out: dict


@pytest.fixture(scope="module")
def ippo_run() -> Run:
    """LEARNING trained for SEEDS seeds at once under vmap; every IPPO test below reads it."""
    train = jax.jit(jax.vmap(make_train(LEARNING)))
    keys = jax.random.split(jax.random.key(0), SEEDS)
    return Run(train, keys, train(keys))


def _finite(metrics: dict) -> bool:
    """All metrics finite, but `episode_return`, which is nan until an episode has ended."""
    return all(np.all(np.isfinite(np.asarray(v))) for k, v in metrics.items() if k != "episode_return")


def _return_gain(episode_return: np.ndarray) -> np.ndarray:
    """Mean return of the last three updates minus that of the first three, per seed."""
    return episode_return[..., -3:].mean(-1) - episode_return[..., :3].mean(-1)


@functools.cache
def _mixed_params_and_env_masks():
    """MIXED's params and the env's own action masks (`infos[a]["action_mask"]`) one random slot in."""
    params = load_params(MIXED, dict(SHORT))
    obs, state = core.reset(jax.random.key(0), params)
    _, _, _, _, _, infos = step(jax.random.key(1), state, random_policy(jax.random.key(2), obs, params), params)
    return params, {name: infos[name]["action_mask"] for name in core.agent_names(params)}


# ---------------------------------------------------------------- the padded stack

def test_stack_layout_covers_the_largest_agent():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    assert stack.names == tuple(core.agent_names(params))
    assert stack.obs_dim == core.obs_size(params, "orchestrator")  # 10 fields per aggregator, the longest
    assert stack.n_components == len(core.AGGREGATOR_COMPONENTS)
    assert stack.n_choices == params.memory_levels  # 0..qubit_budget memory qubits, the widest component
    assert stack.n_logits == stack.n_components * stack.n_choices


def test_unknown_learner_is_refused():
    with pytest.raises(ValueError, match="learners"):
        AgentStack.from_params(load_params("metro_qkd"), ["orchestrator", "eve"])


def test_padded_actions_round_trip_exactly():
    stack = AgentStack.from_params(load_params("metro_qkd"))
    rng = np.random.default_rng(0)
    actions = {name: rng.integers(0, nvec, size=(64, len(nvec)))  # every value of every component
               for name, nvec in zip(stack.names, stack.nvecs, strict=True)}
    back = stack.unpad_actions(stack.pad_actions(actions))
    for name in stack.names:
        np.testing.assert_array_equal(np.asarray(back[name]), actions[name])


def test_padded_observations_keep_each_agents_values_and_zero_the_rest():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    obs, _ = core.reset(jax.random.key(0), params)
    x = np.asarray(stack.pad_obs(obs))
    for i, name in enumerate(stack.names):
        size = core.obs_size(params, name)
        np.testing.assert_array_equal(x[i, :size], np.asarray(obs[name]))
        assert not x[i, size:].any()


def test_masked_and_padded_choices_get_no_probability_mass():
    params, env_masks = _mixed_params_and_env_masks()
    stack = AgentStack.from_params(params)
    mask = np.asarray(stack.masks(env_masks)).reshape(stack.n_agents, stack.n_components, stack.n_choices)
    static = stack.static_mask().reshape(mask.shape)
    assert (static & ~mask).any()  # the classical aggregator's quantum channels: the env masks real choices
    logits = 10.0 * jax.random.normal(jax.random.key(2), (stack.n_agents, stack.n_logits))
    probs = np.asarray(stack.probabilities(logits, mask.reshape(stack.n_agents, -1)))
    assert np.all(probs[~mask] == 0.0)


def test_padded_components_always_take_choice_zero():
    params, env_masks = _mixed_params_and_env_masks()
    stack = AgentStack.from_params(params)
    mask = stack.masks(env_masks)
    padded_component = ~stack.component_mask()
    assert padded_component.any()  # eve's two components leave four padded
    logits = 10.0 * jax.random.normal(jax.random.key(2), (stack.n_agents, stack.n_logits))
    probs = np.asarray(stack.probabilities(logits, mask))
    np.testing.assert_array_equal(probs[padded_component][:, 0], 1.0)
    actions = stack.sample(jax.random.key(3), jnp.broadcast_to(logits, (512, *logits.shape)), mask)
    assert np.all(np.asarray(actions)[:, padded_component] == 0)


def test_log_prob_and_entropy_match_the_unpadded_heads():
    params, env_masks = _mixed_params_and_env_masks()
    stack = AgentStack.from_params(params)
    mask = stack.masks(env_masks)
    logits = jax.random.normal(jax.random.key(4), (stack.n_agents, stack.n_logits))
    actions = stack.sample(jax.random.key(5), logits, mask)
    log_p, entropy = stack.log_prob_entropy(logits, mask, actions)
    grid = logits.reshape(stack.n_agents, stack.n_components, stack.n_choices)
    for i, (name, nvec) in enumerate(zip(stack.names, stack.nvecs, strict=True)):
        flat = jnp.concatenate([grid[i, j, :n] for j, n in enumerate(nvec)])
        ref_p, ref_h = networks.log_prob_entropy(flat, nvec, actions[i, : len(nvec)], env_masks[name])
        np.testing.assert_allclose([log_p[i], entropy[i]], [ref_p, ref_h], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- network sizes

def test_param_count_is_one_learners_network():
    stack = AgentStack.from_params(load_params("metro_qkd"))
    net = networks.mlp_actor_critic(stack.obs_dim, stack.n_logits, (64, 64))
    assert network_param_count(PPOConfig()) == networks.param_count(net.init(jax.random.key(0)))


def test_a_vqc_learner_has_fewer_parameters_than_an_mlp_learner():
    assert network_param_count(PPOConfig(network="vqc")) < network_param_count(PPOConfig(network="mlp"))


# ---------------------------------------------------------------- training

def test_training_is_deterministic_for_a_fixed_key(ippo_run):
    again = ippo_run.train(ippo_run.keys)
    assert jax.tree.all(jax.tree.map(lambda x, y: np.array_equal(x, y, equal_nan=True), ippo_run.out, again))


def test_vmap_trains_several_seeds_at_once(ippo_run):
    metrics = ippo_run.out["metrics"]
    n_updates = LEARNING.total_timesteps // (LEARNING.num_envs * LEARNING.num_steps)
    assert all(np.shape(v) == (SEEDS, n_updates) for v in metrics.values())
    assert _finite(metrics)
    first = jax.tree.leaves(ippo_run.out["params"])[0]
    assert not np.array_equal(first[0], first[1])  # each seed its own initialisation and rollouts


def test_ippo_improves_the_team_return_from_random_init(ippo_run):
    gain = _return_gain(np.asarray(ippo_run.out["metrics"]["episode_return"]))
    assert np.all(gain > LEARNING_MARGIN), gain


def test_trained_params_act_as_a_policy_that_beats_their_untrained_start(ippo_run):
    params = jax.tree.map(lambda x: x[0], ippo_run.out["params"])
    untrained = float(np.mean(ippo_run.out["metrics"]["episode_return"][0, :3]))
    policy = make_policy_fn(LEARNING, params)
    result = evaluate_policy(policy, LEARNING.scenario, dict(LEARNING.overrides), episodes=8, key=jax.random.key(1))
    assert result["mean_return"] > untrained + LEARNING_MARGIN, (result["mean_return"], untrained)


@pytest.mark.parametrize("variant", [
    {"algorithm": "mappo", "share_parameters": True},
    {"algorithm": "reinforce", "learners": ("orchestrator",)},  # the aggregators play the heuristic
], ids=["mappo-shared", "reinforce-orchestrator-only"])
def test_other_algorithms_produce_finite_metrics_and_params(variant):
    out = jax.jit(make_train(dataclasses.replace(TINY, **variant)))(jax.random.key(0))
    assert _finite(out["metrics"])
    assert jax.tree.all(jax.tree.map(lambda x: bool(np.all(np.isfinite(x))), out["params"]))


def test_vqc_actor_critic_learns_through_the_same_stack():
    # Three qubits and one layer learn within LEARNING's budget at a higher learning rate.
    config = dataclasses.replace(LEARNING, network="vqc", n_qubits=3, n_layers=1, lr=1e-2)
    out = jax.jit(make_train(config))(jax.random.key(0))
    gain = _return_gain(np.asarray(out["metrics"]["episode_return"]))
    assert gain > LEARNING_MARGIN, gain


# ---------------------------------------------------------------- evaluation

def test_evaluate_policy_of_the_heuristic_matches_a_plain_rollout():
    params = load_params(MIXED, dict(SHORT))
    key = jax.random.key(3)
    result = evaluate_policy(heuristic_policy, MIXED, dict(SHORT), episodes=2, key=key)
    for e, k in enumerate(jax.random.split(key, 2)):
        k_reset, k_run = jax.random.split(k)
        obs, state = core.reset(k_reset, params)
        total = 0.0
        for k_t in jax.random.split(k_run, params.max_steps):
            k_act, k_step = jax.random.split(k_t)
            obs, state, rewards, *_ = step(k_step, state, heuristic_policy(k_act, obs, params), params)
            total += float(rewards["orchestrator"])
        np.testing.assert_allclose(result["returns"][e], total, rtol=1e-5, atol=1e-5)
    assert result["mean_return"] == pytest.approx(float(np.mean(result["returns"])))
