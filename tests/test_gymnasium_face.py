"""Gymnasium faces: API conformance, SB3 compatibility, seeding, validation, truncation."""

from __future__ import annotations

import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import qin_env  # noqa: F401  (registers the env ids)
from qin_env import core
from qin_env.faces.gymnasium import AggregatorEnv, OrchestratorEnv
from qin_env.params import CHANNEL_MODES

ENV_IDS = ["qin/Orchestrator-v1", "qin/Aggregator-v1"]


def _rollout(env: gymnasium.Env, seed: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Observations and rewards of `n_steps` with actions drawn from a fixed-seed action space."""
    env.action_space.seed(1234)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(n_steps):
        obs, reward, _, _, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.asarray(rewards)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_gymnasium_env_checker(env_id: str) -> None:
    gym_check_env(gymnasium.make(env_id).unwrapped)


def test_passes_gymnasium_env_checker_with_random_teammates() -> None:
    gym_check_env(gymnasium.make("qin/Aggregator-v1", others="random").unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_sb3_env_checker(env_id: str) -> None:
    sb3_check_env(gymnasium.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_cls", [OrchestratorEnv, AggregatorEnv])
def test_short_ppo_run_learns_and_predicts_valid_actions(env_cls: type[gymnasium.Env]) -> None:
    env = env_cls()
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    env.step(action)


@pytest.mark.parametrize("env_cls", [OrchestratorEnv, AggregatorEnv])
def test_same_seed_gives_the_same_trajectory(env_cls: type[gymnasium.Env]) -> None:
    obs_a, rew_a = _rollout(env_cls(), seed=7, n_steps=30)
    obs_b, rew_b = _rollout(env_cls(), seed=7, n_steps=30)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)


def test_different_seeds_give_different_trajectories() -> None:
    env = OrchestratorEnv()
    obs_a, rew_a = _rollout(env, seed=7, n_steps=30)
    obs_b, rew_b = _rollout(env, seed=8, n_steps=30)
    assert not (np.array_equal(obs_a, obs_b) and np.array_equal(rew_a, rew_b))


def test_unseeded_reset_continues_the_seeded_stream() -> None:
    env_a, env_b = OrchestratorEnv(), OrchestratorEnv()
    env_a.reset(seed=3)
    env_b.reset(seed=3)
    np.testing.assert_array_equal(_rollout_unseeded(env_a), _rollout_unseeded(env_b))


def _rollout_unseeded(env: gymnasium.Env) -> np.ndarray:
    env.reset()
    action = np.zeros(env.action_space.shape, np.int64)
    return np.stack([env.step(action)[0] for _ in range(5)])


def test_step_returns_documented_types_and_info() -> None:
    env = AggregatorEnv(aggregator_index=2)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert info["action_mask"].dtype == np.int8
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert type(reward) is float and terminated is False and truncated is False
    assert set(info) == {"kpi", "reward_terms", "action_mask"}
    assert all(type(v) is float for v in info["kpi"].values())
    assert sum(info["reward_terms"].values()) == pytest.approx(reward, abs=1e-5)
    assert info["action_mask"].shape == (int(np.sum(env.action_space.nvec)),)


def test_classical_aggregator_mask_forbids_quantum_channels() -> None:
    env = AggregatorEnv(aggregator_index=2)  # metro_qkd lists aggregator 2 as classical
    _, info = env.reset(seed=0)
    nvec = core.action_nvec(env.params, env.agent)
    parts = dict(zip(core.AGGREGATOR_COMPONENTS, np.split(info["action_mask"], np.cumsum(nvec)[:-1]), strict=True))
    np.testing.assert_array_equal(parts["channel"], np.arange(len(CHANNEL_MODES)) <= core.PQC)  # plain and pqc only


def test_the_action_space_samples_from_the_flat_mask_it_reports() -> None:
    """`action_space.sample(info["action_mask"])`: the flat mask is split per component, Gymnasium's form."""
    env = AggregatorEnv(aggregator_index=2)
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    channels = {int(env.action_space.sample(info["action_mask"])[0]) for _ in range(200)}
    assert channels == {core.PLAIN, core.PQC}
    assert env.action_space == gymnasium.spaces.MultiDiscrete(env.action_space.nvec)
    with pytest.raises(ValueError, match=r"mask: a flat mask .* has shape \(28,\), got \(27,\)"):
        env.action_space.sample(info["action_mask"][:-1])


def test_episode_truncates_after_max_episode_steps() -> None:
    env = OrchestratorEnv(max_episode_steps=5)
    env.reset(seed=0)
    action = env.action_space.sample()
    flags = [env.step(action)[3] for _ in range(5)]
    assert flags == [False, False, False, False, True]


def test_make_passes_keyword_arguments_through() -> None:
    env = gymnasium.make("qin/Orchestrator-v1", scenario="device_surge")
    assert env.unwrapped.params.scenario == "device_surge"
    env.reset(seed=0)
    env.step(env.action_space.sample())


def test_custom_callable_plays_the_other_agents() -> None:
    def all_zero(key, obs, params):  # aggregators send plain-text payloads
        return core.default_actions(params)

    tapped = {"eve.mode": "stationary", "eve.intercept_fraction": 1.0}
    env = OrchestratorEnv(overrides=tapped, others=all_zero)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones(env.action_space.shape, np.int64))  # a round on every link
    assert info["kpi"]["leaked_bits"] > 0


def test_pickled_env_continues_the_same_trajectory() -> None:
    env = OrchestratorEnv()
    env.reset(seed=5)
    action = env.action_space.sample()
    env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(env.step(action)[0], clone.step(action)[0])


def test_unknown_scenario_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'no_such_net'"):
        OrchestratorEnv(scenario="no_such_net")


@pytest.mark.parametrize("index", [-1, 3, 1.0])
def test_aggregator_index_out_of_range_is_rejected(index: object) -> None:
    with pytest.raises(ValueError, match=r"aggregator_index=.* allowed range \[0, 2\]"):
        AggregatorEnv(aggregator_index=index)


def test_unknown_teammate_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"others='greedy'.*heuristic"):
        OrchestratorEnv(others="greedy")


@pytest.mark.parametrize("action", [
    np.zeros(5, np.int64),  # wrong shape
    np.full(6, 99, np.int64),  # beyond nvec
    np.full(6, -1, np.int64),  # negative
    np.full(6, 0.5),  # not integers
    "abc",
])
def test_bad_action_is_rejected_naming_agent_and_space(action: object) -> None:
    env = OrchestratorEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"agent 'orchestrator'.*MultiDiscrete"):
        env.step(action)


def test_rgb_render_returns_an_image() -> None:
    env = OrchestratorEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_maskable_ppo_trains_on_the_action_masks_of_the_face():
    """sb3-contrib's MaskablePPO reads `env.action_masks()` (flat booleans over the components) and only
    samples allowed values: the legacy classical aggregator 2 of metro_qkd never picks a quantum channel."""
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = gymnasium.make("qin/Aggregator-v1", scenario="metro_qkd", aggregator_index=2, max_episode_steps=16)
    obs, info = env.reset(seed=0)
    masks = get_action_masks(env)
    np.testing.assert_array_equal(masks, info["action_mask"].astype(bool))
    n_channels = int(env.action_space.nvec[0])
    assert not masks[:n_channels].all()  # some channels are masked for a classical node
    model = MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    for _ in range(16):
        action, _ = model.predict(obs, action_masks=get_action_masks(env))
        assert masks[:n_channels][action[0]]
        obs, *_ = env.step(action)
