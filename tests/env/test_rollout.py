"""`qin_env.rollout`: the one episode loop is a plain loop of reset and step on the documented keys.

A `lax.scan` (or a `vmap`) of the step is another XLA program than the step alone, and XLA
vectorises it in its own way: on a CPU without AVX-512 (AMD EPYC, AVX2) floats differ from the loop's
in the last bit or two. So the episodes are compared exactly in every integer, boolean and key
leaf and to float32 rounding in the floats; the same program's bitwise determinism is
tests/env/test_core.py's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core
from qin_env.params import load_params
from qin_env.policies import heuristic_policy, random_policy
from qin_env.rollout import as_key, episode_keys, episode_summary, rollout, rollouts, seed_keys

SHORT = {"episode.max_steps": 12}


def assert_same_episode(got, want) -> None:
    """Exact in integers and booleans, equal to float32 rounding (a few ulp) in floats."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if np.issubdtype(got.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


def _hand_loop(policy, params, key):
    """The key convention of qin_env/rollout.py's docstring, written out as a Python loop over `core.step`."""
    step = jax.jit(lambda k, s, a: core.step(k, s, a, params))
    act = jax.jit(policy)
    k_reset, k_run = jax.random.split(key)
    obs, state = core.reset(k_reset, params)
    rewards, kpis = [], []
    for k_t in jax.random.split(k_run, params.max_steps):
        k_act, k_step = jax.random.split(k_t)
        obs, state, r, _, _, infos = step(k_step, state, act(k_act, obs, params))
        rewards.append(r["orchestrator"])
        kpis.append(infos["orchestrator"]["kpi"])
    return {"reward": jnp.stack(rewards), "kpi": jax.tree.map(lambda *x: jnp.stack(x), *kpis)}, state


@pytest.mark.parametrize("policy", [random_policy, heuristic_policy], ids=["random", "heuristic"])
def test_rollout_is_a_loop_of_reset_and_step_on_the_documented_keys(policy):
    params = load_params("metro_qkd", SHORT)
    key = jax.random.key(7)
    records, state = jax.jit(lambda k: rollout(policy, params, k))(key)
    expected, expected_state = _hand_loop(policy, params, key)
    for got, want in zip(jax.tree.leaves((records, state)), jax.tree.leaves((expected, expected_state)), strict=True):
        assert_same_episode(got, want)


def test_episode_keys_split_the_episode_key_as_documented():
    key = jax.random.key(3)
    k_reset, act_keys, step_keys = episode_keys(key, 5)
    k_reset_doc, k_run = jax.random.split(key)
    pairs = [jax.random.split(k) for k in jax.random.split(k_run, 5)]
    data = jax.random.key_data
    np.testing.assert_array_equal(data(k_reset), data(k_reset_doc))
    np.testing.assert_array_equal(data(act_keys), np.stack([data(p[0]) for p in pairs]))
    np.testing.assert_array_equal(data(step_keys), np.stack([data(p[1]) for p in pairs]))


def test_an_integer_seed_a_typed_key_and_a_legacy_key_name_the_same_episodes():
    expected = jax.random.key_data(jax.random.split(jax.random.key(11), 4))
    for seed in (11, jax.random.key(11), jax.random.PRNGKey(11)):
        np.testing.assert_array_equal(jax.random.key_data(seed_keys(seed, 4)), expected)
    assert jax.dtypes.issubdtype(as_key(11).dtype, jax.dtypes.prng_key)


def test_batched_rollouts_are_the_single_episodes_and_the_summary_reduces_them():
    params = load_params("metro_qkd", SHORT)
    keys = seed_keys(2, 3)
    batch = jax.jit(lambda k: rollouts(heuristic_policy, params, k))(keys)
    returns, kpis = episode_summary(batch)
    assert returns.shape == (3,) and returns.dtype == np.float64 and set(kpis) == set(core.KPI_UNITS)
    single = jax.jit(lambda k: rollout(heuristic_policy, params, k))
    for e in range(3):
        one, _ = single(keys[e])
        assert_same_episode(batch["reward"][e], one["reward"])
        assert returns[e] == np.sum(np.asarray(batch["reward"][e], np.float64))


def test_auto_reset_runs_on_into_a_new_episode():
    params = load_params("metro_qkd", {"episode.max_steps": 4})
    done = lambda tr: (tr.done, tr.state.t)  # noqa: E731
    (dones, t), _ = jax.jit(lambda k: rollout(random_policy, params, k, done, steps=10, auto_reset=True))(
        jax.random.key(0))
    assert np.asarray(dones).tolist() == [False, False, False, True] * 2 + [False, False]
    assert np.asarray(t).tolist() == [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]
