"""Experiment tracking: W&B (offline by default) and TensorBoard through SB3's logger.

Every scalar SB3 or herexp records (``train/*``, ``rollout/*``, ``time/*``, ``eval/*``) goes
through one SB3 ``Logger`` whose outputs are TensorBoard event files in ``<run>/tb`` and,
when W&B is on, :class:`WandbOutputFormat`. The W&B run is always finished by the caller's
``finally`` (:func:`finish_wandb`, which writes the run's outcome to its summary), also when
training raises — Hydra's joblib launcher reuses worker processes, so a run left open would
swallow the next job's logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat

from herexp import identity, runfolder

log = logging.getLogger(__name__)

# Metric names (README "Metrics" lists each with its meaning; a test checks every key a run
# logs is listed there). SB3 records train/*, rollout/* and time/* itself; these are herexp's.
EVAL_SUCCESS = "eval/success_rate"
EVAL_RETURN = "eval/return_mean"
EVAL_DISTANCE = "eval/final_distance_mean"
EVAL_DISPLACEMENT = "eval/object_displacement_mean"
TRAIN_ENT_COEF_TARGET = "train/ent_coef_target"  # written by herexp.entropy.control.EntropyCallback


ENV_STEPS = "env_steps"  # the x-axis of every W&B metric (logged with each row)
FINAL_KEYS = ("success_rate", "return_mean", "final_distance_mean")  # summary.json -> W&B final/<key>


class WandbOutputFormat(KVWriter):
    """SB3 logger output that forwards every dump to ``wandb.log`` at ``step=num_timesteps``,
    with ``env_steps`` in each row."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        data = {k: v for k, v in key_values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if data:
            self.run.log({**data, ENV_STEPS: int(step)}, step=int(step))

    def close(self) -> None:  # the run is finished by finish_wandb
        pass


class IncreasingSteps(KVWriter):
    """Passes each key to ``inner`` only at a step after the last one written for it, so every
    TensorBoard curve has strictly increasing env steps. (SB3 dumps at the end of an episode and
    the final evaluation dumps again at the same step: the first value of a step is kept.)"""

    def __init__(self, inner: KVWriter) -> None:
        self.inner = inner
        self.last: dict[str, int] = {}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        fresh = [k for k in key_values if self.last.get(k, -1) < step]
        if fresh:
            self.last.update(dict.fromkeys(fresh, step))
            self.inner.write({k: key_values[k] for k in fresh}, {k: key_excluded[k] for k in fresh}, step)

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def _job_command(overrides: list[str]) -> Iterator[None]:
    """W&B records ``sys.argv[1:]`` as the run's command: make it the job's own overrides
    (a joblib/submitit worker's argv is the worker's, not the job's) while the run starts."""
    saved = sys.argv[1:]
    sys.argv[1:] = overrides
    try:
        yield
    finally:
        sys.argv[1:] = saved


def start_wandb(cfg: DictConfig, run_dir: Path, config: dict[str, Any], resuming: bool = False) -> Any | None:
    """Start the run's W&B run inside ``<run_dir>/wandb`` (None when mode is disabled).

    Name, id, group, tags and config come from :mod:`herexp.identity`: the name is unique in
    its group (the job folder in a sweep), the id is the same for every attempt of a job, the
    tags are factor labels, the config adds the chosen options, the job's overrides and
    ``factor/<name>`` keys. Every metric is plotted against ``env_steps``. ``resuming``: the run
    continues from a checkpoint, and W&B continues the same run.

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
        return _init_wandb(cfg, run_dir, config, w.mode, resuming)
    problem = None if has_api_key() else "no API key (wandb login, or set WANDB_API_KEY)"
    if problem is None:
        wandb_dir = run_dir / runfolder.WANDB_DIR
        before = set(wandb_dir.glob("run-*"))
        try:
            return _init_wandb(cfg, run_dir, config, "online", resuming)
        except Exception as exc:  # noqa: BLE001 - no network, refused key, timeout: all mean "not now"
            problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
            for stale in set(wandb_dir.glob("run-*")) - before:  # the attempt's half-made online run
                shutil.rmtree(stale, ignore_errors=True)
            import wandb

            wandb.teardown()  # the service still holds the failed run's id: start a fresh one
    if not w.fallback:
        raise WandbUnavailable(f"logger.wandb.mode=online failed: {problem}. Fix: logger.wandb.mode=offline "
                               "(sync later), or logger.wandb.fallback=true")
    log.warning("W&B online unavailable (%s): logging offline instead; sync later with: wandb sync %s",
                problem, run_dir / runfolder.WANDB_DIR / "offline-run-*")
    return _init_wandb(cfg, run_dir, config, "offline", resuming)


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


def _init_wandb(cfg: DictConfig, run_dir: Path, config: dict[str, Any], mode: str, resuming: bool) -> Any:
    import wandb

    w = cfg.logger.wandb
    overrides, choices = _hydra_job()
    with _job_command(overrides):
        run = wandb.init(
            project=w.project, entity=w.entity, group=w.group or cfg.study, job_type=w.job_type or "train",
            name=cfg.name, id=identity.wandb_id(cfg.study, run_dir), tags=[*w.tags, *identity.tags(cfg, overrides)],
            config=identity.wandb_config(config, cfg, overrides, choices), dir=str(run_dir), mode=mode,
            reinit="finish_previous", resume="allow" if resuming else None,
            # No console capture or system-stats sampler: they cost CPU and threads, and loky
            # workers would carry them over to the next job.
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True, program="-m herexp.train",
                                    init_timeout=float(w.init_timeout)),
        )
    run.define_metric(ENV_STEPS)
    run.define_metric("*", step_metric=ENV_STEPS)
    log.info("W&B %s run %s (id %s) in %s", mode, run.name, run.id, run.dir)
    return run


def _hydra_job() -> tuple[list[str], dict[str, Any]]:
    """The running job's task overrides and chosen options (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}
    hc = HydraConfig.get()
    return list(hc.overrides.task), dict(hc.runtime.choices)


def wandb_summary(summary: dict[str, Any] | None, failed: bool) -> dict[str, Any]:
    """The W&B summary of a finished run from its summary.json: ``status``, ``final/<metric>``,
    ``diagnoses``, ``train_time_s``, ``steps_per_s`` (``status`` alone when there is none)."""
    if not summary:
        return {"status": runfolder.STATUS_FAILED if failed else runfolder.STATUS_COMPLETED}
    out: dict[str, Any] = {"status": summary.get("status")}
    out.update({f"final/{k}": summary[k] for k in FINAL_KEYS if summary.get(k) is not None})
    if summary.get("diagnostics") is not None:
        names = [str(d.get("name")) for d in summary["diagnostics"] if isinstance(d, dict)]
        out["diagnoses"] = ", ".join(names) or "none"
    out.update({k: summary[k] for k in ("train_time_s", "steps_per_s", "total_steps", "pruned_at_step", "error")
                if summary.get(k) is not None})
    return out


def finish_wandb(run: Any | None, failed: bool, summary: dict[str, Any] | None = None) -> None:
    """Write the run's outcome (:func:`wandb_summary`) and finish the W&B run (exit code 1
    when the run failed). Never raises."""
    if run is None:
        return
    try:
        run.summary.update(wandb_summary(summary, failed))
    except Exception:  # noqa: BLE001 - teardown must not mask the run's own error
        log.exception("could not write the W&B summary")
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
        formats.append(IncreasingSteps(TensorBoardOutputFormat(str(tb))))
    if wandb_run is not None:
        formats.append(WandbOutputFormat(wandb_run))
    return Logger(folder=str(run_dir), output_formats=formats)
