"""Tiny real runs through the CLI: every artifact of the run-folder contract, W&B offline,
re-evaluation from the checkpoint, seeding, failure capture and skip-completed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herexp import runfolder as rf
from herexp import train as train_mod
from herexp.wandb_records import read_offline_run
from tests.conftest import TINY, run_cli

FAKE_KEY = "local-0123456789abcdef0123456789abcdef01234567"


def _train(run_dir: Path, *overrides: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli("herexp.train", [*TINY, *overrides, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, env=env)


@pytest.fixture(scope="module")
def her_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("her") / "run"
    # VecNormalize on: its statistics must be saved and used again by herexp.evaluate.
    proc = _train(run_dir, "her=on", "algo.normalize=true", "logger.wandb.mode=offline",
                  env={"WANDB_API_KEY": FAKE_KEY})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _check_artifacts(run_dir: Path, her: bool, entropy: bool = True, steps: tuple[int, int] = (200, 300)) -> None:
    for name in (rf.MODEL, rf.META, rf.METRICS, rf.EVAL, rf.SUMMARY, rf.HYDRA_CONFIG, rf.HYDRA_OVERRIDES,
                 "train.log"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / rf.TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    summary = rf.read_summary(run_dir)
    assert summary is not None and summary["status"] == "completed"
    assert set(rf.SUMMARY_KEYS) - {"error", "traceback"} <= set(summary)
    assert summary["config"]["her"]["enabled"] is her and summary["total_steps"] == steps[-1]
    assert isinstance(summary["diagnostics"], list) and summary["steps_per_s"] > 0
    ev = rf.read_eval(run_dir)
    assert set(rf.EVAL_KEYS) <= set(ev) and ev["n_episodes"] == 3
    assert all(set(rf.EPISODE_KEYS) <= set(e) for e in ev["per_episode"])
    assert all(e["length"] == 50 and e["final_distance"] >= 0 for e in ev["per_episode"])
    assert summary["success_rate"] == ev["success_rate"]
    m = rf.read_metrics(run_dir)
    assert list(m.columns) == list(rf.METRICS_COLUMNS) and m["step"].tolist() == list(steps)
    # Gradient updates really happened (learning_starts < the first evaluation): losses were recorded.
    assert m["critic_loss"].notna().all() and m["actor_loss"].notna().all()
    assert (m["ent_coef"] > 0).all() if entropy else m["ent_coef"].isna().all()  # TD3/DDPG: no coefficient
    meta = rf.read_meta(run_dir)
    assert {"torch", "stable-baselines3", "gymnasium", "gymnasium-robotics", "mujoco", "python"} <= set(meta["versions"])
    assert meta["versions"]["mujoco"].startswith("3.") and meta["env"]["distance_threshold"] == 0.05
    assert meta["device"] == "cpu" and "git_commit" in meta and meta["wall_time_s"] > 0


def test_her_run_writes_every_artifact(her_run: Path) -> None:
    _check_artifacts(her_run, her=True)
    assert (her_run / rf.VECNORM).is_file()
    offline = list((her_run / rf.WANDB_DIR).glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
    w = read_offline_run(offline[0])  # a single run: named env/algo/her/entropy/seed, tagged by factors
    assert (w.name, w.group, w.job_type) == ("reach_sac_fast_her_entauto_seed0", "default", "train")
    assert w.tags == ["reach", "sac_fast", "her", "entauto", "ls100", "batch_size32", "buffer_size5000",
                      "net_arch-16-16", "norm", "n_envs2", "total_steps300"]
    assert w.summary["status"] == "completed" and w.summary["final/success_rate"] == rf.read_summary(her_run)[
        "success_rate"]
    assert [row["_step"] for row in w.history] == [200, 300]


def test_every_logged_metric_is_documented(her_run: Path) -> None:
    """STYLE #11: each TensorBoard / W&B key a run logs is listed in the README's metrics table."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(her_run / rf.TENSORBOARD_DIR))
    acc.Reload()
    logged = set(acc.Tags()["scalars"])
    assert {"eval/success_rate", "train/ent_coef", "train/critic_loss", "rollout/success_rate"} <= logged
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [k for k in sorted(logged) if f"`{k}`" not in readme] == []


def test_no_api_key_in_run_folder(her_run: Path) -> None:
    for f in her_run.rglob("*"):
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f


def test_noher_run_writes_every_artifact(tmp_path: Path) -> None:
    proc = _train(tmp_path / "run", "her=off", "entropy=fixed_005", "algo=sac")  # stock SB3 SAC
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_artifacts(tmp_path / "run", her=False)
    assert rf.read_metrics(tmp_path / "run")["ent_coef"].tolist() == pytest.approx([0.05, 0.05])


