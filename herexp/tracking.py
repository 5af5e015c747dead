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
import shutil
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


def start_wandb(cfg: DictConfig, run_dir: Path, config: dict[str, Any], run_id: str | None = None) -> Any | None:
    """Start the run's W&B run inside ``<run_dir>/wandb`` (None when mode is disabled).

    ``online`` without an API key, or without a reachable server within
    ``logger.wandb.init_timeout`` seconds, falls back to offline with one warning (the run
    never fails or blocks for W&B); ``logger.wandb.fallback=false`` fails fast instead.
    """
    w = cfg.logger.wandb
    if w.mode == "disabled":
        return None
    (run_dir / runfolder.WANDB_DIR).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    if w.mode != "online":
        return _init_wandb(cfg, run_dir, config, w.mode, run_id)
    problem = None if has_api_key() else "no API key (wandb login, or set WANDB_API_KEY)"
    if problem is None:
        wandb_dir = run_dir / runfolder.WANDB_DIR
        before = set(wandb_dir.glob("run-*"))
        try:
            return _init_wandb(cfg, run_dir, config, "online", run_id)
        except Exception as exc:  # noqa: BLE001 - no network, refused key, timeout: all mean "not now"
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
            for stale in set(wandb_dir.glob("run-*")) - before:  # the attempt's half-made online run
                shutil.rmtree(stale, ignore_errors=True)
    if not w.fallback:
        raise WandbUnavailable(f"logger.wandb.mode=online failed: {problem}. Fix: logger.wandb.mode=offline "
                               "(sync later), or logger.wandb.fallback=true")
    log.warning("W&B online unavailable (%s): logging offline instead; sync later with: wandb sync %s",
                problem, run_dir / runfolder.WANDB_DIR / "offline-run-*")
    return _init_wandb(cfg, run_dir, config, "offline", run_id)


class WandbUnavailable(RuntimeError):
    """``logger.wandb.mode=online`` could not start and ``logger.wandb.fallback=false``."""


def has_api_key() -> bool:
    """An API key in ``WANDB_API_KEY`` or in ~/.netrc for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _init_wandb(cfg: DictConfig, run_dir: Path, config: dict[str, Any], mode: str, run_id: str | None) -> Any:
    import wandb

    w = cfg.logger.wandb
    factors = job_factors()
    run = wandb.init(
        project=w.project, entity=w.entity, group=w.group or cfg.study, job_type=w.job_type or cfg.study,
        name=cfg.name, tags=[*w.tags, *factors], config=config, dir=str(run_dir), mode=mode,
        reinit="finish_previous", id=run_id, resume="allow" if run_id else None,
        # No console capture or system-stats sampler: they cost CPU and threads, and loky
        # workers would carry them over to the next job.
        settings=wandb.Settings(console="off", x_disable_stats=True, silent=True,
                                init_timeout=float(w.init_timeout)),
    )
    log.info("W&B %s run %s in %s", mode, run.name, run.dir)
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


class OncePerStepLogger(Logger):
    """SB3's Logger writing each key at most once per step: SB3 dumps at episode ends and herexp
    after each evaluation, and both can fall on one step (e.g. the last); a second value of a key
    at a step it was already written for is dropped, so curves never repeat or go back."""

    def __init__(self, folder: str | None, output_formats: list[KVWriter]) -> None:
        super().__init__(folder, output_formats)
        self._step, self._written = -1, set()

    def dump(self, step: int = 0) -> None:
        if step != self._step:
            self._step, self._written = step, set()
        for key in self._written & set(self.name_to_value):
            del self.name_to_value[key]
            self.name_to_excluded.pop(key, None)
        self._written |= set(self.name_to_value)
        super().dump(step)


def make_sb3_logger(cfg: DictConfig, run_dir: Path, wandb_run: Any | None) -> Logger:
    """SB3 logger writing TensorBoard (``<run>/tb``) and W&B; no stdout table (we log progress)."""
    formats: list[KVWriter] = []
    if cfg.logger.tensorboard:
        tb = run_dir / runfolder.TENSORBOARD_DIR
        tb.mkdir(parents=True, exist_ok=True)
        formats.append(TensorBoardOutputFormat(str(tb)))
    if wandb_run is not None:
        formats.append(WandbOutputFormat(wandb_run))
    return OncePerStepLogger(folder=str(run_dir), output_formats=formats)
