"""How learners' model quality moves: the closed-form `surrogate` learning model.

A proxy for learning progress, not a learning model (the `federated` model trains real weights).
Per slot: a learner closes a share of the gap to its quality ceiling, with diminishing returns in
episodes and data; the ceiling grows with the model's width (qubits) and shrinks with a planted
backdoor. The orchestrator's model of a group moves toward a delivered update, which carries at
most the quality its delivered value supports (fidelity, coverage, payload size); the new global
model is broadcast back and the learners continue from it (FedAvg). A poisoned update plants a
backdoor that only clean delivered rounds remove. Data drift erodes every model every slot.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from qin_env.params import Params


class Learners(NamedTuple):
    """The learning state after one slot."""

    pu_quality: jax.Array  # [P] local model quality of each learner
    quality: jax.Array  # [A] global model of each aggregator's group
    backdoor: jax.Array  # [A] share of the group's model quality lost to planted backdoors


def group_sum(values: jax.Array, params: Params) -> jax.Array:
    """Sum per-processing-unit values over each aggregator's group."""
    return jax.ops.segment_sum(values, params.pu_parent, num_segments=params.n_aggregators,
                               indices_are_sorted=True)


def group_mean(values: jax.Array, params: Params) -> jax.Array:
    """Mean of per-processing-unit values over each aggregator's group."""
    return group_sum(values, params) / (params.n_pus // params.n_aggregators)


def quality_ceiling(width_qubits: jax.Array, params: Params) -> jax.Array:
    """Best quality a model of this width reaches: saturating in the width."""
    return 1.0 - 0.9 * jnp.exp(-width_qubits / params.learning["capacity_qubits"])


def payload_information(size: jax.Array, scale: jax.Array) -> jax.Array:
    """Share of an update's information a payload of `size` carries: diminishing returns in its size."""
    return -jnp.expm1(-size / scale)


def surrogate_update(
    pu_quality: jax.Array,
    quality: jax.Array,
    backdoor: jax.Array,
    episodes: jax.Array,
    width: jax.Array,
    data_bits: jax.Array,
    update_value: jax.Array,
    poisoned: jax.Array,
    params: Params,
) -> Learners:
    """One slot of learning; `update_value` [A] is the quality a delivered update supports (0: none arrived)."""
    lp = params.learning
    parent = params.pu_parent
    ceiling = quality_ceiling(width, params) * (1.0 - backdoor)
    if params.distill_teacher >= 0:  # Fig. 1 of the paper: students distil from the teacher's model
        ceiling = jnp.maximum(ceiling, lp["distill_efficiency"] * quality[params.distill_teacher])
    data_factor = jnp.minimum(1.0, data_bits / jnp.maximum(lp["data_need_bits"], 1.0))
    saturation = -jnp.expm1(-episodes / lp["episodes_scale"])
    gain = lp["rate"] * jnp.maximum(0.0, ceiling[parent] - pu_quality) * saturation[parent] * data_factor
    pu_quality = pu_quality + gain
    delivered = update_value > 0.0
    update = jnp.minimum(group_mean(pu_quality, params), update_value)
    mixed = quality + lp["aggregation_weight"] * (update - quality)
    clean = delivered & ~poisoned
    backdoor = jnp.where(poisoned, jnp.minimum(1.0, backdoor + lp["poison_damage"]),
                         jnp.where(clean, backdoor * (1.0 - lp["poison_repair"]), backdoor))
    quality = jnp.where(delivered, mixed, quality) * jnp.where(poisoned, 1.0 - lp["poison_damage"], 1.0)
    keep = 1.0 - lp["drift_per_step"]
    quality = jnp.clip(quality * keep, 0.0, 1.0)
    # The new global model, poisoned or not, is broadcast back; learners continue from it (FedAvg)
    broadcast = (delivered | poisoned)[parent]
    pu_quality = jnp.where(broadcast, quality[parent], jnp.clip(pu_quality * keep, 0.0, 1.0))
    return Learners(pu_quality, quality, backdoor)