def test_evaluate_reproduces_the_run(her_run: Path) -> None:
    proc = run_cli("herexp.evaluate", [f"run_dir={her_run}"], cwd=her_run.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((her_run / "eval_reeval.json").read_text())
    original = rf.read_eval(her_run)
    for key in ("success_rate", "return_mean", "final_distance_mean", "seeds"):
        assert again[key] == original[key], key
    assert again["per_episode"] == original["per_episode"]


def test_same_seed_same_first_eval(her_run: Path, tmp_path: Path) -> None:
    proc = _train(tmp_path / "run", "her=on", "algo.normalize=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = rf.read_metrics(her_run), rf.read_metrics(tmp_path / "run")
    cols = ["eval_success_rate", "eval_return_mean", "eval_final_distance_mean", "critic_loss"]
    assert a.loc[0, cols].tolist() == b.loc[0, cols].tolist()


def test_completed_run_is_skipped(her_run: Path) -> None:
    before = (her_run / rf.SUMMARY).read_bytes()
    proc = _train(her_run, "her=on", "algo.normalize=true", "logger.wandb.mode=offline")
    assert proc.returncode == 0 and "skipped (already completed)" in proc.stderr + proc.stdout
    assert (her_run / rf.SUMMARY).read_bytes() == before


def test_bad_input_fails_before_training(tmp_path: Path) -> None:
    proc = _train(tmp_path / "run", "algo.gamma=1.5")
    assert proc.returncode == 2 and "algo.gamma=1.5 is invalid" in proc.stderr
    assert not (tmp_path / "run").exists()  # checked before Hydra made the run folder


def test_exception_writes_failed_summary_and_finishes_wandb(compose_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_run(TINY)
    finished: list[tuple[bool, str]] = []
    monkeypatch.setattr(train_mod.tracking, "start_wandb", lambda *a, **k: "fake-run")
    monkeypatch.setattr(train_mod.tracking, "finish_wandb",
                        lambda run, failed, summary: finished.append((failed, summary["status"])))

    def boom(*_a):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom on purpose")

    monkeypatch.setattr(train_mod, "_learn", boom)
    with pytest.raises(RuntimeError, match="boom on purpose"):
        train_mod.train(cfg)
    summary = rf.read_summary(cfg.hydra.runtime.output_dir)
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: boom on purpose"
    assert "Traceback" in summary["traceback"] and summary["config"]["seed"] == 0
    assert finished == [(True, "failed")]  # W&B gets the outcome summary.json records


@pytest.mark.slow
def test_quickstart_reaches_90_percent(tmp_path: Path) -> None:
    """The README's first command: FetchReach + HER, >= 0.9 eval success (~1 min on a CPU)."""
    proc = run_cli("herexp.train", ["experiment=reach_quickstart", "logger.wandb.mode=disabled",
                                     f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = rf.read_summary(tmp_path / "run")
    assert summary["success_rate"] >= 0.9, summary["success_rate"]


def test_fast_path_with_overlapped_envs_runs_and_reevaluates(tmp_path: Path) -> None:
    """algo=sac_fast with both two-core options (env stepping in a worker process, critics on
    two threads) through the CLI; its checkpoint is a plain SB3 SAC checkpoint that
    herexp.evaluate reproduces."""
    run_dir = tmp_path / "run"
    proc = _train(run_dir, "algo=sac_fast", "algo.overlap_envs=true", "algo.parallel_critics=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_artifacts(run_dir, her=True)
    algo = rf.read_summary(run_dir)["config"]["algo"]
    assert algo["_target_"] == "herexp.algos.sac_fast.SacFast" and algo["overlap_envs"] and algo["parallel_critics"]
    proc = run_cli("herexp.evaluate", [f"run_dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((run_dir / "eval_reeval.json").read_text())
    assert again["per_episode"] == rf.read_eval(run_dir)["per_episode"]


def test_overlap_needs_fast_path(tmp_path: Path) -> None:
    proc = _train(tmp_path / "run", "algo=sac", "algo.overlap_envs=true")
    assert proc.returncode != 0 and "algo.overlap_envs" in proc.stderr


# --- TD3, DDPG and TQC: one tiny multirun, one folder per algorithm --------------------------------

NEW_ALGOS = {"td3": "herexp.algos.td3.Td3", "ddpg": "herexp.algos.ddpg.Ddpg", "tqc": "herexp.algos.tqc.Tqc"}
# One env, HER from env step 50 (the first finished episode), evaluations at 100 and 150 env steps.
SMALL = ["n_envs=1", "algo.learning_starts=50", "total_steps=150", "eval.freq=100"]


@pytest.fixture(scope="module")
def algo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``--multirun algo=td3,ddpg,tqc`` with HER on FetchReach (one process, jobs in sequence)."""
    root = tmp_path_factory.mktemp("algos")
    proc = run_cli("herexp.train", ["--multirun", *TINY, *SMALL, "her=on", "algo=td3,ddpg,tqc", "hydra/launcher=basic",
                                    f"hydra.sweep.dir={root / 'sweep'}"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "sweep"


@pytest.mark.parametrize("algo", sorted(NEW_ALGOS))
def test_new_algorithm_trains_with_her_and_reevaluates(algo_runs: Path, algo: str) -> None:
    """Every artifact, losses from real updates, the option's class in the saved config, and
    herexp.evaluate's entrypoint reproducing eval.json from the model.zip."""
    from herexp import cli, evaluate

    (run_dir,) = algo_runs.glob(f"reach_{algo}_*")
    assert run_dir.name == f"reach_{algo}_her_ls50_batch_size32_buffer_size5000_net_arch-16-16_n_envs1_total_steps150"
    _check_artifacts(run_dir, her=True, entropy=algo == "tqc", steps=(100, 150))
    config = rf.read_summary(run_dir)["config"]
    assert config["algo"]["_target_"] == NEW_ALGOS[algo]
    assert config["entropy"] == ({"_target_": "herexp.entropy.options.Auto", "target_entropy": "auto", "init": None}
                                 if algo == "tqc" else {"_target_": "herexp.entropy.options.NoEntropy"})
    assert cli.run(evaluate.main, [f"run_dir={run_dir}"]) == 0
    again = json.loads((run_dir / "eval_reeval.json").read_text())
    assert again["per_episode"] == rf.read_eval(run_dir)["per_episode"] and again["seeds"] == [1_000_000, 1_000_001,
                                                                                               1_000_002]


def test_algorithms_are_the_aggregate_factor(algo_runs: Path) -> None:
    from herexp.aggregate.load import load_folders

    loaded = load_folders([algo_runs])
    assert loaded.factors[0] == "algo" and sorted(loaded.runs["algo"]) == ["ddpg", "td3", "tqc"]
    assert sorted(loaded.runs["entropy_mode"]) == ["auto", "none", "none"]
