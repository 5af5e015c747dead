"""The offline-run reader: a real W&B offline run written here and read back record by record,
including a record larger than one 32 KiB block and a torn tail (a killed writer)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import wandb

from herexp.wandb_records import offline_runs, read_offline_run


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wb")
    os.environ.setdefault("WANDB_SILENT", "true")
    saved = sys.argv[1:]
    sys.argv[1:] = ["seed=1", "her=off"]
    try:
        run = wandb.init(project="p", group="g", job_type="train", name="noher_seed1", id="abc123", dir=str(folder),
                         mode="offline", tags=["noher"], config={"factor/her": "off", "big": "x" * 70_000},
                         settings=wandb.Settings(console="off", x_disable_stats=True, silent=True,
                                                 program="-m herexp.train"))
    finally:
        sys.argv[1:] = saved
    run.define_metric("env_steps")
    run.define_metric("*", step_metric="env_steps")
    for step in (100, 200, 200, 300):  # two rows at one step merge into one
        run.log({"train/x": step / 10, "env_steps": step}, step=step)
    run.summary.update({"final/success_rate": 0.5, "status": "completed"})
    run.finish()
    wandb.teardown()  # finish() returns before wandb-core has flushed the log; teardown waits for it
    return folder


def test_reads_identity_config_history_summary(offline_run: Path) -> None:
    (path,) = offline_runs(offline_run)
    r = read_offline_run(path)
    assert (r.id, r.name, r.project, r.group, r.job_type, r.tags) == ("abc123", "noher_seed1", "p", "g", "train",
                                                                      ["noher"])
    assert r.program == "-m herexp.train" and r.args == ["seed=1", "her=off"]
    assert r.config["factor/her"] == "off" and len(r.config["big"]) == 70_000  # spans 3 blocks
    assert [row["_step"] for row in r.history] == [100, 200, 300]
    assert [row["env_steps"] for row in r.history] == [100, 200, 300]
    assert r.step_metrics == {"*": "env_steps"}
    assert r.summary["final/success_rate"] == 0.5 and r.summary["status"] == "completed" and r.exit_code == 0


def test_torn_tail_keeps_what_was_written(offline_run: Path, tmp_path: Path) -> None:
    (path,) = offline_runs(offline_run)
    copy = tmp_path / "torn"
    shutil.copytree(path, copy)
    (log,) = copy.glob("run-*.wandb")
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 40])
    r = read_offline_run(copy)
    assert r.id == "abc123" and r.exit_code is None and [row["_step"] for row in r.history][:2] == [100, 200]


def test_not_a_wandb_file(tmp_path: Path) -> None:
    (tmp_path / "run-x.wandb").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        read_offline_run(tmp_path)
