"""W&B wiring (run name, group, tags, offline dir) and the SB3 -> W&B logger output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wandb

from herexp import tracking
from tests.conftest import TINY


class FakeRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, Any], int]] = []
        self.name, self.dir = "fake", "."

    def log(self, data: dict[str, Any], step: int) -> None:
        self.logged.append((data, step))


def test_start_wandb_names_groups_and_tags(compose_run, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_run([*TINY, "logger.wandb.mode=offline", "entropy=fixed_005", "seed=3", "logger.wandb.tags=[x]"])
    seen: dict[str, Any] = {}
    monkeypatch.setattr(wandb, "init", lambda **kw: seen.update(kw) or FakeRun())
    tracking.start_wandb(cfg, tmp_path, {"seed": 3})
    assert seen["mode"] == "offline" and seen["dir"] == str(tmp_path) and seen["config"] == {"seed": 3}
    assert seen["name"] == "reach_her_ent0.05_seed3" and seen["group"] == "default"
    assert seen["tags"][0] == "x" and {"reach", "ent0.05", "seed3"} <= set(seen["tags"])
    assert seen["settings"].console == "off"


def test_disabled_mode_starts_nothing(compose_run, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_run(TINY)
    monkeypatch.setattr(wandb, "init", lambda **kw: (_ for _ in ()).throw(AssertionError("called")))
    assert tracking.start_wandb(cfg, tmp_path, {}) is None
    tracking.finish_wandb(None, failed=True)  # no-op


def test_wandb_output_format_forwards_numbers_at_env_steps() -> None:
    run = FakeRun()
    tracking.WandbOutputFormat(run).write({"train/ent_coef": 0.05, "eval/success_rate": 1, "x": "text",
                                           "flag": True}, {}, step=800)
    assert run.logged == [({"train/ent_coef": 0.05, "eval/success_rate": 1}, 800)]
