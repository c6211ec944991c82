"""Batched faces: the Gymnasium vector env (one compiled call for N envs), SB3's VecEnv over it, the JAX env object."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import qin_env
from qin_env import core
from qin_env.faces.gymnasium import AggregatorEnv, OrchestratorEnv
from qin_env.faces.vector import AggregatorVectorEnv, OrchestratorVectorEnv
from qin_env.policies import random_policy
from qin_env.wrappers import SB3VecEnv

STEPS = 4  # episode length of these tests: the batches cross episode boundaries within a few steps
N = 3


def test_make_vec_builds_the_batched_face_from_the_registry():
    envs = gymnasium.make_vec("qin/Aggregator-metro_qkd-v1", num_envs=N, aggregator_index=1,
                              max_episode_steps=STEPS)
    assert isinstance(envs.unwrapped, AggregatorVectorEnv) and envs.unwrapped.agent == "aggregator_1"
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=0)
    assert obs.shape == (N, 16) and envs.observation_space.contains(obs)
    assert info["action_mask"].shape == (N, int(envs.unwrapped.single_action_space.nvec.sum()))
    obs, rewards, *_, info = envs.step(envs.action_space.sample())
    assert obs.shape == (N, 16) and rewards.shape == (N,) and rewards.dtype == np.float32
    assert set(info["kpi"]) == set(core.KPI_UNITS) and info["kpi"]["model_quality"].shape == (N,)


def test_each_sub_env_replays_the_single_env_of_its_seed_across_episodes():
    """Sub-env i reset with seed 7 + i is `OrchestratorEnv` reset with that seed, episode after episode
    (the restart draws the key the single env's next reset() would), including the final observations."""
    vector = OrchestratorVectorEnv(N, "metro_qkd", max_episode_steps=STEPS)
    singles = [OrchestratorEnv("metro_qkd", max_episode_steps=STEPS) for _ in range(N)]
    obs, _ = vector.reset(seed=7)
    np.testing.assert_allclose(obs, np.stack([e.reset(seed=7 + i)[0] for i, e in enumerate(singles)]), rtol=1e-5)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(2 * STEPS + 1):
        actions = rng.integers(0, vector.single_action_space.nvec, size=(N, len(vector.single_action_space.nvec)))
        obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            single_obs, reward, term, trunc, single_info = env.step(actions[i])
            assert (term, trunc) == (terminated[i], truncated[i])
            np.testing.assert_allclose(rewards[i], reward, rtol=1e-5, atol=1e-6)
            if trunc:
                ended += 1
                assert info["_final_obs"][i]
                np.testing.assert_allclose(info["final_obs"][i], single_obs, rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(info["final_info"]["kpi"]["model_quality"][i],
                                           single_info["kpi"]["model_quality"], rtol=1e-5)
                single_obs, reset_info = env.reset()
                np.testing.assert_array_equal(info["action_mask"][i], reset_info["action_mask"])
            else:
                np.testing.assert_array_equal(info["action_mask"][i], single_info["action_mask"])
            np.testing.assert_allclose(obs[i], single_obs, rtol=1e-5, atol=1e-6)
    assert ended == 2 * N


def test_bad_batched_actions_name_the_shape_and_the_range():
    vector = OrchestratorVectorEnv(2, "metro_qkd", max_episode_steps=STEPS)
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        vector.step(np.zeros(6, int))
    bad = np.zeros((2, 6), int)
    bad[1, 3] = 99
    with pytest.raises(ValueError, match=r"actions\[1, 3\] = 99 .* outside 0 <= a < "):
        vector.step(bad)
    with pytest.raises(ValueError, match="num_envs=0 must be an integer >= 1"):
        OrchestratorVectorEnv(0)


def test_sb3_ppo_trains_on_the_batch_and_episode_ends_carry_the_terminal_observation():
    from stable_baselines3 import PPO

    venv = SB3VecEnv(OrchestratorVectorEnv(N, "metro_qkd", max_episode_steps=STEPS))
    venv.seed(0)
    first = venv.reset()
    venv.seed(0)
    np.testing.assert_array_equal(venv.reset(), first)  # SB3's seed() reaches every sub-env
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=12, n_epochs=1, seed=0, device="cpu")
    model.learn(2 * N * 8)
    obs = venv.reset()
    for t in range(STEPS):
        actions, _ = model.predict(obs, deterministic=True)
        obs, rewards, dones, infos = venv.step(actions)
        assert np.isfinite(rewards).all()
        assert dones.all() == (t == STEPS - 1)
    assert all(info["TimeLimit.truncated"] and info["terminal_observation"].shape == (32,) for info in infos)


def test_maskable_ppo_reads_every_sub_envs_mask_through_the_vec_env():
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    venv = SB3VecEnv(AggregatorVectorEnv(N, "metro_qkd", aggregator_index=2, max_episode_steps=STEPS))
    obs = venv.reset()
    masks = get_action_masks(venv)
    single = AggregatorEnv("metro_qkd", aggregator_index=2, max_episode_steps=STEPS)
    single.reset(seed=0)
    np.testing.assert_array_equal(masks, np.stack([single.action_masks()] * N))
    n_channels = int(venv.action_space.nvec[0])
    model = MaskablePPO("MlpPolicy", venv, n_steps=8, batch_size=12, n_epochs=1, seed=0, device="cpu")
    model.learn(N * 8)
    for _ in range(STEPS + 1):
        actions, _ = model.predict(obs, action_masks=get_action_masks(venv))
        assert masks[:, :n_channels][np.arange(N), actions[:, 0]].all()  # a classical node: plain or pqc only
        obs, *_ = venv.step(actions)


def test_the_jax_env_object_is_the_core_under_jit_and_vmap():
    env = qin_env.make("metro_qkd", {"episode.max_steps": STEPS})
    assert env.agents == core.agent_names(env.params) and env.num_agents == len(env.agents)
    assert env.observation_space("aggregator_0").shape == (16,)
    assert tuple(env.action_space("orchestrator").nvec) == core.action_nvec(env.params, "orchestrator")
    keys = jax.random.split(jax.random.key(0), 4)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    assert obs["orchestrator"].shape == (4, 32)
    step = jax.jit(jax.vmap(env.step))
    masks = env.action_masks(state)
    assert masks["aggregator_2"].shape == (4, int(env.action_space("aggregator_2").nvec.sum()))
    policy = jax.jit(jax.vmap(lambda k, o: random_policy(k, o, env.params)))
    for t in range(STEPS):
        actions = policy(keys, obs)
        obs, new_state, rewards, dones, infos = step(keys, state, actions)
        terms = sum(infos["orchestrator"]["reward_terms"].values())
        np.testing.assert_allclose(rewards["orchestrator"], terms, rtol=1e-5, atol=1e-6)
        assert bool(jnp.all(dones["__all__"])) == (t == STEPS - 1)
        assert set(dones) == {*env.agents, "__all__"}
        state = new_state
    assert int(state.t[0]) == 0  # auto-reset restarted every episode
    _, no_reset, _, dones, _ = jax.jit(env.step_env)(keys[0], jax.tree.map(lambda x: x[0], state),
                                                      jax.tree.map(lambda x: x[0], actions))
    assert int(no_reset.t) == 1 and not bool(dones["__all__"])


def test_torchrl_reads_the_tensor_infos_and_its_random_actions_respect_them():
    """TorchRL's PettingZooWrapper turns every info entry into a tensor: `tensor_infos` gives it one flat mask per
    agent, its specs check out, and its masked random actions keep classical aggregator 2 on plain or pqc."""
    import torch
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    from qin_env.wrappers import tensor_infos

    env = PettingZooWrapper(tensor_infos(qin_env.parallel_env("metro_qkd", max_cycles=8)), seed=0)
    check_env_specs(env)
    torch.manual_seed(0)
    rollout = env.rollout(8)
    assert rollout["aggregator", "action_mask"].shape == (8, 3, 28)
    assert set(rollout["aggregator", "action"][:, 2, 0].tolist()) <= {0, 1}
    assert torch.isfinite(rollout["next", "orchestrator", "reward"]).all()


def test_supersuit_vectorises_the_aggregator_team_for_sb3():
    """The aggregators share one space, so SuperSuit's vector env and SB3's PPO train them with shared parameters;
    the orchestrator is played by the heuristic. (SuperSuit's SB3 wrapper has no seed(): PPO runs with seed=None.)"""
    import supersuit as ss
    from pettingzoo.test import parallel_api_test
    from stable_baselines3 import PPO

    from qin_env.wrappers import aggregator_team

    team = aggregator_team(qin_env.parallel_env("metro_qkd", max_cycles=8))
    parallel_api_test(team, num_cycles=10)
    assert team.possible_agents == ["aggregator_0", "aggregator_1", "aggregator_2"]
    vec = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(team), 2, num_cpus=0, base_class="stable_baselines3")
    assert vec.num_envs == 6
    vec.venv.reset(seed=0)
    model = PPO("MlpPolicy", vec, n_steps=16, batch_size=48, n_epochs=1, device="cpu")
    model.learn(96)
    actions, _ = model.predict(vec.reset(), deterministic=True)
    assert actions.shape == (6, 6)
