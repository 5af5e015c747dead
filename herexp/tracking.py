"""Experiment tracking: W&B (offline by default) and TensorBoard through SB3's logger.

Every scalar SB3 or herexp records (``train/*``, ``rollout/*``, ``time/*``, ``eval/*``) goes
through one SB3 ``Logger`` whose outputs are TensorBoard event files in ``<run>/tb`` and,
when W&B is on, :class:`WandbOutputFormat`. The W&B run is always finished by the caller's
``finally`` (:func:`finish_wandb`), also when training raises — Hydra's joblib launcher reuses
worker processes, so a run left open would swallow the next job's logs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat

from herexp import runfolder

log = logging.getLogger(__name__)

# Metric names (README "Metrics" lists each with its meaning; a test checks every key a run
# logs is listed there). SB3 records train/*, rollout/* and time/* itself; these are herexp's.
EVAL_SUCCESS = "eval/success_rate"
EVAL_RETURN = "eval/return_mean"
EVAL_DISTANCE = "eval/final_distance_mean"
TRAIN_ENT_COEF_TARGET = "train/ent_coef_target"  # written by entropy.EntropyCallback


class WandbOutputFormat(KVWriter):
    """SB3 logger output that forwards every dump to ``wandb.log`` at ``step=num_timesteps``."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        data = {k: v for k, v in key_values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if data:
            self.run.log(data, step=int(step))

    def close(self) -> None:  # the run is finished by finish_wandb
        pass


def start_wandb(cfg: DictConfig, run_dir: Path, config: dict[str, Any]) -> Any | None:
    """Start the run's W&B run inside ``<run_dir>/wandb`` (None when mode is disabled)."""
    w = cfg.logger.wandb
    if w.mode == "disabled":
        return None
    import wandb

    (run_dir / runfolder.WANDB_DIR).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    factors = job_factors()
    run = wandb.init(
        project=w.project, entity=w.entity, group=w.group or cfg.study, job_type=w.job_type or cfg.study,
        name=cfg.name, tags=[*w.tags, *factors], config=config, dir=str(run_dir), mode=w.mode,
        reinit="finish_previous",
        # No console capture or system-stats sampler: they cost CPU and threads, and loky
        # workers would carry them over to the next job.
        settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
    )
    log.info("W&B %s run %s in %s", w.mode, run.name, run.dir)
    return run


def job_factors() -> list[str]:
    """The run's varied factors as short tags (``ent0.05``, ``nsg4``, ``seed0``), from its overrides."""
    from hydra.core.hydra_config import HydraConfig

    from herexp.sweep import job_parts

    if not HydraConfig.initialized():
        return []
    return [t[:64] for t in job_parts(list(HydraConfig.get().overrides.task))]


def finish_wandb(run: Any | None, failed: bool) -> None:
    """Finish the W&B run (exit code 1 when the run failed). Never raises."""
    if run is None:
        return
    try:
        run.finish(exit_code=1 if failed else 0)
    except Exception:  # noqa: BLE001 - teardown must not mask the run's own error
        log.exception("could not finish the W&B run")


def make_sb3_logger(cfg: DictConfig, run_dir: Path, wandb_run: Any | None) -> Logger:
    """SB3 logger writing TensorBoard (``<run>/tb``) and W&B; no stdout table (we log progress)."""
    formats: list[KVWriter] = []
    if cfg.logger.tensorboard:
        tb = run_dir / runfolder.TENSORBOARD_DIR
        tb.mkdir(parents=True, exist_ok=True)
        formats.append(TensorBoardOutputFormat(str(tb)))
    if wandb_run is not None:
        formats.append(WandbOutputFormat(wandb_run))
    return Logger(folder=str(run_dir), output_formats=formats)
