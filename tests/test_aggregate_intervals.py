"""Intervals that count episode noise: Wilson per run, the two-level bootstrap per configuration
(p_best) and the bootstrap difference behind the comparison's verdict; on hand-computed fixtures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from herexp import runfolder
from herexp.aggregate import aggregate, intervals, stats
from herexp.aggregate.load import load_folders
from tests.test_aggregate_load import write_fake_run

# Wilson score bounds by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964.
# 7/10: (0.7 + 0.19207 ± 1.959964 · 0.174939) / 1.384146 = 0.64450 ± 0.24772.
WILSON = [((7, 10), (0.3968, 0.8922)), ((70, 100), (0.6042, 0.7811)), ((10, 20), (0.2993, 0.7007)),
          ((0, 10), (0.0, 0.2775)), ((10, 10), (0.7225, 1.0))]


@pytest.mark.parametrize(("kn", "bounds"), WILSON)
def test_wilson_bounds(kn: tuple[int, int], bounds: tuple[float, float]) -> None:
    assert intervals.wilson_ci(*kn) == pytest.approx(bounds, abs=1e-4)


def _ep(rates: list[float], n: list[float], k: list[float]) -> intervals.Episodes:
    return intervals.Episodes.of(rates, n, k)


def test_two_level_bootstrap_counts_episode_noise() -> None:
    # One seed at 50 of 100 episodes: a seeds-only bootstrap would give [50 %, 50 %]; the episode
    # level gives the binomial spread 0.5 ± 1.96 · 0.05 = [40.2 %, 59.8 %] (percentiles of counts).
    assert intervals.arm_interval(_ep([0.5], [100], [50]), 4000, 0) == pytest.approx((0.40, 0.60), abs=0.011)
    # 1 of 2 episodes: the draws are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4 -> [0, 1].
    assert intervals.arm_interval(_ep([0.5], [2], [1]), 2000, 0) == pytest.approx((0.0, 1.0))
    # Episode counts unknown: only seeds are resampled; a mean of three draws is 0.2 (all three
    # the lowest seed) with probability 1/27 = 3.7 % > 2.5 %, so the bounds are the extreme seeds.
    assert intervals.arm_interval(_ep([0.2, 0.5, 0.8], [math.nan] * 3, [math.nan] * 3), 2000, 0) == \
        pytest.approx((0.2, 0.8))
    assert intervals.arm_interval(_ep([], [], []), 10, 0) == (None, None)


def _runs(cells: dict[str, list[int]], n: int = 10) -> pd.DataFrame:
    rows = [{"ent": label.split("=")[1], "seed": seed, "success_rate": k / n, "return_mean": -50 * (1 - k / n),
             "final_distance_mean": 0.2 * (1 - k / n), "successes": k, "n_episodes": n, "episodes_source": "eval.json",
             "status": "completed", "diagnostics": "", "config": label}
            for label, ks in cells.items() for seed, k in enumerate(ks)]
    return pd.DataFrame(rows)


FIXTURE = {"ent=0.05": [9, 8, 10], "ent=0.2": [7, 8, 6]}  # successes of 10 episodes, seeds 0, 1, 2


def test_config_bootstrap_and_p_best_literal() -> None:
    runs = _runs(FIXTURE)
    configs = stats.config_table(runs, ["ent"], "success_rate")
    b = stats.config_bootstrap(runs, configs, reps=2000, seed=0)
    got = [(c["config"], round(c["boot95_low"], 4), round(c["boot95_high"], 4), round(c["p_best"], 3))
           for c in b["configs"]]
    assert got == [("ent=0.05", 0.7333, 1.0, 0.96), ("ent=0.2", 0.5, 0.8667, 0.04)]
    assert b["episodes_source"] == {"eval.json": 6} and (b["reps"], b["seed"]) == (2000, 0)
    assert stats.config_bootstrap(runs, configs, reps=2000, seed=0) == b  # seeded: reproducible
    assert stats.config_bootstrap(runs, configs, reps=2000, seed=1) != b


def test_p_best_shares_ties() -> None:
    # Two configurations at 10/10 on every seed tie in every draw: half the credit each.
    runs = _runs({"ent=0.05": [10, 10, 10], "ent=0.1": [10, 10, 10], "ent=0.2": [0, 0, 0]})
    configs = stats.config_table(runs, ["ent"], "success_rate")
    p = {c["config"]: c["p_best"] for c in stats.config_bootstrap(runs, configs, reps=500, seed=0)["configs"]}
    assert p == {"ent=0.05": 0.5, "ent=0.1": 0.5, "ent=0.2": 0.0}


def test_comparison_uses_the_bootstrap_difference() -> None:
    c = stats.comparison(_runs(FIXTURE), "ent", reps=2000, seed=0)
    assert (c["a"], c["b"]) == ("0.05", "0.2") and c["delta"] == pytest.approx(0.2)
    assert [round(x, 4) for x in c["delta_boot95"]] == [-0.0333, 0.4333]
    assert (c["separated"], c["seeds_disjoint"], c["verdict"]) == (False, False, "not separated")
    arm = c["arms"]["0.05"]["success_rate"]
    assert (round(arm["boot95_low"], 4), round(arm["boot95_high"], 4)) == (0.7333, 1.0)
    assert arm["ci95_low"] == pytest.approx(0.9 - 4.302653 * 0.1 / math.sqrt(3))  # the t95 stays beside it
    # 100 episodes a seed instead of 10: the same rates, narrower episode noise, separated.
    wide = stats.comparison(_runs({k: [10 * x for x in v] for k, v in FIXTURE.items()}, n=100), "ent",
                            reps=2000, seed=0)
    assert wide["delta_boot95"][0] > 0 and wide["separated"] and wide["verdict"] == "separated, seeds overlap"


def _with_episodes(run: Path, successes: list[bool]) -> None:
    ev = runfolder.read_eval(run)
    ev["per_episode"] = [{"seed": 1_000_000 + i, "return": -10.0, "length": 50, "success": s,
                          "final_distance": 0.01, "time_to_success": 10} for i, s in enumerate(successes)]
    ev["n_episodes"], ev["success_rate"] = len(successes), sum(successes) / len(successes)
    runfolder.write_json_atomic(run / runfolder.EVAL, ev)


def test_runs_table_episode_columns(tmp_path: Path) -> None:
    """eval.json's per-episode results when present; else the summary's rate x eval.n_episodes
    (100 in the schema); with at_step a periodic row x eval.periodic_episodes (20)."""
    per_ep = write_fake_run(tmp_path / "per_ep", success=0.7, seed=0)
    _with_episodes(per_ep, [True] * 7 + [False] * 3)
    write_fake_run(tmp_path / "summary_only", success=0.7, seed=1)  # eval.json without per_episode
    runs = load_folders([tmp_path]).completed.set_index("folder")
    cols = ["successes", "n_episodes", "episodes_source"]
    assert runs.loc[str(per_ep), cols].tolist() == [7, 10, "eval.json"]
    assert runs.loc[str(per_ep), ["success_lo", "success_hi"]].tolist() == pytest.approx([0.3968, 0.8922], abs=1e-4)
    assert runs.loc[str(tmp_path / "summary_only"), cols].tolist() == [70, 100, "summary"]
    assert runs.loc[str(tmp_path / "summary_only"), "success_lo"] == pytest.approx(0.6042, abs=1e-4)
    (per_ep / runfolder.METRICS).unlink()
    with runfolder.MetricsWriter(per_ep) as w:
        for step, s in [(2000, 0.5), (4000, 0.7), (4000, 0.7)]:  # the final evaluation is the last row
            w.write({"step": step, "eval_success_rate": s, "eval_return_mean": -25.0, "eval_final_distance_mean": 0.1})
    at = load_folders([per_ep], at_step=3000).completed.iloc[0]
    assert [at[c] for c in cols] == [10, 20, "metrics.csv"]
    assert [at["success_lo"], at["success_hi"]] == pytest.approx([0.2993, 0.7007], abs=1e-4)
    final = load_folders([per_ep], at_step=4000).completed.iloc[0]
    assert [final[c] for c in cols] == [7, 10, "eval.json"]


def test_report_labels_every_interval(tmp_path: Path) -> None:
    for seed, s in enumerate([0.9, 0.8, 1.0]):
        write_fake_run(tmp_path / f"her_seed{seed}", success=s, seed=seed, her=True)
        write_fake_run(tmp_path / f"noher_seed{seed}", success=s / 10, seed=seed, her=False)
    res = aggregate([tmp_path], out=tmp_path / "agg", reps=200, make_plots=False)
    md = (tmp_path / "agg" / "report.md").read_text()
    for label in ("t95 over seeds", "bootstrap95 seeds×episodes", "wilson95 over episodes", "P(best)",
                  "seeds_disjoint", "Runs: success with its wilson95 over episodes"):
        assert label in md
    cfg = pd.read_csv(tmp_path / "agg" / "configs.csv")
    assert {"ci95_low", "boot95_low", "boot95_high", "p_best"} <= set(cfg.columns)
    assert cfg["p_best"].sum() == pytest.approx(1.0)
    runs = pd.read_csv(tmp_path / "agg" / "runs.csv")
    assert set(runs["episodes_source"]) == {"summary"} and set(runs["n_episodes"]) == {100}
    assert res.report["comparison"]["verdict"] == "clear separation"
    assert np.isclose(res.report["comparison"]["delta"], 0.81)
