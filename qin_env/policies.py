"""Fixed policies that live with the environment: random, the rule-based heuristic, noop and constants.

They are pure functions `(key, obs_dict, params) -> action_dict`, jit-able, so the Gymnasium
faces can play the agents a user does not control. `agents/` wraps them for its registry.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from qin_env.core import (
    AGGREGATOR_COMPONENTS,
    AGGREGATOR_FIELDS,
    ORCHESTRATOR_COMPONENTS,
    ORCHESTRATOR_FIELDS,
    PQC,
    QKD,
    TELEPORT,
    action_masks,
    action_nvec,
    agent_names,
)
from qin_env.params import Params
from qin_env.rollout import HIDDEN, Policy

_F = {name: i for i, name in enumerate(AGGREGATOR_FIELDS)}
FIXED_EVE = (1, 1)  # the reference policies' eve, where eve is an agent: taps link 0 at the middle level
CONSTANT_FIELDS = ORCHESTRATOR_COMPONENTS + AGGREGATOR_COMPONENTS  # one aggregator's share of a joint action
REGIMES = 4  # hidden regimes of an aggregator the oracle tells apart: tapped or not x surge or not


def heuristic_width_level(params: Params) -> int:
    """The model-width level the heuristic orchestrator allocates: the operator's default computation share."""
    return min(1, len(params.model_qubits_levels) - 1)


