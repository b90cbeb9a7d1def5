"""Statistics over seeds and folds, and the choices behind them (scipy, statsmodels).

- **std** is the sample standard deviation (ddof 1) everywhere: tables, cards, error bars and
  curve bands. One value has no std and no interval.
- **95% intervals** are Student-t intervals of the mean, cut at the metric's range (an accuracy
  interval never passes 1, a loss never goes below 0). Cutting keeps the coverage: the true mean
  lies inside the range.
- **Paired tests** against one baseline: the paired t-test (the verdict) and the Wilcoxon
  signed-rank test beside it, with Holm-adjusted p-values when several variants meet one baseline.
  With n pairs the exact two-sided Wilcoxon test cannot go below 2/2^n, so it cannot reach 5%
  below 6 pairs; the report says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from visionstudy.tasks.metrics import UNBOUNDED

ALPHA = 0.05  # significance level of the paired tests
LEVEL = 0.95  # confidence level of the intervals


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof 1); None below 2 values
    ci_low: float | None  # 95% t-interval of the mean, cut at the range; None below 2 values
    ci_high: float | None
    clipped: bool = False  # the interval was cut at the metric's range

    def pm(self, digits: int = 4, percent: bool = False) -> str:
        """'0.9123 ± 0.0040' (n ≥ 2), '0.9123' (n = 1), '–' (none): never a ± from one value."""
        if self.n == 0:
            return "–"
        num = (lambda v: f"{v:.{max(digits - 2, 0)}%}") if percent else (lambda v: f"{v:.{digits}f}")
        return num(self.mean) if self.std is None else f"{num(self.mean)} ± {num(self.std)}"


def finite(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def band_std(runs: np.ndarray) -> np.ndarray | None:
    """Per-point std over runs (rows), ddof 1 as in the tables; None for a single run."""
    return np.std(runs, axis=0, ddof=1) if len(runs) >= 2 else None


def summarize(values: Sequence[float | None], bounds: tuple[float, float] = UNBOUNDED) -> Summary:
    x = finite(values)
    if len(x) == 0:
        return Summary(0, math.nan, None, None, None)
    mean = float(x.mean())
    if len(x) == 1:
        return Summary(1, mean, None, None, None)
    std = float(x.std(ddof=1))
    if std == 0:
        return Summary(len(x), mean, 0.0, mean, mean)
    lo, hi = stats.t.interval(LEVEL, len(x) - 1, loc=mean, scale=std / math.sqrt(len(x)))
    low, high = max(float(lo), bounds[0]), min(float(hi), bounds[1])
    return Summary(len(x), mean, std, low, high, clipped=(low, high) != (float(lo), float(hi)))


def wilcoxon_floor(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give with n pairs."""
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


@dataclass(frozen=True)
class Paired:
    n: int
    diff: float  # mean of (variant - baseline)
    t_p: float | None  # paired t-test p-value
    wilcoxon_p: float | None  # Wilcoxon signed-rank p-value
    effect: float | None  # Cohen's d_z: mean difference / std of the differences
    note: str = ""  # why no test was possible
    t_p_holm: float | None = None  # Holm-adjusted over the variants compared with one baseline
    wilcoxon_p_holm: float | None = None

    @property
    def adjusted(self) -> float | None:
        return self.t_p_holm if self.t_p_holm is not None else self.t_p

    @property
    def significant(self) -> bool:
        return self.adjusted is not None and self.adjusted < ALPHA

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
        return Paired(n, float(d.mean()) if n else math.nan, None, None, None)
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(float(d.mean()))):  # identical differences: nothing to test
        return Paired(n, float(d.mean()), None, None, None, "n/a (identical differences)")
    t_p = float(stats.ttest_rel(a, b).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w_p = float(stats.wilcoxon(a, b).pvalue) if np.any(d != 0) else 1.0
        except ValueError:
            w_p = None
    return Paired(n, float(d.mean()), t_p, w_p, float(d.mean() / sd))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni step-down adjustment (statsmodels) of the p-values that exist."""
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if present:
        adjusted = multipletests([pvalues[i] for i in present], alpha=ALPHA, method="holm")[1]
        for i, p in zip(present, adjusted, strict=True):
            out[i] = float(p)
    return out


def against_baseline(pairs: Sequence[tuple[list[float], list[float]]]) -> list[Paired]:
    """Each variant's paired test against one baseline, Holm-adjusted across the variants."""
    tests = [paired_test(a, b) for a, b in pairs]
    t_adj = holm([t.t_p for t in tests])
    w_adj = holm([t.wilcoxon_p for t in tests])
    return [replace(t, t_p_holm=ta, wilcoxon_p_holm=wa)
            for t, ta, wa in zip(tests, t_adj, w_adj, strict=True)]


def small_n_note(ns: Sequence[int], comparisons: int) -> str:
    """Why a test cannot reach the level with the pairs at hand, or ''."""
    tested = [n for n in ns if n >= 2]
    if not tested:
        return ""
    n = min(tested)
    level = ALPHA / max(comparisons, 1)  # what Holm asks of the smallest p-value
    floor = wilcoxon_floor(n)
    if floor < level:
        return ""
    where = f"{ALPHA:.0%}" + (f" (Holm's first step over {comparisons} comparisons needs p < {level:.3g})"
                              if comparisons > 1 else "")
    return (f"With {n} pairs the exact Wilcoxon test cannot go below p = {floor:.3g}, so it can never "
            f"reach {where}: read the t-test, the effect size and the intervals. "
            f"The Wilcoxon test needs at least {min_pairs(level)} pairs for that.")


def min_pairs(level: float) -> int:
    n = 1
    while wilcoxon_floor(n) >= level:
        n += 1
    return n
