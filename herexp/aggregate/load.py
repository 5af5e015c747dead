"""Run folders or a raw sweep file -> one tidy table: one row per run.

Columns: the discovered factor columns (readable names), ``seed``, the metrics
(:data:`herexp.aggregate.stats.METRICS`), ``steps_to_50`` / ``steps_to_90``, the evaluation
episodes behind the success rate (``successes`` of ``n_episodes``, their Wilson 95 % interval
``success_lo`` / ``success_hi`` and ``episodes_source``, see :data:`EPISODE_SOURCES`), ``status``,
``config`` (a readable label of the factor values), ``diagnostics`` (diagnosis names joined by
``;``) and ``folder``.

Nothing here crashes on a bad folder: a missing, partial or corrupt run is listed in
``skipped`` with the reason, a ``failed`` run in ``failed``. All file names and keys come
from :mod:`herexp.runfolder`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from herexp import identity, options, runfolder
from herexp.aggregate.intervals import wilson_ci
from herexp.aggregate.stats import METRICS, SUCCESS_LEVELS, steps_column

log = logging.getLogger(__name__)

# Factor names and bookkeeping keys come from herexp.identity (the one owner of run identity).
# Readable keys are always kept when they vary; any other varying key is dropped when it is
# a function of the kept ones (env.id follows env.name). Configs are read in today's shape
# (herexp.runfolder.read_config), and an option's ``_target_`` reads as its name (sac_fast, td3).
READABLE = identity.FACTOR_NAMES
LAST_KEYS = ("study", "experiment")  # considered last, so they are dropped when redundant
RAW_NON_FACTORS = frozenset({"config", "seed", *METRICS})
RAW_READABLE = {k: k for k in ("env", "her", "entropy_mode", "ent_coef", "n_sampled_goal",
                               "learning_starts", "gamma")}
EPISODE_COLUMNS = ("successes", "n_episodes", "success_lo", "success_hi", "episodes_source")
BASE_COLUMNS = ("seed", *METRICS, *map(steps_column, SUCCESS_LEVELS), *EPISODE_COLUMNS, "status", "config",
                "diagnostics", "folder")
# Where a run's successes / n_episodes come from: the final evaluation's per-episode results; or
# success_rate x the episodes its config names (round(rate x n)): eval.n_episodes for the final
# evaluation (summary.json), eval.periodic_episodes for a periodic one read with at_step (metrics.csv);
# "none" when the count is unknown (a raw sweep file).
EPISODE_SOURCES = ("eval.json", "summary", "metrics.csv", "none")


@dataclass
class Loaded:
    """The tidy runs table plus what could not be used."""

    runs: pd.DataFrame  # one row per run (completed and failed)
    factors: list[str]  # factor column names, most important first (READABLE order)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {path, reason}
    failed: list[dict[str, Any]] = field(default_factory=list)  # {path, error}
    source: str = "folders"  # "folders" or "raw"
    at_step: int | None = None  # metrics are each run's last evaluation at or before this env step
    pruned: list[dict[str, Any]] = field(default_factory=list)  # {path, pruned_at_step}: search trials' runs

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == runfolder.STATUS_COMPLETED]


# ----------------------------------------------------------------------------- helpers
def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {dotted.key: value}; lists become their string form (hashable)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v) if isinstance(v, (list, tuple)) else v
    return out


def fmt_level(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _readable_value(key: str, v: Any) -> Any:
    if key in ("her.enabled", "her") and isinstance(v, bool):
        return "on" if v else "off"
    if key.endswith(f".{options.TARGET}") and isinstance(v, str):
        return options.name_of(v)  # herexp.algos.td3.Td3 -> td3
    if v is None:
        return "none"
    return v


def _is_function_of(key: str, kept: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bool:
    """True when ``key``'s value is determined by the values of the ``kept`` keys."""
    seen: dict[tuple, Any] = {}
    for r in rows:
        k = tuple(repr(r.get(c)) for c in kept)
        v = repr(r.get(key))
        if seen.setdefault(k, v) != v:
            return False
    return True


