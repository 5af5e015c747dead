"""Statistics on hand-computed fixtures: t-CIs, ranking, marginals, interactions, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rliable import metrics as rl_metrics

from herexp.aggregate import stats

T_975_DF2 = 4.302652729749462  # t-table: t(0.975, 2) = 4.303
T_975_DF4 = 2.7764451051977934  # t-table: t(0.975, 4) = 2.776

# Balanced 2 x 2 grid x 3 seeds; config means a1b1 .2, a1b2 .5, a2b1 .8, a2b2 .3 (std .1 each).
GRID = {("a1", "b1"): [0.1, 0.2, 0.3], ("a1", "b2"): [0.4, 0.5, 0.6],
        ("a2", "b1"): [0.7, 0.8, 0.9], ("a2", "b2"): [0.2, 0.3, 0.4]}


def make_runs(cells: dict[tuple, list[float]], factors: tuple[str, ...] = ("A", "B")) -> pd.DataFrame:
    rows = []
    for levels, values in cells.items():
        for seed, v in enumerate(values):
            rows.append({**dict(zip(factors, levels, strict=True)), "seed": seed, "success_rate": v,
                         "return_mean": -50 * (1 - v), "final_distance_mean": 0.2 * (1 - v),
                         "status": "completed", "diagnostics": "",
                         "config": " ".join(f"{f}={lv}" for f, lv in zip(factors, levels, strict=True))})
    return pd.DataFrame(rows)


def tables(cells: dict[tuple, list[float]]) -> tuple[pd.DataFrame, list[dict], dict]:
    runs = make_runs(cells)
    configs = stats.config_table(runs, ["A", "B"], "success_rate")
    return runs, configs, stats.marginals(runs, configs, ["A", "B"], "success_rate")


def test_t_ci_n3_uses_student_t_not_196_or_2() -> None:
    lo, hi = stats.t_ci([0.7, 0.8, 0.9])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # = 0.2484
    assert (lo, hi) == pytest.approx((0.8 - half, 0.8 + half))
    assert hi - 0.8 != pytest.approx(1.96 * 0.1 / math.sqrt(3))
    assert hi - 0.8 != pytest.approx(2.0 * 0.1 / math.sqrt(3))


def test_t_ci_n5() -> None:
    x = [0.1, 0.2, 0.3, 0.4, 0.5]
    s = math.sqrt(sum((v - 0.3) ** 2 for v in x) / 4)  # sample std, ddof = 1: 0.1581
    lo, hi = stats.t_ci(x)
    assert (lo, hi) == pytest.approx((0.3 - T_975_DF4 * s / math.sqrt(5), 0.3 + T_975_DF4 * s / math.sqrt(5)))
    assert hi - lo == pytest.approx(2 * 0.19632, abs=1e-4)


def test_n1_gives_null_ci_and_std() -> None:
    d = stats.describe([0.5])
    assert d == {"n": 1, "mean": 0.5, "std": None, "min": 0.5, "max": 0.5, "range": 0.0,
                 "ci95_low": None, "ci95_high": None}
    assert stats.t_ci([]) == (None, None)
    d = stats.describe([0.2, float("nan"), 0.4])  # NaN ignored
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.3)


def test_ranking_mean_desc_then_std_asc() -> None:
    runs = make_runs({("x",): [0.4, 0.6], ("y",): [0.5, 0.5], ("z",): [0.9, 0.9]}, factors=("A",))
    configs = stats.config_table(runs, ["A"], "success_rate")
    assert [(c["rank"], c["factors"]["A"]) for c in configs] == [(1, "z"), (2, "y"), (3, "x")]
    assert configs[2]["range"] == pytest.approx(0.2) and configs[2]["std"] == pytest.approx(math.sqrt(0.02))
    lower = stats.config_table(runs, ["A"], "final_distance_mean")  # lower is better
    assert [c["factors"]["A"] for c in lower] == ["z", "y", "x"]


def test_marginals_and_interactions_balanced_grid() -> None:
    runs, configs, marg = tables(GRID)
    assert [c["config"] for c in configs] == ["A=a2 B=b1", "A=a1 B=b2", "A=a2 B=b2", "A=a1 B=b1"]
    a = {r["level"]: r for r in marg["A"]}
    assert a["a1"]["mean"] == pytest.approx(0.35) and a["a2"]["mean"] == pytest.approx(0.55)
    assert a["a1"]["delta_vs_best"] == pytest.approx(-0.2) and a["a2"]["delta_vs_best"] == 0
    assert a["a1"]["n_runs"] == 6
    b = {r["level"]: r for r in marg["B"]}
    assert b["b1"]["mean"] == pytest.approx(0.5) and b["b2"]["delta_vs_best"] == pytest.approx(-0.1)
    # complete balanced grid: mean of config means == mean of the runs at that level
    assert a["a2"]["mean"] == pytest.approx(runs.loc[runs["A"] == "a2", "success_rate"].mean())
    assert stats.grid_complete(configs, ["A", "B"])
    assert [d["factor"] for d in stats.factor_spread(marg)] == ["A", "B"]
    (it,) = stats.interactions(configs, ["A", "B"])
    assert it["factors"] == ["A", "B"]
    cells = {(c["A"], c["B"]): c["mean"] for c in it["cells"]}
    assert cells == pytest.approx({k: float(np.mean(v)) for k, v in GRID.items()})


def test_unbalanced_grid_one_run_missing() -> None:
    cells = {**GRID, ("a2", "b1"): [0.7, 0.8]}  # seed 2 of a2/b1 missing
    runs, configs, marg = tables(cells)
    a2 = next(r for r in marg["A"] if r["level"] == "a2")
    assert a2["mean"] == pytest.approx((0.75 + 0.3) / 2)  # mean of config means, not of runs (0.48)
    assert a2["n_runs"] == 5
    top = configs[0]
    assert top["n"] == 2 and top["ci95_low"] is not None
    missing_cell = {**GRID}
    del missing_cell[("a2", "b2")]
    _, configs, marg = tables(missing_cell)
    assert not stats.grid_complete(configs, ["A", "B"])
    assert len(stats.interactions(configs, ["A", "B"])[0]["cells"]) == 3


# No episode counts in these tables: the bootstrap resamples the seeds only. With 3 seeds a mean
# of three draws equals the arm's lowest seed with probability 1/27 = 3.7 % > 2.5 %, so the
# percentile interval of the difference reaches (worst on seed - best off seed) only when both
# extremes reach 2.5 % jointly; otherwise its bound lies inside.
@pytest.mark.parametrize(("on", "off", "verdict"), [
    ([0.9, 0.95, 1.0], [0.0, 0.05, 0.1], "clear separation"),
    ([1.0, 1.0, 0.2], [0.0, 0.0, 0.3], "separated, seeds overlap"),  # P(diff <= 0) = 1/27 * 7/27 < 2.5 %
    ([0.6, 0.7, 0.8], [0.5, 0.4, 0.3], "clear separation"),  # every draw of the difference >= +0.1
    ([0.5, 0.55, 0.6], [0.5, 0.5, 0.5], "weak or none"),  # P(diff = 0) = 1/27 > 2.5 %: includes 0
    ([0.0, 0.05, 0.1], [0.9, 0.95, 1.0], "clear separation"),  # no-HER clearly better: |delta|
    ([1.0, 0.2, 0.9], [0.1, 0.8, 0.3], "not separated"),  # delta +.3, the arms' draws overlap widely
    ([0.95, 0.96, 0.97], [0.9, 0.91, 0.92], "small but separated"),  # every draw >= +.03, delta .05
    ([0.9, 1.0], [0.0, 0.1], "too few seeds to tell"),  # 2 seeds a side
])
def test_comparison_verdicts(on: list[float], off: list[float], verdict: str) -> None:
    runs = make_runs({("on",): on, ("off",): off}, factors=("her",))
    c = stats.comparison(runs, "her", "on", "off", reps=2000, seed=0)
    assert c["verdict"] == verdict
    if len(on) < 3:
        return
    assert c["delta"] == pytest.approx(np.mean(on) - np.mean(off))
    arm = c["arms"]["on"]["success_rate"]
    assert arm["n"] == 3 and arm["ci95_low"] == pytest.approx(max(0.0, stats.t_ci(on)[0]))  # clipped
    assert set(c["arms"]["off"]) == set(stats.METRICS)


def test_comparison_generic_factor_best_vs_worst() -> None:
    runs = make_runs({("0.05",): [0.2, 0.3], ("0.1",): [0.8, 0.9], ("0.2",): [0.5, 0.5]}, factors=("ent",))
    c = stats.comparison(runs, "ent")
    assert (c["a"], c["b"]) == ("0.1", "0.05") and c["delta"] == pytest.approx(0.6)
    assert stats.comparison(runs[runs["ent"] == "0.1"], "ent") is None


def test_robust_iqm_poi_reproducible() -> None:
    runs, configs, _ = tables(GRID)
    r1 = stats.robust(runs, configs, "success_rate", reps=500, seed=3)
    r2 = stats.robust(runs, configs, "success_rate", reps=500, seed=3)
    assert r1 == r2
    top = r1["configs"][0]
    assert top["iqm"] == pytest.approx(0.8) and top["ci95_low"] <= 0.8 <= top["ci95_high"]
    poi = r1["probability_of_improvement"]
    assert (poi["best"], poi["runner_up"]) == ("A=a2 B=b1", "A=a1 B=b2")
    assert poi["value"] == 1.0  # every run of the best beats every run of the runner-up
    x, y = np.array([0.1, 0.5, 0.5, 0.9]), np.array([0.5, 0.2, 0.7])
    ours = stats.poi_ci(x, y, 200, np.random.RandomState(0))
    assert ours["value"] == pytest.approx(rl_metrics.probability_of_improvement(x[:, None], y[:, None]))
    assert ours["ci95_low"] <= ours["value"] <= ours["ci95_high"]
    one = stats.iqm_ci(np.array([0.4]), 100, np.random.RandomState(0))
    assert one == {"iqm": 0.4, "ci95_low": None, "ci95_high": None}


def test_robust_lower_is_better_metric() -> None:
    runs, _, _ = tables(GRID)
    configs = stats.config_table(runs, ["A", "B"], "final_distance_mean")
    r = stats.robust(runs, configs, "final_distance_mean", reps=200, seed=0)
    top = r["configs"][0]
    assert top["iqm"] == pytest.approx(0.2 * 0.2) and top["ci95_low"] <= top["iqm"] <= top["ci95_high"]
    assert r["probability_of_improvement"]["value"] == 1.0


def test_diagnostic_counts_and_seed_sensitivity() -> None:
    runs, configs, _ = tables(GRID)
    diags = ["entropy_collapse", "entropy_collapse;no_learning", ""]
    runs.loc[runs["config"] == "A=a1 B=b1", "diagnostics"] = diags
    d = stats.diagnostic_counts(runs, configs)
    assert d == [{"rank": 4, "config": "A=a1 B=b1", "factors": {"A": "a1", "B": "b1"}, "n": 3,
                  "counts": {"entropy_collapse": 2, "no_learning": 1}}]
    s = stats.seed_sensitivity(configs)
    assert s["best"]["rank"] == 1 and s["worst"]["rank"] == 4
    assert s["best"]["range"] == pytest.approx(0.2)
    assert s["best"]["ci_width"] == pytest.approx(2 * T_975_DF2 * 0.1 / math.sqrt(3))
