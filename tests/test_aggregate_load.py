"""Loading run folders into the tidy table: factor discovery, skipped and failed runs.

``write_fake_run`` / ``write_fake_sweep`` write realistic run folders with the runfolder
writers (summary.json, eval.json, metrics.csv, .hydra/config.yaml) and are reused by the CLI
tests; the real-sweep end-to-end test lives in tests/e2e.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from herexp import options, runfolder
from herexp.aggregate.load import discover_factors, load_curves, load_folders
from herexp.algos import SacFast
from herexp.config import Config
from herexp.entropy import Auto, Fixed
from tests.conftest import ROOT


def fake_config(*, env: str = "push", her: bool = True, ent: float | None = 0.1, gamma: float = 0.95,
                learning_starts: int = 1000, k: int = 4, seed: int = 0, study: str = "test",
                total_steps: int = 4000) -> dict[str, Any]:
    """A resolved config as herexp.train stores it (the real schema, env filled in)."""
    cfg = OmegaConf.structured(Config)
    cfg.env.id, cfg.env.name = f"Fetch{env.title()}-v4", env
    cfg.her.enabled, cfg.her.n_sampled_goal = her, k
    cfg.entropy = OmegaConf.structured(options.schema(Fixed)(value=ent) if ent is not None else options.schema(Auto)())
    cfg.algo = OmegaConf.structured(options.schema(SacFast)(gamma=gamma, learning_starts=learning_starts))
    cfg.seed, cfg.total_steps = seed, total_steps
    cfg["study" if "study" in cfg else "experiment"] = study  # the sweep / preset name
    cfg.name = f"{env}_{'her' if her else 'noher'}_ent{ent}_seed{seed}"
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def write_fake_run(run_dir: Path, *, success: float = 0.5, status: str = "completed",
                   diagnostics: Iterable[str] = (), n_points: int = 5, **cfg_kw: Any) -> Path:
    """A run folder like herexp.train writes: config.yaml, metrics.csv, eval.json, summary.json."""
    cfg = fake_config(**cfg_kw)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / runfolder.HYDRA_CONFIG)
    rng = np.random.default_rng(cfg["seed"])
    steps = np.linspace(cfg["total_steps"] / n_points, cfg["total_steps"], n_points).astype(int)
    with runfolder.MetricsWriter(run_dir) as w:
        for i, step in enumerate(steps):
            s = float(np.clip(success * (i + 1) / n_points + rng.normal(0, 0.02), 0, 1))
            w.write({"step": int(step), "eval_success_rate": s, "eval_return_mean": -50 * (1 - s),
                     "eval_final_distance_mean": 0.2 * (1 - s), "ent_coef": cfg["entropy"].get("value")})
    if status == runfolder.STATUS_FAILED:
        runfolder.write_summary(run_dir, {"status": status, "config": cfg, "name": cfg["name"],
                                          "error": "RuntimeError: boom", "traceback": "..."})
        return run_dir
    ev = {"success_rate": success, "return_mean": -50 * (1 - success), "return_std": 1.0,
          "final_distance_mean": 0.2 * (1 - success), "final_distance_std": 0.01, "ep_len_mean": 50,
          "n_episodes": 10, "deterministic": True, "seeds": [1_000_000], "per_episode": []}
    runfolder.write_json_atomic(run_dir / runfolder.EVAL, ev)
    diags = [{"name": d, "message": "m", "evidence": {}, "fix": "f"} for d in diagnostics]
    runfolder.write_summary(run_dir, {
        "status": status, "success_rate": success, "return_mean": ev["return_mean"],
        "final_distance_mean": ev["final_distance_mean"], "total_steps": cfg["total_steps"],
        "train_time_s": 1.0, "steps_per_s": 4000.0, "diagnostics": diags,
        "overrides": [f"seed={cfg['seed']}"], "config": cfg, "name": cfg["name"]})
    return run_dir


def write_fake_sweep(root: Path, grid: Mapping[str, Iterable[Any]], seeds: Iterable[int],
                     success: Any = None) -> list[Path]:
    """One run per grid point and seed under ``root`` (Hydra-like ``k=v,k=v`` job folders).

    ``success(params, seed) -> float`` gives each run's success (default: a fixed formula)."""
    keys = list(grid)
    out = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(keys, values, strict=True))
        for seed in seeds:
            s = success(params, seed) if success else 0.3 + 0.1 * seed / 10
            name = ",".join(f"{k}={v}" for k, v in params.items()) + f",seed={seed}"
            out.append(write_fake_run(root / name, success=s, seed=seed, **params))
    return out


