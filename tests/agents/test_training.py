"""The JAX trainer: deterministic, batched over seeds, and it learns."""

import jax
import numpy as np
import pytest

from qin_env.agents.multiagent import AgentStack
from qin_env.agents.ppo import PPOConfig, evaluate_policy, make_policy_fn, make_train, network_param_count
from qin_env.params import load_params
from qin_env.policies import heuristic_policy

SMALL = (("episode.max_steps", 50),)


def _config(**kwargs):
    base = {"scenario": "metro_qkd", "overrides": SMALL, "num_envs": 16, "num_steps": 50,
            "total_timesteps": 16 * 50 * 4}
    return PPOConfig(**(base | kwargs))


def test_training_is_deterministic_for_a_fixed_key():
    train = jax.jit(make_train(_config()))
    a, b = train(jax.random.PRNGKey(0)), train(jax.random.PRNGKey(0))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_seeds_train_at_once_under_vmap():
    out = jax.jit(jax.vmap(make_train(_config())))(jax.random.split(jax.random.PRNGKey(1), 2))
    returns = np.asarray(out["metrics"]["mean_reward"])
    assert returns.shape == (2, 4)
    assert not np.array_equal(returns[0], returns[1])


@pytest.mark.parametrize("algorithm", ["mappo", "reinforce"])
def test_other_algorithms_give_finite_metrics(algorithm):
    out = jax.jit(make_train(_config(algorithm=algorithm)))(jax.random.PRNGKey(2))
    assert all(np.all(np.isfinite(np.asarray(v))) for k, v in out["metrics"].items() if k != "episode_return")


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "vqc"])
def test_a_short_run_improves_the_return(network):
    config = _config(network=network, total_timesteps=16 * 50 * 40, lr=3e-3 if network == "vqc" else 1e-3)
    out = jax.jit(make_train(config))(jax.random.PRNGKey(3))
    returns = np.asarray(out["metrics"]["episode_return"])
    first, last = np.nanmean(returns[1:6]), np.nanmean(returns[-5:])
    assert last > first + 3.0


def test_trained_params_act_as_a_policy_and_evaluate_like_fixed_policies():
    config = _config()
    out = jax.jit(make_train(config))(jax.random.PRNGKey(4))
    policy = make_policy_fn(config, out["params"])
    result = evaluate_policy(policy, "metro_qkd", dict(SMALL), episodes=2)
    assert np.isfinite(result["mean_return"])
    heuristic = evaluate_policy(heuristic_policy, "metro_qkd", dict(SMALL), episodes=2)
    assert np.isfinite(heuristic["mean_return"])


def test_padding_round_trip_is_exact_and_padded_choices_get_no_mass():
    params = load_params("metro_qkd")
    stack = AgentStack.from_params(params)
    rng = np.random.default_rng(0)
    actions = {name: rng.integers(0, np.asarray(nvec)) for name, nvec in zip(stack.names, stack.nvecs, strict=True)}
    back = stack.unpad_actions(stack.pad_actions(actions))
    for name in actions:
        np.testing.assert_array_equal(np.asarray(back[name]), actions[name])
    static = stack.static_mask()
    probs = np.asarray(stack.probabilities(np.zeros((stack.n_agents, stack.n_logits), np.float32), static))
    assert np.all(probs.reshape(stack.n_agents, -1)[~static] == 0.0)


def test_vqc_and_mlp_parameter_counts_are_reported():
    assert network_param_count(_config(network="vqc")) < network_param_count(_config(network="mlp"))
