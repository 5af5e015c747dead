"""``python -m herexp.aggregate`` end to end: raw= files and run folders -> report + plots."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from herexp import cli
from herexp.aggregate.__main__ import main
from tests.test_aggregate_load import write_fake_run, write_fake_sweep

RAW_GRID = {"ent_coef": [0.05, 0.1, 0.2], "n_sampled_goal": [4, 8], "learning_starts": [1000, 5000],
            "gamma": [0.95, 0.98]}  # 24 configs


def write_raw(path: Path, seeds: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for ent, k, ls, g in itertools.product(*RAW_GRID.values()):
        base = 0.9 - 2.0 * abs(ent - 0.1) + 0.05 * (k == 4) - 0.1 * (ls == 5000) + 0.3 * (g - 0.95)
        for seed in range(seeds):
            s = float(np.clip(base + rng.normal(0, 0.08), 0, 1))
            rows.append({"config": f"ent{ent}_k{k}_ls{ls}_g{g}", "ent_coef": ent, "n_sampled_goal": k,
                         "learning_starts": ls, "gamma": g, "script": "sweep.py", "seed": seed,
                         "success_rate": s, "return_mean": -50 * (1 - s)})
    path.write_text(json.dumps(rows))
    return rows


def test_raw_reproduces_marginals_and_interactions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tmp_path / "sweep_results_raw.json"
    rows = write_raw(raw)
    assert cli.run(main, [f"raw={raw}", "reps=500", "plots=false"]) == 0
    out = tmp_path / "aggregate"
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_runs"] == 120 and rep["n_configs"] == 24 and rep["skipped"] == [] and rep["failed"] == []
    assert rep["factors"] == ["ent_coef", "n_sampled_goal", "learning_starts", "gamma"]  # script is constant
    # Independent computation: per-config means, then mean of those per level / per cell.
    per_config = defaultdict(list)
    for r in rows:
        per_config[tuple(r[f] for f in RAW_GRID)].append(r["success_rate"])
    cmeans = {k: sum(v) / len(v) for k, v in per_config.items()}
    names = list(RAW_GRID)
    for i, f in enumerate(names):
        expected = {lv: np.mean([m for k, m in cmeans.items() if k[i] == lv]) for lv in RAW_GRID[f]}
        got = {e["level"]: e for e in rep["marginals"][f]}
        assert {lv: got[lv]["mean"] for lv in RAW_GRID[f]} == pytest.approx(expected)
        best = max(expected.values())
        assert {lv: got[lv]["delta_vs_best"] for lv in RAW_GRID[f]} == pytest.approx(
            {lv: m - best for lv, m in expected.items()})
        assert all(got[lv]["n_runs"] == 120 // len(RAW_GRID[f]) for lv in RAW_GRID[f])
    assert len(rep["interactions"]) == 6
    for it in rep["interactions"]:
        a, b = it["factors"]
        ia, ib = names.index(a), names.index(b)
        for cell in it["cells"]:
            exp = np.mean([m for k, m in cmeans.items() if k[ia] == cell[a] and k[ib] == cell[b]])
            assert cell["mean"] == pytest.approx(exp)
        assert len(it["cells"]) == len(RAW_GRID[a]) * len(RAW_GRID[b])
    top = rep["configs"][0]
    assert top["mean"] == pytest.approx(max(cmeans.values())) and top["n"] == 5
    assert all(0 <= c["ci95_low"] <= c["ci95_high"] <= 1 for c in rep["configs"])  # rate CIs clipped
    assert "comparison" not in rep  # her does not vary
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 120 and {"ent_coef", "seed", "success_rate", "status", "folder"} <= set(runs.columns)
    assert len(pd.read_csv(out / "configs.csv")) == 24
    md = (out / "report.md").read_text()
    assert "Interaction ent_coef × gamma" in md and "%" in md
    printed = capsys.readouterr().out
    assert "Configurations ranked by success_rate" in printed and "report.json" in printed


def test_raw_compare_and_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tmp_path / "r.json"
    rows = write_raw(raw, seeds=2)
    rows[0]["success_rate"] = None
    rows.append("not an object")
    raw.write_text(json.dumps(rows))
    out = tmp_path / "o"
    assert cli.run(main, [f"raw={raw}", "compare=gamma", "plots=false", "quiet=true", f"out={out}"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_runs"] == 47 and len(rep["skipped"]) == 2
    assert rep["comparison"]["factor"] == "gamma" and set(rep["comparison"]["arms"]) == {"0.95", "0.98"}
    capsys.readouterr()
    assert cli.run(main, [f"raw={raw}", "compare=nope", "plots=false", "quiet=true"]) == 2
    assert capsys.readouterr().err == ("error: compare=nope is not a factor of these runs (factors: ent_coef, "
                                       "n_sampled_goal, learning_starts, gamma)\n")


def test_folders_end_to_end_with_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = tmp_path / "multirun" / "ch04_push"

    def success(p: dict, seed: int) -> float:
        return (0.6 if p["her"] else 0.02) + 0.2 * (p["ent"] == 0.05) + 0.03 * seed

    write_fake_sweep(sweep, {"her": [True, False], "ent": [0.05, 0.1]}, seeds=[0, 1, 2], success=success)
    write_fake_run(sweep / "her=True,ent=0.1,seed=3", success=0.7, seed=3, ent=0.1,
                   diagnostics=["entropy_collapse"])
    (sweep / "corrupt").mkdir()
    (sweep / "corrupt" / "summary.json").write_text("{not json")
    (sweep / "empty").mkdir()
    write_fake_run(sweep / "failed", status="failed", her=False, ent=0.1, seed=4)
    assert cli.run(main, [str(sweep), "reps=300"]) == 0
    out = sweep / "aggregate"
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_runs"] == 13 and rep["n_configs"] == 4 and rep["factors"] == ["her", "ent_coef"]
    assert {Path(s["path"]).name for s in rep["skipped"]} == {"corrupt", "empty"}
    assert [Path(f["path"]).name for f in rep["failed"]] == ["failed"]
    comp = rep["comparison"]
    assert comp["factor"] == "her" and comp["verdict"] == "clear separation" and comp["delta"] > 0.5
    assert comp["arms"]["on"]["success_rate"]["n"] == 7
    assert rep["configs"][0]["factors"] == {"her": "on", "ent_coef": 0.05}
    assert rep["diagnostics"][0]["counts"] == {"entropy_collapse": 1}
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["compare_her_curves.png", "interaction_heatmap.png", "learning_curves.png",
                    "marginals.png"]
    for p in out.glob("*.png"):
        img = imread(p)
        assert img.shape[0] > 200 and img.shape[1] > 200 and float(img[..., :3].std()) > 0.01  # not blank
    assert "HER vs no-HER" in (out / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "clear separation" in printed and "Skipped (2)" in printed
    # Re-running over the same sweep ignores its own aggregate/ folder.
    assert cli.run(main, [str(sweep), "reps=300", "plots=false", "quiet=true"]) == 0
    assert json.loads((out / "report.json").read_text())["n_runs"] == 13


def test_no_valid_run_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "herexp.aggregate", str(tmp_path / "empty")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: no completed run with a finite success_rate in [")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_folders_and_raw_file_together_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tmp_path / "r.json"
    write_raw(raw, seeds=1)
    assert cli.run(main, [str(tmp_path), f"raw={raw}"]) == 2
    assert capsys.readouterr().err.startswith("error: give one or more folders, or raw=<file.json> (not both)")
    assert not (tmp_path / "aggregate").exists()


def _curve(run: Path, rows: list[tuple[int, float]]) -> None:
    """Replace the run's metrics.csv with these (step, eval success) rows."""
    from herexp import runfolder

    (run / runfolder.METRICS).unlink()
    with runfolder.MetricsWriter(run) as w:
        for step, s in rows:
            w.write({"step": step, "eval_success_rate": s, "eval_return_mean": -50 * (1 - s),
                     "eval_final_distance_mean": 0.2 * (1 - s)})


