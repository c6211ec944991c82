"""GAE of the PPO trainer against advantages worked out by hand."""

import jax.numpy as jnp
import numpy as np

from qin_env.agents.ppo import gae_advantages

GAMMA, LAM = 0.9, 0.8


def test_three_steps_with_an_episode_ending_in_the_middle():
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.5, 1.0, 1.5])
    dones = jnp.array([False, True, False])  # the episode ends at step 1; step 2 starts the next
    adv, targets = gae_advantages(rewards, values, dones, jnp.float32(2.0), GAMMA, LAM)
    # t=2: delta = 3 + 0.9 * 2.0 - 1.5 = 3.3                         adv = 3.3
    # t=1: done, no bootstrap: delta = 2 - 1.0 = 1.0                   adv = 1.0
    # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4; adv = 1.4 + 0.9 * 0.8 * 1.0 = 2.12
    np.testing.assert_allclose(adv, [2.12, 1.0, 3.3], rtol=1e-6)
    np.testing.assert_allclose(targets, [2.62, 2.0, 4.8], rtol=1e-6)


def test_lambda_one_gives_discounted_returns_and_lambda_zero_one_step_errors():
    rewards, values = jnp.array([1.0, 0.0, 2.0]), jnp.array([0.2, 0.4, 0.6])
    dones, last = jnp.zeros(3, bool), jnp.float32(1.0)
    monte_carlo, _ = gae_advantages(rewards, values, dones, last, GAMMA, 1.0)
    # returns: 2 + 0.9 * 1 = 2.9; 0 + 0.9 * 2.9 = 2.61; 1 + 0.9 * 2.61 = 3.349
    np.testing.assert_allclose(monte_carlo, [3.349 - 0.2, 2.61 - 0.4, 2.9 - 0.6], rtol=1e-6)
    td, _ = gae_advantages(rewards, values, dones, last, GAMMA, 0.0)
    np.testing.assert_allclose(td, [1 + 0.9 * 0.4 - 0.2, 0.9 * 0.6 - 0.4, 2 + 0.9 * 1.0 - 0.6], rtol=1e-6)


def test_batch_axes_follow_time_and_dones_broadcast_over_agents():
    rewards = jnp.broadcast_to(jnp.array([1.0, 2.0, 3.0])[:, None, None], (3, 2, 4))  # [T, envs, agents]
    values = jnp.broadcast_to(jnp.array([0.5, 1.0, 1.5])[:, None, None], (3, 2, 4))
    dones = jnp.array([[False, False], [True, False], [False, False]])[..., None]  # [T, envs, 1]
    adv, _ = gae_advantages(rewards, values, dones, jnp.full((2, 4), 2.0), GAMMA, LAM)
    np.testing.assert_allclose(adv[:, 0], np.broadcast_to([[2.12], [1.0], [3.3]], (3, 4)), rtol=1e-6)
    assert not np.allclose(adv[:, 1], adv[:, 0])  # the second env's episode runs on: it bootstraps
