"""The PettingZoo face: PettingZoo's own API tests, determinism, pickling, parity with the core."""

from __future__ import annotations

import functools
import pickle
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

import qin_env
from qin_env import core
from qin_env.faces import _host
from qin_env.faces import pettingzoo as face
from qin_env.params import CHANNEL_MODES

SCENARIOS = ["metro_qkd", "adversarial_eve", "many_to_one_fusion"]
SHORT = 6  # slots per episode in the API tests: every test also runs through truncation
CLASSICAL_CHANNELS = np.arange(len(CHANNEL_MODES)) <= core.PQC  # a legacy classical node: plain and pqc only


def random_actions(env: face.QINParallelEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One uniformly random action per live agent, drawn from `rng`."""
    return {a: rng.integers(0, env.action_space(a).nvec) for a in env.agents}


def rollout(env: face.QINParallelEnv, seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    """The (obs, rewards, terminations, truncations, infos) of `steps` random-action steps."""
    rng = np.random.default_rng(action_seed)
    out = [env.reset(seed=seed)]
    for _ in range(steps):
        out.append(env.step(random_actions(env, rng)))
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_parallel_api_test_passes(scenario):
    parallel_api_test(qin_env.parallel_env(scenario, max_cycles=SHORT), num_cycles=3 * SHORT)


# Advice that does not fit this env by design: named roles with different spaces, MultiDiscrete actions.
@pytest.mark.filterwarnings("ignore:Observations are different shapes")
@pytest.mark.filterwarnings("ignore:Agents have different observation space sizes")
@pytest.mark.filterwarnings("ignore:Action space for each agent probably should be")
@pytest.mark.filterwarnings("ignore:We recommend agents to be named")
@pytest.mark.filterwarnings("ignore:Observation numpy array is all zeros")  # eve sees nothing before the first slot
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_aec_api_test_passes(scenario):
    api_test(qin_env.env(scenario, max_cycles=SHORT), num_cycles=3 * SHORT)


def test_seed_test_passes():
    seed_test(functools.partial(qin_env.env, max_cycles=SHORT), num_cycles=2 * SHORT)


def test_parallel_seed_test_passes():
    parallel_seed_test(functools.partial(qin_env.parallel_env, max_cycles=SHORT), num_cycles=2 * SHORT)


def test_max_cycles_test_passes():
    module = types.SimpleNamespace(parallel_env=qin_env.parallel_env, env=qin_env.env)
    max_cycles_test(module)


def test_state_test_passes():
    state_test(qin_env.env(max_cycles=SHORT), qin_env.parallel_env(max_cycles=SHORT), num_cycles=SHORT)


def test_render_test_passes(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")  # the `plots` extra

    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg")
    render_test(functools.partial(qin_env.env, max_cycles=SHORT))


def test_render_without_mode_warns_and_returns_none():
    env = qin_env.parallel_env(max_cycles=SHORT)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_spaces_are_cached_per_agent():
    env = qin_env.parallel_env(max_cycles=SHORT)
    for agent in env.possible_agents:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) is env.action_space(agent)


def test_eve_is_an_agent_only_in_agent_mode():
    assert "eve" in qin_env.parallel_env("adversarial_eve", max_cycles=SHORT).possible_agents
    assert "eve" not in qin_env.parallel_env("metro_qkd", max_cycles=SHORT).possible_agents


def test_same_seed_and_actions_give_identical_trajectories():
    first = rollout(qin_env.parallel_env(), seed=3, steps=50)
    second = rollout(qin_env.parallel_env(), seed=3, steps=50)
    assert data_equivalence(first, second)


def test_different_seeds_give_different_trajectories():
    first = rollout(qin_env.parallel_env(), seed=3, steps=20)
    second = rollout(qin_env.parallel_env(), seed=4, steps=20)
    assert not data_equivalence([o for o, *_ in first], [o for o, *_ in second])


def test_reset_without_seed_continues_the_seeded_key_stream():
    envs = [qin_env.parallel_env(max_cycles=SHORT) for _ in range(2)]
    runs = []
    for env in envs:
        rollout(env, seed=5, steps=SHORT)
        runs.append(env.reset())
    assert data_equivalence(runs[0], runs[1])


def test_pickle_round_trip_mid_episode_continues_identically():
    env = qin_env.parallel_env()
    rollout(env, seed=11, steps=7)
    clone = pickle.loads(pickle.dumps(env))
    assert data_equivalence(jax.device_get(jax.tree.leaves(clone.core_state)),
                            jax.device_get(jax.tree.leaves(env.core_state)))
    assert clone.agents == env.agents and clone.num_steps == env.num_steps
    rng = np.random.default_rng(1)
    for _ in range(10):
        actions = random_actions(env, rng)
        assert data_equivalence(env.step(actions), clone.step(actions))


def test_trajectory_matches_the_core_step():
    env = qin_env.parallel_env("adversarial_eve")
    params = env.params
    # Params baked in as constants, as the face does: XLA then folds them alike and results match bit for bit
    # (eager or params-as-argument runs differ in the last ulp of a few entries).
    step = jax.jit(functools.partial(core.step, params=params))
    key = jax.random.PRNGKey(21)
    key, sub = jax.random.split(key)  # the face splits the key once per reset and once per step
    core_obs, state = jax.jit(functools.partial(core.reset, params=params))(sub)
    obs, _ = env.reset(seed=21)
    for agent in env.possible_agents:
        np.testing.assert_array_equal(obs[agent], np.asarray(core_obs[agent]))
    rng = np.random.default_rng(2)
    for _ in range(25):
        actions = random_actions(env, rng)
        key, sub = jax.random.split(key)
        core_obs, state, core_rewards, _, core_truncs, core_infos = step(
            sub, state, {a: jnp.asarray(v, jnp.int32) for a, v in actions.items()})
        obs, rewards, _, truncs, infos = env.step(actions)
        for agent in env.possible_agents:
            np.testing.assert_array_equal(obs[agent], np.asarray(core_obs[agent]))
            assert rewards[agent] == float(core_rewards[agent])
            assert truncs[agent] == bool(core_truncs[agent])
            assert infos[agent]["kpi"] == {k: float(v) for k, v in core_infos[agent]["kpi"].items()}
            core_mask = np.asarray(core_infos[agent]["action_mask"])
            np.testing.assert_array_equal(infos[agent]["action_mask"], core_mask)
    for ours, theirs in zip(jax.tree.leaves(env.core_state), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_episode_truncates_after_max_cycles_and_leaves_no_agents():
    env = qin_env.parallel_env(max_cycles=SHORT)
    steps = rollout(env, seed=0, steps=SHORT)
    *_, (_, _, terminations, truncations, _) = steps
    assert all(truncations.values()) and not any(terminations.values())
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_step_returns_python_and_numpy_values():
    env = qin_env.parallel_env(max_cycles=SHORT)
    obs, rewards, terminations, truncations, infos = rollout(env, seed=0, steps=1)[-1]
    assert all(o.dtype == np.float32 for o in obs.values())
    assert all(type(r) is float for r in rewards.values())
    assert all(type(x) is bool for x in (*terminations.values(), *truncations.values()))
    info = infos["orchestrator"]
    assert set(info["kpi"]) == set(core.KPI_UNITS)
    assert all(type(v) is float for v in (*info["kpi"].values(), *info["reward_terms"].values()))


def test_observations_stay_inside_the_observation_space():
    for scenario in SCENARIOS:
        env = qin_env.parallel_env(scenario, max_cycles=SHORT)
        for obs, *_ in rollout(env, seed=0, steps=SHORT):
            for agent, o in obs.items():
                assert env.observation_space(agent).contains(o), (scenario, agent, o)
        assert env.state_space.contains(env.state())


def test_action_mask_covers_every_component_of_the_action_space():
    env = qin_env.parallel_env("adversarial_eve", max_cycles=SHORT)
    for *_, infos in rollout(env, seed=0, steps=2):
        for agent, info in infos.items():
            nvec = env.action_space(agent).nvec
            parts, flat = info["action_mask_parts"], info["action_mask"]
            assert [len(m) for m in parts] == nvec.tolist()
            assert all(m.dtype == np.int8 for m in (*parts, flat))
            np.testing.assert_array_equal(np.concatenate(parts), flat)
            assert flat.shape == (nvec.sum(),)
            for mask in (parts, flat):  # Gymnasium's form and the flat one sample the same way
                assert env.action_space(agent).contains(env.action_space(agent).sample(mask))


def test_classical_aggregator_mask_allows_only_plain_and_pqc():
    env = qin_env.parallel_env("metro_qkd", max_cycles=SHORT)  # aggregator 2 is legacy classical
    _, infos = env.reset(seed=0)
    channel = infos["aggregator_2"]["action_mask_parts"][0]
    np.testing.assert_array_equal(channel, CLASSICAL_CHANNELS)
    np.testing.assert_array_equal(infos["aggregator_2"]["action_mask"][:len(CLASSICAL_CHANNELS)], CLASSICAL_CHANNELS)


def test_a_mask_changed_by_the_user_does_not_reach_later_steps():
    env = qin_env.parallel_env("metro_qkd", max_cycles=SHORT)
    _, infos = env.reset(seed=0)
    infos["aggregator_2"]["action_mask"][:] = 0
    _, infos = env.reset(seed=0)  # same widths: the face's cached mask
    np.testing.assert_array_equal(infos["aggregator_2"]["action_mask_parts"][0], CLASSICAL_CHANNELS)


def test_host_transfer_returns_every_leaf_with_its_shape_dtype_and_value():
    tree = {"obs": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "done": jnp.array([True, False]),
            "slot": jnp.int32(7), "kpi": (jnp.float32(0.1), jnp.zeros(0, jnp.float32))}
    packed = jax.jit(_host.pack)(tree)
    host = packed.unpack()
    assert jax.tree.structure(host) == jax.tree.structure(tree)
    for ours, theirs in zip(jax.tree.leaves(host), jax.tree.leaves(tree), strict=True):
        assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, np.asarray(theirs))
    assert jax.jit(lambda t: _host.pack(t))(tree).layout is packed.layout  # one layout per structure and shapes


def test_host_transfer_refuses_leaves_float32_cannot_carry():
    with pytest.raises(TypeError, match="float32 round trip"):
        _host.pack({"key": jax.random.key(0)})


def test_wrong_shape_action_raises_naming_the_agent():
    env = qin_env.parallel_env(max_cycles=SHORT)
    env.reset(seed=0)
    actions = {a: env.action_space(a).sample() for a in env.agents}
    actions["aggregator_1"] = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r"aggregator_1 = \[0 0 0\].*shape.*MultiDiscrete"):
        env.step(actions)


def test_out_of_space_action_raises_naming_agent_value_and_space():
    env = qin_env.parallel_env(max_cycles=SHORT)
    env.reset(seed=0)
    actions = {a: np.zeros_like(env.action_space(a).nvec) for a in env.agents}
    actions["aggregator_1"][core.AGGREGATOR_COMPONENTS.index("channel")] = len(CHANNEL_MODES) + 4
    space = str(env.action_space("aggregator_1"))
    with pytest.raises(ValueError) as err:
        env.step(actions)
    assert str(err.value) == f"action for aggregator_1 = {actions['aggregator_1']} is outside {space}"


def test_non_integer_action_raises():
    env = qin_env.parallel_env(max_cycles=SHORT)
    env.reset(seed=0)
    actions = {a: np.zeros_like(env.action_space(a).nvec) for a in env.agents}
    actions["orchestrator"] = actions["orchestrator"] + 0.5
    with pytest.raises(ValueError, match=r"orchestrator.*not integer"):
        env.step(actions)


def test_missing_or_unknown_agent_actions_raise():
    env = qin_env.parallel_env(max_cycles=SHORT)
    env.reset(seed=0)
    actions = {a: np.zeros_like(env.action_space(a).nvec) for a in env.agents}
    with pytest.raises(ValueError, match=r"unknown.*'aggregator_9'"):
        env.step({**actions, "aggregator_9": np.zeros(6, np.int64)})
    with pytest.raises(ValueError, match=r"missing.*'orchestrator'"):
        env.step({a: v for a, v in actions.items() if a != "orchestrator"})


def test_unknown_scenario_raises_listing_valid_scenarios():
    with pytest.raises(ValueError, match=r"valid scenarios:.*metro_qkd"):
        qin_env.parallel_env("no_such_scenario")


def test_max_cycles_overrides_episode_length():
    assert qin_env.parallel_env(max_cycles=17).params.max_steps == 17
    assert qin_env.parallel_env("metro_qkd").params.max_steps == 200


def test_documentation_names_every_kpi_and_observation_field():
    doc = face.__doc__
    names = (*core.KPI_UNITS, *core.AGGREGATOR_FIELDS, *core.EVE_FIELDS, *core.AGGREGATOR_COMPONENTS)
    missing = [name for name in names if f"`{name}`" not in doc]
    assert not missing


def test_observations_and_masks_are_writable_arrays_of_the_caller():
    """torch.as_tensor and replay buffers write in place: no read-only views of a transfer buffer."""
    env = qin_env.parallel_env("metro_qkd", max_cycles=SHORT)
    obs, infos = env.reset(seed=0)
    obs2, _, _, _, infos2 = env.step({a: env.action_space(a).sample() for a in env.agents})
    for batch in (obs, obs2):
        assert all(o.flags.writeable for o in batch.values())
    assert all(i["action_mask"].flags.writeable for i in (*infos.values(), *infos2.values()))
    state = env.state()
    obs2["orchestrator"][:] = -1.0
    np.testing.assert_array_equal(env.state(), state)
