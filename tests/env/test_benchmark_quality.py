"""The default scenario rewards adaptive behaviour: random < best constant policy < heuristic."""

import itertools

import jax
import jax.numpy as jnp
from conftest import rollout

from qin_env.params import load_params
from qin_env.policies import heuristic_policy, random_policy


def test_no_constant_policy_comes_near_the_heuristic_on_metro_qkd():
    params = load_params("metro_qkd")
    a = params.n_aggregators
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    # every orchestrator level x channel x payload x key share, sensible memory/test/throttle levels
    grid = list(itertools.product(range(len(params.episodes_levels)), range(len(params.model_qubits_levels)),
                                  range(5), range(len(params.payload_bits_levels)), range(len(params.keygen_levels))))
    orch = jnp.asarray([[e, w] * a for e, w, *_ in grid], jnp.int32)
    agg = jnp.asarray([[c, p, k, 1, 2, 0] for _, _, c, p, k in grid], jnp.int32)

    def mean_return(o, g):
        acts = {"orchestrator": o} | {f"aggregator_{i}": g for i in range(a)}
        return jnp.mean(jax.vmap(lambda k: rollout(params, k, params.max_steps, actions=acts)[0][0].sum())(keys))

    best_constant = float(jnp.max(jax.jit(jax.vmap(mean_return))(orch, agg)))

    def policy_return(policy):
        returns = jax.vmap(lambda k: rollout(params, k, params.max_steps, policy=policy)[0][0].sum())(keys)
        return float(jnp.mean(returns))

    heuristic, random = policy_return(heuristic_policy), policy_return(random_policy)
    assert random < best_constant < heuristic - 1.0
