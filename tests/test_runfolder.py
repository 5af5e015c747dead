"""The run-folder contract: atomic writes, status, metrics rows, readers."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from herexp import runfolder as rf


def test_atomic_write_leaves_no_temp_and_cleans_nan(tmp_path: Path) -> None:
    rf.write_json_atomic(tmp_path / "x.json", {"a": np.float32(0.5), "b": math.nan, "c": [np.int64(3)]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 0.5, "b": None, "c": [3]}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    rf.write_json_atomic(tmp_path / "x.json", {"ok": 1})
    with pytest.raises(TypeError):
        rf.write_json_atomic(tmp_path / "x.json", {"bad": object()})
    assert json.loads((tmp_path / "x.json").read_text()) == {"ok": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_summary_status(tmp_path: Path) -> None:
    assert rf.status(tmp_path) is None and not rf.is_completed(tmp_path)
    rf.write_summary(tmp_path, {"status": rf.STATUS_FAILED, "error": "boom"})
    assert rf.status(tmp_path) == "failed"
    rf.write_summary(tmp_path, {"status": rf.STATUS_COMPLETED})
    assert rf.is_completed(tmp_path)
    with pytest.raises(ValueError):
        rf.write_summary(tmp_path, {"status": "running"})
    (tmp_path / rf.SUMMARY).write_text("{corrupt")
    assert rf.read_summary(tmp_path) is None


def test_metrics_writer_appends_and_reads_back(tmp_path: Path) -> None:
    with rf.MetricsWriter(tmp_path) as w:
        w.write({"step": 100, "eval_success_rate": 0.5})
    with rf.MetricsWriter(tmp_path) as w:  # reopening appends without a second header
        w.write({"step": 200, "eval_success_rate": 1.0, "ent_coef": 0.05})
    df = rf.read_metrics(tmp_path)
    assert list(df.columns) == list(rf.METRICS_COLUMNS)
    assert df["step"].tolist() == [100, 200] and df["ent_coef"].isna().tolist() == [True, False]
    with pytest.raises(ValueError):
        rf.MetricsWriter(tmp_path).write({"not_a_column": 1})


def test_find_run_dirs_ignores_wandb(tmp_path: Path) -> None:
    for name in ("a", "b/c"):
        rf.write_summary(tmp_path / name, {"status": "completed"})
    (tmp_path / "a" / "wandb" / "x").mkdir(parents=True)
    (tmp_path / "a" / "wandb" / "x" / rf.SUMMARY).write_text("{}")
    (tmp_path / "d" / ".hydra").mkdir(parents=True)
    (tmp_path / "d" / rf.HYDRA_CONFIG).write_text("seed: 0\n")
    assert [p.relative_to(tmp_path).as_posix() for p in rf.find_run_dirs(tmp_path)] == ["a", "b/c", "d"]
    assert rf.read_config(tmp_path / "d") == {"seed": 0}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_permissions_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        assert rf.current_umask() == umask
        rf.write_json_atomic(tmp_path / "x.json", {"a": 1})  # new file
        rf.write_json_atomic(tmp_path / "x.json", {"a": 2})  # replaced file
        (tmp_path / "plain.txt").write_text("x")  # what open() gives, for comparison
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == mode
    assert rf.current_umask() == old


def test_summary_and_metrics_are_readable_by_others_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        rf.write_summary(tmp_path, {"status": rf.STATUS_COMPLETED})
        with rf.MetricsWriter(tmp_path, fresh=True) as w:
            w.write({"step": 1})
    finally:
        os.umask(old)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()} == {
        rf.SUMMARY: "0o644", rf.METRICS: "0o644"}


def test_umask_without_proc_is_read_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc(*_: object, **__: object) -> None:
        raise OSError("no /proc")

    monkeypatch.setattr(rf, "open", no_proc, raising=False)  # the module's open() only
    old = os.umask(0o027)
    try:
        assert rf.current_umask() == 0o027 and rf.file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # still set afterwards
    finally:
        os.umask(old)
def test_clear_attempt_removes_a_superseded_attempt(tmp_path: Path) -> None:
    """A redone run starts over: the earlier attempt's W&B run, TensorBoard events and summary go;
    config, log and everything else stay."""
    for sub in ("wandb/offline-run-20260101_000000-abc", "tb", ".hydra"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "tb" / "events.out.tfevents.1.host").write_bytes(b"x")
    rf.write_summary(tmp_path, {"status": rf.STATUS_FAILED})
    (tmp_path / "train.log").write_text("log")
    removed = rf.clear_attempt(tmp_path)
    assert sorted(p.name for p in removed) == ["summary.json", "tb", "wandb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "train.log"]
    assert rf.clear_attempt(tmp_path) == []
