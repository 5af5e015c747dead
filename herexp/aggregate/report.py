"""Assemble report.json from the statistics; write report.md, runs.csv, configs.csv; render the
same tables to Markdown and to the terminal (rich), so the two can never disagree.

Rates are fractions 0..1 in JSON and CSV, and percent with one decimal in the tables. Every
interval is labelled with what it counts: ``t95 over seeds``, ``bootstrap95 seeds×episodes`` or
``wilson95 over episodes`` (:mod:`herexp.aggregate.intervals`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from herexp import runfolder
from herexp.aggregate import stats
from herexp.aggregate.intervals import BOOT_LABEL, T_LABEL, WILSON_LABEL
from herexp.aggregate.load import Loaded, fmt_level

log = logging.getLogger(__name__)

REPORT_JSON, REPORT_MD, RUNS_CSV, CONFIGS_CSV = "report.json", "report.md", "runs.csv", "configs.csv"
RATE_METRICS = frozenset({"success_rate"})


def build_report(loaded: Loaded, metric: str = "success_rate", compare: str | None = None,
                 reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every statistic of the report (the report.json schema; see the README)."""
    if metric not in stats.METRICS:
        raise ValueError(f"metric={metric!r} is invalid: must be one of {stats.METRICS}")
    if compare is not None and compare not in loaded.factors:
        raise ValueError(f"compare={compare} is not a factor of these runs (factors: {', '.join(loaded.factors)})")
    runs, factors = loaded.completed, loaded.factors
    configs = stats.config_table(runs, factors, metric)
    marg = stats.marginals(runs, configs, factors, metric)
    report: dict[str, Any] = {
        "metric": metric, "higher_is_better": metric not in stats.LOWER_IS_BETTER, "source": loaded.source,
        "at_step": loaded.at_step,
        "n_runs": len(runs), "n_configs": len(configs), "factors": list(factors),
        "grid_complete": stats.grid_complete(configs, factors),
        "skipped": loaded.skipped, "failed": loaded.failed, "pruned": loaded.pruned, "configs": configs,
        "marginals": marg,
        "factor_spread": stats.factor_spread(marg), "interactions": stats.interactions(configs, factors),
        "seed_sensitivity": stats.seed_sensitivity(configs),
    }
    factor = compare or ("her" if "her" in factors else None)
    if factor is not None:
        ab = ("on", "off") if factor == "her" else (None, None)
        report["comparison"] = stats.comparison(runs, factor, *ab, reps=reps, seed=seed)
    report["bootstrap"] = stats.config_bootstrap(runs, configs, reps, seed) if metric == stats.SUCCESS else None
    report["robust"] = stats.robust(runs, configs, metric, reps=reps, seed=seed)
    report["diagnostics"] = stats.diagnostic_counts(runs, configs)
    report["sample_efficiency"] = stats.sample_efficiency(runs, configs) if loaded.source == "folders" else []
    return report


# ----------------------------------------------------------------------------- formatting
def fmt(x: Any, metric: str = "success_rate", signed: bool = False) -> str:
    """A metric value as the tables show it: percent with one decimal for rates."""
    if x is None:
        return "–"
    if metric in RATE_METRICS:
        return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}%"
    digits = 3 if metric == "final_distance_mean" else 2
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_ci(lo: Any, hi: Any, metric: str = "success_rate") -> str:
    return "–" if lo is None else f"[{fmt(lo, metric)}, {fmt(hi, metric)}]"


def _pm(d: Mapping[str, Any], metric: str) -> str:
    return fmt(d["mean"], metric) + ("" if d["std"] is None else f" ± {fmt(d['std'], metric)}")