def test_at_step_compares_runs_at_the_same_budget(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run that stopped early (success 0.92 at 3 000 steps) against one that ran to 4 000: at
    2 500 steps each is read at its evaluation of step 2 000."""
    early = write_fake_run(tmp_path / "early", success=0.92, ent=0.2, total_steps=4000)
    _curve(early, [(1000, 0.1), (2000, 0.5), (3000, 0.9), (3000, 0.92)])  # the final evaluation is the last row
    slow = write_fake_run(tmp_path / "slow", success=0.35, ent=None, total_steps=5000)  # read at the same step
    _curve(slow, [(1000, 0.1), (2000, 0.2), (3000, 0.3), (4000, 0.35)])
    res = main([str(tmp_path), "at_step=2500", "compare=ent_coef", "plots=false", f"out={tmp_path / 'at'}"])
    runs = res.loaded.completed.set_index("folder")
    assert runs.loc[str(early), "success_rate"] == 0.5 and runs.loc[str(early), "eval_step"] == 2000
    assert runs.loc[str(slow), "success_rate"] == 0.2 and runs.loc[str(slow), "return_mean"] == -40.0
    assert res.report["at_step"] == 2500 and res.report["factors"] == ["entropy_mode", "ent_coef"]
    assert "- compared at **2,500 env steps**" in (tmp_path / "at" / "report.md").read_text()
    assert runs.loc[str(early), "steps_to_50"] == 2000 and np.isnan(runs.loc[str(early), "steps_to_90"])  # not by 2 500
    late_res = main([str(tmp_path), "at_step=100000", "plots=false", f"out={tmp_path / 'late'}"])
    late = late_res.loaded.completed.set_index("folder")
    assert sorted(late["success_rate"]) == [0.35, 0.92]  # past the end: each run's final evaluation
    assert (late.loc[str(early), "steps_to_50"], late.loc[str(early), "steps_to_90"]) == (2000, 3000)
    assert np.isnan(late.loc[str(slow), "steps_to_50"])  # never reached 50 %
    eff = [c["levels"] for c in late_res.report["sample_efficiency"]]  # rank order: fixed 0.2, then auto
    assert eff[0]["steps_to_90"] == {"level": 0.9, "reached": 1, "n": 1, "median": 3000.0,
                                                  "min": 3000.0, "max": 3000.0}
    assert eff[1]["steps_to_50"]["reached"] == 0
    assert "| 3 k (1/1 seeds) |" in (tmp_path / "late" / "report.md").read_text()
    assert cli.run(main, [str(tmp_path), "at_step=500"]) == 2  # no evaluation that early
    assert "no completed run" in capsys.readouterr().err
    assert cli.run(main, [str(tmp_path), "at_step=0"]) == 2
    assert capsys.readouterr().err.startswith("error: at_step=0 is invalid: must be >= 1")
