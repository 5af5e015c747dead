"""Aggregation: run folders (or the reference project's raw sweep file) -> the tables,
statistics and plots a chapter publishes.

``load`` makes a tidy table (one row per run), ``stats`` computes (pure; the intervals that
count evaluation episodes, Wilson and the two-level bootstrap, in ``intervals``), ``report`` writes
report.json / report.md / runs.csv / configs.csv and renders tables, ``plots`` draws PNGs.
:func:`aggregate` wires them; ``python -m herexp.aggregate`` is its command line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herexp.aggregate import plots as plots_mod
from herexp.aggregate import report as report_mod
from herexp.aggregate.load import Loaded, load_folders, load_raw
from herexp.search import report as study_report

log = logging.getLogger(__name__)

OUT_DIRNAME = "aggregate"


class NoRunsError(RuntimeError):
    """No completed run with the metric was found in the inputs."""


@dataclass
class Result:
    report: dict[str, Any]
    loaded: Loaded
    out: Path
    paths: dict[str, Path] = field(default_factory=dict)  # report.json, report.md, csvs
    plots: list[Path] = field(default_factory=list)


def default_out(inputs: Sequence[str | Path], raw: str | Path | None) -> Path:
    """<first input>/aggregate/, or <raw file's folder>/aggregate/."""
    if raw is not None:
        return Path(raw).parent / OUT_DIRNAME
    return Path(inputs[0]) / OUT_DIRNAME


def aggregate(inputs: Sequence[str | Path] = (), raw: str | Path | None = None, out: str | Path | None = None,
              metric: str = "success_rate", compare: str | None = None, reps: int = 2000, seed: int = 0,
              make_plots: bool = True, at_step: int | None = None) -> Result:
    """Load, compute, write everything into ``out``; raise NoRunsError when nothing is usable.

    ``at_step``: compare every run at that env step (its last evaluation at or before it)."""
    if bool(inputs) == (raw is not None):
        raise ValueError("give run/sweep folders or raw=<file.json> (exactly one of the two)")
    if raw is not None and at_step is not None:
        raise ValueError("at_step needs run folders (their metrics.csv), not raw=")
    loaded = load_raw(raw, metric) if raw is not None else load_folders(inputs, metric, at_step)
    if loaded.completed.empty:
        why = "; ".join(f"{s['path']}: {s['reason']}" for s in loaded.skipped[:3])
        raise NoRunsError(f"no completed run with a finite {metric} in {list(map(str, inputs)) or raw} "
                          f"({len(loaded.skipped)} skipped, {len(loaded.failed)} failed)" + (f": {why}" if why else ""))
    rep = report_mod.build_report(loaded, metric, compare, reps=reps, seed=seed)
    out = Path(out) if out is not None else default_out(inputs, raw)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plots_mod.make_all(loaded, rep, out) if make_plots else []
    study_file = next((f for f in map(study_report.find_study, inputs) if f is not None), None)
    if study_file is not None:  # a search's sweep folder: its study's section and plots
        rep["study"], _ = study_report.section(study_file)
        pngs += study_report.plots(rep["study"], out) if make_plots else []
    paths = report_mod.write_all(rep, loaded, out, pngs)
    return Result(rep, loaded, out, paths, pngs)


__all__ = ["NoRunsError", "Result", "aggregate", "default_out", "load_folders", "load_raw"]