@dataclass
class Table:
    """A table both renderers draw: title, header cells, rows of cells, a note under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def _unit(metric: str) -> str:
    return " (pp)" if metric in RATE_METRICS else ""


def ranked_table(r: Mapping[str, Any], limit: int | None = None) -> Table:
    m, factors = r["metric"], r["factors"] or ["config"]
    boot = {c["config"]: c for c in (r.get("bootstrap") or {}).get("configs", [])}
    rows = []
    for c in r["configs"][:limit]:
        cells = [fmt_level(c["factors"][f]) for f in r["factors"]] or [c["config"]]
        b = [fmt_ci(boot[c["config"]]["boot95_low"], boot[c["config"]]["boot95_high"]),
             f"{boot[c['config']]['p_best']:.2f}"] if boot else []
        rows.append([str(c["rank"]), *cells, str(c["n"]), fmt(c["mean"], m), fmt(c["std"], m),
                     fmt(c["min"], m), fmt(c["max"], m), fmt_ci(c["ci95_low"], c["ci95_high"], m), *b])
    shown = f" (top {limit} of {r['n_configs']})" if limit and r["n_configs"] > limit else ""
    note = ""
    if boot:
        bs = r["bootstrap"]
        src = ", ".join(f"{k} ×{v}" for k, v in bs["episodes_source"].items())
        note = (f"{T_LABEL}: Student-t over the seeds' rates. {BOOT_LABEL}: seeds resampled, then each seed's "
                f"evaluation episodes ({bs['reps']} draws, seed {bs['seed']}); P(best): share of those draws in "
                f"which the configuration ranks first. Episode counts per run from: {src}.")
    return Table(f"Configurations ranked by {m}{shown}",
                 ["Rank", *factors, "n", "Mean", "Std", "Min", "Max", T_LABEL,
                  *([BOOT_LABEL, "P(best)"] if boot else [])], rows, note)


def _sort_key(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col, errors="coerce") if col.name == "seed" else col.map(str)


def runs_table(r: Mapping[str, Any], runs: pd.DataFrame) -> Table | None:
    """Each completed run's success with its wilson95 over episodes interval."""
    if runs.empty or "episodes_source" not in runs:
        return None
    rows = []
    for _, x in runs.sort_values(["config", "seed"], key=_sort_key).iterrows():
        known = x["episodes_source"] != "none"
        rows.append([x["config"], fmt_level(x["seed"]), fmt(x["success_rate"]),
                     f"{int(x['successes'])}/{int(x['n_episodes'])}" if known else "–",
                     fmt_ci(x["success_lo"], x["success_hi"]) if known else "–", str(x["episodes_source"])])
    return Table(f"Runs: success with its {WILSON_LABEL}", ["Config", "Seed", "Success", "Episodes",
                                                              WILSON_LABEL, "Episodes from"], rows,
                 "Episodes from eval.json: the final evaluation's per-episode results; summary: round(success rate × "
                 "eval.n_episodes) (run folders without per-episode results); metrics.csv: a periodic evaluation "
                 "read with at_step, round(rate × eval.periodic_episodes).")


def marginal_table(r: Mapping[str, Any]) -> Table:
    m = r["metric"]
    rows = [[d["factor"], fmt_level(e["level"]), fmt(e["mean"], m), fmt(e["delta_vs_best"], m, signed=True),
             str(e["n_runs"]), fmt_ci(e["ci95_low"], e["ci95_high"], m)]
            for d in r["factor_spread"] for e in r["marginals"][d["factor"]]]
    spread = ", ".join(f"{d['factor']} {fmt(d['spread'], m, signed=True).lstrip('+')}"
                       for d in r["factor_spread"])
    return Table("Factor-level marginals (mean of the per-config means)",
                 ["Factor", "Level", "Mean", f"Δ vs best{_unit(m)}", "Runs", T_LABEL], rows,
                 f"Spread (best − worst level){_unit(m)}: {spread}; complete grid: {r['grid_complete']}.")


def interaction_tables(r: Mapping[str, Any]) -> list[Table]:
    m, out = r["metric"], []
    for it in r["interactions"]:
        a, b = it["factors"]
        la = sorted({c[a] for c in it["cells"]}, key=stats.level_key)
        lb = sorted({c[b] for c in it["cells"]}, key=stats.level_key)
        cell = {(c[a], c[b]): c["mean"] for c in it["cells"]}
        rows = [[fmt_level(x), *[fmt(cell.get((x, y)), m) for y in lb]] for x in la]
        out.append(Table(f"Interaction {a} × {b} (mean {m})", [f"{a} \\ {b}", *map(fmt_level, lb)], rows))
    return out


def seed_table(r: Mapping[str, Any]) -> Table:
    m, s = r["metric"], r["seed_sensitivity"]
    rows = [[k, str(s[k]["rank"]), s[k]["config"], str(s[k]["n"]), fmt(s[k]["range"], m, signed=False),
             fmt(s[k]["ci_width"], m)] for k in ("best", "worst") if k in s]
    return Table("Seed sensitivity (best vs worst configuration)",
                 ["", "Rank", "Config", "n", "Range (max − min)", "95 % CI width"], rows)


def comparison_table(r: Mapping[str, Any]) -> Table | None:
    c = r.get("comparison")
    if not c:
        return None
    rows = []
    for lv, arm in c["arms"].items():
        s, ret, dist = arm["success_rate"], arm["return_mean"], arm["final_distance_mean"]
        rows.append([lv, str(s["n"]), _pm(s, "success_rate"), fmt_ci(s["ci95_low"], s["ci95_high"]),
                     fmt_ci(s.get("boot95_low"), s.get("boot95_high")),
                     _pm(ret, "return_mean"), _pm(dist, "final_distance_mean")])
    title = "HER vs no-HER" if c["factor"] == "her" else f"Comparison over {c['factor']}"
    boot = c.get("delta_boot95") or [None, None]
    d_ci = "–" if boot[0] is None else f"[{fmt(boot[0], signed=True)}, {fmt(boot[1], signed=True)}] pp"
    note = (f"Δ success ({fmt_level(c['a'])} − {fmt_level(c['b'])}) = {fmt(c['delta'], signed=True)} pp, "
            f"{BOOT_LABEL} {d_ci} ({c.get('reps')} draws, seed {c.get('seed')}); separated (that interval "
            f"excludes 0): {c['separated']}; seeds_disjoint (worst seed of the better arm beats the best of the "
            f"other): {c['seeds_disjoint']}; verdict: **{c['verdict']}**.")
    return Table(title, [c["factor"], "n", "Success (mean ± std)", f"Success {T_LABEL}", f"Success {BOOT_LABEL}",
                         "Return", "Final distance (m)"], rows, note)


