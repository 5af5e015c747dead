"""Failure diagnoses: a run explains its own failure from its metrics.csv history.

Each rule in :data:`RULES` is a pure function ``(metrics, ctx, cfg) -> Diagnosis | None`` of the
run's metrics table (:data:`herexp.runfolder.METRICS_COLUMNS`, one row per periodic evaluation),
a small :class:`RunContext` and the thresholds in :class:`herexp.config.DiagnosticsConfig`.
A diagnosis carries a sentence with the numbers, the evidence behind it and a fix (a CLI override).

Success is ``eval_success_rate`` (``rollout_success_rate`` when eval is all NaN). A 20-episode
evaluation is noisy (+-11 pp at 50 %), so trends use a trailing mean of ``smooth_window`` rows, and
trend rules stay silent until there are ``min_rows`` *smoothed* points (``smooth_window + min_rows - 1``
rows: 9 with the defaults). The last row is the run's final evaluation (100 episodes, +-5 pp), so
"final success" is that row's value, never a smoothed one: a run whose final evaluation reaches
``solved_success`` is never called flat or slow, and whatever a message says ends the run matches it.
Fixes come from :mod:`herexp.fixes`, which knows the run's options (:class:`RunContext`): they
name only settings that are not already in effect.
On Push-like tasks the evaluation records how far the object moved; a run at the floor whose
object never moved is ``object_never_moved`` (its fix: exploration), and ``no_learning`` defers to it.
Losses are empty (NaN) before learning starts; a NaN/inf critic loss *after* a finite one is
divergence (the metrics writer turns inf into an empty cell).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from herexp import fixes
from herexp.config import DiagnosticsConfig
from herexp.fixes import RunContext
from herexp.runfolder import METRICS_COLUMNS

log = logging.getLogger(__name__)

SUCCESS_COLUMNS = ("eval_success_rate", "rollout_success_rate")  # primary, fallback
PUSH_LIKE = ("Push", "PickAndPlace", "Slide")  # sparse Fetch tasks at ~5 % success without HER
_LAST_QUARTER = 0.25  # "the end" of a run for slow_but_learning (see DiagnosticsConfig.rising_slope)
_MIN_FIT_POINTS = 3  # a slope with a standard error needs >= 1 residual degree of freedom
_T_CAP = 1e3  # a noise-free (synthetic) rise has t = inf; report it as 1000
_FLOAT_TOL = fixes.FLOAT_TOL
DISPLACEMENT = "eval_object_displacement_mean"

Evidence = dict[str, float | int | str]


@dataclass(frozen=True)
class Diagnosis:
    """One detected problem: what, the numbers behind it, and what to try."""

    name: str  # e.g. "entropy_collapse"
    message: str  # one human sentence with the numbers
    evidence: Evidence  # the numbers behind it
    fix: str  # a concrete suggestion, ideally a CLI override

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for summary.json)."""
        return {"name": self.name, "message": self.message, "evidence": dict(self.evidence), "fix": self.fix}


Rule = Callable[[pd.DataFrame, RunContext, DiagnosticsConfig], Diagnosis | None]


def _table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Float copy with every METRICS_COLUMNS column (NaN when missing/unparsable), in step order."""
    t = pd.DataFrame({c: pd.to_numeric(metrics[c], errors="coerce") if c in metrics.columns
                      else np.nan for c in METRICS_COLUMNS}, index=metrics.index).astype(float)
    if np.isfinite(t["step"]).all():
        t = t.sort_values("step", kind="stable")
    else:  # no usable steps: rows are in time order, number them
        t["step"] = np.arange(len(t), dtype=float)
    return t.reset_index(drop=True)


@dataclass(frozen=True)
class _Curve:
    """Success over steps (rows with a finite value) and its trailing mean."""

    column: str
    x: np.ndarray  # steps
    y: np.ndarray  # success 0..1
    xs: np.ndarray  # steps of the trailing mean (from the first full window)
    ys: np.ndarray  # trailing mean

    @property
    def label(self) -> str:
        return self.column.split("_")[0] + " success"

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def start(self) -> float:
        return float(self.ys[0])

    @property
    def final(self) -> float:
        """The last row unsmoothed: the run's final (100-episode) evaluation."""
        return float(self.y[-1])

    @property
    def peak(self) -> float:
        return float(self.ys.max())

    @property
    def peak_step(self) -> int:
        return int(self.xs[int(self.ys.argmax())])


