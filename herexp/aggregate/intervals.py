"""Intervals that count evaluation-episode noise, beside :mod:`herexp.aggregate.stats`' t-interval.

A report shows three intervals on success, each under its own label:

- ``t95 over seeds`` (:func:`herexp.aggregate.stats.t_ci`): the spread of the seeds' success rates
  only, the chapter's convention.
- ``wilson95 over episodes`` (:func:`wilson_ci`): one run's success as a binomial proportion of its
  evaluation episodes (``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``); 7 of 10
  episodes gives [39.7 %, 89.2 %], 50 of 100 about ± 10 pp.
- ``bootstrap95 seeds×episodes`` (:func:`two_level_draws`): a two-level percentile bootstrap that
  resamples a configuration's seeds with replacement and then, within each drawn seed, its
  evaluation episodes with replacement, so the interval holds both kinds of noise. Resampling n
  episodes of which k succeeded is a Binomial(n, k / n) draw, so the episode level is drawn that
  way: identical in distribution to resampling the episodes one by one, and vectorised.

A run whose episode count is unknown (``n == 0``, e.g. the reference project's raw sweep file)
keeps its rate in every draw: only its seed is resampled. Every function takes a ``seed`` and
makes its own ``numpy.random.Generator``, so a report's numbers are reproducible and do not depend
on the order in which they are computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

LEVEL = 0.95
T_LABEL = "t95 over seeds"
WILSON_LABEL = "wilson95 over episodes"
BOOT_LABEL = "bootstrap95 seeds×episodes"


def wilson_ci(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of ``successes`` out of ``n`` episodes (scipy.stats.binomtest)."""
    ci = st.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Episodes:
    """The evaluation episodes behind a set of runs: per run, the successes and the episode count
    (0 when unknown; then ``rate`` is the run's reported success and has no episode noise)."""

    successes: np.ndarray  # int, per run
    n: np.ndarray  # int, per run; 0 = unknown
    rate: np.ndarray  # float, per run: successes / n, or the reported rate when n == 0

    @classmethod
    def of(cls, rates: Sequence[float], n: Sequence[float], successes: Sequence[float]) -> Episodes:
        """From per-run success rates, episode counts and successes (NaN counts mean unknown)."""
        rate = np.asarray(rates, dtype=float)
        n_arr = np.nan_to_num(np.asarray(n, dtype=float), nan=0.0).astype(int)
        k = np.nan_to_num(np.asarray(successes, dtype=float), nan=0.0).astype(int)
        known = n_arr > 0
        rate = np.where(known, k / np.maximum(n_arr, 1), rate)
        keep = np.isfinite(rate)
        return cls(k[keep], n_arr[keep], rate[keep])

    def __len__(self) -> int:
        return len(self.rate)


def two_level_draws(ep: Episodes, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` bootstrap draws of the mean success of these runs: seeds resampled with
    replacement, then each drawn seed's episodes (a Binomial(n, k / n) draw)."""
    if len(ep) == 0:
        return np.full(reps, math.nan)
    idx = rng.integers(0, len(ep), size=(reps, len(ep)))
    n, p = ep.n[idx], ep.rate[idx]
    drawn = rng.binomial(n, np.clip(p, 0.0, 1.0)) / np.maximum(n, 1)
    return np.where(n > 0, drawn, p).mean(axis=1)


def percentile_ci(draws: np.ndarray, level: float = LEVEL) -> tuple[float | None, float | None]:
    """The percentile interval of bootstrap draws; (None, None) when there are none."""
    x = draws[np.isfinite(draws)]
    if not len(x):
        return None, None
    lo, hi = np.percentile(x, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def rank_bootstrap(groups: Mapping[str, Episodes], reps: int, seed: int) -> dict[str, dict[str, float | None]]:
    """Per configuration: its bootstrap95 seeds×episodes interval and ``p_best``, the share of
    the joint draws in which it has the highest mean success (a tie shares the draw equally,
    so the p_best of all configurations sum to 1)."""
    rng = np.random.default_rng(seed)
    labels = list(groups)
    draws = np.column_stack([two_level_draws(groups[c], reps, rng) for c in labels]) if labels else np.empty((reps, 0))
    filled = np.nan_to_num(draws, nan=-math.inf)
    best = np.isclose(filled, filled.max(axis=1, keepdims=True), rtol=0.0, atol=1e-12)
    share = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
    out = {}
    for j, c in enumerate(labels):
        lo, hi = percentile_ci(draws[:, j])
        out[c] = {"boot95_low": lo, "boot95_high": hi, "p_best": float(share[j])}
    return out


def arm_interval(ep: Episodes, reps: int, seed: int) -> tuple[float | None, float | None]:
    """bootstrap95 seeds×episodes interval of one arm's mean success."""
    return percentile_ci(two_level_draws(ep, reps, np.random.default_rng(seed)))


def difference_interval(a: Episodes, b: Episodes, reps: int, seed: int) -> tuple[float | None, float | None]:
    """bootstrap95 seeds×episodes interval of mean success(a) − mean success(b), the arms
    resampled independently."""
    rng = np.random.default_rng(seed)
    return percentile_ci(two_level_draws(a, reps, rng) - two_level_draws(b, reps, rng))