def robust_table(r: Mapping[str, Any], limit: int | None = None) -> Table:
    m, rb = r["metric"], r["robust"]
    rows = [[str(c["rank"]), c["config"], str(c["n"]), fmt(c["iqm"], m),
             fmt_ci(c["ci95_low"], c["ci95_high"], m)] for c in rb["configs"][:limit]]
    p = rb["probability_of_improvement"]
    note = "" if p is None else (f"P(best beats runner-up) = {p['value']:.2f} [{p['ci95_low']:.2f}, "
                                 f"{p['ci95_high']:.2f}] ({p['best']} vs {p['runner_up']}).")
    return Table(f"Robust: IQM with a stratified-bootstrap 95 % CI over seeds ({rb['reps']} reps, seed {rb['seed']})",
                 ["Rank", "Config", "n", "IQM", "95 % CI (bootstrap over seeds)"], rows, note)


def sample_efficiency_table(r: Mapping[str, Any]) -> Table | None:
    """Env steps to each eval-success level: median [min, max] over the seeds that reached it."""
    rows_in = r.get("sample_efficiency") or []
    if not rows_in:
        return None
    levels = list(rows_in[0]["levels"].values())

    def cell(d: Mapping[str, Any]) -> str:
        if not d["reached"]:
            return f"never (0/{d['n']} seeds)"
        span = f"{d['min'] / 1000:g}–{d['max'] / 1000:g} k; " if d["reached"] > 1 else ""
        return f"{d['median'] / 1000:g} k ({span}{d['reached']}/{d['n']} seeds)"

    rows = [[str(c["rank"]), c["config"], *[cell(d) for d in c["levels"].values()]] for c in rows_in]
    return Table("Sample efficiency: env steps to eval success", ["Rank", "Config", *[
        f"to {round(100 * d['level'])} %" for d in levels]], rows,
        "Median (min–max) over the seeds that reached the level, at the first evaluation where a run's eval "
        "success reached it (metrics.csv); seeds that never did are counted, not averaged in.")


def diagnostics_table(r: Mapping[str, Any]) -> Table | None:
    if not r["diagnostics"]:
        return None
    rows = [[str(d["rank"]), d["config"], str(d["n"]), ", ".join(f"{k} ×{v}" for k, v in d["counts"].items())]
            for d in r["diagnostics"]]
    return Table("Diagnoses per configuration", ["Rank", "Config", "n", "Diagnoses (runs)"], rows)


def problems_tables(r: Mapping[str, Any]) -> list[Table]:
    out = []
    if r["skipped"]:
        out.append(Table(f"Skipped ({len(r['skipped'])})", ["Path", "Reason"],
                         [[s["path"], s["reason"]] for s in r["skipped"]]))
    if r["failed"]:
        out.append(Table(f"Failed runs ({len(r['failed'])})", ["Path", "Error"],
                         [[f["path"], str(f.get("error") or "")] for f in r["failed"]]))
    return out


def study_tables(r: Mapping[str, Any]) -> list[Table]:
    """A study's trials by state, best trial, env steps and parameter importances (none without a study)."""
    sec = r.get("study")
    if not sec:
        return []
    c, st, best = sec["trials_by_state"], sec["env_steps"], sec["best"]
    rows = [["trials", f"{c['completed']} completed, {c['pruned']} pruned, {c['failed']} failed, "
                       f"{c['running']} running (of n_trials {sec['n_trials']})"],
            ["best", "–" if best is None else f"trial {best['number']}: {fmt(best['value'])} "
                     + " ".join(f"{k}={v}" for k, v in best["params"].items())],
            ["env steps", f"{st['total']:,} in total, {st['pruned']:,} by pruned trials"]]
    out = [Table(f"Study {sec['name']} ({sec['direction']}, {sec['seeds_per_trial']} seed(s) per trial)",
                 ["", ""], rows)]
    if sec["importances"]:
        out.append(Table("Parameter importances", ["Parameter", "Importance"],
                         [[k, f"{v:.3f}"] for k, v in sec["importances"].items()], sec["importance_method"]))
    return out


