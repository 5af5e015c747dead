"""Faults a cluster user meets, on tiny real runs: a completed folder made with another config, a
damaged checkpoint, a full disk, an explicit sweep folder. Each ends in one line and leaves the
run folder so that the rerun does the right thing."""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from herexp import checkpoint, config, jobs, resume, train
from herexp import runfolder as rf
from tests.conftest import TINY, compose_cfg, run_cli

RUN = [*TINY, "checkpoint.every=100"]  # checkpoints at 100 and 200 env steps, 300 in all
FILES = ["weights.pt", "replay_buffer.pkl", "state.pkl", "state.json"]


def _use(run_dir: Path, *extra: str):  # type: ignore[no-untyped-def]
    """The composed config of the tiny run in ``run_dir``, made Hydra's current job."""
    cfg = compose_cfg([*RUN, *extra, f"hydra.run.dir={run_dir}"], hydra_cfg=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    return cfg


@pytest.fixture(scope="module")
def killed_after_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny run with both checkpoints kept (at 200: ``checkpoint/``, at 100: ``checkpoint.prev/``)
    and no summary: as if killed after its second checkpoint."""
    saved = HydraConfig.instance().cfg
    run_dir = tmp_path_factory.mktemp("faults") / "run"
    summary = train.train(_use(run_dir, "checkpoint.keep=true"))
    assert summary["status"] == "completed"
    for name in (rf.SUMMARY, rf.EVAL, rf.META, rf.MODEL):  # what the killed run never wrote
        (run_dir / name).unlink()
    yield run_dir
    HydraConfig.instance().cfg = saved  # type: ignore[assignment]


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def test_the_two_checkpoints_are_recorded_with_sizes_and_hashes(killed_after_checkpoints: Path) -> None:
    latest = json.loads((killed_after_checkpoints / "checkpoint" / "state.json").read_text())
    previous = json.loads((killed_after_checkpoints / "checkpoint.prev" / "state.json").read_text())
    assert (latest["num_timesteps"], previous["num_timesteps"]) == (200, 100)
    assert sorted(latest["files"]) == ["replay_buffer.pkl", "state.pkl", "weights.pt"]
    for name, rec in latest["files"].items():
        assert (killed_after_checkpoints / "checkpoint" / name).stat().st_size == rec["size"]
        assert re.fullmatch(r"[0-9a-f]{64}", rec["sha256"])
    assert checkpoint.verify(killed_after_checkpoints / "checkpoint") is None


def _warning(run_dir: Path, damaged: str, size: int) -> str:
    if damaged == "state.json":
        problem, lost = "state.json is unreadable", "the env steps after 100 are lost"
    else:
        problem, lost = f"{damaged} has {size // 2} of {size} bytes", "100 env steps lost"
    return (f"damaged checkpoint ({run_dir}/checkpoint/{problem}): resuming from the previous checkpoint at 100 env "
            f"steps ({lost})")


@pytest.mark.parametrize("damaged", FILES)
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
        damaged: str, killed_after_checkpoints: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = _copy(killed_after_checkpoints, tmp_path)
    size = (run_dir / "checkpoint" / damaged).stat().st_size
    _truncate(run_dir / "checkpoint" / damaged)
    (run_dir / "checkpoint.tmp").mkdir()  # a checkpoint write the kill cut short
    (run_dir / "checkpoint.tmp" / "weights.pt").write_bytes(b"partial")
    resolved = config.to_container(_use(run_dir))
    with caplog.at_level(logging.WARNING, logger="herexp.checkpoint"):
        state = resume.plan(run_dir, resolved, resume=True)
    assert state is not None and state["num_timesteps"] == 100
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [_warning(run_dir, damaged, size)]
    # the previous checkpoint is live again; the damaged one is set aside, the partial one gone
    assert checkpoint.read_state(run_dir)["num_timesteps"] == 100 and checkpoint.verify(run_dir / "checkpoint") is None
    assert (run_dir / "checkpoint.damaged" / damaged).stat().st_size == size // 2
    assert not (run_dir / "checkpoint.prev").exists() and not (run_dir / "checkpoint.tmp").exists()


def test_the_run_resumes_from_the_previous_checkpoint_and_completes(
        killed_after_checkpoints: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = _copy(killed_after_checkpoints, tmp_path)
    size = (run_dir / "checkpoint" / "replay_buffer.pkl").stat().st_size
    _truncate(run_dir / "checkpoint" / "replay_buffer.pkl")
    with caplog.at_level(logging.INFO):
        summary = train.train(_use(run_dir))
    messages = [r.getMessage() for r in caplog.records]
    assert summary["status"] == "completed" and rf.status(run_dir) == "completed"
    assert _warning(run_dir, "replay_buffer.pkl", size) in messages
    assert "resumed from the checkpoint at 100 env steps" in messages
    assert rf.read_metrics(run_dir)["step"].tolist() == [200, 300]
    assert not any((run_dir / d).exists() for d in ("checkpoint", "checkpoint.prev", "checkpoint.damaged"))


def test_no_intact_checkpoint_is_one_line_offering_resume_false(killed_after_checkpoints: Path, tmp_path: Path) -> None:
    run_dir = _copy(killed_after_checkpoints, tmp_path)
    _truncate(run_dir / "checkpoint" / "replay_buffer.pkl")
    (run_dir / "checkpoint.prev" / "weights.pt").unlink()
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    with pytest.raises(resume.CheckpointDamaged) as exc:
        train.train(_use(run_dir))
    size = (killed_after_checkpoints / "checkpoint" / "replay_buffer.pkl").stat().st_size
    assert str(exc.value) == (
        f"{run_dir}/checkpoint/replay_buffer.pkl has {size // 2} of {size} bytes; {run_dir}/checkpoint.prev/"
        "weights.pt is missing: no intact checkpoint to resume from. Fix: resume=false to start the run over")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # untouched


def test_a_full_disk_is_one_line_and_the_rerun_resumes(killed_after_checkpoints: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """ENOSPC while writing eval.json: no summary (nothing reads as completed, nothing as failed),
    no temp file, the checkpoint intact; the rerun resumes from it."""
    run_dir = _copy(killed_after_checkpoints, tmp_path)
    real_mkstemp, real_dump, eval_fds = rf.tempfile.mkstemp, rf.json.dump, set()

    def mkstemp(**kwargs):  # type: ignore[no-untyped-def]
        fd, name = real_mkstemp(**kwargs)
        if kwargs.get("prefix", "").startswith(".eval.json."):
            eval_fds.add(fd)
        return fd, name

    def full_disk(obj, f, **kwargs):  # type: ignore[no-untyped-def]
        if f.fileno() in eval_fds:  # the temp file of eval.json: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_dump(obj, f, **kwargs)

    monkeypatch.setattr(rf.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(rf.json, "dump", full_disk)
    with pytest.raises(resume.ResultsNotWritten) as exc:
        train.train(_use(run_dir))
    assert str(exc.value) == (f"no space left on device while writing {run_dir}/eval.json (run folder {run_dir}): "
                              "free space and rerun; the last checkpoint at 200 env steps is intact")
    assert rf.read_summary(run_dir) is None and not (run_dir / rf.EVAL).exists()
    assert list(run_dir.glob(".*.tmp")) == [] and not (run_dir / "checkpoint.tmp").exists()
    monkeypatch.undo()
    with caplog.at_level(logging.INFO):
        assert train.train(_use(run_dir))["status"] == "completed"
    assert "resumed from the checkpoint at 200 env steps" in [r.getMessage() for r in caplog.records]


def test_write_failure_lines() -> None:
    """Any OSError names its cause; a fresh run has no checkpoint to promise."""
    exc = OSError(errno.EACCES, "Permission denied", "/x/run/meta.json")
    assert resume.write_failure(exc, Path("/x/run")) == (
        "permission denied while writing /x/run/meta.json (run folder /x/run): fix that and rerun; no checkpoint "
        "was written yet, so the rerun starts from step 0")


# --- a completed folder is skipped only for the same config ----------------------------------

def _completed(folder: Path, overrides: list[str], **changes: object) -> None:
    """A completed summary in ``folder`` recording the composed config of ``overrides`` with ``changes``."""
    recorded = config.to_container(jobs.composer().job(overrides))
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        recorded[section][key] = value
    rf.write_summary(folder, {"status": "completed", "success_rate": 1.0, "config": recorded})


def test_a_completed_folder_made_with_another_config_stops_the_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder named ``g0.9`` by an older herexp for gamma 0.90000001 (``%g`` labels) is not gamma 0.9's result."""
    monkeypatch.chdir(tmp_path)
    grid = ["--multirun", *TINY, "study=tiny", "seed=0", "algo.gamma=0.9,0.95"]
    folder = "reach_ls100_g0.9_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps300_seed0"
    job = [*TINY, "study=tiny", "seed=0", "algo.gamma=0.9"]
    _completed(tmp_path / "multirun" / "tiny" / folder, job, algo__gamma=0.90000001)
    with pytest.raises(SystemExit) as exc:
        train.cli_main(grid)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err == (f"error: multirun/tiny/{folder} holds a completed run made with a different config "
                   "(algo.gamma=0.90000001 there, 0.9 here). Fix: another study= (a new sweep folder), or remove the "
                   "folder to redo the run (no job was started)\n")
    assert sorted(p.name for p in (tmp_path / "multirun" / "tiny").iterdir()) == [folder]  # no sweep.json


def test_equal_values_are_the_same_run_and_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from herexp import preflight

    monkeypatch.chdir(tmp_path)
    job = [*TINY, "study=tiny", "seed=0", "algo.learning_rate=3e-4"]
    folder = "reach_ls100_batch_size32_buffer_size5000_learning_rate0.0003_net_arch-16-16_n_envs2_total_steps300_seed0"
    _completed(tmp_path / "multirun" / "tiny" / folder, job, algo__learning_rate=0.0003, eval__freq=7)
    assert preflight.check_train_command(["--multirun", *job]) == 1
    _completed(tmp_path / "multirun" / "tiny" / folder, job, algo__learning_rate=0.0003, early_stop__patience=9)
    with pytest.raises(Exception, match=r"early_stop.patience=9 there, 3 here"):
        preflight.check_train_command(["--multirun", *job])
    assert preflight.check_train_command(["--multirun", *job, "skip_completed=false"]) == 1  # redone, not skipped


def test_an_explicit_sweep_dir_may_point_anywhere(tmp_path: Path) -> None:
    from herexp import preflight

    assert preflight.check_train_command(["--multirun", *TINY, "seed=0", f"hydra.sweep.dir={tmp_path}/../elsewhere"]) == 1


# --- a real full disk (a tmpfs, where this machine lets us mount one) ----------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=240k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.slow  # two CLI runs (~20 s); the same path is in make test with ENOSPC injected
def test_a_real_full_disk_is_one_line_and_the_rerun_resumes(small_disk: Path) -> None:
    run_dir = small_disk / "run"
    args = [*RUN, f"hydra.run.dir={run_dir}"]
    proc = run_cli("herexp.train", args, cwd=small_disk.parent)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    line = re.fullmatch(r"error: no space left on device while writing (\S+) \(run folder (\S+)\): free space and "
                        r"rerun; the last checkpoint at (\d+) env steps is intact\n", proc.stderr)
    assert line is not None, proc.stderr
    assert line.group(2) == str(run_dir) and line.group(1).startswith(str(run_dir))
    assert rf.read_summary(run_dir) is None and list(run_dir.glob(".*.tmp")) == []
    assert not (run_dir / "checkpoint.tmp").exists() and not (run_dir / rf.MODEL).exists()
    assert checkpoint.read_state(run_dir)["num_timesteps"] == int(line.group(3))
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = run_cli("herexp.train", args, cwd=small_disk.parent)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from the checkpoint at {line.group(3)} env steps" in (run_dir / "train.log").read_text()
