"""herexp's Optuna sweeper for real: a tiny Reach study whose hopeless trials are pruned, and a
multi-seed study killed with SIGKILL mid-trial whose rerun resumes it and reaches exactly
n_trials, each trial's value the mean of its seeds' summaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from herexp import runfolder as rf
from herexp.search import storage
from tests.conftest import ROOT, TINY, run_cli

SEARCH = ["--multirun", "hydra/sweeper=optuna", "hydra.launcher.n_jobs=1"]
# Reach learns within 100 env steps at 32 gradient steps per step (eval success 0.9-1.0 at step 300);
# with 1 gradient step per step (50 updates by then) it cannot: its trials are the ones pruned.
PRUNE = ["env=reach", "total_steps=304", "n_envs=2", "algo.learning_starts=200", "algo.batch_size=64",
         "algo.buffer_size=5000", "algo.net_arch=[64,64]", "algo.normalize=true", "algo.learning_rate=0.003",
         "eval.freq=300", "eval.periodic_episodes=10", "eval.n_episodes=10", "logger.wandb.mode=disabled",
         "logger.tensorboard=false", "study=prune", "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler=random",
         "hydra.sweeper.seed=11",  # RandomSampler(seed=11) draws 32, 1, 1: the good trial comes first
         "+hydra.sweeper.pruner_kwargs.n_startup_trials=1", "algo.gradient_steps=choice(32,1)"]


def _study(sweep_dir: Path) -> optuna.Study:
    return storage.read_study(str(sweep_dir / "optuna.journal"))


def test_median_pruner_prunes_the_trials_that_cannot_learn(tmp_path: Path) -> None:
    proc = run_cli("herexp.train", [*SEARCH, *PRUNE], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_dir = tmp_path / "multirun" / "prune"
    trials = _study(sweep_dir).get_trials()
    assert [(t.number, t.params["algo.gradient_steps"], t.state.name) for t in trials] == [
        (0, 32, "COMPLETE"), (1, 1, "PRUNED"), (2, 1, "PRUNED")]
    assert trials[0].value >= 0.5 and trials[1].intermediate_values == {300: 0.0}
    pruned = rf.read_summary(sweep_dir / trials[1].user_attrs["folders"][0])
    assert pruned["status"] == "pruned" and pruned["pruned_at_step"] == 300 and pruned["total_steps"] == 300
    assert not (sweep_dir / trials[1].user_attrs["folders"][0] / rf.EVAL).exists()  # stopped: no final evaluation
    assert "1 completed, 2 pruned, 0 skipped, 0 failed" in proc.stderr
    assert "3/3 trials: 1 completed, 2 pruned, 0 failed, 0 running" in proc.stderr
    listed = run_cli("herexp.sweep", ["list", *SEARCH[1:], *PRUNE], cwd=tmp_path)
    assert listed.stdout.strip().splitlines()[-1] == (
        "3 trials of 3 in multirun/prune: 1 completed, 2 pruned, 0 failed, 0 running"), listed.stderr
    agg = run_cli("herexp.aggregate", ["multirun/prune", "quiet=true", "plots=true"], cwd=tmp_path)
    assert agg.returncode == 0, agg.stderr
    report = rf.read_json(sweep_dir / "aggregate" / "report.json")
    study = report["study"]
    assert study["trials_by_state"] == {"completed": 1, "pruned": 2, "failed": 0, "running": 0}
    assert study["env_steps"] == {"total": 904, "completed": 304, "pruned": 600, "failed": 0, "running": 0}
    assert study["best"]["number"] == 0 and study["best"]["params"] == {"algo.gradient_steps": 32}
    assert len(report["pruned"]) == 2 and report["n_runs"] == 1
    assert (sweep_dir / "aggregate" / "study_history.png").stat().st_size > 0


MULTI = [*[o for o in TINY if not o.startswith("total_steps")], "total_steps=300", "checkpoint.every=100",
         "study=multi", "hydra.sweeper.n_trials=3", "hydra.sweeper.seeds_per_trial=2", "hydra.sweeper.pruner=none",
         "hydra.sweeper.sampler=grid", "hydra.sweeper.seed=0", "algo.gamma=choice(0.9,0.95,0.98)"]


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The study killed with SIGKILL once trial 1 has a checkpoint, then the same command again."""
    cwd = tmp_path_factory.mktemp("search")
    sweep_dir = cwd / "multirun" / "multi"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "herexp.train", *SEARCH, *MULTI], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not list(sweep_dir.glob("trial001_*/checkpoint/state.json")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    running = [t.number for t in _study(sweep_dir).get_trials() if t.state.name == "RUNNING"]
    assert running == [1]  # trial 0 was told, trial 1 was cut off mid-run
    return sweep_dir, run_cli("herexp.train", [*SEARCH, *MULTI], cwd=cwd, timeout=600)


def test_killed_study_resumes_to_exactly_n_trials(killed_and_rerun) -> None:  # type: ignore[no-untyped-def]
    sweep_dir, rerun = killed_and_rerun
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = _study(sweep_dir).get_trials()
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    folders = [f for t in trials for f in t.user_attrs["folders"]]
    assert len(folders) == len(set(folders)) == 6 and sorted(folders) == sorted(
        p.name for p in sweep_dir.iterdir() if p.name.startswith("trial"))
    assert [f.split("_")[0] for f in folders] == ["trial000"] * 2 + ["trial001"] * 2 + ["trial002"] * 2
    logs = "".join((sweep_dir / f / "train.log").read_text() for f in trials[1].user_attrs["folders"])
    assert "resumed from the checkpoint at" in logs  # the cut-off run went on from its checkpoint
    assert "trial 1 resumes" in rerun.stdout + rerun.stderr


def test_multi_seed_trial_value_is_the_mean_of_its_seeds(killed_and_rerun) -> None:  # type: ignore[no-untyped-def]
    sweep_dir, _ = killed_and_rerun
    for t in _study(sweep_dir).get_trials():
        runs = [sweep_dir / f for f in t.user_attrs["folders"]]
        assert [f.name[-6:] for f in runs] == ["_seed0", "_seed1"] and t.user_attrs["seeds"] == [0, 1]
        successes = [rf.read_summary(r)["success_rate"] for r in runs]
        assert t.value == pytest.approx(sum(successes) / 2)
