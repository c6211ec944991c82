"""Shared helpers: compiled rollouts of the functional core under fixed actions or policies."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from qin_env import core


def constant_actions(params, orchestrator=(3, 1), aggregator=(1, 1, 1, 1, 2, 0), eve=(0, 0)):
    """Every agent repeats one action: orchestrator levels per aggregator, one aggregator action."""
    acts = {"orchestrator": jnp.asarray(list(orchestrator) * params.n_aggregators, jnp.int32)}
    for i in range(params.n_aggregators):
        acts[f"aggregator_{i}"] = jnp.asarray(aggregator, jnp.int32)
    if "eve" in core.agent_names(params):
        acts["eve"] = jnp.asarray(eve, jnp.int32)
    return acts


def rollout(params, key, steps: int, policy: Callable | None = None, actions=None):
    """Scan `steps` slots; returns the per-step (rewards, kpi dict) of the orchestrator, and the last state."""
    def body(carry, k):
        obs, state = carry
        k_act, k_step = jax.random.split(k)
        acts = policy(k_act, obs, params) if policy is not None else actions
        obs, state, rewards, _, _, infos = core.step(k_step, state, acts, params)
        return (obs, state), (rewards["orchestrator"], infos["orchestrator"]["kpi"])

    @jax.jit
    def run(key):
        obs, state = core.reset(key, params)
        (obs, state), out = jax.lax.scan(body, (obs, state), jax.random.split(key, steps))
        return out, state

    return run(key)