def all_tables(r: Mapping[str, Any], runs: pd.DataFrame | None = None) -> list[Table]:
    """Every table of report.md, in order (the per-run table when ``runs`` is given)."""
    tables = [*study_tables(r), ranked_table(r), marginal_table(r) if r["factors"] else None, *interaction_tables(r),
              seed_table(r), comparison_table(r), sample_efficiency_table(r), robust_table(r), diagnostics_table(r),
              runs_table(r, runs) if runs is not None else None, *problems_tables(r)]
    return [t for t in tables if t is not None]


def headline_tables(r: Mapping[str, Any]) -> list[Table]:
    """What the terminal shows: the ranking, the marginals, the comparison, the problems."""
    tables = [*study_tables(r), ranked_table(r, limit=10), marginal_table(r) if r["factors"] else None,
              comparison_table(r),
              sample_efficiency_table(r) if r["n_configs"] <= 10 else None]
    return [t for t in tables if t is not None] + problems_tables(r)


# ----------------------------------------------------------------------------- renderers
def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(map(_md_cell, table.headers)) + " |",
             "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    return "\n".join(lines + ([""] + [table.note] if table.note else []))


def to_rich(table: Table):  # -> rich.table.Table
    from rich.table import Table as RichTable

    t = RichTable(title=table.title, caption=table.note.replace("**", "") or None, caption_justify="left")
    for h in table.headers:
        t.add_column(h, overflow="fold")
    for row in table.rows:
        t.add_row(*row)
    return t


def render_markdown(r: Mapping[str, Any], plots: Sequence[Path] = (), runs: pd.DataFrame | None = None) -> str:
    """report.md: the header, every table (:func:`all_tables`) and the plots."""
    head = [
        "# Aggregate report", "",
        f"- metric: **{r['metric']}** ({'higher' if r['higher_is_better'] else 'lower'} is better); "
        f"source: {r['source']}",
        *([f"- compared at **{r['at_step']:,} env steps**: each run's last evaluation at or before it "
           "(column eval_step of runs.csv), not its final one"] if r.get("at_step") else []),
        f"- runs: {r['n_runs']} completed in {r['n_configs']} configurations; "
        f"{len(r['failed'])} failed; {len(r.get('pruned', []))} pruned; {len(r['skipped'])} skipped",
        f"- factors: {', '.join(r['factors']) or 'none (seeds only)'}",
        f"- intervals (95 %, rates in percent): **{T_LABEL}** = Student-t with df = n − 1 over the seeds' rates "
        f"(– when n < 2; the chapter's convention); **{BOOT_LABEL}** = two-level bootstrap, seeds resampled, then "
        f"each seed's evaluation episodes; **{WILSON_LABEL}** = one run's Wilson score interval.", "",
    ]
    body = [to_markdown(t) + "\n" for t in all_tables(r, runs)]
    pics = ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] if plots else []
    return "\n".join(head + body + pics) + "\n"


# ----------------------------------------------------------------------------- writers
def configs_frame(r: Mapping[str, Any]) -> pd.DataFrame:
    """configs.csv: one row per configuration with its t95 over seeds (ci95_*), its bootstrap95
    seeds×episodes (boot95_*) and p_best (success metric only), and its IQM (bootstrap CI)."""
    iqm = {c["config"]: c for c in r["robust"]["configs"]}
    boot = {c["config"]: c for c in (r.get("bootstrap") or {}).get("configs", [])}
    rows = []
    for c in r["configs"]:
        q = iqm[c["config"]]
        b = {k: boot[c["config"]][k] for k in ("boot95_low", "boot95_high", "p_best")} if boot else {}
        rows.append({"rank": c["rank"], **c["factors"], "config": c["config"], "n": c["n"],
                     **{k: c[k] for k in ("mean", "std", "min", "max", "range", "ci95_low", "ci95_high",
                                          "return_mean")}, **b,
                     "iqm": q["iqm"], "iqm_ci95_low": q["ci95_low"], "iqm_ci95_high": q["ci95_high"],
                     "seeds": ";".join(map(str, c["seeds"]))})
    return pd.DataFrame(rows)


def write_all(r: Mapping[str, Any], loaded: Loaded, out: Path, plots: Sequence[Path] = ()) -> dict[str, Path]:
    """report.json (atomic), report.md, runs.csv, configs.csv into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report.json": runfolder.write_json_atomic(out / REPORT_JSON, r)}
    (out / REPORT_MD).write_text(render_markdown(r, plots, loaded.completed))
    loaded.runs.to_csv(out / RUNS_CSV, index=False)
    configs_frame(r).to_csv(out / CONFIGS_CSV, index=False)
    paths.update({n: out / n for n in (REPORT_MD, RUNS_CSV, CONFIGS_CSV)})
    return paths
