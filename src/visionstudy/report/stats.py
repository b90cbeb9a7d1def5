"""Statistics over seeds and folds (scipy): mean ± std, 95% confidence intervals, paired tests
of each variant against the baseline with effect sizes."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # significance level of the paired tests


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof 1); 0 for one value
    ci_low: float  # 95% t-interval of the mean; equal to the mean for one value
    ci_high: float


def summarize(values: list[float]) -> Summary:
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) == 1:
        return Summary(1, mean, 0.0, mean, mean)
    std = float(x.std(ddof=1))
    if std == 0:
        return Summary(len(x), mean, 0.0, mean, mean)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=mean, scale=std / math.sqrt(len(x)))
    return Summary(len(x), mean, std, float(lo), float(hi))


@dataclass(frozen=True)
class Paired:
    n: int
    diff: float  # mean of (variant - baseline)
    t_p: float | None  # paired t-test p-value
    wilcoxon_p: float | None  # Wilcoxon signed-rank p-value
    effect: float | None  # Cohen's d_z: mean difference / std of the differences
    significant: bool  # t-test p < ALPHA
    note: str = ""  # why no test was possible

    @property
    def verdict(self) -> str:
        if self.t_p is None:
            return self.note or "n/a (needs 2+ paired runs)"
        return "significant" if self.significant else "not significant"


def paired_test(variant: list[float], baseline: list[float]) -> Paired:
    """Paired by seed/fold: the i-th values of both lists come from the same seed and fold."""
    a, b = np.asarray(variant, dtype=float), np.asarray(baseline, dtype=float)
    d = a - b
    n = len(d)
    if n < 2:
        return Paired(n, float(d.mean()) if n else math.nan, None, None, None, False)
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(float(d.mean()))):  # identical differences: nothing to test
        return Paired(n, float(d.mean()), None, None, None, False, "n/a (identical differences)")
    t_p = float(stats.ttest_rel(a, b).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w_p = float(stats.wilcoxon(a, b).pvalue) if np.any(d != 0) else 1.0
        except ValueError:
            w_p = None
    return Paired(n, float(d.mean()), t_p, w_p, float(d.mean() / sd), t_p < ALPHA)
