"""Train one run: ``python -m herexp.train env=push her=on entropy=fixed_005``.

validate -> skip if completed -> seed -> build envs/model -> learn (periodic eval) -> final eval
-> write model, eval.json, meta.json, summary.json (last, atomic). On any exception the run
writes ``status: failed`` with the traceback and re-raises; W&B is finished in ``finally``.
"""

from __future__ import annotations

import logging
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

from herexp import agent, config, diagnostics, entropy, envs, evaluation, meta, runfolder, tracking, video
from herexp.callbacks import MetricsCallback

log = logging.getLogger("herexp.train")
config.register_configs()


def _learn(cfg: DictConfig, run_dir: Path, wandb_run: Any) -> dict[str, Any]:
    """Build, train and evaluate; write model, eval.json and meta.json. Return summary fields."""
    if cfg.algo.fast:  # identical observations, ~20 % cheaper Fetch steps; restored after the run
        from herexp.fast import fetch_obs

        with fetch_obs.enabled():
            return _build_and_learn(cfg, run_dir, wandb_run)
    return _build_and_learn(cfg, run_dir, wandb_run)


def _build_and_learn(cfg: DictConfig, run_dir: Path, wandb_run: Any) -> dict[str, Any]:
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

        with runfolder.MetricsWriter(run_dir, fresh=True) as writer:
            metrics_cb = MetricsCallback(writer, periodic, ev.freq, cfg.total_steps, cfg.logger.progress_every)
            callbacks = [*entropy.setup(model, cfg.entropy, cfg.total_steps), metrics_cb,
                         *video.training_callbacks(cfg, run_dir, model, vecnorm)]
            t0 = time.perf_counter()
            model.learn(total_timesteps=cfg.total_steps, callback=callbacks, log_interval=cfg.logger.log_interval)
            train_time = time.perf_counter() - t0
            final = evaluation.evaluate(model, eval_env, evaluation.eval_seeds(ev.seed_offset, ev.n_episodes),
                                        ev.deterministic, vecnorm)
            metrics_cb.record_eval(final)
        model.save(run_dir / runfolder.MODEL)
        if vecnorm is not None:
            vecnorm.save(str(run_dir / runfolder.VECNORM))
        runfolder.write_json_atomic(run_dir / runfolder.EVAL, final)
        steps = int(model.num_timesteps)
        return {"success_rate": final["success_rate"], "return_mean": final["return_mean"],
                "final_distance_mean": final["final_distance_mean"], "total_steps": steps,
                "train_time_s": train_time, "steps_per_s": steps / max(train_time, 1e-9),
                "device": str(model.device)}
    finally:
        venv.close()
        eval_env.close()


def _diagnose(cfg: DictConfig, run_dir: Path) -> list[dict[str, Any]]:
    ctx = diagnostics.RunContext(env_id=cfg.env.id, her_enabled=cfg.her.enabled, sparse=cfg.env.sparse,
                                 total_steps=cfg.total_steps)
    found = diagnostics.diagnose(runfolder.read_metrics(run_dir), ctx, cfg.diagnostics)
    log.info("diagnostics:\n%s", diagnostics.format_diagnoses(found))
    return [d.to_dict() for d in found]


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job in Hydra's output dir; return its summary."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = list(HydraConfig.get().overrides.task)
    if cfg.skip_completed and runfolder.is_completed(run_dir):
        log.info("skipped (already completed): %s", run_dir)
        return runfolder.read_summary(run_dir) or {}
    stale = runfolder.clear_attempt(run_dir)  # a redo starts over: one W&B run, one curve
    if stale:
        log.info("cleared an earlier attempt: %s", ", ".join(map(str, stale)))
    resolved = config.to_container(cfg)
    base = {"name": cfg.name, "overrides": overrides, "config": resolved}
    wandb_run, t_start = None, time.time()
    try:
        config.validate(cfg)
        torch.set_num_threads(cfg.torch_threads)  # loky reuses workers: reset per job
        set_random_seed(cfg.seed)
        info = envs.check_env_compatible(cfg)
        wandb_run = tracking.start_wandb(cfg, run_dir, resolved)
        log.info("run %s -> %s", cfg.name, run_dir)
        result = _learn(cfg, run_dir, wandb_run)
        runfolder.write_json_atomic(run_dir / runfolder.META, meta.run_meta(
            result.pop("device"), env=info.__dict__, wall_time_s=time.time() - t_start,
            steps_per_s=result["steps_per_s"], overrides=overrides, config=resolved))
        summary = {"status": runfolder.STATUS_COMPLETED, **result, "diagnostics": _diagnose(cfg, run_dir),
                   **base}
        runfolder.write_summary(run_dir, summary)
        log.info("completed: success %.1f%% | %.0f steps/s | %s", 100 * summary["success_rate"],
                 summary["steps_per_s"], run_dir)
        return summary
    except BaseException as exc:
        runfolder.write_summary(run_dir, {"status": runfolder.STATUS_FAILED, **base,
                                          "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc()})
        log.error("failed: %s: %s (%s)", type(exc).__name__, exc, run_dir)
        raise
    finally:
        tracking.finish_wandb(wandb_run, failed=not runfolder.is_completed(run_dir),
                              summary=runfolder.read_summary(run_dir))


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entrypoint; returns the final success rate (for Hydra sweepers).

    In a multirun a failed job is already recorded (summary.json, traceback) and must not
    stop the sweep: it returns None, and :class:`herexp.sweep.SweepCallback` reports it and
    makes the sweep exit non-zero at the end.
    """
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return float(train(cfg).get("success_rate") or 0.0)
    try:
        return float(train(cfg).get("success_rate") or 0.0)
    except Exception:  # noqa: BLE001 - recorded in the job's summary.json and in its log
        return None


if __name__ == "__main__":
    main()
