"""Study statistics against scipy on fixed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from visionstudy.report.stats import (
    against_baseline,
    band_std,
    holm,
    paired_test,
    small_n_note,
    summarize,
    wilcoxon_floor,
)


def test_summary_matches_scipy():
    x = [0.91, 0.93, 0.92, 0.95, 0.90]
    s = summarize(x)
    mean = sum(x) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / 4)
    lo, hi = stats.t.interval(0.95, 4, loc=mean, scale=sd / math.sqrt(5))
    assert (s.n, s.mean, s.std, s.ci_low, s.ci_high) == pytest.approx((5, mean, sd, lo, hi))
    assert s.ci_low < s.mean < s.ci_high


def test_summary_of_one_and_none():
    assert summarize([0.5]) == summarize([0.5, math.nan])
    one = summarize([0.7522])
    assert one.std is None and one.ci_low is None and one.ci_high is None  # no ± or interval from one value
    assert one.pm() == "0.7522" and one.pm(percent=True) == "75.22%"
    assert summarize([0.75, 0.76]).pm(percent=True) == "75.50% ± 0.71%"
    assert summarize([]).n == 0 and summarize([]).pm() == "–"


def test_intervals_respect_the_metric_range():
    """The review's cases: two seeds gave accuracy up to 1.0882, loss down to -0.59."""
    acc = summarize([0.99, 0.80], bounds=(0.0, 1.0))
    raw = stats.t.interval(0.95, 1, loc=0.895, scale=acc.std / math.sqrt(2))
    assert raw[1] > 1 and raw[0] < 0  # scipy's unbounded interval leaves the range
    assert (acc.ci_low, acc.ci_high) == (0.0, 1.0) and acc.clipped
    loss = summarize([0.05, 0.9], bounds=(0.0, math.inf))
    assert loss.ci_low == 0.0 and loss.ci_high == pytest.approx(0.475 + 12.7062 * 0.425 / 1, rel=1e-4)
    inside = summarize([0.91, 0.93, 0.92], bounds=(0.0, 1.0))
    assert not inside.clipped and 0.88 < inside.ci_low < inside.ci_high < 0.96
    assert summarize([0.9, 0.9]).std == 0.0  # two equal values: a std of 0, an interval of a point


def test_curve_bands_use_the_sample_std_of_the_tables():
    runs = np.array([[0.1, 0.5], [0.3, 0.9], [0.2, 0.4]])
    assert band_std(runs) == pytest.approx([summarize(list(runs[:, j])).std for j in range(2)])
    assert band_std(runs[:1]) is None


def test_holm_matches_the_textbook_step_down():
    # p sorted 0.01, 0.02, 0.04 over m = 3: 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert holm([0.04, 0.01, None, 0.02]) == pytest.approx([0.04, 0.03, None, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # monotone: never below an earlier step
    assert holm([]) == [] and holm([None]) == [None]


def test_seven_variants_against_one_baseline_are_holm_adjusted():
    """The review's case: p = 0.0138 called significant among 7 comparisons."""
    base = [0.90, 0.91]
    pairs = [([0.93, 0.945], base)] + [([0.90 + 0.001 * i, 0.915 - 0.002 * i], base) for i in range(1, 7)]
    tests = against_baseline(pairs)
    raw = [t.t_p for t in tests]
    assert raw == pytest.approx([stats.ttest_rel(a, b).pvalue for a, b in pairs])
    first = tests[0]
    assert first.t_p < 0.05 and first.t_p_holm == pytest.approx(min(1.0, 7 * first.t_p))
    assert not first.significant and first.verdict == "not significant"
    assert all(t.t_p_holm >= t.t_p for t in tests)


def test_small_samples_say_the_wilcoxon_test_cannot_reach_the_level():
    assert wilcoxon_floor(2) == 0.5 and wilcoxon_floor(5) == 0.0625 and wilcoxon_floor(6) == 0.03125
    # the exact test attains the floor when every difference has the same sign
    a, b = [1, 2, 3, 4, 5], [0, 0, 0, 0, 0]
    assert stats.wilcoxon(a, b).pvalue == pytest.approx(wilcoxon_floor(5))
    note = small_n_note([3, 3], comparisons=1)
    assert "3 pairs" in note and "0.25" in note and "at least 6 pairs" in note
    assert small_n_note([6], comparisons=1) == ""
    assert "at least 9 pairs" in small_n_note([6], comparisons=7)  # Holm's first step: 0.05 / 7
    assert small_n_note([1], comparisons=1) == ""


def test_paired_test_matches_scipy_and_flags_significance():
    base = [0.90, 0.91, 0.89, 0.92, 0.90, 0.91]
    better = [0.93, 0.95, 0.92, 0.95, 0.94, 0.93]
    p = paired_test(better, base)
    assert p.t_p == pytest.approx(stats.ttest_rel(better, base).pvalue)
    assert p.wilcoxon_p == pytest.approx(stats.wilcoxon(better, base).pvalue)
    d = [a - b for a, b in zip(better, base, strict=True)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1))
    assert p.diff == pytest.approx(mean) and p.effect == pytest.approx(mean / sd)
    assert p.significant and p.verdict == "significant"
    noise = paired_test([0.90, 0.92, 0.89, 0.91], [0.91, 0.90, 0.90, 0.92])
    assert not noise.significant and noise.verdict == "not significant"


def test_paired_test_degenerate_cases():
    assert paired_test([0.9], [0.8]).verdict.startswith("n/a")
    same = paired_test([0.9, 0.8], [0.85, 0.75])  # identical differences, floating noise aside
    assert same.t_p is None and not same.significant and "identical" in same.verdict
