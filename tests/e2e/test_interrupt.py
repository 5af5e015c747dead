"""Ctrl-C and W&B without a key or network, through the real command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from herexp import runfolder as rf
from tests.conftest import TINY, run_cli

RUN = [*TINY, "total_steps=100000", "eval.freq=0"]


def _start(run_dir: Path, *overrides: str) -> subprocess.Popen[str]:
    """Like a terminal: own process group, default SIGINT handling (a shell's ``&`` ignores it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "herexp.train", *RUN, *overrides, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_training(run_dir: Path, timeout: float = 120) -> None:
    log = run_dir / "train.log"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and "steps/s" in log.read_text():  # a progress line: training is under way
            return
        time.sleep(0.2)
    raise AssertionError(f"training did not start: {log}")


def test_ctrl_c_says_one_line_and_records_interrupted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "logger.progress_every=50", "algo.overlap_envs=true")
    _wait_for_training(run_dir)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    lines = [line for line in out.splitlines() if "interrupted at" in line]
    assert len(lines) == 1 and "rerun the same command" in lines[0]
    summary = rf.read_summary(run_dir)
    assert summary is not None and summary["status"] == "interrupted" and summary["interrupted_at_step"] > 0
    assert "traceback" not in summary


def test_sigterm_is_an_interruption(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "logger.progress_every=50")
    _wait_for_training(run_dir)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out
    assert rf.status(run_dir) == "interrupted"


def _no_key_env(tmp_path: Path) -> dict[str, str]:
    return {"WANDB_API_KEY": "", "HOME": str(tmp_path), "NETRC": str(tmp_path / "no-netrc")}


def test_wandb_online_without_key_falls_back_to_offline(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli("herexp.train", [*TINY, "logger.wandb.mode=online", f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                   env=_no_key_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "W&B online unavailable" in line]
    assert len(warnings) == 1 and "no API key" in warnings[0] and "wandb sync" in warnings[0]
    assert len(list((run_dir / rf.WANDB_DIR).glob("offline-run-*/run-*.wandb"))) == 1
    assert rf.status(run_dir) == "completed"


def test_wandb_online_unreachable_server_is_bounded_by_init_timeout(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**_no_key_env(tmp_path), "WANDB_API_KEY": "local-0123456789abcdef0123456789abcdef01234567",
           "WANDB_BASE_URL": "http://127.0.0.1:9"}  # nothing listens on the discard port
    t0 = time.time()
    proc = run_cli("herexp.train", [*TINY, "logger.wandb.mode=online", "logger.wandb.init_timeout=3",
                                    f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.time() - t0 < 60
    assert "W&B online unavailable" in proc.stdout + proc.stderr
    assert not list((run_dir / rf.WANDB_DIR).glob("run-*"))  # the failed online attempt is cleared
    assert len(list((run_dir / rf.WANDB_DIR).glob("offline-run-*"))) == 1


def test_wandb_fallback_false_without_key_fails_before_training(tmp_path: Path) -> None:
    proc = run_cli("herexp.train", [*TINY, "logger.wandb.mode=online", "logger.wandb.fallback=false"],
                   cwd=tmp_path, env=_no_key_env(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "logger.wandb.fallback=false needs a W&B API key" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ctrl_c_stops_a_sweep(tmp_path: Path, n_jobs: int) -> None:
    """Ctrl-C in a sweep checkpoints the running jobs and starts no other (as a sweep without
    herexp stops), with the jobs in the launching process (n_jobs=1) or in joblib workers; the
    rerun resumes the interrupted jobs."""
    grid = [*RUN, "logger.progress_every=50", "seed=0,1,2", "study=stopped", f"hydra.launcher.n_jobs={n_jobs}"]
    sweep_dir = tmp_path / "multirun" / "stopped"
    for attempt in ("first", "rerun"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "herexp.train", "--multirun", *grid], cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            running = _wait_for_jobs(sweep_dir, n_jobs, "resumed from" if attempt == "rerun" else "steps/s")
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=120)
        finally:  # a failed wait must not leave a 100 000-step sweep running
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 130, out[-3000:]
        assert "Traceback" not in out
        not_started = 3 - n_jobs
        assert (f"sweep stopped stopped by SIGINT: 0 completed, 0 skipped, 0 failed, {n_jobs} interrupted, "
                f"{not_started} not started") in out
        for run in running:
            summary = rf.read_summary(run)
            assert summary is not None and summary["status"] == "interrupted" and summary["stop_signal"] == "SIGINT"
        statuses = sorted(j["status"] for j in rf.read_json(sweep_dir / "sweep.json")["jobs"].values())
        assert statuses == sorted(["interrupted"] * n_jobs + ["pending"] * not_started)
    assert all(rf.read_summary(run)["interrupted_at_step"] > 0 for run in running)


def _wait_for_jobs(sweep_dir: Path, n: int, line: str, timeout: float = 120) -> list[Path]:
    """The first ``n`` job folders once each log has ``line`` (training under way, or resumed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = sorted(sweep_dir.glob("*/train.log"))[:n]
        if len(logs) == n and all(line in log.read_text() for log in logs):
            return [log.parent for log in logs]
        time.sleep(0.2)
    raise AssertionError(f"{n} jobs never logged {line!r} in {sweep_dir}")
