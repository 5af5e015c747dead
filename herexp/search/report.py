"""A study's report: the ``study`` section of the aggregator's report.json and its two plots.

``python -m herexp.aggregate multirun/<study>`` finds ``study.json`` (written by the sweeper)
in a folder it aggregates and adds, next to the usual tables:

* ``study`` in report.json -- best trial (number, value, params, folders), trials by state
  (``completed``, ``pruned``, ``failed``, ``running``), env steps spent (total, by pruned trials,
  by completed ones; each run's ``total_steps``, or its last metrics row when it never finished),
  parameter importances (Optuna's default evaluator, PED-ANOVA, over the completed trials) and one row per
  trial;
* ``study_history.png`` -- trial value by trial number (pruned trials at their last reported mean)
  and the best value so far;
* ``study_importance.png`` -- the importances as bars.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from herexp import runfolder
from herexp.search import STUDY_FILE, storage

log = logging.getLogger(__name__)
STATE_NAMES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
               "WAITING": "running"}


def find_study(folder: str | Path) -> Path | None:
    """The ``study.json`` of a sweep folder, or None when the folder is no study."""
    path = Path(folder) / STUDY_FILE
    return path if path.is_file() else None


def run_steps(run: Path) -> int:
    """Env steps a run took: its summary's ``total_steps``, else its last metrics row, else 0."""
    summary = runfolder.read_summary(run) or {}
    if summary.get("total_steps") is not None:
        return int(summary["total_steps"])
    try:
        steps = runfolder.read_metrics(run)["step"]
        return int(steps.max()) if len(steps) else 0
    except Exception:  # noqa: BLE001 - an unreadable curve counts as no steps
        return 0


def importances(study: Any) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances over the completed trials, or None and why not."""
    import optuna

    try:
        return dict(optuna.importance.get_param_importances(study)), "Optuna's default evaluator (PED-ANOVA)"
    except (RuntimeError, ValueError) as exc:
        return None, f"not computable: {exc}"


def section(study_file: Path) -> tuple[dict[str, Any], Any]:
    """``(the study section of report.json, the Optuna study)`` of a study folder."""
    spec = runfolder.read_json(study_file)
    sweep_dir = study_file.parent
    study = storage.read_study(spec["storage"], spec.get("study"))
    trials, steps = [], {"total": 0, "completed": 0, "pruned": 0, "failed": 0, "running": 0}
    counts = dict.fromkeys(("completed", "pruned", "failed", "running"), 0)
    for t in study.get_trials(deepcopy=False):
        state = STATE_NAMES[t.state.name]
        counts[state] += 1
        folders = list(t.user_attrs.get("folders") or [])
        n = sum(run_steps(sweep_dir / f) for f in folders)
        steps["total"] += n
        steps[state] += n
        last = max(t.intermediate_values.items())[1] if t.intermediate_values else None
        trials.append({"number": t.number, "state": state, "value": t.value, "params": dict(t.params),
                       "env_steps": n, "last_reported": last, "folders": folders})
    imp, how = importances(study)
    best = None
    if counts["completed"]:
        b = study.best_trial
        best = {"number": b.number, "value": b.value, "params": dict(b.params),
                "folders": list(b.user_attrs.get("folders") or [])}
    return {"name": study.study_name, "storage": spec["storage"], "direction": spec.get("direction"),
            "n_trials": spec.get("n_trials"), "seeds_per_trial": spec.get("seeds_per_trial"),
            "trials_by_state": counts, "best": best, "env_steps": steps, "importances": imp,
            "importance_method": how, "trials": trials}, study


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path)
    log.info("wrote %s", path)
    return path


def plots(sec: dict[str, Any], out: Path) -> list[Path]:
    """The optimisation-history and importance PNGs (those the data allows)."""
    made = []
    done = [t for t in sec["trials"] if t["state"] in ("completed", "pruned")]
    if done:
        fig = _figure(8, 4.5)
        ax = fig.add_subplot()
        comp = [t for t in done if t["state"] == "completed"]
        pruned = [t for t in done if t["state"] == "pruned" and t["last_reported"] is not None]
        ax.scatter([t["number"] for t in comp], [t["value"] for t in comp], label="completed (final success)")
        ax.scatter([t["number"] for t in pruned], [t["last_reported"] for t in pruned], marker="x",
                   color="tab:red", label="pruned (last reported mean)")
        best, xs, ys = None, [], []
        sign = 1 if sec["direction"] != "minimize" else -1
        for t in sorted(comp, key=lambda t: t["number"]):
            best = t["value"] if best is None or sign * t["value"] > sign * best else best
            xs.append(t["number"])
            ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color="tab:green", label="best so far")
        ax.set(xlabel="trial", ylabel="eval success", title=f"Study {sec['name']}: optimisation history")
        ax.legend(loc="lower right")
        made.append(_save(fig, out / "study_history.png"))
    if sec["importances"]:
        items = sorted(sec["importances"].items(), key=lambda kv: kv[1])
        fig = _figure(7, 1.2 + 0.5 * len(items))
        ax = fig.add_subplot()
        ax.barh([k for k, _ in items], [v for _, v in items])
        ax.set(xlabel="importance (share of the value's variance)", title=f"Study {sec['name']}: which factor matters")
        made.append(_save(fig, out / "study_importance.png"))
    return made
