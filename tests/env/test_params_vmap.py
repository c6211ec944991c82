"""`Params`' array fields are leaves, so `jax.vmap` sweeps them (qin_env/params.py, `Params`).

A batch of scenarios that differ in one such field steps as one vmapped call, and each element of
the batch is the unbatched step of the scenario with that value.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core
from qin_env.params import load_params

SCENARIO = "metro_qkd"
step = jax.jit(core.step)
batched_step = jax.jit(jax.vmap(core.step, in_axes=(None, None, None, 0)))


def aggregator_action(**components: int) -> jax.Array:
    """One aggregator's action from its components by name (`core.AGGREGATOR_COMPONENTS`)."""
    return jnp.asarray([components[name] for name in core.AGGREGATOR_COMPONENTS], jnp.int32)


def qkd_actions(params) -> dict[str, jax.Array]:
    """Every aggregator distils key and sends its update under it; the orchestrator trains every round."""
    agg = aggregator_action(channel=core.QKD, payload=1, keygen_share=2, test_fraction=1, memory_qubits=2, throttle=0)
    orchestrator = jnp.asarray([3, 1] * params.n_aggregators, jnp.int32)  # (episodes, width) level per aggregator
    return {"orchestrator": orchestrator} | {f"aggregator_{i}": agg for i in range(params.n_aggregators)}


def stack_params(batch):
    """Params of one structure stacked leaf by leaf on a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *batch)


@pytest.mark.parametrize(("key", "values"), [
    ("hardware.e_detector", [0.0, 0.03, 0.1]),  # a hardware figure: QBER and key rate
    ("reward.w_quality", [0.0, 2.0, 5.0]),  # a reward weight
])
def test_vmap_over_a_params_field_matches_the_unbatched_step_of_each_value(key, values):
    batch = [load_params(SCENARIO, {key: v}) for v in values]
    params = batch[0]
    actions = qkd_actions(params)
    _, state = core.reset(jax.random.key(0), params)
    for k in jax.random.split(jax.random.key(1), 3):  # a few slots in, so key pools and models have moved
        _, state, *_ = step(k, state, actions, params)
    swept = batched_step(jax.random.key(2), state, actions, stack_params(batch))
    for i, p in enumerate(batch):
        one = step(jax.random.key(2), state, actions, p)
        for got, want in zip(jax.tree.leaves(swept), jax.tree.leaves(one), strict=True):
            want = np.asarray(want)
            # float32 rounding of the leaf's own scale: vmap may fuse a difference like key pool - key used differently
            scale = float(np.max(np.abs(want), initial=1.0))
            np.testing.assert_allclose(np.asarray(got)[i], want, rtol=1e-6, atol=1e-6 * scale)
    varied = [leaf for leaf in jax.tree.leaves(swept) if not np.all(np.asarray(leaf) == np.asarray(leaf)[:1])]
    assert varied, f"sweeping {key} changed nothing, so the test shows nothing"
