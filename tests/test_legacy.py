"""Configs saved before options owned their code (``entropy.mode``, ``algo.fast``) read as the same
run composes today: docs/push_search's summaries, one legacy block per old entropy mode."""

from __future__ import annotations

import json
from typing import Any

import pytest
from omegaconf import OmegaConf

from herexp import algos, entropy, legacy
from herexp.entropy import Adaptive, Auto, AutoFloor, Fixed, Schedule
from tests.conftest import ROOT, compose_cfg

PUSH_SEARCH = ROOT / "docs" / "push_search"
# The flat entropy block every old run saved, whatever its mode.
OLD_ENTROPY = {"mode": "auto", "value": None, "target_entropy": "auto", "min": 0.01, "max": 0.3, "check_freq": 1000,
               "warmup_frac": 0.1, "target": 0.2, "tolerance": 0.05, "rate": 0.1, "window": 200, "key": "is_success"}
OLD_ALGO = {"name": "sac", "batch_size": 256, "buffer_size": 1000000, "learning_starts": 1000, "learning_rate": 3e-4,
            "gamma": 0.95, "tau": 0.005, "train_freq": 1, "gradient_steps": 1, "net_arch": [256, 256],
            "normalize": False, "fast": False, "overlap_envs": False, "parallel_critics": False}


@pytest.mark.parametrize("run", ["B_s0", "B_s1", "B_s2", "C_s0"])
def test_push_search_configs_upgrade_to_what_their_command_composes_today(run: str) -> None:
    summary = json.loads((PUSH_SEARCH / run / "summary.json").read_text())
    assert "mode" in summary["config"]["entropy"] and "fast" in summary["config"]["algo"]  # saved the old way
    new = legacy.upgrade(summary["config"])
    today = compose_cfg([o for o in summary["overrides"] if not o.startswith("early_stop")])
    for block in ("algo", "entropy", "her", "env"):
        assert new[block] == OmegaConf.to_container(today[block]), block


@pytest.mark.parametrize("old,expected", [
    ({"mode": "fixed", "value": 0.05}, Fixed(value=0.05)),
    ({"mode": "auto", "value": 0.07}, Auto(target_entropy="auto", init=0.07)),  # value was the initial one
    ({"mode": "auto_floor", "min": 0.02, "target_entropy": -2.0}, AutoFloor(target_entropy=-2.0, init=None, min=0.02)),
    ({"mode": "schedule", "value": 0.2, "max": 0.4}, Schedule(max=0.4, min=0.01, warmup_frac=0.1)),  # value unused
    # entropy.mode=adaptive saved warmup_frac 0.1 (entropy=adaptive: 0.05): the saved value is kept
    ({"mode": "adaptive", "value": 0.1}, Adaptive(init=0.1, warmup_frac=0.1)),
])
def test_each_old_entropy_mode_becomes_its_option(old: dict[str, Any], expected: entropy.EntropyOption) -> None:
    new = legacy.upgrade({"entropy": {**OLD_ENTROPY, **old}, "algo": OLD_ALGO})
    assert entropy.option(new["entropy"]) == expected


def test_old_algo_block_becomes_stock_or_fast_sac() -> None:
    stock = legacy.upgrade({"algo": OLD_ALGO, "entropy": OLD_ENTROPY})["algo"]
    assert algos.option(stock) == algos.Sac() and "overlap_envs" not in stock
    fast = legacy.upgrade({"algo": {**OLD_ALGO, "fast": True, "overlap_envs": True}, "entropy": OLD_ENTROPY})["algo"]
    assert algos.option(fast) == algos.SacFast(overlap_envs=True)


def test_todays_configs_are_left_alone() -> None:
    cfg = OmegaConf.to_container(compose_cfg(["algo=td3"]), resolve=True)
    assert not legacy.is_legacy(cfg) and legacy.upgrade(cfg) == cfg


def test_a_checkpoint_saved_before_the_exploration_keys_resumes_as_the_same_run() -> None:
    """A config saved without algo.random_action_prob / algo.clip_obs is today's run with both off."""
    from herexp import config, resume

    today = config.to_container(compose_cfg(["experiment=push_fast"]))
    saved = json.loads(json.dumps(today))
    del saved["algo"]["random_action_prob"], saved["algo"]["clip_obs"]
    assert resume.config_differences(legacy.upgrade(saved), today) == []
    assert resume.config_differences(legacy.upgrade(saved), {**today, "algo": {**today["algo"],
                                                                                    "random_action_prob": 0.3}}) == \
        ["algo.random_action_prob"]