def discover_factors(rows: Sequence[Mapping[str, Any]], readable: Mapping[str, str],
                     ignore: Iterable[str] = ()) -> dict[str, str]:
    """{key: readable name} for every key that varies between ``rows`` (flat dicts).

    Keys in ``readable`` are always kept when they vary; any other varying key is kept only
    when it is not a function of the keys already kept (so ``env.id`` beside ``env.name``,
    or ``experiment`` that only tracks the swept factors, disappear).
    """
    ignore = set(ignore)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in ignore]
    varying = [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1]
    preferred = [k for k in readable if k in varying]
    others = [k for k in varying if k not in readable and k not in LAST_KEYS]
    others += [k for k in LAST_KEYS if k in varying]
    kept = list(preferred)
    for k in others:
        if not kept or not _is_function_of(k, kept, rows):
            kept.append(k)
    names: dict[str, str] = {}
    for k in kept:
        name = readable.get(k) or k.rsplit(".", 1)[-1]
        if name in names.values() or any(name == readable.get(o) for o in kept if o != k):
            name = k
        names[k] = name
    return names


def _metric_value(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _label(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={fmt_level(v)}" for k, v in values.items()) or "all runs"


def _table(records: list[dict[str, Any]], names: Mapping[str, str]) -> pd.DataFrame:
    """Records with a flat ``_flat`` dict -> DataFrame with factor columns and a label."""
    rows = []
    for rec in records:
        flat = rec.pop("_flat")
        values = {name: _readable_value(k, flat.get(k)) for k, name in names.items()}
        rows.append({**values, **rec, "config": _label(values)})
    cols = [*names.values(), *BASE_COLUMNS, *(["eval_step"] if any("eval_step" in r for r in rows) else [])]
    df = pd.DataFrame(rows, columns=cols)
    for name in names.values():  # keep levels as Python objects (mixed types, no NaN)
        df[name] = df[name].astype(object)
    return df


# ----------------------------------------------------------------------------- folders
def _empty_dirs(root: Path, runs: Sequence[Path]) -> list[dict[str, str]]:
    """Empty folders below ``root`` that are not inside a run (a job that never started)."""
    run_set = set(runs)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here in run_set:
            dirnames.clear()  # never look inside a run (tb/, wandb/ ...)
            continue
        if not dirnames and not filenames:
            out.append({"path": str(here), "reason": "empty folder (no summary.json, no .hydra/config.yaml)"})
    return out


def _read_summary(run: Path) -> tuple[dict[str, Any] | None, str | None]:
    path = run / runfolder.SUMMARY
    if not path.exists():
        return None, f"no {runfolder.SUMMARY} (unfinished or killed run)"
    try:
        summary = runfolder.read_json(path)
    except (OSError, ValueError) as e:
        return None, f"corrupt {runfolder.SUMMARY}: {e}"
    if not isinstance(summary, dict):
        return None, f"corrupt {runfolder.SUMMARY}: not a JSON object"
    if summary.get("status") == runfolder.STATUS_INTERRUPTED:
        return None, f"interrupted at {summary.get('interrupted_at_step')} env steps (unfinished run)"
    if summary.get("status") not in (runfolder.STATUS_COMPLETED, runfolder.STATUS_FAILED, runfolder.STATUS_PRUNED):
        return None, f"{runfolder.SUMMARY} has unknown status {summary.get('status')!r}"
    return summary, None


# metrics.csv columns of an evaluation -> the summary's metric names
EVAL_COLUMNS = {"eval_success_rate": "success_rate", "eval_return_mean": "return_mean",
                "eval_final_distance_mean": "final_distance_mean"}


def _steps_to_levels(run: Path, at_step: int | None) -> dict[str, float]:
    """Env steps of the first evaluation whose success reached each level (NaN: never, or
    not by ``at_step``); the run's own curve, metrics.csv."""
    curve = load_curves(run) if (run / runfolder.METRICS).exists() else pd.Series(dtype=float)
    if at_step is not None:
        curve = curve[curve.index <= at_step]
    out = {}
    for level in SUCCESS_LEVELS:
        hit = curve.index[curve.to_numpy() >= level - 1e-9]
        out[steps_column(level)] = float(hit[0]) if len(hit) else math.nan
    return out


def _values_at(run: Path, step: int) -> tuple[dict[str, float] | None, str | None]:
    """The run's last evaluation at or before ``step`` env steps (metrics.csv; the final
    evaluation is its last row): the same budget for every run, also for runs that stopped early."""
    try:
        df = runfolder.read_metrics(run)
        df = df[["step", *EVAL_COLUMNS]].apply(pd.to_numeric, errors="coerce")
    except Exception as e:  # noqa: BLE001 - an unreadable curve is a skip reason
        return None, f"no readable {runfolder.METRICS}: {e}"
    final_row = df.index[-1] if len(df) else None
    df = df[(df["step"] <= step) & df["eval_success_rate"].notna()]
    if df.empty:
        return None, f"no evaluation at or before step {step} in {runfolder.METRICS}"
    last = df.iloc[-1]
    return ({name: float(last[col]) for col, name in EVAL_COLUMNS.items()}
            | {"eval_step": int(last["step"]), "_final": bool(df.index[-1] == final_row)}), None


def _per_episode_successes(run: Path) -> list[bool]:
    """The final evaluation's per-episode successes from eval.json ([] when it has none)."""
    if not (run / runfolder.EVAL).exists():
        return []
    try:
        per = runfolder.read_eval(run).get("per_episode") or []
        return [bool(e["success"]) for e in per]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return []


def episode_counts(run: Path, config: Mapping[str, Any], rate: float, final: bool) -> dict[str, Any]:
    """The evaluation episodes behind ``rate`` (a run's final evaluation when ``final``, else a
    periodic one): ``successes`` of ``n_episodes``, their Wilson 95 % interval and where the
    counts come from (:data:`EPISODE_SOURCES`)."""
    per = _per_episode_successes(run) if final else []
    if per:
        k, n, source = sum(per), len(per), "eval.json"
    else:
        ev = config.get("eval") or {}
        n = ev.get("n_episodes" if final else "periodic_episodes")
        if not isinstance(n, int) or n < 1 or not math.isfinite(rate):
            return {"successes": math.nan, "n_episodes": math.nan, "success_lo": math.nan,
                    "success_hi": math.nan, "episodes_source": "none"}
        k, source = round(rate * n), "summary" if final else runfolder.METRICS
    lo, hi = wilson_ci(k, n)
    return {"successes": k, "n_episodes": n, "success_lo": lo, "success_hi": hi, "episodes_source": source}


def _read_run(run: Path, metric: str, at_step: int | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """One run folder -> a record (with its flat config under ``_flat``) or a skip reason."""
    summary, reason = _read_summary(run)
    if summary is None:
        return None, reason
    try:
        config = runfolder.read_config(run)
    except Exception as e:  # noqa: BLE001 - any unreadable config is a skip reason
        return None, f"no readable resolved config: {e}"
    if not isinstance(config, dict):
        return None, "no readable resolved config"
    values = {m: _metric_value(summary.get(m)) for m in METRICS}
    missing = [m for m in METRICS if math.isnan(values[m])]
    if missing and (run / runfolder.EVAL).exists():
        try:
            ev = runfolder.read_eval(run)
            values.update({m: _metric_value(ev.get(m)) for m in missing})
        except (OSError, ValueError, AttributeError):
            pass
    status = summary["status"]
    final = True
    if at_step is not None and status == runfolder.STATUS_COMPLETED:
        at, reason = _values_at(run, at_step)
        if at is None:
            return None, reason
        final = at.pop("_final")
        values.update(at)
    values.update(_steps_to_levels(run, at_step))
    if status == runfolder.STATUS_COMPLETED:
        values.update(episode_counts(run, config, values["success_rate"], final))
    if status == runfolder.STATUS_COMPLETED and math.isnan(values[metric]):
        return None, f"completed but no finite {metric} in {runfolder.SUMMARY} or {runfolder.EVAL}"
    diags = summary.get("diagnostics") or []
    names = [str(d["name"]) for d in diags if isinstance(d, dict) and d.get("name")]
    return {"_flat": flatten(config), "seed": config.get("seed"), **values, "status": status,
            "diagnostics": ";".join(names), "folder": str(run), "_error": summary.get("error"),
            "_pruned_at": summary.get("pruned_at_step")}, None


def load_folders(paths: Iterable[str | Path], metric: str = "success_rate", at_step: int | None = None) -> Loaded:
    """Every run folder found (recursively) below ``paths`` -> :class:`Loaded`.

    ``at_step``: each run's metrics are its last evaluation at or before that many env steps
    (column ``eval_step``) instead of its final evaluation."""
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    seen: set[Path] = set()
    for root in map(Path, paths):
        if not root.exists():
            skipped.append({"path": str(root), "reason": "does not exist"})
            continue
        runs = list(runfolder.find_run_dirs(root))
        empties = _empty_dirs(root, runs)
        skipped += empties
        if not runs and not empties:
            skipped.append({"path": str(root), "reason": "no run folders found below it"})
        for run in runs:
            if run.resolve() in seen:
                continue
            seen.add(run.resolve())
            rec, reason = _read_run(run, metric, at_step)
            if rec is None:
                skipped.append({"path": str(run), "reason": str(reason)})
            else:
                records.append(rec)
    done = [r["_flat"] for r in records if r["status"] == runfolder.STATUS_COMPLETED]
    ignore = {k for r in records for k in r["_flat"] if k == identity.SEED or identity.is_bookkeeping(k)}
    if at_step is not None and all(float(f.get("total_steps", math.inf)) >= at_step for f in done):
        ignore.add("total_steps")  # every run is read at at_step: how much longer it trained is no factor
    names = discover_factors(done, READABLE, ignore)
    failed = [{"path": r["folder"], "error": r["_error"]} for r in records
              if r["status"] == runfolder.STATUS_FAILED]
    pruned = [{"path": r["folder"], "pruned_at_step": r["_pruned_at"]} for r in records
              if r["status"] == runfolder.STATUS_PRUNED]
    for r in records:
        r.pop("_error")
        r.pop("_pruned_at")
    for s in skipped:
        log.info("skipped %s: %s", s["path"], s["reason"])
    return Loaded(_table(records, names), list(names.values()), skipped, failed, "folders", at_step, pruned=pruned)


# ----------------------------------------------------------------------------- raw file
def load_raw(path: str | Path, metric: str = "success_rate") -> Loaded:
    """The reference project's ``sweep_results_raw.json`` (a JSON list, one object per run)."""
    path = Path(path)
    try:
        data = runfolder.read_json(path)
    except (OSError, ValueError) as e:
        return Loaded(_table([], {}), [], [{"path": str(path), "reason": f"unreadable: {e}"}], [], "raw")
    if not isinstance(data, list):
        return Loaded(_table([], {}), [], [{"path": str(path), "reason": "not a JSON list"}], [], "raw")
    records, skipped = [], []
    for i, obj in enumerate(data):
        where = f"{path}#{i}"
        if not isinstance(obj, dict):
            skipped.append({"path": where, "reason": "not a JSON object"})
            continue
        values = {m: _metric_value(obj.get(m)) for m in METRICS}
        if math.isnan(values[metric]):
            skipped.append({"path": where, "reason": f"no finite {metric}"})
            continue
        flat = {k: v for k, v in obj.items() if k not in RAW_NON_FACTORS}
        records.append({"_flat": flat, "seed": obj.get("seed"), **values, "episodes_source": "none",
                        "status": runfolder.STATUS_COMPLETED, "diagnostics": "", "folder": where})
    names = discover_factors([r["_flat"] for r in records], RAW_READABLE)
    return Loaded(_table(records, names), list(names.values()), skipped, [], "raw")


def load_curves(folder: str | Path, column: str = "eval_success_rate") -> pd.Series:
    """A run's learning curve from metrics.csv: ``column`` indexed by env step (may be empty)."""
    try:
        df = runfolder.read_metrics(folder)
        df = df[["step", column]].apply(pd.to_numeric, errors="coerce").dropna()
    except Exception as e:  # noqa: BLE001 - a corrupt curve must not stop the report
        log.warning("unreadable %s in %s: %s", runfolder.METRICS, folder, e)
        return pd.Series(dtype=float)
    df = df.drop_duplicates("step", keep="last").sort_values("step")
    return pd.Series(df[column].to_numpy(float), index=df["step"].to_numpy(float), name=column)
