"""Shared fixtures: compose the real config (herexp/conf/) with hydra.compose, tiny-run overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from herexp.config import register_configs

# One torch thread, as every herexp run uses: on 2 loaded cores, 2 threads stall randomly.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "herexp" / "conf"

# A few hundred steps, 2 envs, small nets: seconds per run, but past learning_starts so
# gradient updates really happen (tests assert that).
TINY = [
    "env=reach", "total_steps=300", "n_envs=2", "algo.learning_starts=100", "algo.batch_size=32",
    "algo.buffer_size=5000", "algo.net_arch=[16,16]", "eval.freq=200", "eval.periodic_episodes=2",
    "eval.n_episodes=3", "logger.wandb.mode=disabled",
]


def compose_cfg(overrides: Sequence[str] = (), hydra_cfg: bool = False) -> DictConfig:
    """Compose herexp/conf/config.yaml with overrides, as ``python -m herexp.train`` would."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra_cfg)


@pytest.fixture
def compose_run(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose a config whose Hydra run dir is ``tmp_path/run`` and make it current, so
    ``herexp.train.train(cfg)`` can run in-process."""

    def _make(overrides: Sequence[str] = ()) -> DictConfig:
        cfg = compose_cfg([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], hydra_cfg=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        HydraConfig.instance().set_config(cfg)
        (tmp_path / "run").mkdir(exist_ok=True)
        return cfg

    return _make


def run_cli(module: str, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` like a user would; return the completed process."""
    # This checkout's herexp first: an editable install of another checkout must not be tested instead.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
