"""Study statistics against scipy on fixed numbers."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from visionstudy.report.stats import paired_test, summarize


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
    assert summarize([0.5]).std == 0 and summarize([0.5]).ci_low == 0.5
    assert summarize([]).n == 0


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
