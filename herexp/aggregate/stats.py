"""Pure statistics over the tidy runs table (no I/O): the numbers report.json is made of.

Rates are fractions 0..1. Confidence intervals on means are Student-t with df = n - 1
(``t(0.975, n-1) * s / sqrt(n)``; 4.30 for n = 3, 2.78 for n = 5, never a flat 1.96 or 2.0)
and are ``None`` when n < 2; CIs of success rates are clipped to [0, 1]. Robust estimates
follow rliable (Agarwal et al., 2021): the interquartile mean (IQM) with a stratified-bootstrap
percentile CI, and the probability of improvement, from ``rliable.library.get_interval_estimates``
with a seeded ``RandomState`` so the numbers are reproducible. (rliable's ``library`` imports
``arch``, which needs pandas < 3: pinned in pyproject.toml.) Intervals that also count the
evaluation episodes' binomial noise (Wilson per run, the two-level bootstrap per configuration,
arm and difference) live in :mod:`herexp.aggregate.intervals`; the separation verdict of
:func:`comparison` rests on the bootstrap difference interval.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rl_metrics
from scipy import stats as st

from herexp.aggregate import intervals

METRICS = ("success_rate", "return_mean", "final_distance_mean")
# Sample efficiency: the first evaluation at which eval success reached each level (runs.csv steps_to_<pct>)
SUCCESS_LEVELS = (0.5, 0.9)


def steps_column(level: float) -> str:
    """The runs-table column of the env steps to ``level`` eval success: 0.9 -> ``steps_to_90``."""
    return f"steps_to_{round(100 * level)}"
LOWER_IS_BETTER = frozenset({"final_distance_mean"})
BOUNDS = {"success_rate": (0.0, 1.0)}  # a rate's CI is clipped to what the rate can be
CI_LEVEL = 0.95
SUCCESS = "success_rate"
MIN_SEEDS = 3  # fewer runs on a side of a comparison: "too few seeds to tell"
CLEAR_DELTA = 0.1  # a separated difference larger than this (10 pp) is a "clear separation"


def _finite(values: Iterable[Any]) -> np.ndarray:
    x = np.asarray(list(values), dtype=float)
    return x[np.isfinite(x)]


def _f(x: Any) -> float | None:
    """float, or None for NaN / missing (JSON null)."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def t_half_width(s: float, n: int, level: float = CI_LEVEL) -> float:
    """Half-width of the Student-t CI of a mean: t(0.5 + level/2, n - 1) * s / sqrt(n)."""
    return float(st.t.ppf(0.5 + level / 2, n - 1)) * s / math.sqrt(n)


def t_ci(values: Iterable[Any], level: float = CI_LEVEL) -> tuple[float | None, float | None]:
    """Student-t confidence interval of the mean; (None, None) when fewer than 2 values."""
    x = _finite(values)
    n = len(x)
    if n < 2:
        return None, None
    m, h = float(x.mean()), t_half_width(float(x.std(ddof=1)), n, level)
    return m - h, m + h


def clip(lo: float | None, hi: float | None, bounds: tuple[float, float] | None) -> tuple[Any, Any]:
    if lo is None or hi is None or bounds is None:
        return lo, hi
    return max(lo, bounds[0]), min(hi, bounds[1])


