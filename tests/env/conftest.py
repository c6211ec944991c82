"""Shared helpers: compiled rollouts of the functional core under fixed actions or policies."""

import functools
from collections.abc import Callable

import jax

from qin_env import core
from qin_env.rollout import rollout as episode

ORCHESTRATOR = {"episodes": 3, "model_qubits": 1}
AGGREGATOR = {"channel": core.PQC, "payload": 1, "keygen_share": 1, "test_fraction": 1, "memory_qubits": 2}


def constant_actions(params, orchestrator=None, aggregator=None, eve=None):
    """Every agent repeats one action, its level indices by component name (`core.named_action`).

    Defaults: 3 episodes' level and model width level 1 on every link; aggregators send PQC
    payloads of level 1 with keygen and test levels 1 and 2 memory qubits; eve taps nothing.
    """
    acts = {"orchestrator": core.named_action(params, "orchestrator", **(orchestrator or ORCHESTRATOR))}
    for i in range(params.n_aggregators):
        acts[f"aggregator_{i}"] = core.named_action(params, f"aggregator_{i}", **(aggregator or AGGREGATOR))
    if "eve" in core.agent_names(params):
        acts["eve"] = core.named_action(params, "eve", **(eve or {}))
    return acts


@functools.partial(jax.jit, static_argnames=("steps",))
def _fixed_rollout(params, actions, key, steps: int):
    records, state = episode(lambda key, obs, params: actions, params, key, steps=steps)
    return (records["reward"], records["kpi"]), state


def rollout(params, key, steps: int, policy: Callable | None = None, actions=None):
    """`steps` slots of `qin_env.rollout.rollout`: ((orchestrator rewards [T], KPI dict of [T]), last state).

    Under fixed actions, params and actions are traced: scenarios that differ only in numbers share
    one compiled episode.
    """
    if policy is None:
        return _fixed_rollout(params, actions, key, steps)
    records, state = jax.jit(lambda k: episode(policy, params, k, steps=steps))(key)
    return (records["reward"], records["kpi"]), state