# ----------------------------------------------------------------------------- tests
def test_factors_discovered_with_readable_names(tmp_path: Path) -> None:
    write_fake_sweep(tmp_path, {"her": [True, False], "ent": [0.05, 0.1]}, seeds=[0, 1])
    loaded = load_folders([tmp_path])
    assert loaded.factors == ["her", "ent_coef"]  # READABLE order; seed, name, env.id dropped
    assert not loaded.skipped and not loaded.failed
    runs = loaded.runs
    # each folder's labels come from its own config: a her/noher or seed swap between runs fails here
    rows = runs[["folder", "her", "ent_coef", "seed", "config", "status"]].itertuples(index=False)
    assert [(Path(f).name, h, e, s, c, st) for f, h, e, s, c, st in rows] == [
        ("her=False,ent=0.05,seed=0", "off", 0.05, 0, "her=off ent_coef=0.05", "completed"),
        ("her=False,ent=0.05,seed=1", "off", 0.05, 1, "her=off ent_coef=0.05", "completed"),
        ("her=False,ent=0.1,seed=0", "off", 0.1, 0, "her=off ent_coef=0.1", "completed"),
        ("her=False,ent=0.1,seed=1", "off", 0.1, 1, "her=off ent_coef=0.1", "completed"),
        ("her=True,ent=0.05,seed=0", "on", 0.05, 0, "her=on ent_coef=0.05", "completed"),
        ("her=True,ent=0.05,seed=1", "on", 0.05, 1, "her=on ent_coef=0.05", "completed"),
        ("her=True,ent=0.1,seed=0", "on", 0.1, 0, "her=on ent_coef=0.1", "completed"),
        ("her=True,ent=0.1,seed=1", "on", 0.1, 1, "her=on ent_coef=0.1", "completed"),
    ]


def test_entropy_mode_shown_only_when_it_varies(tmp_path: Path) -> None:
    write_fake_run(tmp_path / "a", ent=0.1)
    write_fake_run(tmp_path / "b", ent=None)  # mode auto, value None
    loaded = load_folders([tmp_path])
    assert loaded.factors == ["entropy_mode", "ent_coef"]
    assert set(loaded.runs["ent_coef"]) == {0.1, "none"}


def test_algorithms_are_a_factor_named_by_their_options(tmp_path: Path) -> None:
    """Runs of different algo= options compare under ``algo`` (sac_fast, td3), and TD3's
    ``entropy: none`` reads as entropy_mode none; option-only keys (action_noise_std) drop out."""
    write_fake_run(tmp_path / "sac", ent=0.05, success=0.9)
    td3 = fake_config(seed=1)
    td3["algo"] = {**{k: v for k, v in td3["algo"].items() if k not in ("overlap_envs", "parallel_critics")},
                   "action_noise_std": 0.2, "policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5,
                   options.TARGET: "herexp.algos.td3.Td3"}
    td3["entropy"] = {options.TARGET: "herexp.entropy.options.NoEntropy"}
    run = tmp_path / "td3"
    (run / ".hydra").mkdir(parents=True)
    runfolder.write_summary(run, {"status": "completed", "success_rate": 0.4, "return_mean": -30.0,
                                  "final_distance_mean": 0.1, "config": td3, "name": "push_td3_her_seed1"})
    loaded = load_folders([tmp_path])
    assert loaded.factors == ["algo", "entropy_mode", "ent_coef"]
    rows = loaded.runs.sort_values("algo")[["algo", "entropy_mode", "ent_coef", "success_rate"]].values.tolist()
    assert rows == [["sac_fast", "fixed", 0.05, 0.9], ["td3", "none", "none", 0.4]]


