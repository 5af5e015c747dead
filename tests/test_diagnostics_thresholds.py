"""Every diagnostics threshold at its boundary (just below / just above), the final evaluation
(the last metrics row) against what a diagnosis says, and fixes that are already in effect."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from herexp import diagnostics as dg
from herexp.config import DiagnosticsConfig
from tests.conftest import compose_cfg

CFG = DiagnosticsConfig()  # collapse_ent_coef 0.01, collapse_success 0.5, flat_delta 0.05, ...
PUSH_HER = dg.RunContext(env_id="FetchPush-v4", her_enabled=True, sparse=True, total_steps=1_000_000)
PUSH_NOHER = dg.RunContext(env_id="FetchPush-v4", her_enabled=False, sparse=True, total_steps=1_000_000)
N = 20


def history(success: Sequence[float] | float, ent: Sequence[float] | float = 0.05,
            critic: Sequence[float] | float = 0.2, n: int = N) -> pd.DataFrame:
    """``n`` rows every 50k steps; the last row plays the final evaluation."""
    return pd.DataFrame({"step": np.arange(1, n + 1) * 50_000, "eval_success_rate": np.broadcast_to(success, n),
                         "ent_coef": np.broadcast_to(ent, n), "critic_loss": np.broadcast_to(critic, n)})


def ending_at(final: float, body: Sequence[float] | float = 0.02, n: int = N) -> np.ndarray:
    """``n - 1`` rows of ``body`` then a final evaluation of ``final``."""
    return np.r_[np.broadcast_to(body, n - 1), final]


def fired(rule: dg.Rule, metrics: pd.DataFrame, ctx: dg.RunContext = PUSH_HER) -> bool:
    return rule(metrics, ctx, CFG) is not None


# --- one boundary per threshold: (below, above) -> (fires?, fires?) ----------------------------

@pytest.mark.parametrize("ent, fires", [(0.0099, True), (0.0101, False)])
def test_collapse_ent_coef(ent: float, fires: bool) -> None:
    assert fired(dg.entropy_collapse, history(0.02, ent=ent)) is fires


@pytest.mark.parametrize("final, fires", [(0.49, True), (0.50, False), (0.51, False)])
def test_collapse_success_uses_the_final_evaluation(final: float, fires: bool) -> None:
    assert fired(dg.entropy_collapse, history(ending_at(final), ent=1e-3)) is fires


@pytest.mark.parametrize("step_up, fires", [(0.04, True), (0.06, False)])
def test_flat_delta(step_up: float, fires: bool) -> None:
    s = np.r_[np.full(10, 0.10), np.full(10, 0.10 + step_up)]  # smoothed rise = step_up
    assert fired(dg.no_learning, history(s)) is fires


@pytest.mark.parametrize("level, fires", [(0.19, True), (0.21, False)])
def test_flat_max_success(level: float, fires: bool) -> None:
    assert fired(dg.no_learning, history(level)) is fires


@pytest.mark.parametrize("final, fires", [(0.20, True), (0.21, False)])
def test_flat_max_success_applies_to_the_final_evaluation(final: float, fires: bool) -> None:
    # smoothed: start 2 %, peak (4 * 0.02 + final) / 5 = 5.6 % / 5.8 %: flat either way
    d = dg.no_learning(history(ending_at(final)), PUSH_HER, CFG)
    assert (d is not None) is fires
    if d is not None:
        assert d.evidence["success_final"] == final and "final 20 %" in d.message


@pytest.mark.parametrize("final, fires", [(0.69, True), (0.71, False)])
def test_forgetting_drop_from_smoothed_peak_to_final_evaluation(final: float, fires: bool) -> None:
    s = np.r_[np.linspace(0, 0.9, 8), np.full(11, 0.9), final]  # smoothed peak 90 %
    d = dg.forgetting(history(s), PUSH_HER, CFG)
    assert (d is not None) is fires
    if d is not None:
        assert d.evidence["drop"] == pytest.approx(0.21) and "ended at 69 %" in d.message


@pytest.mark.parametrize("late, fires", [(0.1 * 999, False), (0.1 * 1001, True)])
def test_divergence_factor(late: float, fires: bool) -> None:
    loss = np.r_[np.full(10, 0.1), np.full(10, late)]
    assert fired(dg.critic_divergence, history(0.5, critic=loss)) is fires


@pytest.mark.parametrize("end, fires", [(0.19, False), (0.21, True)])
def test_rising_slope(end: float, fires: bool) -> None:
    # a straight line from 0 to `end`: the last quarter gains end / 4 = 4.75 pp / 5.25 pp
    d = dg.slow_but_learning(history(np.linspace(0.0, end, N)), PUSH_HER, CFG)
    assert (d is not None) is fires
    if d is not None:
        assert d.evidence["gain_last_quarter"] == pytest.approx(0.0525)


@pytest.mark.parametrize("noise, t_stat, fires", [(0.0288, 1.899, False), (0.0260, 2.104, True)])
def test_rising_t(noise: float, t_stat: float, fires: bool) -> None:
    # The last quarter is rows 16..20; a residual pattern orthogonal to the line keeps the slope
    # (0.6 / 19 per row) and sets its standard error: t = (0.6 / 19) * sqrt(3) / noise.
    s = np.linspace(0.0, 0.6, N)
    s[-5:] += noise * np.array([1, -2, 0, 2, -1])
    _, se = dg._slope(np.arange(5.0), s[-5:])
    assert (0.6 / 19) / se == pytest.approx(t_stat, abs=1e-3)
    assert fired(dg.slow_but_learning, history(s)) is fires


@pytest.mark.parametrize("final, fires", [(0.09, False), (0.11, True)])
def test_noher_success_uses_the_final_evaluation(final: float, fires: bool) -> None:
    assert fired(dg.suspicious_noher_success, history(ending_at(final, body=0.05)), PUSH_NOHER) is fires


@pytest.mark.parametrize("n, fires", [(8, False), (9, True)])
def test_min_rows_counts_smoothed_points(n: int, fires: bool) -> None:
    # smooth_window 5 + min_rows 5 - 1 = 9 rows give the 5 smoothed points a trend needs
    assert fired(dg.no_learning, history(0.05, n=n)) is fires


@pytest.mark.parametrize("n, fires", [(4, False), (5, True)])
def test_min_rows_for_the_loss_ratio(n: int, fires: bool) -> None:
    loss = np.r_[0.1, 0.1, np.full(n - 2, 1e3)]  # a 10 000x rise, measured once there are 5 loss rows
    assert fired(dg.critic_divergence, history(0.5, critic=loss, n=n)) is fires


@pytest.mark.parametrize("end, fires", [(0.94, True), (0.95, False), (0.96, False)])
def test_solved_success(end: float, fires: bool) -> None:
    d = dg.slow_but_learning(history(np.linspace(0.0, end, N)), PUSH_HER, CFG)
    assert (d is not None) is fires
    if d is not None:
        assert "ending at 94 %" in d.message and d.evidence["success_final"] == 0.94


# --- the final evaluation decides what "the end of the run" is -----------------------------------

def test_five_rows_rising_late_to_100_percent_is_not_flat() -> None:
    m = history([0.0, 0.0, 0.0, 0.0, 1.0], n=5)  # one smoothed point: no trend to judge
    assert dg.diagnose(m, PUSH_HER, CFG) == []


@pytest.mark.parametrize("final, expected", [(1.0, []), (0.15, ["no_learning"])])
def test_nine_rows_rising_late(final: float, expected: list[str]) -> None:
    m = history(ending_at(final, body=0.0, n=9), n=9)
    assert [d.name for d in dg.diagnose(m, PUSH_HER, CFG)] == expected


def test_slow_curve_that_ends_solved_is_quiet_and_messages_report_the_final_evaluation() -> None:
    assert dg.diagnose(history(np.r_[np.linspace(0.0, 0.6, N - 1), 1.0]), PUSH_HER, CFG) == []
    d = dg.slow_but_learning(history(np.r_[np.linspace(0.0, 0.6, N - 1), 0.7]), PUSH_HER, CFG)
    assert d is not None and "ending at 70 %" in d.message and d.evidence["success_final"] == 0.7


# --- fixes already in effect are not suggested --------------------------------------------------

FIXED_005 = dg.RunContext("FetchPush-v4", True, True, 1_000_000, entropy_mode="fixed", entropy_value=0.05,
                          learning_rate=1e-4, normalize=True)
FLOOR_LOW = dg.RunContext("FetchPush-v4", True, True, 1_000_000, entropy_mode="auto_floor", entropy_min=0.001)
FIXED_0005 = dg.RunContext("FetchPush-v4", True, True, 1_000_000, entropy_mode="fixed", entropy_value=0.005)


def test_no_learning_with_fixed_005_only_suggests_more_steps() -> None:
    d = dg.no_learning(history(0.05), FIXED_005, CFG)
    assert d is not None and d.fix == "train longer (total_steps=2000000)"
    d = dg.no_learning(history(0.05), PUSH_HER, CFG)
    assert d is not None and d.fix == ("check for entropy_collapse (entropy=fixed_005 or entropy=auto_floor), "
                                       "then train longer (total_steps=2000000)")


def test_entropy_collapse_fixes_depend_on_the_entropy_setting() -> None:
    m = history(0.02, ent=1e-3)
    assert dg.entropy_collapse(m, FLOOR_LOW, CFG).fix == (  # type: ignore[union-attr]
        "entropy=fixed_005 (constant 0.05, the chapter's best on Push) or entropy.min=0.01 (a higher floor)")
    assert dg.entropy_collapse(m, FIXED_0005, CFG).fix == (  # type: ignore[union-attr]
        "entropy=fixed_005 (constant 0.05, the chapter's best on Push) or "
        "entropy=auto_floor (SB3 auto tuning floored at entropy.min=0.01)")


def test_learning_rate_and_normalize_already_in_effect() -> None:
    growth = history(0.5, critic=np.geomspace(0.1, 1e3, N))
    assert dg.critic_divergence(growth, PUSH_HER, CFG).fix == (  # type: ignore[union-attr]
        "algo.learning_rate=1e-4 algo.normalize=true (smaller steps, normalised observations)")
    assert dg.critic_divergence(growth, FIXED_005, CFG).fix == "algo.learning_rate=3.3e-05 (smaller steps)"
    drop = history(np.r_[np.linspace(0, 0.9, 8), np.full(6, 0.9), np.full(6, 0.4)])
    assert dg.forgetting(drop, FIXED_005, CFG).fix == (  # type: ignore[union-attr]
        "stabilise late updates: algo.learning_rate=3.3e-05; compare a few seeds, one seed's drop can be noise")


@pytest.mark.parametrize("ctx, in_effect", [
    (FIXED_005, ["entropy=fixed_005", "algo.learning_rate=1e-4", "algo.normalize=true", "her=on"]),
    (FLOOR_LOW, ["entropy=auto_floor", "her=on"]),
    (PUSH_HER, ["her=on"]),
])
def test_no_suggestion_is_already_in_effect(ctx: dg.RunContext, in_effect: list[str]) -> None:
    failing = [history(0.02, ent=1e-3), history(0.05), history(0.5, critic=np.geomspace(0.1, 1e3, N)),
               history(np.r_[np.linspace(0, 0.9, 8), np.full(12, 0.4)]), history(np.linspace(0.0, 0.6, N))]
    fixes = [d.fix for m in failing for d in dg.diagnose(m, ctx, CFG)]
    assert len(fixes) >= 5 and not [f for f in fixes for o in in_effect if o in f]


def test_run_context_from_config() -> None:
    cfg = compose_cfg(["env=push", "her=off", "entropy=fixed_005", "algo.learning_rate=1e-4", "algo.normalize=true",
                       "total_steps=3000"])
    assert dg.RunContext.from_config(cfg) == dg.RunContext(
        "FetchPush-v4", False, True, 3000, entropy_mode="fixed", entropy_value=0.05, entropy_min=0.01,
        learning_rate=1e-4, normalize=True, n_envs=8, learning_starts=1000, random_action_prob=0.0, seed=0)
    assert dg.RunContext.from_config(cfg).fixed_005


def test_run_context_of_a_config_saved_with_entropy_mode() -> None:
    """docs/push_search/B_s0 saved ``entropy.mode: fixed`` and ``algo.fast``: same context."""
    import json

    from tests.conftest import ROOT

    saved = json.loads((ROOT / "docs" / "push_search" / "B_s0" / "summary.json").read_text())["config"]
    assert dg.RunContext.from_config(saved) == dg.RunContext(
        "FetchPush-v4", True, True, 500_000, entropy_mode="fixed", entropy_value=0.05, entropy_min=0.01,
        learning_rate=1e-3, normalize=True, n_envs=4, learning_starts=1000, random_action_prob=0.0, seed=0)


def test_algorithms_without_entropy_get_no_entropy_fixes() -> None:
    ctx = dg.RunContext.from_config(compose_cfg(["algo=td3", "total_steps=3000"]))
    assert (ctx.entropy_mode, ctx.has_entropy, ctx.entropy_value) == ("none", False, None)
    d = dg.no_learning(history(0.05), ctx, CFG)
    assert d is not None and d.fix == "train longer (total_steps=6000)"
