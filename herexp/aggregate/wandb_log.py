"""The sweep's report in the W&B dashboard: one run of job type ``aggregate`` in the sweep's
project and group (the study), holding the ranked configurations, marginals, factor spread and
interactions as ``wandb.Table`` and the PNG plots as ``wandb.Image``. Offline by default, in
``<out>/wandb``: ``wandb sync <out>/wandb/offline-run-*`` uploads it next to the training runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from herexp import runfolder
from herexp.aggregate import Result
from herexp.aggregate import report as report_mod

log = logging.getLogger(__name__)
JOB_TYPE = "aggregate"


def _text_levels(df: pd.DataFrame) -> pd.DataFrame:
    """Factor levels of mixed types (0.05, "none", "on") as text: a W&B column has one type."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: None if v is None else str(v))
    return df


def tables(report: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The report's tables as data frames: ``configs`` (ranked, with t-CI and IQM),
    ``marginals``, ``factor_spread`` and ``interactions`` (empty ones left out)."""
    out = {"configs": report_mod.configs_frame(report)}
    out["marginals"] = pd.DataFrame([{"factor": f, **row} for f, rows in report["marginals"].items() for row in rows])
    out["factor_spread"] = pd.DataFrame(report["factor_spread"])
    out["interactions"] = pd.DataFrame([
        {"factor_a": i["factors"][0], "level_a": c[i["factors"][0]], "factor_b": i["factors"][1],
         "level_b": c[i["factors"][1]], "mean": c["mean"], "n_runs": c["n_runs"]}
        for i in report["interactions"] for c in i["cells"]])
    study = report.get("study")
    if study:  # a search: one row per trial, and the importances
        out["study_trials"] = pd.DataFrame([{"number": t["number"], "state": t["state"], "value": t["value"],
                                             "env_steps": t["env_steps"], **{f"param/{k}": v for k, v in t["params"].items()}}
                                            for t in study["trials"]])
        out["study_importances"] = pd.DataFrame([{"param": k, "importance": v}
                                                 for k, v in (study["importances"] or {}).items()])
    return {name: _text_levels(df) for name, df in out.items() if not df.empty}


def study_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B summary keys of a search's study: ``study/best_value``, ``study/best/<param>``,
    ``study/trials/<state>``, ``study/env_steps/<total|pruned|...>``, ``study/importance/<param>``."""
    study = report.get("study")
    if not study:
        return {}
    out: dict[str, Any] = {f"study/trials/{k}": v for k, v in study["trials_by_state"].items()}
    out.update({f"study/env_steps/{k}": v for k, v in study["env_steps"].items()})
    out.update({f"study/importance/{k}": v for k, v in (study["importances"] or {}).items()})
    if study["best"]:
        out.update({"study/best_value": study["best"]["value"], "study/best_trial": study["best"]["number"],
                    **{f"study/best/{k}": v for k, v in study["best"]["params"].items()}})
    return out


def _where(folders: Sequence[str], fallback: str) -> tuple[str, str, str | None]:
    """(project, group, entity) of the runs aggregated: their own W&B settings and study."""
    for folder in folders:
        try:
            cfg = runfolder.read_config(folder)
            w = cfg.get("logger", {}).get("wandb", {})
            return w.get("project") or "herexp", w.get("group") or cfg.get("study") or fallback, w.get("entity")
        except Exception:  # noqa: BLE001 - a run without a readable config: try the next
            continue
    return "herexp", fallback, None


def log_report(result: Result, mode: str = "offline") -> str:
    """Log the report of :func:`herexp.aggregate.aggregate` as a W&B run (job type
    ``aggregate``) in ``<out>/wandb``; return the run's folder."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    report = result.report
    folders = [f for f in result.loaded.completed["folder"]] if result.loaded.source == "folders" else []
    project, group, entity = _where(folders, result.out.parent.name)
    (result.out / runfolder.WANDB_DIR).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, entity=entity, group=group, job_type=JOB_TYPE,
                     name=f"aggregate_{time.strftime('%Y%m%d-%H%M%S')}", dir=str(result.out), mode=mode,
                     reinit="finish_previous", tags=[report["metric"]],
                     config={"metric": report["metric"], "factors": report["factors"], "n_runs": report["n_runs"],
                             "n_configs": report["n_configs"], "inputs": sorted({str(Path(f).parent) for f in folders})},
                     settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
    try:
        data: dict[str, Any] = {f"tables/{k}": wandb.Table(dataframe=df) for k, df in tables(report).items()}
        data.update({f"plots/{p.stem}": wandb.Image(str(p)) for p in result.plots})
        run.log(data)
        best = report["configs"][0]
        run.summary.update({"best/config": best["config"], "best/mean": best["mean"], "best/n": best["n"],
                            "n_runs": report["n_runs"], "n_configs": report["n_configs"], **study_summary(report)})
        log.info("W&B %s aggregate run %s in %s", mode, run.name, run.dir)
        return str(Path(run.dir).parent)
    finally:
        run.finish()
