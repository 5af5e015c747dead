"""Resumable runs: a run killed after a checkpoint and rerun ends exactly like an uninterrupted
one; Ctrl-C checkpoints and the rerun resumes; a changed config is refused in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from herexp import runfolder as rf
from tests.conftest import TINY, run_cli

RUN = [*TINY, "total_steps=1200", "eval.freq=400", "eval.n_episodes=5", "checkpoint.every=400",
       "algo.normalize=true"]
COMPARED = ["step", "eval_success_rate", "eval_return_mean", "eval_final_distance_mean", "rollout_success_rate",
            "ent_coef", "actor_loss", "critic_loss"]


def _cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "herexp.train", *RUN, *extra, f"hydra.run.dir={run_dir}"]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(_cmd(run_dir, *extra), cwd=run_dir.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _wait_for_row(run_dir: Path, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    """Until metrics.csv has its first evaluation row (training is under way)."""
    path, deadline = run_dir / rf.METRICS, time.time() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= 2):
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        assert time.time() < deadline, "no evaluation row"
        time.sleep(0.05)


def _weights(run_dir: Path) -> bytes:
    with zipfile.ZipFile(run_dir / rf.MODEL) as z:
        return z.read("policy.pth")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    proc = run_cli("herexp.train", _cmd(run_dir)[3:], cwd=run_dir.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


def test_sigkill_after_a_checkpoint_then_rerun_is_bit_exact(uninterrupted: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    _wait_for(run_dir / "checkpoint" / "state.json", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert rf.read_summary(run_dir) is None  # killed: no summary, a checkpoint
    again = run_cli("herexp.train", _cmd(run_dir)[3:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed from the checkpoint at 400 env steps" in (run_dir / "train.log").read_text()
    a, b = rf.read_eval(uninterrupted), rf.read_eval(run_dir)
    assert a["per_episode"] == b["per_episode"] and a["return_mean"] == b["return_mean"]
    ma, mb = rf.read_metrics(uninterrupted), rf.read_metrics(run_dir)
    assert mb["step"].tolist() == [400, 800, 1200]
    pd.testing.assert_frame_equal(ma[COMPARED], mb[COMPARED])  # losses and ent_coef to the last bit
    assert _weights(uninterrupted) == _weights(run_dir)
    assert not (run_dir / "checkpoint").exists()  # deleted on completion (checkpoint.keep=false)


def _tb_steps(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / rf.TENSORBOARD_DIR))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_ctrl_c_checkpoints_and_the_rerun_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "checkpoint.every=0", "logger.tensorboard=true")
    _wait_for_row(run_dir, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out
    summary = rf.read_summary(run_dir)
    assert summary is not None and summary["status"] == "interrupted"
    stopped = summary["interrupted_at_step"]
    assert 400 <= stopped < 1200 and "rerun the same command to resume from its checkpoint" in out
    again = run_cli("herexp.train", _cmd(run_dir, "checkpoint.every=0", "logger.tensorboard=true")[3:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert rf.status(run_dir) == "completed"
    assert f"resumed from the checkpoint at {stopped} env steps" in (run_dir / "train.log").read_text()
    assert rf.read_metrics(run_dir)["step"].tolist() == [400, 800, 1200]
    for tag in ("eval/success_rate", "train/critic_loss"):
        steps = _tb_steps(run_dir, tag)
        assert steps == sorted(set(steps)), (tag, steps)  # strictly increasing: no duplicates, no going back


def test_changed_config_is_refused_and_resume_false_starts_over(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    _wait_for(run_dir / "checkpoint" / "state.json", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    changed = run_cli("herexp.train", _cmd(run_dir, "algo.gamma=0.9", "seed=3")[3:], cwd=tmp_path)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert "made with a different config (algo.gamma, seed)" in changed.stderr and "resume=false" in changed.stderr
    assert (run_dir / "checkpoint" / "state.json").exists()  # untouched
    fresh = run_cli("herexp.train", _cmd(run_dir, "algo.gamma=0.9", "seed=3", "resume=false")[3:], cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert "resumed" not in (run_dir / "train.log").read_text().split("seed=3")[-1]
    assert rf.read_metrics(run_dir)["step"].tolist() == [400, 800, 1200]


@pytest.mark.slow
def test_submitit_local_timeout_requeues_and_resumes(tmp_path: Path) -> None:
    """The SLURM path on one machine: submitit_local signals SIGUSR2 30 s before its 1-minute
    limit, the job checkpoints, submitit requeues it into the same folder, and it resumes."""
    args = ["--multirun", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=1",
            "+hydra.launcher.max_num_timeout=8", *TINY, "total_steps=40000", "eval.freq=20000", "checkpoint.every=0",
            "study=slurm", "seed=0", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = run_cli("herexp.train", args, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    run_dir = tmp_path / "sweep" / "reach_ls100_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps40000_seed0"
    log = (run_dir / "train.log").read_text()
    assert "checkpoint at" in log and "resumed from the checkpoint at" in log
    assert rf.status(run_dir) == "completed"
    steps = rf.read_metrics(run_dir)["step"].tolist()
    assert steps == [20000, 40000]