def action_masks_from_obs(obs: Mapping[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """The env's action masks [..., sum(nvec)] rebuilt from observations [..., obs_size] alone.

    `core.action_masks` depends only on each aggregator's computation qubits in use, which it
    observes as `model_qubits / qubit_budget`; this serves policies that see only `obs`.
    """
    share = jnp.stack([obs[f"aggregator_{i}"][..., _F["model_qubits"]] for i in range(params.n_aggregators)], axis=-1)
    return action_masks(jnp.round(share * jnp.maximum(params.qubit_budget, 1.0)), params)


def random_policy(key: jax.Array, obs: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """Uniform random action among the allowed ones (`core.action_masks`), component by component.

    Observations with leading batch axes give actions with the same axes.
    """
    masks = action_masks_from_obs(obs, params)
    out = {}
    for name, k in zip(agent_names(params), jax.random.split(key, len(agent_names(params))), strict=True):
        nvec = action_nvec(params, name)
        bounds = [0, *itertools.accumulate(nvec)]
        keys = jax.random.split(k, len(nvec))
        picks = [jax.random.categorical(keys[j], jnp.where(masks[name][..., lo:hi], 0.0, -jnp.inf))
                 for j, (lo, hi) in enumerate(itertools.pairwise(bounds))]
        out[name] = jnp.stack(picks, axis=-1).astype(jnp.int32)
    return out


def _heuristic_aggregator(o: jax.Array, params: Params) -> jax.Array:
    """Rules of thumb of a network operator for one aggregator."""
    quantum_share = o[_F["quantum_share"]]
    classical = quantum_share <= 0.0
    suspicious = (o[_F["alarm"]] > 0) | (o[_F["qber_estimate"]] > 0.08)  # estimate/0.5 > 0.08: QBER > 4 %
    key_low = o[_F["key_fill"]] < 0.3
    pairs_ready = (o[_F["pair_fill"]] > 0.2) & (o[_F["fidelity_estimate"]] > 0.6)
    # Quantum payloads only survive teleportation; hybrid ones use pairs when there are enough,
    # key when the QBER rises, and post-quantum encryption when there is neither.
    channel = jnp.where(
        classical, PQC,
        jnp.where((quantum_share >= 1.0) | pairs_ready, TELEPORT, jnp.where(key_low, PQC, QKD)),
    )
    payload = jnp.where(o[_F["buffer_fill"]] > 0.5, 0, min(1, len(params.payload_bits_levels) - 1))
    n_keygen = len(params.keygen_levels)
    keygen = jnp.where(classical, 0, jnp.where(key_low, n_keygen - 1, 1 if n_keygen > 1 else 0))
    n_test = len(params.test_fraction_levels)
    test = jnp.where(suspicious, n_test - 1, min(1, n_test - 1))
    # every qubit the width in use leaves goes to memory (a new width waits for the next slot)
    budget = params.memory_levels - 1
    in_use = jnp.round(o[_F["model_qubits"]] * budget)
    memory = jnp.where(classical, 0, jnp.clip(budget - in_use, 0, budget))
    n_throttle = len(params.throttle_levels)
    throttle = jnp.where(o[_F["buffer_fill"]] > 0.8, n_throttle - 1,
                         jnp.where(o[_F["buffer_fill"]] > 0.5, min(1, n_throttle - 1), 0))
    return jnp.stack([channel, payload, keygen, test, memory, throttle]).astype(jnp.int32)


def heuristic_policy(key: jax.Array, obs: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """Rule-based team: fewer episodes near the SLO, protection when the QBER rises, key on demand."""
    del key
    a = params.n_aggregators
    n_fields = len(ORCHESTRATOR_FIELDS)
    links = obs["orchestrator"][: n_fields * a].reshape(a, n_fields)
    latency = links[:, 2]  # latency / (2 SLO)
    buffer_fill = links[:, 4]
    n_ep = len(params.episodes_levels)
    busy = (latency > 0.4) | (buffer_fill > 0.5)
    episodes = jnp.where(busy, 1, min(3, n_ep - 1))
    width = jnp.where(params.is_classical, 0, heuristic_width_level(params))  # classical nodes: level 0 only
    out = {"orchestrator": jnp.stack([episodes, width], axis=1).reshape(-1).astype(jnp.int32)}
    for i in range(a):
        out[f"aggregator_{i}"] = _heuristic_aggregator(obs[f"aggregator_{i}"], params)
    if "eve" in agent_names(params):
        out["eve"] = jnp.array(FIXED_EVE, jnp.int32)
    return out


def _projected(want: jax.Array, mask: jax.Array, nvec: tuple[int, ...]) -> jax.Array:
    """Each component's largest allowed level at or below `want` [n] under the flat `mask` [..., sum(nvec)]."""
    picks = []
    for j, (lo, hi) in enumerate(itertools.pairwise([0, *itertools.accumulate(nvec)])):
        allowed = mask[..., lo:hi] & (jnp.arange(hi - lo) <= want[j])
        picks.append(jnp.max(jnp.where(allowed, jnp.arange(hi - lo), 0), axis=-1))
    return jnp.stack(picks, axis=-1).astype(jnp.int32)


def _played(table: jax.Array, obs: dict[str, jax.Array], p: Params) -> dict[str, jax.Array]:
    """The joint action of per-aggregator levels `table` [A, 8], each component projected onto the masks."""
    n_orch = len(ORCHESTRATOR_COMPONENTS)
    masks = action_masks_from_obs(obs, p)
    out = {"orchestrator": _projected(table[:, :n_orch].reshape(-1), masks["orchestrator"],
                                      action_nvec(p, "orchestrator"))}
    for i in range(p.n_aggregators):
        name = f"aggregator_{i}"
        out[name] = _projected(table[i, n_orch:], masks[name], action_nvec(p, name))
    if "eve" in agent_names(p):
        out["eve"] = jnp.array(FIXED_EVE, jnp.int32)
    return out


def constant_policy(levels: jax.Array, params: Params) -> Policy:
    """The policy that plays one joint action every slot, each component projected onto the action masks.

    `levels` [A, 8] are each aggregator's levels in `CONSTANT_FIELDS` order (its orchestrator pair,
    then its own components). A level the mask forbids becomes the largest allowed one below it
    (memory beside the width in use, a classical node's width and channel), so the policy is legal
    in every slot; where eve is an agent it plays `FIXED_EVE`, as the heuristic's team does.
    """
    table = jnp.asarray(levels, jnp.int32).reshape(params.n_aggregators, len(CONSTANT_FIELDS))

    def policy(key: jax.Array, obs: dict[str, jax.Array], p: Params) -> dict[str, jax.Array]:
        del key
        return _played(table, obs, p)

    return policy


def hidden_regime(hidden: Mapping[str, jax.Array]) -> jax.Array:
    """Each aggregator's hidden regime [A] in 0..REGIMES-1: 1 if its link was tapped last slot, +2 if a surge is on."""
    return ((hidden["tap"] > 0).astype(jnp.int32) + 2 * (hidden["surge"] > 0).astype(jnp.int32)).astype(jnp.int32)


def oracle_policy(levels: jax.Array, params: Params) -> Policy:
    """The privileged policy that plays, per aggregator, the constant of its hidden regime (`hidden_regime`).

    `levels` [REGIMES, A, 8]: row r is what each aggregator plays while its regime is r, projected
    onto the masks as in `constant_policy`. It reads `core.privileged_view` (Eve's taps and the
    device surges, which no observation shows), so it runs only inside `qin_env.rollout`.
    """
    table = jnp.asarray(levels, jnp.int32).reshape(REGIMES, params.n_aggregators, len(CONSTANT_FIELDS))

    def policy(key: jax.Array, obs: dict[str, jax.Array], p: Params) -> dict[str, jax.Array]:
        del key
        regime = hidden_regime(obs[HIDDEN])
        return _played(table[regime, jnp.arange(p.n_aggregators)], obs, p)

    policy.privileged = True
    return policy


def noop_levels(params: Params) -> jax.Array:
    """Levels [A, 8] of the team that trains nothing and sends nothing: every component's level 0."""
    return jnp.zeros((params.n_aggregators, len(CONSTANT_FIELDS)), jnp.int32)


def noop_policy(key: jax.Array, obs: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """No training, no sending, no key, no memory, no throttling: the floor a benchmark's scale starts from.

    Episodes level 0 is no round (`actions.episodes` starts at 0 in every shipped scenario), so no
    update is trained or sent and no channel is used for one.
    """
    return constant_policy(noop_levels(params), params)(key, obs, params)


POLICIES = {"random": random_policy, "heuristic": heuristic_policy, "noop": noop_policy}
