"""Run identity: names, job folders, factors, tags and W&B ids from the composed config.

Expected values are written literally: an override list -> the folder the sweep uses -> the
W&B name (the same string)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from herexp import identity
from tests.conftest import compose_cfg

CH04_CELL = ["entropy=fixed_005", "her.n_sampled_goal=4", "algo.learning_starts=1000", "algo.gamma=0.95", "seed=0",
             "sweep=ch04_push"]


@pytest.fixture
def hydra_job() -> Iterator[None]:
    """Restore Hydra's global job config after a test that sets it."""
    saved = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = saved  # type: ignore[assignment]


@pytest.mark.parametrize("overrides,folder", [
    (CH04_CELL, "ent0.05_nsg4_ls1000_g0.95_seed0"),
    # the composed value names the folder, once: entropy=fixed_01 overridden to 0.05 is ent0.05
    (["sweep=ch04_push", "entropy=fixed_01", "entropy.value=0.05", "her.n_sampled_goal=8", "seed=42"],
     "ent0.05_nsg8_seed42"),
    (["her=off", "seed=1"], "noher_seed1"),
    (["her.enabled=false", "seed=1"], "noher_seed1"),
    # bookkeeping (evaluation schedule, logging, device, threads, study) never names a folder
    (["seed=3", "her=off", "env=reach", "logger.wandb.mode=offline", "eval.freq=1000", "eval.n_episodes=5",
      "device=cpu", "torch_threads=2", "study=x", "skip_completed=false", "diagnostics.min_rows=3",
      "hydra.launcher.n_jobs=2"], "reach_noher_seed3"),
    (["entropy.init=0.07", "algo.net_arch=[64,64]"], "entauto0.07_net_arch-64-64"),
    (["entropy=adaptive", "entropy.init=0.1", "seed=0"], "entadaptive0.1_seed0"),
    (["entropy=auto_floor", "entropy.min=0.02"], "entauto_floor_min0.02"),
    (["entropy=schedule", "entropy.max=0.5"], "entschedule_max0.5"),
    (["algo=sac_fast", "algo.overlap_envs=True", "algo.parallel_critics=false", "seed=1"],
     "sac_fast_overlap_noparcritics_seed1"),
    (["algo=sac", "seed=2"], "sac_seed2"),
    # algorithms without an entropy coefficient carry no entropy label
    (["algo=td3", "seed=1"], "td3_seed1"),
    (["algo=ddpg", "env=reach", "seed=0"], "reach_ddpg_seed0"),
    (["algo=td3", "entropy=none", "algo.action_noise_std=0.1"], "td3_action_noise_std0.1"),
    (["algo=tqc", "entropy=fixed_005", "algo.n_quantiles=35"], "tqc_ent0.05_n_quantiles35"),
    (["env=slide", "algo.tau=0.01", "total_steps=5000"], "slide_tau0.01_total_steps5000"),
    ([], "push_sac_fast_her_entauto_seed0"),  # nothing changed: the run name
])
def test_job_folder_from_composed_values(overrides: list[str], folder: str) -> None:
    assert identity.job_dir_name(compose_cfg(overrides), overrides) == folder


def test_single_run_names() -> None:
    assert compose_cfg(["entropy=fixed_005"]).name == "push_sac_fast_her_ent0.05_seed0"
    assert compose_cfg(["env=reach", "algo=sac", "her=off", "seed=4"]).name == "reach_sac_noher_entauto_seed4"
    assert compose_cfg(["entropy=fixed_01", "entropy.value=0.05"]).name == "push_sac_fast_her_ent0.05_seed0"
    assert compose_cfg(["algo=sac_fast"]).name == "push_sac_fast_her_entauto_seed0"
    assert compose_cfg(["algo=td3"]).name == "push_td3_her_seed0"
    assert compose_cfg(["algo=ddpg", "her=off", "seed=2"]).name == "push_ddpg_noher_seed2"
    assert compose_cfg(["algo=tqc", "entropy=schedule"]).name == "push_tqc_her_entschedule_seed0"


def test_multirun_job_name_is_its_folder(hydra_job: None) -> None:
    """The ``hydra.sweep.subdir`` and ``name`` resolvers of herexp/conf/config.yaml, as a sweep job sees them."""
    overrides = ["sweep=ch04_push", "entropy=fixed_01", "entropy.value=0.05", "seed=0"]
    cfg = compose_cfg(overrides, hydra_cfg=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.sweep.subdir == "ent0.05_seed0" and cfg.name == "ent0.05_seed0"
    assert cfg.hydra.sweep.dir == "multirun/ch04_push"


def test_factors_tags_and_wandb_config() -> None:
    cfg = compose_cfg(CH04_CELL, hydra_cfg=True)
    assert identity.tags(cfg, CH04_CELL) == ["push", "sac_fast", "her", "ent0.05", "nsg4", "ls1000", "g0.95"]
    assert identity.factors(cfg, CH04_CELL) == {
        "env": "push", "algo": "sac_fast", "her": "on", "entropy_mode": "fixed", "ent_coef": 0.05,
        "n_sampled_goal": 4, "learning_starts": 1000, "gamma": 0.95}
    wb = identity.wandb_config({"seed": 0, "algo": {"gamma": 0.95}}, cfg, CH04_CELL, cfg.hydra.runtime.choices)
    assert wb["options"] == {"env": "push", "algo": "sac_fast", "her": "on", "entropy": "fixed_005",
                             "sweep": "ch04_push"}
    assert wb["overrides"] == CH04_CELL and wb["algo"] == {"gamma": 0.95} and wb["seed"] == 0
    assert wb["factor/ent_coef"] == 0.05 and wb["factor/gamma"] == 0.95 and wb["factor/her"] == "on"
    td3 = ["algo=td3", "seed=1"]
    assert identity.tags(compose_cfg(td3), td3) == ["push", "td3", "her"]
    assert identity.factors(compose_cfg(td3), td3) == {"env": "push", "algo": "td3", "her": "on",
                                                        "entropy_mode": "none", "ent_coef": None}
    auto = ["entropy.init=0.5"]
    assert identity.factors(compose_cfg(auto), auto) == {"env": "push", "algo": "sac_fast", "her": "on",
                                                          "entropy_mode": "auto", "ent_coef": None, "ent_init": 0.5}
    noisy = ["eval.freq=1000", "eval.n_episodes=5", "logger.log_interval=2", "seed=1"]
    assert identity.tags(compose_cfg(noisy), noisy) == ["push", "sac_fast", "her", "entauto"]


def test_bookkeeping_keys() -> None:
    for key in ("eval.freq", "eval.n_episodes", "logger.wandb.mode", "device", "torch_threads", "study", "name",
                "skip_completed", "diagnostics.min_rows", "hydra.launcher.n_jobs", "hydra/launcher", "sweep",
                "experiment", "logger"):
        assert identity.is_bookkeeping(key), key
    for key in ("seed", "total_steps", "n_envs", "algo.gamma", "entropy", "her.n_sampled_goal", "env"):
        assert not identity.is_bookkeeping(key), key


def test_wandb_id_is_one_per_job_folder(tmp_path: Path) -> None:
    a = identity.wandb_id("ch04_push", tmp_path / "ent0.05_seed0")
    assert a == identity.wandb_id("ch04_push", tmp_path / "x" / ".." / "ent0.05_seed0")  # every attempt
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)
    assert a != identity.wandb_id("ch04_push", tmp_path / "ent0.05_seed1")
    assert a != identity.wandb_id("other", tmp_path / "ent0.05_seed0")
