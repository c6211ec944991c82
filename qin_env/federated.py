"""The `federated` learning model: real weights trained on a shipped data set inside the step.

Data: scikit-learn's `load_digits` (1,797 8x8 images, 10 classes, no download), split once into a
stratified train and held-out test set and mapped to `MAX_FEATURES` whitened PCA features plus a
bias. Each processing unit holds a non-IID shard drawn by a Dirichlet(`learning.dirichlet_alpha`)
label split (seeded by `learning.data_seed`). A model is a linear map of the features to class
scores fitted by ridge regression on one-hot labels; a model of q computation qubits sees the
first `features_per_qubit * q` features (capacity grows with the width). Local training is
`learning.local_steps` gradient steps per episode on the unit's shard, applied in closed form
through the eigendecomposition of the shard's Hessian (exact for the quadratic loss, any number
of steps at one cost). Everything heavy is computed here once, when `Params` are built.

Distillation (Fig. 1 of the paper, `learning.distill_teacher` >= 0): the teacher's group is the
federation; every other group is a student that keeps its own model and learns from its shard
plus the scores of the global (teacher) model on a shared batch of `DISTILL_PROBE` unlabelled
inputs, which the orchestrator sends down the student's link as the student's payload
(`BITS_PER_OUTPUT` bits per score, one qubit per score when teleported). The student gains from
them only when they arrive.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qin_env.params import Params
from qin_env.stages import TELEPORT, Actions, Budget, Delivery, Entanglement, Payload, Traffic, levels

N_CLASSES = 10
MAX_FEATURES = 32  # PCA components of the feature map; the model adds a bias feature
TEST_SHARE = 0.2
PROBE_SIZE = 200  # test inputs on which Eve's copy and the global model are compared
DISTILL_PROBE = 200  # unlabelled training inputs whose teacher scores a student distils from
BITS_PER_OUTPUT = 16.0  # one class score at half precision (a dense vector needs no index)


@functools.lru_cache(maxsize=4)
def digits_features(split_seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of digits: whitened PCA features fitted on the train split, bias last."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SHARE, stratify=y, random_state=split_seed)
    mean = x_tr.mean(0)
    _, s, vt = np.linalg.svd(x_tr - mean, full_matrices=False)
    scale = s[:MAX_FEATURES] / np.sqrt(len(x_tr))

    def features(a: np.ndarray) -> np.ndarray:
        z = (a - mean) @ vt[:MAX_FEATURES].T / scale
        return np.concatenate([z, np.ones((len(a), 1))], axis=1).astype(np.float32)

    return features(x_tr), y_tr.astype(np.int32), features(x_te), y_te.astype(np.int32)


def dirichlet_shards(labels: np.ndarray, n_pus: int, alpha: float, seed: int) -> np.ndarray:
    """Owner [N] of each training sample: every class split over the units by Dirichlet(alpha) shares.

    Small alpha gives each unit few classes (non-IID); large alpha approaches an IID split.
    """
    rng = np.random.default_rng(seed)
    owner = np.empty(len(labels), np.int32)
    for c in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(n_pus, alpha))
        cuts = np.round(np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for unit, part in enumerate(np.split(idx, cuts)):
            owner[part] = unit
    return owner


def feature_dims(width_levels: tuple[int, ...], per_qubit: int) -> tuple[int, ...]:
    """Features a model of each width level sees (at least one, at most MAX_FEATURES)."""
    return tuple(int(min(MAX_FEATURES, max(1, per_qubit * max(q, 1)))) for q in width_levels)


def build(config: Mapping[str, Any], n_pus: int, width_levels: tuple[int, ...]) -> dict[str, Any]:
    """The federated model's arrays for `Params.fl`: per width level and unit, the closed-form training terms.

    For unit p at level l, with its shard's features X (the level's features and the bias) and one-hot
    labels Y, the ridge loss (1/2n)|XW - Y|^2 + (lam/2)|W|^2 has Hessian H = X'X/n + lam I and
    minimiser W* = H^-1 X'Y/n; a gradient step of size lr/lambda_max(H) from W leaves
    W* + Q diag(1 - lr lambda/lambda_max)^k Q' (W - W*) after k steps.
    """
    x_tr, y_tr, x_te, y_te = digits_features(int(config["learning.data_seed"]))
    owner = dirichlet_shards(y_tr, n_pus, config["learning.dirichlet_alpha"], int(config["learning.data_seed"]))
    lam = config["learning.ridge"]
    dims = feature_dims(width_levels, int(config["learning.features_per_qubit"]))
    d = MAX_FEATURES + 1
    onehot = np.eye(N_CLASSES, dtype=np.float64)[y_tr]
    n = np.bincount(owner, minlength=n_pus).astype(np.float64)
    n_agg = int(config["topology.n_aggregators"])
    per_level = []
    for dim in dims:
        seen = np.r_[np.arange(dim), d - 1]  # the level's features and the bias, which is always there
        q = np.zeros((n_pus, dim + 1, dim + 1))
        decay = np.zeros((n_pus, dim + 1))
        w_star = np.zeros((n_pus, dim + 1, N_CLASSES))
        for p in range(n_pus):
            xp = x_tr[owner == p][:, seen].astype(np.float64)
            size = max(n[p], 1.0)
            hessian = xp.T @ xp / size + lam * np.eye(dim + 1)
            vals, q[p] = np.linalg.eigh(hessian)
            decay[p] = 1.0 - config["learning.local_lr"] * vals / vals[-1]
            w_star[p] = np.linalg.solve(hessian, xp.T @ onehot[owner == p] / size)
        by_group = [a.reshape(n_agg, n_pus // n_agg, *a.shape[1:]) for a in (q, decay, w_star)]
        by_group.append(np.einsum("auki,aukc->auic", by_group[0], by_group[2]))  # Q'W*, the minimiser's coordinates
        per_level.append(tuple(jnp.asarray(a, jnp.float32) for a in by_group))
    f32 = jnp.float32
    fl = {
        "levels": tuple(per_level), "shard_size": jnp.asarray(n, f32), "test_x": jnp.asarray(x_te),
        "test_y": jnp.asarray(y_te),
        "feature_mask": jnp.asarray(np.arange(d)[None, :] < np.asarray(dims)[:, None], f32).at[:, -1].set(1.0),
    }
    if config["learning.distill_teacher"] >= 0:
        fl |= distill_terms(x_tr, onehot, owner, n_pus, dims, int(config["learning.data_seed"]))
    return fl


def distill_terms(x_tr: np.ndarray, onehot: np.ndarray, owner: np.ndarray, n_pus: int, dims: tuple[int, ...],
                  seed: int) -> dict[str, jax.Array]:
    """A student's shard moments X'X/n and X'Y/n per width level and unit, and the shared probe inputs.

    The distillation loss changes the Hessian with what arrives, so a student's closed form is
    solved in the step from these (one 33 x 33 eigendecomposition per student unit).
    """
    d = MAX_FEATURES + 1
    hess = np.zeros((len(dims), n_pus, d, d))
    xty = np.zeros((len(dims), n_pus, d, N_CLASSES))
    for li, dim in enumerate(dims):
        mask = np.zeros(d)
        mask[:dim] = 1.0
        mask[-1] = 1.0
        for p in range(n_pus):
            xp = x_tr[owner == p].astype(np.float64) * mask
            size = max(len(xp), 1)
            hess[li, p] = xp.T @ xp / size
            xty[li, p] = xp.T @ onehot[owner == p] / size
    probe = np.random.default_rng(seed + 1).permutation(len(x_tr))[:DISTILL_PROBE]
    f32 = jnp.float32
    return {"shard_hess": jnp.asarray(hess, f32), "shard_xty": jnp.asarray(xty, f32),
            "probe_x": jnp.asarray(x_tr[probe], f32)}


def local_average(w0: jax.Array, steps: jax.Array, level: jax.Array, share: jax.Array,
                  fl: Mapping[str, Any]) -> jax.Array:
    """FedAvg [A, D, C] of each group's units after `steps` [A] gradient steps from the group's model `w0` [A, D, C].

    Unit u of group a trains on its shard at the group's width `level` [A] (features it does not
    see keep their weights) and enters its group's mean with `share` [A, U] (a group's shares sum
    to 1). Fused: W*_u + Q_u F^k Q_u'(W - W*_u) averaged is sum_u s_u W*_u + [Q_u] [s_u F^k Q_u'(W - W*_u)],
    two matrix products per level over the whole batch under vmap, with no per-unit copies of
    the weights; every level is computed and the group's selected (cheaper than gathering it).
    """
    out = w0
    for li, (q, decay, w_star, w_star_coords) in enumerate(fl["levels"]):
        dim = q.shape[-1] - 1
        seen = jnp.concatenate([w0[:, :dim], w0[:, -1:]], axis=1)
        factor = jnp.power(jnp.maximum(decay, 0.0), steps[:, None, None])  # decay >= 0 when lr <= 1
        gap = (share[:, :, None] * factor)[..., None] * (jnp.einsum("auki,akc->auic", q, seen) - w_star_coords)
        new = jnp.einsum("auik,aukc->aic", q, gap) + jnp.einsum("au,auic->aic", share, w_star)
        full = jnp.concatenate([new[:, :dim], w0[:, dim:-1], new[:, -1:]], axis=1)
        out = jnp.where((level == li)[:, None, None], full, out)
    return out


def distill_train(w0: jax.Array, steps: jax.Array, level: jax.Array, units: jax.Array, targets: jax.Array,
                  weight: jax.Array, count: jax.Array, fl: Mapping[str, jax.Array], lr: jax.Array,
                  ridge: jax.Array) -> jax.Array:
    """Weights [S, D, C] of student units after `steps` gradient steps on shard loss plus distillation loss.

    The loss of unit `units[s]` is (1/2n)|XW - Y|^2 + (weight/2m)|X_p W - T|^2 + (ridge/2)|W|^2 over
    its shard (X, Y) and the first `count` [S] probe inputs X_p with received scores `targets`
    [S, M, C]; the step is lr / lambda_max of the Hessian, as in `local_average`. Features the
    unit's width does not see keep their weights.
    """
    mask = fl["feature_mask"][level]
    probe = fl["probe_x"][None] * mask[:, None, :]
    sel = (jnp.arange(probe.shape[1])[None, :] < count[:, None]).astype(probe.dtype)
    scale = weight / jnp.maximum(count, 1.0)
    hess = (fl["shard_hess"][level, units] + scale[:, None, None] * jnp.einsum("smd,sm,sme->sde", probe, sel, probe)
            + ridge * jnp.eye(probe.shape[-1]))
    rhs = fl["shard_xty"][level, units] + scale[:, None, None] * jnp.einsum("smd,sm,smc->sdc", probe, sel, targets)
    vals, q = jnp.linalg.eigh(hess)
    w_star = jnp.einsum("sij,sj,skj,skc->sic", q, 1.0 / vals, q, rhs)
    factor = jnp.power(jnp.maximum(1.0 - lr * vals / vals[:, -1:], 0.0), steps[:, None])  # >= 0 when lr <= 1
    mask = mask[:, :, None]
    gap = jnp.einsum("pji,pjc->pic", q, w0 * mask - w_star)
    return jnp.einsum("pij,pjc->pic", q, factor[:, :, None] * gap) + w_star + w0 * (1.0 - mask)


def fedavg(weights: jax.Array, updates: jax.Array, segment: jax.Array, n_segments: int) -> jax.Array:
    """Weighted means [S, D, C] of `updates` [N, D, C] per segment with `weights` [N]; a segment of no weight gets 0."""
    total = jax.ops.segment_sum(weights, segment, num_segments=n_segments)
    summed = jax.ops.segment_sum(weights[:, None, None] * updates, segment, num_segments=n_segments)
    return summed / jnp.maximum(total, 1e-30)[:, None, None]


def top_k(delta: jax.Array, k: jax.Array, iterations: int = 20) -> jax.Array:
    """Keep the `k` [A] largest-magnitude entries of each `delta` [A, D, C], zero the rest (top-k compression).

    The magnitude threshold is found by bisection (a sort costs 30 times more under vmap): the
    largest threshold that keeps at least k entries, to 2^-20 of the largest magnitude, so more
    than k survive only where magnitudes tie that closely.
    """
    flat = jnp.abs(delta.reshape(delta.shape[0], -1))
    k = jnp.minimum(k, flat.shape[1])[:, None]

    def halve(_, bounds):
        low, high = bounds  # count(flat >= low) >= k > count(flat >= high)
        mid = 0.5 * (low + high)
        enough = jnp.sum(flat >= mid, axis=1, keepdims=True) >= k
        return jnp.where(enough, mid, low), jnp.where(enough, high, mid)

    top = jnp.max(flat, axis=1, keepdims=True)
    low, _ = jax.lax.fori_loop(0, iterations, halve, (jnp.zeros_like(top), top * (1.0 + 1e-6) + 1e-30), unroll=True)
    keep = (flat >= low) & (k > 0) & (flat > 0)
    return jnp.where(keep.reshape(delta.shape), delta, 0.0)


def predictions(w: jax.Array, x: jax.Array) -> jax.Array:
    """Predicted classes [..., N] of models `w` [..., D, C] on inputs `x` [N, D]."""
    return jnp.argmax(jnp.einsum("nd,...dc->...nc", x, w), axis=-1)


def accuracy(w: jax.Array, fl: Mapping[str, jax.Array]) -> jax.Array:
    """Held-out test accuracy of models `w` [..., D, C]."""
    return jnp.mean(predictions(w, fl["test_x"]) == fl["test_y"], axis=-1)


class FedLearners(NamedTuple):
    """The federated model after one slot."""

    weights: jax.Array  # [A, D, C] each aggregator group's model
    global_weights: jax.Array  # [D, C] the orchestrator's global model
    eve_weights: jax.Array  # [D, C] Eve's copy, fitted from the plaintext updates she read
    test_accuracy: jax.Array  # [A] held-out accuracy of each group's model
    model_quality: jax.Array  # held-out accuracy of the global model
    extraction_agreement: jax.Array  # share of probe inputs where Eve's copy and the global model agree
    return_quality: jax.Array  # [A] what the return pays: the global model's accuracy, a student's own


def federated_update(key: jax.Array, state: Any, act: Actions, budget: Budget, traffic: Traffic, ent: Entanglement,
                     payload: Payload, delivery: Delivery, params: Params) -> FedLearners:
    """One slot of federated learning: local training, FedAvg per group, compressed upload, global step, broadcast.

    Each unit trains from its group's model; the aggregator averages the units' models weighted by
    the data they admitted; its update (the change of the group model) is top-k compressed to what
    the payload holds and arrives scaled by the share of it that arrived (key or pair coverage, the
    classical share of a hybrid node, on time), a teleported one shrunk by (4F-1)/3 with noise that
    keeps its second moment, a poisoned one replaced by the sign-flipped update scaled by
    `learning.poison_scale`; an arrived update longer than `learning.max_update_norm` is scaled
    down to it. The orchestrator adds `learning.aggregation_weight` times the
    data-weighted mean of the arrived updates to the global model and broadcasts it to the groups
    whose update arrived; the others keep their own model. Late updates do not enter. In a
    distillation scenario the students stay out of the federation and train on what `_distilled`
    says arrived of the teacher's scores.
    """
    lp, fl = params.learning, params.fl
    parent = params.pu_parent
    w0 = state.weights
    width_levels = jnp.asarray(params.model_qubits_levels, jnp.float32)
    level = jnp.argmin(jnp.abs(width_levels[None, :] - budget.width[:, None]), axis=1)
    steps = payload.episodes * lp["local_steps"]
    data = fl["shard_size"] * jnp.minimum(1.0, traffic.admitted_pu / jnp.maximum(lp["data_need_bits"], 1.0))
    group_data = jax.ops.segment_sum(data, parent, num_segments=params.n_aggregators)
    share = (data / jnp.maximum(group_data[parent], 1e-30)).reshape(params.n_aggregators, -1)
    averaged = local_average(w0, steps, level, share, fl)
    distill = params.distill_teacher >= 0
    student = (np.arange(params.n_aggregators) != params.distill_teacher) & distill  # static
    if distill:
        targets, weight, count = _distilled(jax.random.fold_in(key, 1), state.global_weights, act, payload,
                                            delivery, ent, params)
        units = np.flatnonzero(np.repeat(student, params.n_pus // params.n_aggregators))
        group = units // (params.n_pus // params.n_aggregators)
        trained = distill_train(w0[group], steps[group], level[group], jnp.asarray(units), targets[group],
                                weight[group], count[group], fl, lp["local_lr"], lp["ridge"])
        averaged = jnp.where(student[:, None, None], fedavg(data[units], trained, jnp.asarray(group),
                                                            params.n_aggregators), averaged)
    local = jnp.where(((group_data > 0) & (payload.episodes > 0))[:, None, None], averaged, w0)
    delta = local - w0
    entries = jnp.where(payload.mode == TELEPORT, levels(params.payload_qubits_levels, act["payload"]),
                        jnp.floor(levels(params.payload_bits_levels, act["payload"]) / lp["bits_per_entry"]))
    sent = top_k(delta, entries)
    arrived = delivery.value / jnp.maximum(payload.information, 1e-30)  # coverage x shrink x on time, in [0, 1]
    received = arrived[:, None, None] * sent
    shrink = (4.0 * jnp.clip(ent.pool_fidelity, 0.25, 1.0) - 1.0) / 3.0
    rms = jnp.sqrt(jnp.sum(sent**2, axis=(1, 2)) / jnp.maximum(jnp.sum(sent != 0, axis=(1, 2)), 1))
    noise = jnp.sqrt(jnp.maximum(0.0, 1.0 - shrink**2)) * rms * payload.pair_cover
    gauss = jax.random.normal(key, delta.shape) * (sent != 0)
    received = received + jnp.where(payload.mode == TELEPORT, noise, 0.0)[:, None, None] * gauss
    received = jnp.where(delivery.poisoned[:, None, None], -lp["poison_scale"] * sent, received)
    # the server's norm bound on an update (as in DP-FedAvg, McMahan et al. 2018): it keeps a stream of
    # poisoned updates from growing the weights without limit, and rarely touches an honest one
    norm = jnp.sqrt(jnp.sum(received**2, axis=(1, 2)))
    received = received * jnp.minimum(1.0, lp["max_update_norm"] / jnp.maximum(norm, 1e-30))[:, None, None]
    entered = ((delivery.value > 0) | delivery.poisoned) & ~student
    weight = jnp.where(entered, jnp.maximum(group_data, 1e-6), 0.0)
    step = jnp.sum(weight[:, None, None] * received, 0) / jnp.maximum(jnp.sum(weight), 1e-30)
    global_weights = state.global_weights + lp["aggregation_weight"] * step
    weights = jnp.where(entered[:, None, None], global_weights[None], local)
    # Eve reads the plaintext updates on tapped links (the tapped share of each) and applies them as the server would
    leaked = jnp.where((delivery.leaked_bits > 0) & ~student,
                       delivery.leaked_bits / jnp.maximum(payload.wire_bits, 1e-30), 0.0)
    eve_step = jnp.sum((leaked * jnp.maximum(group_data, 1e-6))[:, None, None] * sent, 0) / jnp.maximum(
        jnp.sum(jnp.where(leaked > 0, jnp.maximum(group_data, 1e-6), 0.0)), 1e-30)
    eve_weights = state.eve_weights + lp["aggregation_weight"] * eve_step
    # the groups' and the global model's test predictions in one product; Eve is compared on the first PROBE_SIZE
    predicted = predictions(jnp.concatenate([weights, global_weights[None]]), fl["test_x"])
    correct = jnp.mean(predicted == fl["test_y"], axis=-1)
    test_accuracy, model_quality = correct[:-1], correct[-1]
    agreement = jnp.mean(predictions(eve_weights, fl["test_x"][:PROBE_SIZE]) == predicted[-1, :PROBE_SIZE])
    return FedLearners(weights, global_weights, eve_weights, test_accuracy, model_quality, agreement,
                       jnp.where(student, test_accuracy, model_quality))


def _distilled(key: jax.Array, teacher: jax.Array, act: Actions, payload: Payload, delivery: Delivery,
               ent: Entanglement, params: Params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(scores [A, M, C], loss weight [A], probe count [A]) of the teacher's outputs as each link delivered them.

    The payload level sets how many probe inputs' scores are sent (`BITS_PER_OUTPUT` bits, or one
    teleported qubit, per score); the share that arrived (key or pair coverage, on time) weighs
    the distillation loss, its expectation when each score arrives with that probability.
    Teleported scores shrink by (4F-1)/3 with noise that keeps their second moment; a poisoned
    delivery is Eve's targeted label flip (every probe input scored as the next class).
    """
    scores = params.fl["probe_x"] @ teacher
    entries = jnp.where(payload.mode == TELEPORT, levels(params.payload_qubits_levels, act["payload"]),
                        jnp.floor(levels(params.payload_bits_levels, act["payload"]) / BITS_PER_OUTPUT))
    count = jnp.minimum(scores.shape[0], jnp.floor(entries / N_CLASSES))
    teleport = payload.mode == TELEPORT
    shrink = (4.0 * jnp.clip(ent.pool_fidelity, 0.25, 1.0) - 1.0) / 3.0
    arrived = delivery.value / jnp.maximum(payload.information, 1e-30)
    cover = jnp.clip(jnp.where(teleport, arrived / jnp.maximum(shrink, 1e-6), arrived), 0.0, 1.0)
    rms = jnp.sqrt(jnp.mean(scores**2))
    noise = jnp.sqrt(jnp.maximum(0.0, 1.0 - shrink**2)) * rms
    gauss = jax.random.normal(key, (params.n_aggregators, *scores.shape))
    received = jnp.where(teleport[:, None, None], shrink[:, None, None] * scores + noise[:, None, None] * gauss,
                         scores[None])
    received = jnp.where(delivery.poisoned[:, None, None], jnp.roll(scores, 1, axis=-1)[None], received)
    weight = params.learning["distill_efficiency"] * jnp.where(delivery.poisoned, 1.0, cover)
    return received, weight, count
