"""PNG plots of a report: learning curves, interaction heatmap, marginal bars, HER vs no-HER.

Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state), so
this works headless and in threads. Each function returns the path written, or None when the
data for that plot is not there (a raw= file has no learning curves).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, PercentFormatter

from herexp.aggregate import stats
from herexp.aggregate.load import Loaded, fmt_level, load_curves

log = logging.getLogger(__name__)

DPI = 120
N_EXTREME = 3  # learning curves of the top-3 and bottom-3 configurations


def _figure(w: float = 8.0, h: float = 5.0) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    log.info("wrote %s", path)
    return path


def _axis(ax: Any, metric: str, which: str = "y") -> None:
    if metric in ("success_rate", "eval_success_rate"):
        getattr(ax, f"{which}axis").set_major_formatter(PercentFormatter(xmax=1, decimals=0))


# ----------------------------------------------------------------------------- curves
def band(curves: Sequence[pd.Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Align seeds on their common steps -> (steps, mean, ci_low, ci_high); t-CI per step.

    When the seeds share fewer than two steps (different eval grids), each is interpolated
    onto the steps of the shortest curve."""
    curves = [c for c in curves if len(c)]
    if not curves:
        return None
    common = sorted(set.intersection(*(set(c.index) for c in curves)))
    if len(common) >= 2 or len(curves) == 1:
        steps = np.asarray(common if len(curves) > 1 else curves[0].index, dtype=float)
        ys = np.stack([c.loc[steps].to_numpy(float) for c in curves])
    else:
        steps = min(curves, key=lambda c: c.index.max()).index.to_numpy(float)
        ys = np.stack([np.interp(steps, c.index.to_numpy(float), c.to_numpy(float)) for c in curves])
    mean = ys.mean(axis=0)
    cis = [stats.t_ci(col) for col in ys.T]
    lo = np.array([mean[i] if c[0] is None else c[0] for i, c in enumerate(cis)])
    hi = np.array([mean[i] if c[1] is None else c[1] for i, c in enumerate(cis)])
    return steps, mean, lo, hi


def _plot_band(ax: Any, curves: Sequence[pd.Series], label: str, **style: Any) -> bool:
    b = band(curves)
    if b is None:
        return False
    steps, mean, lo, hi = b
    (line,) = ax.plot(steps, mean, label=f"{label} (n={len([c for c in curves if len(c)])})", **style)
    ax.fill_between(steps, np.clip(lo, 0, 1), np.clip(hi, 0, 1), color=line.get_color(), alpha=0.2)
    return True


def _curves_for(runs: pd.DataFrame) -> list[pd.Series]:
    return [load_curves(f) for f in runs["folder"]]


def _finish_curves(fig: Figure, ax: Any, title: str) -> None:
    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.02, 1.02)
    _axis(ax, "success_rate")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)


def learning_curves(loaded: Loaded, report: Mapping[str, Any], out: Path) -> Path | None:
    """Eval success vs env steps (mean ± 95 % CI over seeds), top-3 and bottom-3 configs."""
    if loaded.source != "folders" or not report["configs"]:
        return None
    configs = report["configs"]
    chosen = list({c["rank"]: c for c in configs[:N_EXTREME] + configs[-N_EXTREME:]}.values())
    runs = loaded.completed
    fig = _figure(9, 5.5)
    ax = fig.add_subplot()
    drawn = False
    for c in chosen:
        top = c["rank"] <= N_EXTREME
        curves = _curves_for(runs[runs["config"] == c["config"]])
        drawn |= _plot_band(ax, curves, f"#{c['rank']} {c['config']}", linestyle="-" if top else "--")
    if not drawn:
        return None
    _finish_curves(fig, ax, "Learning curves: top-3 (solid) and bottom-3 (dashed) configurations")
    return _save(fig, out / "learning_curves.png")


