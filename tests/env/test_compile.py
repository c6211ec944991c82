"""`jax.jit(core.reset)` and `jax.jit(core.step)` compile once per scenario structure.

New keys, states, actions and new values of `Params`' array leaves reuse the trace; only the static
fields of `Params` (`qin_env.params.static_field`: structure and shapes) are compile-time. Traces are
counted as `chex.assert_max_traces` counts them: a Python side effect in the traced function runs once
per trace and never when a compiled call is reused.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core
from qin_env.params import load_params

SCENARIO = "metro_qkd"


def jit_counting_traces(fn):
    """`jax.jit(fn)`, and a list that gains one entry every time jit traces `fn`."""
    traces = []

    def traced(*args):
        traces.append(len(traces))
        return fn(*args)

    return jax.jit(traced), traces


def random_actions(params, rng: np.random.Generator) -> dict[str, jax.Array]:
    """A uniformly random joint action, int32 arrays of each agent's `action_nvec` shape."""
    return {name: jnp.asarray(rng.integers(0, core.action_nvec(params, name)), jnp.int32)
            for name in core.agent_names(params)}


@pytest.fixture(scope="module")
def params():
    return load_params(SCENARIO)


def test_reset_traces_once_for_every_key(params):
    reset, traces = jit_counting_traces(core.reset)
    for key in jax.random.split(jax.random.key(0), 8):
        jax.block_until_ready(reset(key, params))
    assert len(traces) == 1


def test_step_traces_once_along_an_episode_of_new_keys_states_and_actions(params):
    step, traces = jit_counting_traces(core.step)
    rng = np.random.default_rng(0)
    _, state = core.reset(jax.random.key(0), params)
    for key in jax.random.split(jax.random.key(1), 12):
        _, state, *_ = step(key, state, random_actions(params, rng), params)
    jax.block_until_ready(state)
    assert int(state.t) == 12  # the states fed back really were the new ones
    assert len(traces) == 1


def test_params_with_the_same_static_fields_reuse_the_trace(params):
    step, traces = jit_counting_traces(core.step)
    _, state = core.reset(jax.random.key(0), params)
    actions = core.default_actions(params)
    reloaded = load_params(SCENARIO)  # a new object with equal values
    # array leaves: a reward weight, a hardware figure and an adversary setting with new values
    swept = load_params(SCENARIO, {"reward.w_leak": 2.0, "hardware.e_detector": 0.03, "eve.intercept_fraction": 1.0})
    assert reloaded is not params and jax.tree.structure(swept) == jax.tree.structure(params)
    for p in (params, reloaded, swept):
        jax.block_until_ready(step(jax.random.key(1), state, actions, p))
    assert len(traces) == 1


def test_a_changed_static_field_compiles_anew(params):
    reset, traces = jit_counting_traces(core.reset)
    longer = load_params(SCENARIO, {"episode.max_steps": 2 * params.max_steps})
    assert jax.tree.structure(longer) != jax.tree.structure(params)  # max_steps lives in the treedef
    for p in (params, longer, params, longer):
        jax.block_until_ready(reset(jax.random.key(0), p))
    assert len(traces) == 2  # one per structure; each is reused afterwards
