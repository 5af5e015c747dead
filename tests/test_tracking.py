"""W&B wiring (name, id, group, job type, tags, config, command, summary, env-step x-axis) and the
SB3 -> W&B logger output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import wandb
from stable_baselines3.common.logger import KVWriter

from herexp import identity, tracking
from tests.conftest import TINY


class FakeRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, Any], int]] = []
        self.name, self.dir, self.id = "fake", ".", "id"
        self.metrics: list[tuple[str, str | None]] = []
        self.summary: dict[str, Any] = {}
        self.exit_code: int | None = None

    def log(self, data: dict[str, Any], step: int) -> None:
        self.logged.append((data, step))

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.metrics.append((name, step_metric))

    def finish(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code


def test_start_wandb_identity(compose_run, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_run([*TINY, "logger.wandb.mode=offline", "entropy=fixed_005", "seed=3", "logger.wandb.tags=[x]"])
    seen: dict[str, Any] = {}
    fake = FakeRun()

    def init(**kw: Any) -> FakeRun:
        seen.update(kw, argv=sys.argv[1:])
        return fake

    monkeypatch.setattr(wandb, "init", init)
    argv = list(sys.argv)
    tracking.start_wandb(cfg, tmp_path, {"seed": 3})
    assert sys.argv == argv  # restored
    assert seen["mode"] == "offline" and seen["dir"] == str(tmp_path)
    assert seen["name"] == "reach_sac_fast_her_ent0.05_seed3" and seen["group"] == "default"
    assert seen["job_type"] == "train" and seen["id"] == identity.wandb_id("default", tmp_path)
    # factor labels only: no seed, no eval./logger. bookkeeping (eval.freq=200 -> no freq200)
    assert seen["tags"] == ["x", "reach", "sac_fast", "her", "ent0.05", "ls100", "batch_size32", "buffer_size5000",
                            "net_arch-16-16", "n_envs2", "total_steps300"]
    overrides = [*TINY, "logger.wandb.mode=offline", "entropy=fixed_005", "seed=3", "logger.wandb.tags=[x]"]
    assert seen["argv"] == overrides and seen["settings"].program == "-m herexp.train"
    c = seen["config"]
    assert c["seed"] == 3 and c["overrides"] == overrides
    assert c["options"] == {"env": "reach", "algo": "sac_fast", "her": "on", "entropy": "fixed_005"}
    assert c["factor/ent_coef"] == 0.05 and c["factor/env"] == "reach" and c["factor/n_envs"] == 2
    assert seen["settings"].console == "off"
    assert fake.metrics == [("env_steps", None), ("*", "env_steps")]


def test_finish_writes_the_outcome_to_the_summary() -> None:
    run = FakeRun()
    tracking.finish_wandb(run, failed=False, summary={
        "status": "completed", "success_rate": 0.9, "return_mean": -12.5, "final_distance_mean": 0.02,
        "total_steps": 300, "train_time_s": 10.0, "steps_per_s": 30.0, "config": {"seed": 0},
        "diagnostics": [{"name": "entropy_collapse"}, {"name": "no_learning"}]})
    assert run.summary == {"status": "completed", "final/success_rate": 0.9, "final/return_mean": -12.5,
                           "final/final_distance_mean": 0.02, "diagnoses": "entropy_collapse, no_learning",
                           "train_time_s": 10.0, "steps_per_s": 30.0, "total_steps": 300}
    assert run.exit_code == 0
    run = FakeRun()
    tracking.finish_wandb(run, failed=True, summary={"status": "failed", "error": "ValueError: x"})
    assert run.summary == {"status": "failed", "error": "ValueError: x"} and run.exit_code == 1
    run = FakeRun()
    tracking.finish_wandb(run, failed=True, summary=None)  # died before any summary
    assert run.summary == {"status": "failed"} and run.exit_code == 1


def test_disabled_mode_starts_nothing(compose_run, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_run(TINY)
    monkeypatch.setattr(wandb, "init", lambda **kw: (_ for _ in ()).throw(AssertionError("called")))
    assert tracking.start_wandb(cfg, tmp_path, {}) is None
    tracking.finish_wandb(None, failed=True)  # no-op


def test_wandb_output_format_forwards_numbers_at_env_steps() -> None:
    run = FakeRun()
    tracking.WandbOutputFormat(run).write({"train/ent_coef": 0.05, "eval/success_rate": 1, "x": "text",
                                           "flag": True}, {}, step=800)
    assert run.logged == [({"train/ent_coef": 0.05, "eval/success_rate": 1, "env_steps": 800}, 800)]


class Recorder(KVWriter):
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], int]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append((key_values, step))


def test_tensorboard_steps_strictly_increase_per_key() -> None:
    inner = Recorder()
    tb = tracking.IncreasingSteps(inner)
    tb.write({"train/actor_loss": 1.0, "rollout/success_rate": 0.0}, {"train/actor_loss": None,
                                                                     "rollout/success_rate": None}, step=200)
    tb.write({"train/actor_loss": 2.0, "eval/success_rate": 0.5}, {"train/actor_loss": None,
                                                                 "eval/success_rate": None}, step=200)
    tb.write({"train/actor_loss": 3.0}, {"train/actor_loss": None}, step=100)  # back in time: dropped
    tb.write({"train/actor_loss": 4.0}, {"train/actor_loss": None}, step=300)
    assert inner.rows == [({"train/actor_loss": 1.0, "rollout/success_rate": 0.0}, 200),
                          ({"eval/success_rate": 0.5}, 200), ({"train/actor_loss": 4.0}, 300)]