def comparison_curves(loaded: Loaded, report: Mapping[str, Any], out: Path) -> Path | None:
    """HER vs no-HER (or the compare= factor's arms): pooled curves per arm."""
    comp = report.get("comparison")
    if loaded.source != "folders" or not comp:
        return None
    runs, f = loaded.completed, comp["factor"]
    fig = _figure()
    ax = fig.add_subplot()
    drawn = False
    for lv in sorted(dict.fromkeys(runs[f]), key=stats.level_key):
        drawn |= _plot_band(ax, _curves_for(stats.at_level(runs, f, lv)), f"{f}={fmt_level(lv)}")
    if not drawn:
        return None
    title = "HER vs no-HER" if f == "her" else f"{f}: arms compared"
    _finish_curves(fig, ax, f"{title} (mean ± 95 % CI over runs); verdict: {comp['verdict']}")
    return _save(fig, out / f"compare_{f}_curves.png")


# ----------------------------------------------------------------------------- factor plots
def interaction_heatmap(report: Mapping[str, Any], out: Path) -> Path | None:
    """Mean metric per cell for the two factors with the largest marginal spread."""
    if len(report["factors"]) < 2:
        return None
    a, b = (d["factor"] for d in report["factor_spread"][:2])
    it = next(i for i in report["interactions"] if set(i["factors"]) == {a, b})
    la = sorted({c[a] for c in it["cells"]}, key=stats.level_key)
    lb = sorted({c[b] for c in it["cells"]}, key=stats.level_key)
    grid = np.full((len(la), len(lb)), np.nan)
    for c in it["cells"]:
        grid[la.index(c[a]), lb.index(c[b])] = c["mean"]
    m = report["metric"]
    rate = m == "success_rate"
    fig = _figure(1.6 + 1.3 * len(lb), 1.4 + 0.9 * len(la))
    ax = fig.add_subplot()
    im = ax.imshow(grid, cmap="viridis", vmin=0 if rate else None, vmax=1 if rate else None, aspect="auto")
    for i, j in np.ndindex(grid.shape):
        if np.isfinite(grid[i, j]):
            v = grid[i, j]
            text = f"{100 * v:.1f}%" if rate else f"{v:.2f}"
            dark = v < 0.5 if rate else v < np.nanmean(grid)
            ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black", fontsize=9)
    ax.set_xticks(range(len(lb)), [fmt_level(x) for x in lb])
    ax.set_yticks(range(len(la)), [fmt_level(x) for x in la])
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    ax.set_title(f"Mean {m}: {a} × {b}", fontsize=10)
    cb = fig.colorbar(im, ax=ax)
    _axis(cb.ax, m)
    return _save(fig, out / "interaction_heatmap.png")


def marginal_bars(report: Mapping[str, Any], out: Path) -> Path | None:
    """One panel per factor: level means (of config means) with 95 % CI error bars."""
    factors = [d["factor"] for d in report["factor_spread"]]
    if not factors:
        return None
    m = report["metric"]
    ncols = min(len(factors), 3)
    nrows = -(-len(factors) // ncols)
    fig = _figure(3.6 * ncols, 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, f in zip(axes, factors, strict=False):
        rows = report["marginals"][f]
        means = np.array([r["mean"] for r in rows])
        err = np.array([0.0 if r["ci95_low"] is None else r["mean"] - r["ci95_low"] for r in rows])
        x = np.arange(len(rows))
        ax.bar(x, means, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, [fmt_level(r["level"]) for r in rows])
        ax.set_xlabel(f)
        ax.set_ylabel(f"mean {m}")
        if m == "success_rate":
            ax.set_ylim(0, 1.05)
        _axis(ax, m)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(factors):]:
        ax.set_visible(False)
    fig.suptitle(f"Factor-level marginals of {m} (error bars: 95 % t-CI over runs)", fontsize=10)
    return _save(fig, out / "marginals.png")


def make_all(loaded: Loaded, report: Mapping[str, Any], out: Path) -> list[Path]:
    """Every plot that the data allows; a plot that fails is logged, never fatal."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for fn in (learning_curves, comparison_curves):
        made.append(_safe(fn, loaded, report, out))
    for fn in (interaction_heatmap, marginal_bars):
        made.append(_safe(fn, report, out))
    return [p for p in made if p is not None]


def _safe(fn: Any, *args: Any) -> Path | None:
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a plot must not lose the tables
        log.exception("plot %s failed", fn.__name__)
        return None
