"""herexp.jobs: a job's config composed as Hydra composes it, the files once per option choice."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

from herexp.config import CONF_DIR
from herexp.jobs import JobComposer, composer


def _hydra_compose(overrides: list[str]) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg)


def test_job_is_what_hydra_composes() -> None:
    job = ["experiment=push_fast", "entropy=fixed_01", "algo.gamma=0.98", "seed=7", "+algo.net_arch=[64,64]"]
    cfg = JobComposer().job(job)
    assert cfg.algo.gamma == 0.98 and cfg.entropy.value == 0.1 and cfg.seed == 7 and cfg.total_steps == 500_000
    assert list(cfg.algo.net_arch) == [64, 64]
    assert "hydra" not in cfg  # only the launcher reads it
    assert OmegaConf.to_container(cfg) == _hydra_compose(job)


def test_files_composed_once_per_option_choice() -> None:
    jc = JobComposer()
    base, grid = jc.expand(["entropy=auto,fixed_01", "seed=0,1,2", "algo.gamma=0.95,0.98"])
    assert len(grid) == 12
    assert grid[0] == ["entropy=auto", "seed=0", "algo.gamma=0.95"]
    assert grid[-1] == ["entropy=fixed_01", "seed=2", "algo.gamma=0.98"]
    configs = [jc.job(job) for job in grid]
    assert [c.algo.gamma for c in configs[:2]] == [0.95, 0.98]
    assert sorted(jc._files) == [(), ("entropy=auto",), ("entropy=fixed_01",)]  # base + one per entropy option
    assert jc.job(list(grid[0])) is configs[0]  # each job composed once: the check and the names share it
    with pytest.raises(ReadonlyConfigError):
        configs[0].seed = 99


def test_sweep_preset_params_expand_first() -> None:
    base, grid = JobComposer().expand(["sweep=algos", "total_steps=1000"])
    assert len(grid) == 30 and base.total_steps == 1000 and base.hydra.sweep.dir == "multirun/algos"
    assert grid[0][-2:] == ["sweep=algos", "total_steps=1000"]


def test_composing_leaves_the_callers_hydra_state() -> None:
    GlobalHydra.instance().clear()
    JobComposer().job(["seed=1"])
    assert not GlobalHydra.instance().is_initialized()
    with initialize_config_dir(config_dir=str(CONF_DIR / "sweep"), version_base="1.3"):
        JobComposer().job(["seed=2"])
        sources = GlobalHydra.instance().config_loader().get_sources()
        assert any(str(s.path).endswith("conf/sweep") for s in sources)
    GlobalHydra.instance().clear()


def test_options_and_the_shared_composer() -> None:
    assert {"auto", "fixed_005", "fixed_01", "fixed_02"} <= set(JobComposer().options("entropy"))
    assert composer() is composer("config", str(CONF_DIR)) is composer(conf_dir=CONF_DIR)  # type: ignore[arg-type]