def test_push_search_folders_saved_with_entropy_mode_still_load() -> None:
    """docs/push_search: configs saved with entropy.mode and algo.fast. Read in today's shape,
    every run is fast SAC (B_s0 was saved as algo.name=sac with fast=true: it ran the fast path)."""
    loaded = load_folders([ROOT / "docs" / "push_search"])
    assert loaded.factors == ["ent_coef", "total_steps"]
    # A_s0 (a curve only) is not a run folder; D_s0 was stopped by Ctrl-C (interrupted)
    assert [(Path(s["path"]).name, s["reason"]) for s in loaded.skipped] == [
        ("D_s0", "interrupted at 358628 env steps (unfinished run)")]
    assert loaded.failed == []
    rows = loaded.runs.sort_values("folder")[["ent_coef", "total_steps", "seed", "success_rate"]].values.tolist()
    assert rows == [[0.05, 500000, 0, 0.75], [0.05, 800000, 1, 0.97], [0.05, 700000, 2, 0.97],
                    [0.02, 500000, 0, 0.08], [0.2, 500000, 0, 0.95]]


def test_other_keys_keep_last_component_and_redundant_keys_drop() -> None:
    rows = [{"env.name": "push", "env.id": "FetchPush-v4", "algo.tau": 0.005, "study": "x"},
            {"env.name": "reach", "env.id": "FetchReach-v4", "algo.tau": 0.01, "study": "x"},
            {"env.name": "reach", "env.id": "FetchReach-v4", "algo.tau": 0.005, "study": "y"}]
    names = discover_factors(rows, {"env.name": "env"})
    assert names == {"env.name": "env", "algo.tau": "tau"}  # env.id follows env; study follows both


def test_corrupt_empty_unfinished_and_failed(tmp_path: Path) -> None:
    write_fake_sweep(tmp_path, {"gamma": [0.95, 0.98]}, seeds=[0, 1])
    bad = write_fake_run(tmp_path / "corrupt", gamma=0.95, seed=7)
    (bad / runfolder.SUMMARY).write_text('{"status": "completed", "succ')
    (tmp_path / "empty").mkdir()
    unfinished = write_fake_run(tmp_path / "unfinished", seed=8)
    (unfinished / runfolder.SUMMARY).unlink()
    write_fake_run(tmp_path / "failed", status="failed", gamma=0.98, seed=9)
    loaded = load_folders([tmp_path, tmp_path / "does_not_exist"])
    reasons = {Path(s["path"]).name: s["reason"] for s in loaded.skipped}
    assert reasons["corrupt"].startswith("corrupt summary.json")
    assert reasons["empty"].startswith("empty folder")
    assert reasons["unfinished"].startswith("no summary.json")
    assert reasons["does_not_exist"] == "does not exist"
    assert [Path(f["path"]).name for f in loaded.failed] == ["failed"]
    assert "boom" in loaded.failed[0]["error"]
    assert len(loaded.completed) == 4 and len(loaded.runs) == 5  # failed row kept in runs.csv
    assert loaded.factors == ["gamma"]


def test_missing_metric_is_skipped_and_eval_json_fills_gaps(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r1", success=0.7)
    s = runfolder.read_summary(run)
    del s["final_distance_mean"]
    runfolder.write_summary(run, s)
    run2 = write_fake_run(tmp_path / "r2", success=0.4, seed=1)
    s2 = runfolder.read_summary(run2)
    s2["success_rate"] = None
    runfolder.write_summary(run2, s2)
    (run2 / runfolder.EVAL).unlink()
    loaded = load_folders([tmp_path])
    assert loaded.completed["final_distance_mean"].iloc[0] == pytest.approx(0.2 * 0.3)  # from eval.json
    assert [Path(s["path"]).name for s in loaded.skipped] == ["r2"]
    assert "success_rate" in loaded.skipped[0]["reason"]


def test_diagnostics_and_curves(tmp_path: Path) -> None:
    run = write_fake_run(tmp_path / "r", diagnostics=["entropy_collapse", "no_learning"], n_points=4)
    loaded = load_folders([run])  # a single run folder as input works too
    assert loaded.runs["diagnostics"].iloc[0] == "entropy_collapse;no_learning"
    curve = load_curves(run)
    assert list(curve.index) == [1000, 2000, 3000, 4000]
    (run / runfolder.METRICS).write_text("garbage\x00\n1,2,3\n")
    assert load_curves(run).empty
