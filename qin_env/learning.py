"""How learners' model quality moves: the closed-form `surrogate` learning model.

A learner closes a share of the gap to its quality ceiling per round, with diminishing returns
in episodes; the ceiling grows with the model's width (qubits). Data drift erodes quality every
slot; the orchestrator's model of a group improves only by updates that arrive, scaled by their
value (fidelity, coverage), and falls with accepted poisoned updates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qin_env.params import Params


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


def surrogate_update(
    pu_quality: jax.Array,
    quality: jax.Array,
    episodes: jax.Array,
    width: jax.Array,
    data_bits: jax.Array,
    update_value: jax.Array,
    poisoned: jax.Array,
    params: Params,
) -> tuple[jax.Array, jax.Array]:
    """One slot of learning: (new per-learner quality [P], new per-group global quality [A])."""
    lp = params.learning
    parent = params.pu_parent
    ceiling = quality_ceiling(width, params)
    if params.distill_teacher >= 0:  # Fig. 1 of the paper: students distil from the teacher's model
        ceiling = jnp.maximum(ceiling, lp["distill_efficiency"] * quality[params.distill_teacher])
    data_factor = jnp.minimum(1.0, data_bits / jnp.maximum(lp["data_need_bits"], 1.0))
    saturation = 1.0 - jnp.exp(-episodes / lp["episodes_scale"])
    gain = lp["rate"] * jnp.maximum(0.0, ceiling[parent] - pu_quality) * saturation[parent] * data_factor
    pu_quality = pu_quality + gain
    target = group_mean(pu_quality, params)
    quality = quality + update_value * jnp.maximum(0.0, target - quality) - poisoned * lp["poison_damage"]
    keep = 1.0 - lp["drift_per_step"]
    quality = jnp.clip(quality * keep, 0.0, 1.0)
    # Delivered updates bring the global model back to the learners (federated broadcast)
    pu_quality = jnp.where(update_value[parent] > 0, jnp.maximum(pu_quality, quality[parent]), pu_quality)
    return jnp.clip(pu_quality * keep, 0.0, 1.0), quality
