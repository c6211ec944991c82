"""Aggregate statistics of a leaderboard, after rliable (Agarwal et al., NeurIPS 2021).

rliable 1.2 does not import beside pandas 3 (its `arch` dependency fails), so these follow its
published definitions (`rliable/metrics.py`, `rliable/library.py`) on numpy and scipy alone:

- scores are a matrix `[runs, tasks]` (here: seeds x scenarios) of normalised scores;
- `iqm`: the inter-quartile mean, `scipy.stats.trim_mean(scores, 0.25)` over all runs and tasks;
- `stratified_bootstrap`: resamples runs with replacement *within each task* (rliable's
  `StratifiedBootstrap`, `task_bootstrap=False`), `reps` times (2,000 by default, rliable's
  default for profiles), and returns the percentile confidence interval;
- `performance_profile`: the share of all runs scoring above each threshold tau (rliable's
  run-score distribution), with a bootstrap band;
- `probability_of_improvement`: P(X > Y) per task as the Mann-Whitney U statistic divided by
  `runs_x * runs_y` (ties count one half), averaged over tasks; its interval resamples the runs of
  X and of Y independently within each task (rliable's `StratifiedIndependentBootstrap`).

Every function is deterministic for a given `seed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

DEFAULT_REPS = 2000
DEFAULT_CONFIDENCE = 0.95

# A statistic of a batch of score matrices: [batch, runs, tasks] -> [batch, ...].
BatchStatistic = Callable[[np.ndarray], np.ndarray]

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_REPS",
    "Interval",
    "iqm",
    "iqm_batch",
    "iqm_interval",
    "performance_profile",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "stratified_bootstrap",
    "stratified_resamples",
]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile confidence interval (arrays for vector statistics)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _matrix(scores: np.ndarray) -> np.ndarray:
    """Scores as a float matrix [runs, tasks], refusing empty or non-finite input."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"scores must be a non-empty matrix [runs, tasks], got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return scores


def _check_bootstrap(reps: int, confidence: float) -> None:
    if reps < 1:
        raise ValueError(f"reps={reps} is outside the allowed range [1, inf)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} is outside the allowed range (0, 1)")


def iqm_batch(batch: np.ndarray) -> np.ndarray:
    """Inter-quartile mean of each score matrix of a batch [batch, runs, tasks] over its runs and tasks."""
    flat = batch.reshape(batch.shape[0], -1)
    return scipy.stats.trim_mean(flat, proportiontocut=0.25, axis=1)


def iqm(scores: np.ndarray) -> float:
    """Inter-quartile mean (25 % trimmed mean) of all runs and tasks, as rliable's `aggregate_iqm`."""
    return float(iqm_batch(_matrix(scores)[None])[0])


def stratified_resamples(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` bootstrap copies [reps, runs, tasks]: each cell draws a run of its own task, with replacement."""
    scores = _matrix(scores)
    runs, tasks = scores.shape
    indices = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[indices, np.arange(tasks)[None, None, :]]


def _percentiles(point: np.ndarray, boot: np.ndarray, confidence: float) -> Interval:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return Interval(np.asarray(point), np.asarray(low), np.asarray(high))


def stratified_bootstrap(
    scores: np.ndarray, statistic: BatchStatistic, reps: int = DEFAULT_REPS,
    confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
) -> Interval:
    """Point estimate of `statistic` and its stratified-bootstrap percentile interval."""
    _check_bootstrap(reps, confidence)
    scores = _matrix(scores)
    point = statistic(scores[None])[0]
    boot = statistic(stratified_resamples(scores, reps, np.random.default_rng(seed)))
    return _percentiles(point, boot, confidence)


def iqm_interval(scores: np.ndarray, reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = 0) -> Interval:
    """IQM with its 95 % (by default) stratified bootstrap confidence interval."""
    return stratified_bootstrap(scores, iqm_batch, reps, confidence, seed)


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """Share of runs (all tasks pooled) scoring strictly above each tau, with a bootstrap band."""
    taus = np.asarray(taus, np.float64)

    def profile(batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(batch.shape[0], -1)
        return (flat[:, :, None] > taus[None, None, :]).mean(axis=1)

    return stratified_bootstrap(scores, profile, reps, confidence, seed)


def _improvement_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per batch element, averaged over tasks; x [b, nx, m], y [b, ny, m]."""
    greater = (x[:, :, None, :] > y[:, None, :, :]).mean(axis=(1, 2))
    ties = (x[:, :, None, :] == y[:, None, :, :]).mean(axis=(1, 2))
    return (greater + 0.5 * ties).mean(axis=1)


def _same_tasks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _matrix(x), _matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"scores_x has {x.shape[1]} tasks and scores_y {y.shape[1]}; they must be the same tasks")
    return x, y


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """Probability that a run of X beats a run of Y on a task, averaged over tasks (Mann-Whitney U / (n_x n_y))."""
    x, y = _same_tasks(scores_x, scores_y)
    return float(_improvement_batch(x[None], y[None])[0])


def probability_of_improvement_interval(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = DEFAULT_REPS, confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """P(X > Y) with the interval of resampling X's and Y's runs independently within each task."""
    _check_bootstrap(reps, confidence)
    x, y = _same_tasks(scores_x, scores_y)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([
        _improvement_batch(stratified_resamples(x, n, rng), stratified_resamples(y, n, rng))
        for n in _chunks(reps, max(1, 2_000_000 // (x.size * y.shape[0] + 1)))
    ])
    return _percentiles(_improvement_batch(x[None], y[None])[0], boot, confidence)


def _chunks(total: int, size: int) -> list[int]:
    """Split `total` bootstrap replications into batches of at most `size` (bounds memory of pairwise tests)."""
    return [min(size, total - start) for start in range(0, total, size)]
