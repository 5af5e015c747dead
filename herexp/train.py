"""Train one run: ``python -m herexp.train env=push her=on entropy=fixed_005``.

check the command line (:mod:`herexp.preflight`: every job composed and validated, exit 2 with
one line on a mistake) -> skip if completed -> seed -> build envs/model -> learn (periodic eval)
-> final eval -> write model, eval.json, meta.json, summary.json (last, atomic). Ctrl-C or
SIGTERM writes ``status: interrupted`` and exits 130 with one line; a run file that cannot be
written (a full disk) ends with one ``error:`` line and no summary, so the rerun resumes; a
folder that cannot be skipped or resumed (:mod:`herexp.resume`) ends with one line, untouched;
any other exception writes ``status: failed`` with the traceback and re-raises. W&B is
finished in ``finally``.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecNormalize

from herexp import (
    agent,
    algos,
    checkpoint,
    cli,
    config,
    diagnostics,
    entropy,
    envs,
    evaluation,
    meta,
    preflight,
    resume,
    runfolder,
    sweep,
    tracking,
)
from herexp.callbacks import EarlyStopping, MetricsCallback
from herexp.search.reporter import TrialPruned, trial_reporter
from herexp.video import training as video_training

log = logging.getLogger("herexp.train")
config.register_configs()


class RunInterrupted(Exception):
    """Training stopped by signal ``signum`` after ``steps`` env steps (``checkpointed``: resumable
    there)."""

    def __init__(self, steps: int, checkpointed: bool = False, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted at {steps} env steps" + (" (checkpoint saved)" if checkpointed else ""))
        self.steps, self.checkpointed, self.signal = steps, checkpointed, signal.Signals(signum).name


def _learn(cfg: DictConfig, run_dir: Path, wandb_run: Any, start: dict[str, Any] | None,
           flag: checkpoint.StopFlag) -> dict[str, Any]:
    """Build, train and evaluate; write model, eval.json and meta.json. Return summary fields."""
    with algos.option(cfg.algo).session():  # e.g. the fast path's cheaper Fetch observations
        return _build_and_learn(cfg, run_dir, wandb_run, start, flag)


def _build_and_learn(cfg: DictConfig, run_dir: Path, wandb_run: Any, start: dict[str, Any] | None,
                     flag: checkpoint.StopFlag) -> dict[str, Any]:
    venv = envs.make_train_env(cfg)
    eval_env = envs.make_eval_env(cfg.env.id)
    try:
        model = agent.build_model(cfg, venv)
        model.set_logger(tracking.make_sb3_logger(cfg, run_dir, wandb_run))
        vecnorm = venv if isinstance(venv, VecNormalize) else None
        ev = cfg.eval

        def periodic() -> dict[str, Any]:
            seeds = evaluation.eval_seeds(ev.seed_offset, ev.periodic_episodes)
            return evaluation.evaluate(model, eval_env, seeds, ev.deterministic, vecnorm)

        if start is not None:  # the stopped attempt may have logged past its checkpoint
            resume.truncate_metrics(run_dir, start["num_timesteps"])
            resume.truncate_tensorboard(run_dir, start["num_timesteps"])
        with runfolder.MetricsWriter(run_dir, fresh=start is None) as writer:
            metrics_cb = MetricsCallback(writer, periodic, ev.freq, cfg.total_steps, cfg.logger.progress_every)
            stop = (EarlyStopping(metrics_cb, cfg.early_stop.success, cfg.early_stop.patience)
                    if cfg.early_stop.success is not None else None)
            reporter = trial_reporter(cfg, metrics_cb)  # a search trial's run: evaluations -> study, pruning
            callbacks = [*entropy.option(cfg.entropy).attach(model, cfg.total_steps), metrics_cb,
                         *([stop] if stop else []), *([reporter] if reporter else []),
                         *video_training.training_callbacks(cfg, run_dir, model, vecnorm)]
            t0, prior_time = time.perf_counter(), (start or {}).get("train_time_s", 0.0)
            ckpt = checkpoint.CheckpointCallback(run_dir, cfg.checkpoint.every, flag, callbacks, lambda: {
                "train_time_s": prior_time + time.perf_counter() - t0, "wandb_id": getattr(wandb_run, "id", None),
                "config": config.to_container(cfg)}, enabled=algos.option(cfg.algo).checkpointable)
            if start is not None:
                checkpoint.load(run_dir, model, [*callbacks, ckpt])
                log.info("resumed from the checkpoint at %d env steps", model.num_timesteps)
            try:
                model.learn(total_timesteps=cfg.total_steps - model.num_timesteps, callback=[*callbacks, ckpt],
                            log_interval=cfg.logger.log_interval, reset_num_timesteps=start is None)
            except checkpoint.StopRequested as exc:
                raise RunInterrupted(exc.steps, checkpointed=exc.checkpointed, signum=exc.signum) from None
            except KeyboardInterrupt:
                raise RunInterrupted(int(model.num_timesteps)) from None
            train_time = prior_time + time.perf_counter() - t0
            if reporter is not None:
                reporter.raise_if_pruned()  # pruned: no final evaluation
            final = evaluation.evaluate(model, eval_env, evaluation.eval_seeds(ev.seed_offset, ev.n_episodes),
                                        ev.deterministic, vecnorm)
            metrics_cb.record_eval(final)
        with runfolder.writing(run_dir / runfolder.MODEL, discard=True):
            model.save(run_dir / runfolder.MODEL)
        if vecnorm is not None:
            with runfolder.writing(run_dir / runfolder.VECNORM, discard=True):
                vecnorm.save(str(run_dir / runfolder.VECNORM))
        runfolder.write_json_atomic(run_dir / runfolder.EVAL, final)
        steps = int(model.num_timesteps)
        return {"success_rate": final["success_rate"], "return_mean": final["return_mean"],
                "final_distance_mean": final["final_distance_mean"], "total_steps": steps,
                "train_time_s": train_time, "steps_per_s": steps / max(train_time, 1e-9),
                "early_stopped_at_step": stop.stopped_at if stop else None, "device": str(model.device),
                "checkpoint_s": ckpt.seconds}
    finally:
        venv.close()
        eval_env.close()


def _diagnose(cfg: DictConfig, run_dir: Path) -> list[dict[str, Any]]:
    metrics = runfolder.read_metrics(run_dir)
    ctx = diagnostics.with_resting_distance(diagnostics.RunContext.from_config(cfg), metrics, cfg.eval)
    found = diagnostics.diagnose(metrics, ctx, cfg.diagnostics)
    log.info("diagnostics:\n%s", diagnostics.format_diagnoses(found))
    return [d.to_dict() for d in found]


def _skip(cfg: DictConfig, run_dir: Path) -> bool:
    """True when the folder holds this very run, completed (``skip_completed``); a completed run
    made with another config stops the job (:class:`herexp.resume.CompletedMismatch`)."""
    if not (cfg.skip_completed and runfolder.is_completed(run_dir)):
        return False
    fix = resume.FIX_SWEEP if HydraConfig.get().mode == RunMode.MULTIRUN else resume.FIX_RUN
    problem = resume.completed_mismatch(run_dir, config.to_container(cfg), fix)
    if problem:
        raise resume.CompletedMismatch(problem)
    return True


def _write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    try:
        runfolder.write_summary(run_dir, summary)
    except OSError as exc:
        raise resume.ResultsNotWritten(resume.write_failure(exc, run_dir)) from None


def _is_write_failure(exc: BaseException) -> bool:
    """A run file that could not be written (a full disk anywhere counts, whoever was writing)."""
    return isinstance(exc, runfolder.WriteFailed) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job in Hydra's output dir (resuming its checkpoint); return its summary."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = list(HydraConfig.get().overrides.task)
    if _skip(cfg, run_dir):
        log.info("skipped (already completed): %s", run_dir)
        return runfolder.read_summary(run_dir) or {}
    resolved = config.to_container(cfg)
    base = {"name": cfg.name, "overrides": overrides, "config": resolved}
    config.validate(cfg)  # the CLI checked already (herexp.preflight); direct callers did not
    wandb_run, t_start, flag = None, time.time(), checkpoint.StopFlag()
    try:
        # resume from the newest intact checkpoint, or start over after clearing an earlier attempt
        # (one W&B run, one curve); a mismatch or damage leaves the folder untouched
        start = resume.plan(run_dir, resolved, cfg.resume)
        torch.set_num_threads(cfg.torch_threads)  # loky reuses workers: reset per job
        set_random_seed(cfg.seed)
        info = envs.check_env_compatible(cfg)
        wandb_run = tracking.start_wandb(cfg, run_dir, resolved, resuming=start is not None)
        log.info("run %s -> %s", cfg.name, run_dir)
        with flag.installed():
            result = _learn(cfg, run_dir, wandb_run, start, flag)
        runfolder.write_json_atomic(run_dir / runfolder.META, meta.run_meta(
            result.pop("device"), env=info.__dict__, wall_time_s=time.time() - t_start,
            steps_per_s=result["steps_per_s"], overrides=overrides, config=resolved))
        summary = {"status": runfolder.STATUS_COMPLETED, **result, "diagnostics": _diagnose(cfg, run_dir),
                   **base}
        _write_summary(run_dir, summary)
        if not cfg.checkpoint.keep:
            checkpoint.remove(run_dir)
        log.info("completed: success %.1f%% | %.0f steps/s | %s", 100 * summary["success_rate"],
                 summary["steps_per_s"], run_dir)
        return summary
    except (resume.ResumeMismatch, resume.CheckpointDamaged, resume.ResultsNotWritten):
        raise
    except TrialPruned as exc:
        summary = {"status": runfolder.STATUS_PRUNED, "total_steps": exc.steps, "pruned_at_step": exc.judged_at,
                   "last_eval_success": exc.last_success, "train_time_s": time.time() - t_start, **base}
        runfolder.write_summary(run_dir, summary)
        if not cfg.checkpoint.keep:
            checkpoint.remove(run_dir)
        log.info("pruned: %s | %s", exc, run_dir)
        return summary
    except (RunInterrupted, KeyboardInterrupt) as exc:
        stopped = exc if isinstance(exc, RunInterrupted) else RunInterrupted(0)  # before training began
        _write_summary(run_dir, {"status": runfolder.STATUS_INTERRUPTED, **base,
                                 "interrupted_at_step": stopped.steps, "stop_signal": stopped.signal,
                                 "error": str(stopped)})
        how = "resume from its checkpoint" if checkpoint.read_state(run_dir) else "run it again from step 0"
        log.warning("%s; rerun the same command to %s | %s", stopped, how, run_dir)
        tracking.finish_wandb(wandb_run, failed=True)
        wandb_run = None
        flag.chain()  # under submitit (SIGUSR2): requeue the job into this folder, then exit
        raise stopped from None
    except BaseException as exc:
        if _is_write_failure(exc):  # no failed summary: the rerun resumes from the last checkpoint
            raise resume.ResultsNotWritten(resume.write_failure(exc, run_dir)) from None  # type: ignore[arg-type]
        _write_summary(run_dir, {"status": runfolder.STATUS_FAILED, **base,
                                 "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        log.error("failed: %s: %s (%s)", type(exc).__name__, exc, run_dir)
        raise
    finally:
        tracking.finish_wandb(wandb_run, summary=runfolder.read_summary(run_dir), failed=runfolder.status(run_dir)
                              not in (runfolder.STATUS_COMPLETED, runfolder.STATUS_PRUNED))


# Stopped before a summary could say why: the folder is left as it was (or as a rerun resumes it).
_ONE_LINE = (resume.CompletedMismatch, resume.ResumeMismatch, resume.CheckpointDamaged, resume.ResultsNotWritten)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entrypoint; returns the final success rate (for Hydra sweepers).

    In a multirun a failed job is already recorded (summary.json, traceback; or, when no
    summary could say it, the reason handed to :func:`herexp.sweep.note_failure`) and must not
    stop the sweep: it returns None, and :class:`herexp.sweep.SweepCallback` reports it and
    makes the sweep exit non-zero at the end.
    """
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        try:
            return float(train(cfg).get("success_rate") or 0.0)
        except RunInterrupted:  # already said in one log line; no traceback
            raise SystemExit(cli.EXIT_INTERRUPTED) from None
        except resume.ResultsNotWritten as exc:  # a full disk: not the command's fault, exit 1
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        except (*_ONE_LINE, tracking.WandbUnavailable) as exc:  # wandb: logger.wandb.fallback=false
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(cli.EXIT_USAGE) from None
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    stopped = sweep.stop_requested(Path(HydraConfig.get().sweep.dir))
    if stopped:  # after Ctrl-C no job starts: it stays pending, and a rerun runs it
        log.info("not started: the sweep was stopped by %s", stopped)
        return None
    try:
        return float(train(cfg).get("success_rate") or 0.0)
    except _ONE_LINE as exc:
        log.error("error: %s", exc)
        sweep.note_failure(run_dir, str(exc))
        return None
    except Exception:  # noqa: BLE001 - recorded in the job's summary.json and in its log
        return None


def cli_main(argv: list[str] | None = None) -> None:
    """``python -m herexp.train``: check every job of the command, then hand it to Hydra."""
    args = sys.argv[1:] if argv is None else argv
    try:
        preflight.check_train_command(args)
    except cli.UsageError as exc:
        if cli.full_errors():
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(cli.EXIT_USAGE) from None
    try:
        main()
    except KeyboardInterrupt:  # a second Ctrl-C while a parallel sweep waited for its jobs' checkpoints
        print("stopped at once: running jobs may not have written their checkpoint; rerun the same command "
              "to resume from the last one", file=sys.stderr)
        raise SystemExit(cli.EXIT_INTERRUPTED) from None


if __name__ == "__main__":
    cli_main()
