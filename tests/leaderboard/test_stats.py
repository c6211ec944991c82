"""rliable's aggregate statistics on fixed inputs, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from qin_env.bench import stats


def test_iqm_trims_a_quarter_from_each_end_of_all_runs_and_tasks():
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 100.0]])  # 8 values; drop 2 low, 2 high
    assert stats.iqm(scores) == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_iqm_matches_scipy_trim_mean_over_the_flattened_matrix():
    scores = np.random.default_rng(3).normal(size=(7, 5))
    assert stats.iqm(scores) == pytest.approx(scipy.stats.trim_mean(scores.ravel(), 0.25))


def test_stratified_resamples_draw_runs_only_within_their_own_task():
    scores = np.array([[0.0, 10.0, 20.0], [1.0, 11.0, 21.0], [2.0, 12.0, 22.0]])
    boot = stats.stratified_resamples(scores, 500, np.random.default_rng(0))
    assert boot.shape == (500, 3, 3)
    for task in range(3):
        assert set(np.unique(boot[:, :, task])) <= set(scores[:, task])
    assert len(np.unique(boot[:, :, 0])) == 3  # every run of a task is drawn some time


def test_bootstrap_interval_of_two_runs_spans_both_runs():
    # Means of 2 draws from {0, 1}: 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 95 % interval [0, 1].
    interval = stats.iqm_interval(np.array([[0.0], [1.0]]), reps=2000, seed=0)
    assert float(interval.point) == 0.5
    assert (float(interval.low), float(interval.high)) == (0.0, 1.0)


def test_bootstrap_interval_collapses_when_every_run_of_a_task_agrees():
    scores = np.array([[0.2, 0.9, 1.4], [0.2, 0.9, 1.4], [0.2, 0.9, 1.4]])
    interval = stats.iqm_interval(scores, reps=200)
    # 9 values, trim_mean cuts int(0.25 * 9) = 2 from each end: (0.2 + 3 * 0.9 + 1.4) / 5
    assert float(interval.low) == float(interval.point) == float(interval.high) == pytest.approx(0.86)


def test_bootstrap_is_deterministic_for_a_seed_and_changes_with_it():
    scores = np.random.default_rng(1).normal(size=(5, 4))
    a, b, c = (stats.iqm_interval(scores, reps=300, seed=s) for s in (7, 7, 8))
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low <= a.point <= a.high


def test_interval_narrows_with_a_lower_confidence():
    scores = np.random.default_rng(2).normal(size=(10, 3))
    wide = stats.iqm_interval(scores, reps=1000, confidence=0.95)
    narrow = stats.iqm_interval(scores, reps=1000, confidence=0.5)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_performance_profile_counts_runs_strictly_above_each_threshold():
    scores = np.array([[0.0, 0.5], [1.0, 1.5]])
    profile = stats.performance_profile(scores, np.array([-1.0, 0.0, 0.5, 1.2, 2.0]), reps=50)
    np.testing.assert_allclose(profile.point, [1.0, 0.75, 0.5, 0.25, 0.0])
    assert np.all(profile.low <= profile.point) and np.all(profile.point <= profile.high)


def test_probability_of_improvement_counts_pairs_with_ties_as_half():
    # Pairs (3,1) (3,3) (4,1) (4,3): 1 + 0.5 + 1 + 1 = 3.5 of 4.
    assert stats.probability_of_improvement(np.array([[3.0], [4.0]]), np.array([[1.0], [3.0]])) == 0.875


def test_probability_of_improvement_averages_tasks_and_matches_mann_whitney_u():
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 5, size=(6, 3)).astype(float), rng.integers(0, 5, size=(4, 3)).astype(float)
    per_task = [scipy.stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / 24 for t in range(3)]
    assert stats.probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))


def test_probability_of_improvement_is_a_half_against_itself_and_complements():
    x = np.random.default_rng(5).normal(size=(5, 2))
    y = np.random.default_rng(6).normal(size=(5, 2))
    assert stats.probability_of_improvement(x, x) == 0.5
    assert stats.probability_of_improvement(x, y) + stats.probability_of_improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_interval_of_separated_agents_is_certain():
    better, worse = np.array([[2.0, 3.0], [2.5, 3.5]]), np.array([[0.0, 1.0], [0.5, 1.5], [0.2, 1.2]])
    interval = stats.probability_of_improvement_interval(better, worse, reps=300)
    assert (float(interval.low), float(interval.point), float(interval.high)) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(4), np.array([[np.nan]])])
def test_malformed_scores_are_refused(bad):
    with pytest.raises(ValueError, match="scores"):
        stats.iqm(bad)


def test_bootstrap_arguments_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"reps=0 is outside the allowed range"):
        stats.iqm_interval(np.ones((2, 2)), reps=0)
    with pytest.raises(ValueError, match=r"confidence=1.5 is outside"):
        stats.iqm_interval(np.ones((2, 2)), confidence=1.5)
    with pytest.raises(ValueError, match="same tasks"):
        stats.probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))
