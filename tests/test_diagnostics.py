"""Failure diagnoses on synthetic metrics histories: each rule fires, and stays silent when healthy."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from herexp import diagnostics as dg
from herexp import runfolder as rf
from herexp.config import DiagnosticsConfig

CFG = DiagnosticsConfig()
PUSH_HER = dg.RunContext(env_id="FetchPush-v4", her_enabled=True, sparse=True, total_steps=1_000_000)
PUSH_NOHER = dg.RunContext(env_id="FetchPush-v4", her_enabled=False, sparse=True, total_steps=1_000_000)
N = 20


def history(success: Sequence[float] | float, ent: Sequence[float] | float = 0.05,
            critic: Sequence[float] | float = 0.2, n: int = N, col: str = "eval_success_rate") -> pd.DataFrame:
    """A metrics table of ``n`` rows every 50k steps; scalars are broadcast."""
    return pd.DataFrame({"step": np.arange(1, n + 1) * 50_000, col: np.broadcast_to(success, n),
                         "ent_coef": np.broadcast_to(ent, n), "critic_loss": np.broadcast_to(critic, n)})


def names(metrics: pd.DataFrame, ctx: dg.RunContext = PUSH_HER) -> list[str]:
    return [d.name for d in dg.diagnose(metrics, ctx, CFG)]


RISE = np.minimum(np.arange(N) / 5, 1.0)  # learns to 100 % by row 5, stays there


# --- entropy_collapse ---------------------------------------------------------------------------

def test_entropy_collapse_fires_with_evidence() -> None:
    d = dg.entropy_collapse(history(0.02, ent=np.geomspace(1.0, 1e-3, N)), PUSH_HER, CFG)
    assert d is not None and d.name == "entropy_collapse"
    assert d.evidence["ent_coef_final"] == pytest.approx(1e-3) and d.evidence["success_final"] < 0.5
    assert d.evidence["collapse_step"] == 50_000 * (1 + int(np.argmax(np.geomspace(1.0, 1e-3, N) < 0.01)))
    assert "entropy=fixed_005" in d.fix and "entropy=auto_floor" in d.fix


@pytest.mark.parametrize("success, ent", [(0.02, 0.05), (0.9, 1e-3), (0.02, 0.01 * (1 - 1e-12))])
def test_entropy_collapse_silent(success: float, ent: float) -> None:
    # healthy coefficient; collapsed but learned; clamped at the auto_floor floor (float round-off)
    assert dg.entropy_collapse(history(success, ent=ent), PUSH_HER, CFG) is None


# --- no_learning --------------------------------------------------------------------------------

def test_no_learning_fires_and_suggests_her_when_off() -> None:
    flat = 0.05 + 0.02 * np.sin(np.arange(N))
    d = dg.no_learning(history(flat), PUSH_NOHER, CFG)
    assert d is not None and d.evidence["rise"] <= CFG.flat_delta and "her=on" in d.fix
    d_her = dg.no_learning(history(flat), PUSH_HER, CFG)
    assert d_her is not None and "total_steps=2000000" in d_her.fix


@pytest.mark.parametrize("success", [RISE, np.linspace(0.0, 0.3, N), 1.0])
def test_no_learning_silent(success: np.ndarray | float) -> None:
    # learned early; slow but real rise; at 100 % from the first evaluation (nothing to learn)
    assert dg.no_learning(history(success), PUSH_HER, CFG) is None


# --- forgetting ---------------------------------------------------------------------------------

def test_forgetting_fires() -> None:
    s = np.concatenate([np.linspace(0, 0.9, 8), np.full(6, 0.9), np.full(6, 0.4)])
    d = dg.forgetting(history(s), PUSH_HER, CFG)
    assert d is not None and d.evidence["success_peak"] == pytest.approx(0.9)
    assert d.evidence["drop"] == pytest.approx(0.5) and d.evidence["peak_step"] <= 14 * 50_000


def test_forgetting_silent_on_small_dip() -> None:
    s = np.concatenate([np.linspace(0, 0.9, 8), np.full(6, 0.9), np.full(6, 0.8)])
    assert dg.forgetting(history(s), PUSH_HER, CFG) is None


# --- critic_divergence --------------------------------------------------------------------------

def test_critic_divergence_fires_on_growth() -> None:
    d = dg.critic_divergence(history(RISE, critic=np.geomspace(0.1, 1e3, N)), PUSH_HER, CFG)
    assert d is not None and d.evidence["ratio"] > CFG.divergence_factor


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_critic_divergence_fires_on_nonfinite_after_finite(bad: float) -> None:
    loss = np.r_[np.full(2, np.nan), np.full(3, 0.3), np.full(2, bad)]  # NaN first: before learning
    d = dg.critic_divergence(history(0.1, critic=loss, n=7), PUSH_HER, CFG)
    assert d is not None and d.evidence["bad_step"] == 6 * 50_000
    assert d.evidence["last_finite_loss"] == pytest.approx(0.3)


@pytest.mark.parametrize("loss", [np.r_[np.full(3, np.nan), np.linspace(0.5, 5.0, N - 3)], np.nan])
def test_critic_divergence_silent(loss: np.ndarray | float) -> None:
    # NaN before learning starts then a 10x (not 1000x) rise; learning never started
    assert dg.critic_divergence(history(RISE, critic=loss), PUSH_HER, CFG) is None


# --- slow_but_learning --------------------------------------------------------------------------

def test_slow_but_learning_fires_with_more_steps() -> None:
    d = dg.slow_but_learning(history(np.linspace(0.0, 0.6, N)), PUSH_HER, CFG)
    assert d is not None and d.fix == "total_steps=2000000"
    assert d.evidence["gain_last_quarter"] == pytest.approx(0.6 / 4) and d.evidence["t_stat"] == 1e3


@pytest.mark.parametrize("success", [RISE, np.minimum(np.linspace(0, 1.5, N), 0.97), 0.5])
def test_slow_but_learning_silent(success: np.ndarray | float) -> None:
    # learned early; rising but solved at the end; plateau
    assert dg.slow_but_learning(history(success), PUSH_HER, CFG) is None


# --- suspicious_noher_success -------------------------------------------------------------------

def test_suspicious_noher_success_fires_on_sparse_push() -> None:
    d = dg.suspicious_noher_success(history(np.linspace(0, 0.4, N)), PUSH_NOHER, CFG)
    assert d is not None and d.evidence["env_id"] == "FetchPush-v4" and "sparse" in d.fix


@pytest.mark.parametrize("ctx, success", [
    (PUSH_NOHER, 0.05),  # the expected ~5 %
    (PUSH_HER, 0.8),  # HER on
    (dg.RunContext("FetchPushDense-v4", False, False, 10**6), 0.8),  # dense reward
    (dg.RunContext("FetchReach-v4", False, True, 10**6), 0.8),  # Reach is easy without HER
])
def test_suspicious_noher_success_silent(ctx: dg.RunContext, success: float) -> None:
    assert dg.suspicious_noher_success(history(success), ctx, CFG) is None


# --- whole runs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_noisy_healthy_run_has_no_diagnoses(seed: int) -> None:
    """Sigmoid learning curve measured with 20-episode evaluations (binomial noise)."""
    rng = np.random.default_rng(seed)
    p = 0.97 / (1 + np.exp(-(np.arange(1, 41) / 40 - 0.3) * 20))
    m = history(rng.binomial(20, p) / 20, critic=0.2 * np.exp(rng.normal(0, 0.3, 40)), n=40)
    assert names(m) == []


def test_short_history_and_early_solve_are_quiet() -> None:
    assert names(history([0.0, 0.05], ent=[1.0, 0.5], critic=[np.nan, 0.4], n=2)) == []
    assert names(history(1.0, ent=0.02)) == []


def test_rollout_success_is_the_fallback() -> None:
    m = history(np.nan).assign(rollout_success_rate=np.full(N, 0.02))
    found = dg.diagnose(m.assign(ent_coef=1e-3), PUSH_HER, CFG)
    assert [d.name for d in found] == ["entropy_collapse", "no_learning"]
    assert all(d.evidence["success_column"] == "rollout_success_rate" for d in found)
    assert "rollout success" in found[0].message


@pytest.mark.parametrize("metrics", [pd.DataFrame(), pd.DataFrame(columns=list(rf.METRICS_COLUMNS)),
                                     pd.DataFrame({"step": ["a", "b"], "eval_success_rate": ["x", ""]})])
def test_empty_or_garbage_metrics(metrics: pd.DataFrame) -> None:
    assert dg.diagnose(metrics, PUSH_HER, CFG) == []


def test_unsorted_rows_are_ordered_by_step() -> None:
    m = history(np.linspace(0.0, 0.6, N)).iloc[::-1]
    assert names(m) == ["slow_but_learning"]


def test_dictconfig_thresholds_and_missing_keys() -> None:
    m = history(0.02, ent=0.005)
    strict = OmegaConf.structured(DiagnosticsConfig(collapse_ent_coef=0.001))
    assert "entropy_collapse" not in [d.name for d in dg.diagnose(m, PUSH_HER, strict)]
    old = OmegaConf.create({"collapse_ent_coef": 0.01})  # e.g. a config saved before new fields
    assert "entropy_collapse" in [d.name for d in dg.diagnose(m, PUSH_HER, old)]


def test_a_failing_rule_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(dg, "RULES", (broken, dg.entropy_collapse))
    assert [d.name for d in dg.diagnose(history(0.0, ent=1e-3), PUSH_HER, CFG)] == ["entropy_collapse"]


def test_round_trip_through_metrics_csv_and_json(tmp_path: Path) -> None:
    with rf.MetricsWriter(tmp_path, fresh=True) as w:
        for i, loss in enumerate([None, 0.3, 0.4, math.nan]):
            w.write({"step": (i + 1) * 1000, "eval_success_rate": 0.0, "ent_coef": 0.5, "critic_loss": loss})
    found = dg.diagnose(rf.read_metrics(tmp_path), PUSH_HER, CFG)
    assert [d.name for d in found] == ["critic_divergence"] and found[0].evidence["bad_step"] == 4000
    assert json.loads(json.dumps([d.to_dict() for d in found]))[0]["fix"] == found[0].fix


def test_format_diagnoses() -> None:
    assert dg.format_diagnoses([]) == "no problems detected"
    d = dg.Diagnosis("forgetting", "peaked then dropped.", {"drop": 0.3}, "algo.learning_rate=1e-4")
    text = dg.format_diagnoses([d, d])
    assert text.splitlines() == ["2 problem(s) detected:", "- forgetting: peaked then dropped.",
                                 "  fix: algo.learning_rate=1e-4", "- forgetting: peaked then dropped.",
                                 "  fix: algo.learning_rate=1e-4"]