def describe(values: Iterable[Any], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """n, mean, std (ddof=1), min, max, range, ci95_low, ci95_high of the finite values
    (the CI clipped to ``bounds``)."""
    x = _finite(values)
    n = len(x)
    lo, hi = clip(*t_ci(x), bounds)
    return {"n": n, "mean": _f(x.mean()) if n else None, "std": _f(x.std(ddof=1)) if n > 1 else None,
            "min": _f(x.min()) if n else None, "max": _f(x.max()) if n else None,
            "range": _f(x.max() - x.min()) if n else None, "ci95_low": lo, "ci95_high": hi}


def _better(metric: str) -> int:
    """+1 when higher is better, -1 when lower is better."""
    return -1 if metric in LOWER_IS_BETTER else 1


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def level_key(v: Any) -> tuple[int, Any]:
    """Sort key for factor levels of mixed type: numbers by value, then strings."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v))
    return (1, str(v))


def at_level(runs: pd.DataFrame, factor: str, level: Any) -> pd.DataFrame:
    """The runs whose ``factor`` equals ``level`` (levels may be of mixed types)."""
    return runs[runs[factor].map(lambda v: v == level)]


def levels(configs: Sequence[Mapping[str, Any]], factor: str) -> list[Any]:
    """The levels of ``factor`` present in ``configs``, numbers ascending then strings."""
    return sorted({c["factors"][factor] for c in configs}, key=level_key)


def config_table(runs: pd.DataFrame, factors: Sequence[str], metric: str) -> list[dict[str, Any]]:
    """One entry per configuration, best first (mean desc, then std asc; mean asc for
    lower-is-better metrics), with its rank."""
    out = []
    for label, g in runs.groupby("config", sort=False):
        d = describe(g[metric], BOUNDS.get(metric))
        out.append({"rank": 0, "config": label, "factors": {f: _py(g[f].iloc[0]) for f in factors},
                    **d, "return_mean": _f(_finite(g["return_mean"]).mean()) if g["return_mean"].notna().any()
                    else None, "seeds": sorted(_py(s) for s in g["seed"] if s is not None)})
    sign = _better(metric)
    out.sort(key=lambda c: (-sign * c["mean"], c["std"] if c["std"] is not None else math.inf, c["config"]))
    for i, c in enumerate(out, 1):
        c["rank"] = i
    return out


def marginals(runs: pd.DataFrame, configs: Sequence[Mapping[str, Any]], factors: Sequence[str],
              metric: str) -> dict[str, list[dict[str, Any]]]:
    """Per factor and level: mean of the per-config means at that level (the run mean on a
    complete grid), runs at that level, delta to the factor's best level, and a 95 % CI
    (that mean +- t * s / sqrt(n) over the runs at that level, clipped for rates)."""
    sign = _better(metric)
    out: dict[str, list[dict[str, Any]]] = {}
    for f in factors:
        rows = []
        for lv in levels(configs, f):
            cs = [c for c in configs if c["factors"][f] == lv]
            mean = float(np.mean([c["mean"] for c in cs]))
            vals = _finite(at_level(runs, f, lv)[metric])
            lo, hi = t_ci(vals)
            half = None if lo is None else (hi - lo) / 2
            lo, hi = clip(*((None, None) if half is None else (mean - half, mean + half)), BOUNDS.get(metric))
            rows.append({"level": lv, "mean": mean, "n_runs": int(sum(c["n"] for c in cs)),
                         "n_configs": len(cs), "ci95_low": lo, "ci95_high": hi})
        best = max(r["mean"] * sign for r in rows) * sign
        for r in rows:
            r["delta_vs_best"] = r["mean"] - best
        out[f] = rows
    return out


def factor_spread(marg: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Which factor matters: best minus worst level mean per factor, largest first."""
    out = [{"factor": f, "spread": max(r["mean"] for r in rows) - min(r["mean"] for r in rows)}
           for f, rows in marg.items()]
    return sorted(out, key=lambda d: -d["spread"])


def interactions(configs: Sequence[Mapping[str, Any]], factors: Sequence[str]) -> list[dict[str, Any]]:
    """For every pair of factors, the mean of per-config means in each (a, b) cell present."""
    out = []
    for a, b in itertools.combinations(factors, 2):
        cells = []
        for la, lb in itertools.product(levels(configs, a), levels(configs, b)):
            cs = [c for c in configs if c["factors"][a] == la and c["factors"][b] == lb]
            if cs:
                cells.append({a: la, b: lb, "mean": float(np.mean([c["mean"] for c in cs])),
                              "n_runs": int(sum(c["n"] for c in cs))})
        out.append({"factors": [a, b], "cells": cells})
    return out


def grid_complete(configs: Sequence[Mapping[str, Any]], factors: Sequence[str]) -> bool:
    """True when every combination of factor levels has at least one run."""
    return len(configs) == math.prod(len(levels(configs, f)) for f in factors)


def seed_sensitivity(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Best and worst configuration: seed range (max - min) and 95 % t-CI width (unclipped)."""
    def one(c: Mapping[str, Any]) -> dict[str, Any]:
        width = None if c["std"] is None else 2 * t_half_width(c["std"], c["n"])
        return {"rank": c["rank"], "config": c["config"], "n": c["n"], "range": c["range"], "ci_width": width}

    return {"best": one(configs[0]), "worst": one(configs[-1])} if configs else {}


def verdict(delta: float | None, boot: tuple[float | None, float | None], n_a: int, n_b: int,
            seeds_disjoint: bool) -> str:
    """The comparison's verdict from Δ success, its bootstrap95 seeds×episodes interval, the runs
    per arm and whether the arms' seeds are disjoint:

    - "too few seeds to tell": fewer than MIN_SEEDS runs on a side;
    - "clear separation": the interval excludes 0, |Δ| > CLEAR_DELTA and the seeds are disjoint;
    - "separated, seeds overlap": as above, but a seed of the worse arm beats one of the better
      (with 3 seeds the percentile bootstrap is narrower than the t95: read both);
    - "small but separated": the interval excludes 0, |Δ| <= CLEAR_DELTA;
    - "not separated": the interval includes 0, |Δ| > CLEAR_DELTA;
    - "weak or none": the interval includes 0, |Δ| <= CLEAR_DELTA.
    """
    if min(n_a, n_b) < MIN_SEEDS:
        return "too few seeds to tell"
    lo, hi = boot
    if delta is None or lo is None or hi is None:
        return "weak or none"
    separated, big = lo > 0 or hi < 0, abs(delta) > CLEAR_DELTA
    if separated and big:
        return "clear separation" if seeds_disjoint else "separated, seeds overlap"
    if separated:
        return "small but separated"
    return "not separated" if big else "weak or none"


def episodes_of(runs: pd.DataFrame) -> intervals.Episodes:
    """The evaluation episodes behind these runs' success (columns of the runs table; a table
    without them, e.g. a hand-made one, counts as episodes unknown)."""
    nan = [math.nan] * len(runs)
    return intervals.Episodes.of(runs[SUCCESS], runs["n_episodes"] if "n_episodes" in runs else nan,
                                 runs["successes"] if "successes" in runs else nan)


def comparison(runs: pd.DataFrame, factor: str, a: Any = None, b: Any = None, reps: int = 2000,
               seed: int = 0) -> dict[str, Any] | None:
    """Two arms of ``factor`` (a vs b; default: best vs worst level by success) on success,
    return and final distance. delta = success(a) - success(b), with its bootstrap95
    seeds×episodes interval ``delta_boot95`` (``reps`` draws, seeded); ``separated`` when that
    interval excludes 0; ``seeds_disjoint`` when the worst seed of the better arm beats the best
    seed of the other (the earlier rule); the verdict is :func:`verdict`."""
    lvls = list(dict.fromkeys(runs[factor]))
    if len(lvls) < 2:
        return None
    succ = {lv: _finite(at_level(runs, factor, lv)[SUCCESS]) for lv in lvls}
    means = {lv: x.mean() if len(x) else -math.inf for lv, x in succ.items()}
    if a is None or b is None or a not in lvls or b not in lvls:
        a, b = max(lvls, key=lambda lv: means[lv]), min(lvls, key=lambda lv: means[lv])
    arms = {}
    for i, lv in enumerate(lvls):
        sub = at_level(runs, factor, lv)
        arms[str(lv)] = {m: {k: v for k, v in describe(sub[m], BOUNDS.get(m)).items()
                             if k in ("n", "mean", "std", "ci95_low", "ci95_high")} for m in METRICS}
        lo, hi = intervals.arm_interval(episodes_of(sub), reps, seed + 1 + i)
        arms[str(lv)][SUCCESS].update({"boot95_low": lo, "boot95_high": hi})
    ma, mb = arms[str(a)][SUCCESS]["mean"], arms[str(b)][SUCCESS]["mean"]
    delta = None if ma is None or mb is None else ma - mb
    boot = intervals.difference_interval(episodes_of(at_level(runs, factor, a)),
                                         episodes_of(at_level(runs, factor, b)), reps, seed)
    better, other = (a, b) if (delta or 0) >= 0 else (b, a)
    disjoint = bool(len(succ[better]) and len(succ[other]) and succ[better].min() > succ[other].max())
    separated = boot[0] is not None and (boot[0] > 0 or boot[1] < 0)
    return {"factor": factor, "a": a, "b": b, "arms": arms, "delta": delta,
            "delta_boot95": None if boot[0] is None else list(boot), "separated": bool(separated),
            "seeds_disjoint": disjoint, "verdict": verdict(delta, boot, len(succ[a]), len(succ[b]), disjoint),
            "reps": reps, "seed": seed}


def config_bootstrap(runs: pd.DataFrame, configs: Sequence[Mapping[str, Any]], reps: int = 2000,
                     seed: int = 0) -> dict[str, Any]:
    """Per configuration (rank order) its bootstrap95 seeds×episodes interval of mean success
    and ``p_best`` (share of the joint draws in which it ranks first), and how many of its runs'
    episode counts come from each source (runs.csv ``episodes_source``)."""
    groups = {c["config"]: runs[runs["config"] == c["config"]] for c in configs}
    boot = intervals.rank_bootstrap({c: episodes_of(g) for c, g in groups.items()}, reps, seed)
    sources = Counter(str(s) for g in groups.values() for s in (g["episodes_source"] if "episodes_source" in g
                                                              else ["none"] * len(g)))
    return {"method": f"{intervals.BOOT_LABEL}: seeds resampled, then each seed's episodes (percentile)",
            "metric": SUCCESS, "reps": reps, "seed": seed, "episodes_source": dict(sorted(sources.items())),
            "configs": [{"rank": c["rank"], "config": c["config"], "n": c["n"], **boot[c["config"]]}
                        for c in configs]}


# ----------------------------------------------------------------------------- robust (rliable)
def _iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([rl_metrics.aggregate_iqm(scores)])


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array([rl_metrics.probability_of_improvement(x, y)])


def _rliable(scores: Any, func: Any, reps: int, rs: np.random.RandomState) -> tuple[float, float, float]:
    """(point, ci_low, ci_high) from rliable's stratified bootstrap (percentile CI).

    With arch 7, part of the resampling still draws from numpy's global RNG, so it is seeded
    from ``rs`` here and restored afterwards: same seed, same numbers, no side effect.
    """
    saved = np.random.get_state()
    np.random.seed(int(rs.randint(0, 2**31 - 1)))
    try:
        point, interval = rly.get_interval_estimates({"x": scores}, func, reps=reps, random_state=rs)
    finally:
        np.random.set_state(saved)
    return float(point["x"][0]), float(interval["x"][0][0]), float(interval["x"][1][0])


def iqm_ci(x: np.ndarray, reps: int, rs: np.random.RandomState) -> dict[str, Any]:
    """IQM of one config's runs (rliable scores shaped (n_runs, 1)) and its bootstrap CI."""
    x = _finite(x).reshape(-1, 1)
    if len(x) < 2:
        return {"iqm": float(rl_metrics.aggregate_iqm(x)), "ci95_low": None, "ci95_high": None}
    iqm, lo, hi = _rliable(x, _iqm, reps, rs)
    return {"iqm": iqm, "ci95_low": lo, "ci95_high": hi}


def poi_ci(x: np.ndarray, y: np.ndarray, reps: int, rs: np.random.RandomState) -> dict[str, Any]:
    """Probability that a run of X beats a run of Y, with an independent-bootstrap CI."""
    p, lo, hi = _rliable([_finite(x).reshape(-1, 1), _finite(y).reshape(-1, 1)], _poi, reps, rs)
    return {"value": p, "ci95_low": lo, "ci95_high": hi}


def robust(runs: pd.DataFrame, configs: Sequence[Mapping[str, Any]], metric: str,
           reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per config IQM with a stratified-bootstrap 95 % CI; P(best config beats runner-up)."""
    rng = np.random.RandomState(seed)  # rliable takes a legacy RandomState
    sign = _better(metric)
    values = {c["config"]: sign * _finite(runs.loc[runs["config"] == c["config"], metric]) for c in configs}
    rows = []
    for c in configs:
        est = iqm_ci(values[c["config"]], reps, rng)
        if sign < 0:  # scores were negated so that higher is better; undo for the report
            est = {"iqm": -est["iqm"], "ci95_low": None if est["ci95_high"] is None else -est["ci95_high"],
                   "ci95_high": None if est["ci95_low"] is None else -est["ci95_low"]}
        rows.append({"rank": c["rank"], "config": c["config"], "n": c["n"], **est})
    poi = None
    if len(configs) >= 2:
        best, runner = configs[0]["config"], configs[1]["config"]
        poi = {"best": best, "runner_up": runner, **poi_ci(values[best], values[runner], reps, rng)}
    return {"method": "rliable IQM + stratified bootstrap (percentile)", "reps": reps, "seed": seed,
            "configs": rows, "probability_of_improvement": poi}


def diagnostic_counts(runs: pd.DataFrame, configs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per config, how many runs carry each diagnosis (only configs with any)."""
    out = []
    for c in configs:
        names = runs.loc[runs["config"] == c["config"], "diagnostics"].fillna("")
        counts = Counter(n for s in names for n in str(s).split(";") if n)
        if counts:
            out.append({"rank": c["rank"], "config": c["config"], "factors": c["factors"],
                        "n": c["n"], "counts": dict(sorted(counts.items()))})
    return out


def sample_efficiency(runs: pd.DataFrame, configs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per config (in rank order) and success level: how many seeds reached it, and the median,
    min and max env steps they took (seeds that never reached it are counted, not averaged in)."""
    out = []
    for c in configs:
        g = runs[runs["config"] == c["config"]]
        levels = {}
        for level in SUCCESS_LEVELS:
            col = steps_column(level)
            steps = _finite(g[col]) if col in g else np.array([])
            levels[col] = {"level": level, "reached": int(steps.size), "n": int(len(g)),
                           "median": _f(np.median(steps)) if steps.size else None,
                           "min": _f(steps.min()) if steps.size else None, "max": _f(steps.max()) if steps.size else None}
        out.append({"rank": c["rank"], "config": c["config"], "levels": levels})
    return out