def _curve(t: pd.DataFrame, cfg: DiagnosticsConfig) -> _Curve | None:
    """Eval success, else rollout success, else None (no success measured at all)."""
    for col in SUCCESS_COLUMNS:
        ok = np.isfinite(t[col].to_numpy())
        if ok.any():
            x, y = t["step"].to_numpy()[ok], t[col].to_numpy()[ok]
            k = max(1, min(int(cfg.smooth_window), len(y)))
            ys = pd.Series(y).rolling(k).mean().to_numpy()[k - 1:]
            return _Curve(col, x, y, x[k - 1:], ys)
    return None


def _trend_curve(t: pd.DataFrame, cfg: DiagnosticsConfig) -> _Curve | None:
    """The success curve when it has ``min_rows`` smoothed points (enough for a trend), else None."""
    c = _curve(t, cfg)
    return c if c is not None and len(c.ys) >= max(1, int(cfg.min_rows)) else None


def _solved(c: _Curve, cfg: DiagnosticsConfig) -> bool:
    return c.final >= cfg.solved_success


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def entropy_collapse(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Final ent_coef below ``collapse_ent_coef`` while success is below ``collapse_success``."""
    t = _table(metrics)
    c, ent = _curve(t, cfg), t["ent_coef"].to_numpy()
    fin = np.isfinite(ent)
    if c is None or not fin.any():
        return None
    last, thr = float(ent[fin][-1]), float(cfg.collapse_ent_coef)
    if last >= thr or math.isclose(last, thr, rel_tol=_FLOAT_TOL) or c.final >= cfg.collapse_success:
        return None
    since = int(t["step"].to_numpy()[fin & (ent < thr)][0])
    return Diagnosis(
        "entropy_collapse",
        f"ent_coef fell to {last:.2g} (< {thr:g}, first below at step {since}) while {c.label} is "
        f"{_pct(c.final)} (< {_pct(cfg.collapse_success)}): the policy stopped exploring before it learned.",
        {"ent_coef_final": last, "ent_coef_start": float(ent[fin][0]), "collapse_step": since,
         "success_final": c.final, "success_column": c.column},
        fixes.entropy_collapse(ctx, cfg))


def _cm(metres: float) -> str:
    return f"{100 * metres:.2f}".rstrip("0").rstrip(".") + " cm"  # 1 cm, 0.04 cm, 0 cm


def object_never_moved(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Push-like task, success at the floor (smoothed and final at or below ``flat_max_success``,
    final below ``solved_success``) and the object essentially never moved: the mean displacement
    of every evaluation below ``still_object_m``; without displacements recorded, the final mean
    distance within ``still_object_m`` of the resting distance (a do-nothing policy's)."""
    if not any(k in ctx.env_id for k in PUSH_LIKE):
        return None
    t = _table(metrics)
    c = _curve(t, cfg)
    if c is None or max(c.peak, c.final) > cfg.flat_max_success or _solved(c, cfg):
        return None
    moved = t[DISPLACEMENT].to_numpy()
    fin, still = np.isfinite(moved), float(cfg.still_object_m)
    floor = f"while {c.label} stayed at the floor (peak {_pct(c.peak)}, final {_pct(c.final)})"
    evidence: Evidence = {"success_peak": c.peak, "success_final": c.final, "success_column": c.column,
                          "still_object_m": still}
    if fin.any():
        most, n = float(moved[fin].max()), int(fin.sum())
        if most >= still:
            return None
        evidence.update(displacement_max=most, displacement_final=float(moved[fin][-1]), n_rows=n)
        what = (f"the object never moved: its mean displacement stayed below {_cm(still)} (at most "
                f"{_cm(most)}) in all {n} evaluations up to step {int(t['step'].to_numpy()[fin][-1])}")
    else:
        dist = t["eval_final_distance_mean"].to_numpy()
        if ctx.resting_distance is None or not np.isfinite(dist[-1]) or \
                abs(float(dist[-1]) - ctx.resting_distance) >= still:
            return None
        evidence.update(final_distance=float(dist[-1]), resting_distance=ctx.resting_distance)
        what = (f"the object was left where it started: final mean distance {float(dist[-1]):.4g} m is within "
                f"{_cm(still)} of a do-nothing policy's {ctx.resting_distance:.4g} m")
    return Diagnosis(
        "object_never_moved",
        f"{what}, {floor}: the policy never pushed the object, so HER had no object motion to learn from.",
        evidence, fixes.object_never_moved(ctx))


def no_learning(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Smoothed success never rises more than ``flat_delta`` above its start, and smoothed and
    final success both stay at or below ``flat_max_success``."""
    c = _trend_curve(_table(metrics), cfg)
    if c is None:
        return None
    rise = c.peak - c.start
    if rise > cfg.flat_delta or max(c.peak, c.final) > cfg.flat_max_success or _solved(c, cfg):
        return None
    if object_never_moved(metrics, ctx, cfg) is not None:  # the more specific diagnosis and fix
        return None
    return Diagnosis(
        "no_learning",
        f"{c.label} stayed flat over {c.n} evaluations up to step {int(c.x[-1])}: peak {_pct(c.peak)} vs "
        f"start {_pct(c.start)} (+{100 * rise:.1f} pp, <= {100 * cfg.flat_delta:g} pp), final {_pct(c.final)}.",
        {"success_start": c.start, "success_peak": c.peak, "rise": rise, "success_final": c.final,
         "n_rows": c.n, "last_step": int(c.x[-1]), "success_column": c.column},
        fixes.no_learning(ctx, cfg, int(c.x[-1])))


def forgetting(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Smoothed success peaked more than ``forgetting_drop`` above the final evaluation."""
    c = _trend_curve(_table(metrics), cfg)
    if c is None:
        return None
    drop = c.peak - c.final
    if drop <= cfg.forgetting_drop:
        return None
    return Diagnosis(
        "forgetting",
        f"{c.label} peaked at {_pct(c.peak)} (step {c.peak_step}) but ended at {_pct(c.final)}: "
        f"a {100 * drop:.0f} pp drop (> {100 * cfg.forgetting_drop:g} pp).",
        {"success_peak": c.peak, "peak_step": c.peak_step, "success_final": c.final, "drop": drop,
         "success_column": c.column},
        fixes.forgetting(ctx, cfg))


def critic_divergence(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Critic loss NaN/inf after it was finite, or late / early loss above ``divergence_factor``."""
    t = _table(metrics)
    loss, steps = t["critic_loss"].to_numpy(), t["step"].to_numpy()
    fin = np.isfinite(loss)
    fix = fixes.divergence(ctx)
    bad = np.isinf(loss) | (~fin & (np.cumsum(fin) > 0))  # NaN before learning starts is normal
    if bad.any():
        i = int(bad.argmax())
        prev = float(loss[:i][fin[:i]][-1]) if fin[:i].any() else math.nan
        return Diagnosis(
            "critic_divergence",
            f"critic loss became non-finite at step {int(steps[i])} (last finite value {prev:.3g}).",
            {"bad_step": int(steps[i]), "last_finite_loss": prev, "n_bad_rows": int(bad.sum())}, fix)
    f = loss[fin]
    if len(f) < cfg.min_rows:
        return None
    k = max(1, min(int(cfg.smooth_window), len(f) // 2))
    early, late = float(np.median(f[:k])), float(np.median(f[-k:]))
    if early <= 0 or late / early <= cfg.divergence_factor:
        return None
    return Diagnosis(
        "critic_divergence",
        f"critic loss grew {late / early:.3g}x (median of first {k} rows {early:.3g} -> last {k} rows "
        f"{late:.3g}; > {cfg.divergence_factor:g}x).",
        {"loss_early": early, "loss_late": late, "ratio": late / early, "window_rows": k}, fix)


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    b = float(dx @ (y - y.mean())) / sxx
    resid = y - y.mean() - b * dx
    return b, math.sqrt(float(resid @ resid) / (len(x) - 2) / sxx)


def slow_but_learning(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig) -> Diagnosis | None:
    """Success still rising over the last quarter: gain > ``rising_slope``, slope > ``rising_t`` SEs."""
    c = _trend_curve(_table(metrics), cfg)
    if c is None or c.n < _MIN_FIT_POINTS or _solved(c, cfg):
        return None
    span = float(c.x[-1] - c.x[0])
    if span <= 0:
        return None
    tail = np.flatnonzero(c.x >= c.x[-1] - _LAST_QUARTER * span)
    tail = tail if len(tail) >= _MIN_FIT_POINTS else np.arange(c.n - _MIN_FIT_POINTS, c.n)
    b, se = _slope(c.x[tail], c.y[tail])
    gain, t_stat = b * _LAST_QUARTER * span, min(b / se if se > 0 else math.inf, _T_CAP)
    if b <= 0 or gain <= cfg.rising_slope or t_stat < cfg.rising_t:
        return None
    more = fixes.more_steps(ctx, int(c.x[-1]))
    return Diagnosis(
        "slow_but_learning",
        f"{c.label} is still rising at the end: +{100 * gain:.0f} pp over the last quarter "
        f"(t = {t_stat:.3g}), ending at {_pct(c.final)}; more steps should help.",
        {"gain_last_quarter": gain, "t_stat": t_stat, "success_final": c.final,
         "steps_to_solved_linear": int(min((cfg.solved_success - c.final) / b, 1e12)),
         "success_column": c.column},
        f"total_steps={more}")


def suspicious_noher_success(metrics: pd.DataFrame, ctx: RunContext,
                             cfg: DiagnosticsConfig) -> Diagnosis | None:
    """No-HER success above ``noher_success`` on a sparse Push/PickAndPlace/Slide task."""
    if ctx.her_enabled or not ctx.sparse or not any(k in ctx.env_id for k in PUSH_LIKE):
        return None
    c = _curve(_table(metrics), cfg)
    if c is None or c.final <= cfg.noher_success:
        return None
    return Diagnosis(
        "suspicious_noher_success",
        f"{ctx.env_id} without HER reached {_pct(c.final)} {c.label} (> {_pct(cfg.noher_success)}); "
        "sparse Push/PickAndPlace/Slide without HER usually stay near 5 %.",
        {"success_final": c.final, "env_id": ctx.env_id, "success_column": c.column},
        "check the reward really is sparse (an env.id without 'Dense', env.sparse=true) and that "
        "her.enabled=false took effect (.hydra/config.yaml); then that evaluation goals are not trivial")


# Root causes first: divergence and entropy collapse usually explain the symptoms after them.
RULES: tuple[Rule, ...] = (critic_divergence, entropy_collapse, suspicious_noher_success, object_never_moved,
                           no_learning, forgetting, slow_but_learning)


def with_resting_distance(ctx: RunContext, metrics: pd.DataFrame, eval_cfg: Any) -> RunContext:
    """``ctx`` with the resting distance on the final evaluation's seeds (``eval_cfg.seed_offset``,
    ``eval_cfg.n_episodes``), measured (resets only, no policy) when :func:`object_never_moved`
    needs it: a Push-like run whose metrics hold no object displacement (written before it was
    recorded). A measurement that fails leaves ``ctx`` as it is."""
    if not any(k in ctx.env_id for k in PUSH_LIKE) or np.isfinite(_table(metrics)[DISPLACEMENT].to_numpy()).any():
        return ctx
    from herexp import envs, evaluation

    try:
        env = envs.make_eval_env(ctx.env_id)
        try:
            rest = evaluation.resting_distance(env, evaluation.eval_seeds(int(eval_cfg.seed_offset),
                                                                           int(eval_cfg.n_episodes)))
        finally:
            env.close()
    except Exception:
        log.exception("resting distance of %s not measured; object_never_moved needs displacements", ctx.env_id)
        return ctx
    return dataclasses.replace(ctx, resting_distance=rest)


def _as_config(cfg: DiagnosticsConfig | DictConfig) -> DiagnosticsConfig:
    """The dataclass itself, or a DictConfig merged over the defaults (missing keys get defaults)."""
    if isinstance(cfg, DiagnosticsConfig):
        return cfg
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DiagnosticsConfig), cfg))  # type: ignore


def diagnose(metrics: pd.DataFrame, ctx: RunContext, cfg: DiagnosticsConfig | DictConfig) -> list[Diagnosis]:
    """Every diagnosis in :data:`RULES` that fires on ``metrics``, in RULES order.

    A rule that raises is logged and skipped: a diagnostic bug must not fail a finished run.
    """
    c = _as_config(cfg)
    found: list[Diagnosis] = []
    for rule in RULES:
        try:
            d = rule(metrics, ctx, c)
        except Exception:
            log.exception("diagnostic rule %s failed; skipped", getattr(rule, "__name__", rule))
            continue
        if d is not None:
            found.append(d)
    return found


def format_diagnoses(diagnoses: list[Diagnosis]) -> str:
    """Multi-line text for the end-of-run log; ``no problems detected`` when empty."""
    if not diagnoses:
        return "no problems detected"
    lines = [f"{len(diagnoses)} problem(s) detected:"]
    for d in diagnoses:
        lines += [f"- {d.name}: {d.message}", f"  fix: {d.fix}"]
    return "\n".join(lines)
