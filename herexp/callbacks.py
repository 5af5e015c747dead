"""Training-time callbacks: periodic evaluation -> metrics.csv / TensorBoard / W&B, progress.

All frequencies are in environment steps. SB3 calls ``_on_step`` once per *vector* step,
when ``num_timesteps`` has grown by ``n_envs``; :class:`EveryNEnvSteps` fires when a
multiple of ``n`` is crossed, so "every 50 000 steps" means the same with 1 or 8 envs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from herexp import tracking
from herexp.entropy import current_ent_coef
from herexp.runfolder import MetricsWriter

log = logging.getLogger(__name__)

EvalFn = Callable[[], dict[str, Any]]  # returns eval.json-shaped aggregates
_LOSS_KEYS = {"actor_loss": "train/actor_loss", "critic_loss": "train/critic_loss"}


class EveryNEnvSteps:
    """Fires once each time ``num_timesteps`` crosses a multiple of ``n`` env steps."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._last = 0

    def __call__(self, num_timesteps: int) -> bool:
        if self.n <= 0:
            return False
        k = num_timesteps // self.n
        if k > self._last:
            self._last = k
            return True
        return False


class MetricsCallback(BaseCallback):
    """Periodic evaluation + training scalars -> one metrics.csv row, TensorBoard and W&B.

    Also keeps the latest SB3 training scalars (they are cleared from the logger at each
    dump), and logs a progress line (steps, fps, last eval success, ETA).
    """

    def __init__(self, writer: MetricsWriter, eval_fn: EvalFn, eval_freq: int, total_steps: int,
                 progress_every: int) -> None:
        super().__init__()
        self.writer, self.eval_fn, self.total_steps = writer, eval_fn, total_steps
        self.eval_due = EveryNEnvSteps(eval_freq)
        self.progress_due = EveryNEnvSteps(progress_every or max(1, total_steps // 20))
        self.last: dict[str, float] = {}
        self.last_eval_success: float | None = None
        self.eval_history: list[tuple[int, float]] = []  # (env steps, success) of every evaluation
        self._t0 = self._t_row = time.perf_counter()
        self._steps_row = 0

    def _on_training_start(self) -> None:
        self._t0 = self._t_row = time.perf_counter()
        self._steps_row = self.num_timesteps

    def _capture_train_scalars(self) -> None:
        values = self.logger.name_to_value
        for name, key in _LOSS_KEYS.items():
            if key in values:
                self.last[name] = float(values[key])

    def _on_step(self) -> bool:
        self._capture_train_scalars()
        # The final evaluation (more episodes) writes the row at total_steps.
        if self.eval_due(self.num_timesteps) and self.num_timesteps < self.total_steps:
            self.record_eval(self.eval_fn())
        if self.progress_due(self.num_timesteps):
            self._log_progress()
        return True

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue the schedule and the curve (herexp.checkpoint)."""
        return {"eval_due": self.eval_due._last, "progress_due": self.progress_due._last, "last": dict(self.last),
                "last_eval_success": self.last_eval_success, "eval_history": list(self.eval_history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.eval_due._last, self.progress_due._last = state["eval_due"], state["progress_due"]
        self.last, self.last_eval_success = dict(state["last"]), state["last_eval_success"]
        self.eval_history = list(state["eval_history"])

    def rollout_success(self) -> float | None:
        buf = getattr(self.model, "ep_success_buffer", None)
        return float(np.mean(buf)) if buf else None

    def record_eval(self, result: dict[str, Any]) -> None:
        """Write one metrics row for ``result`` at the current step (also used for the final eval)."""
        now = time.perf_counter()
        fps = (self.num_timesteps - self._steps_row) / max(now - self._t_row, 1e-9)
        self._t_row, self._steps_row = now, self.num_timesteps
        row = {
            "step": self.num_timesteps,
            "eval_success_rate": result["success_rate"],
            "eval_return_mean": result["return_mean"],
            "eval_final_distance_mean": result["final_distance_mean"],
            "rollout_success_rate": self.rollout_success(),
            "ent_coef": current_ent_coef(self.model),
            "actor_loss": self.last.get("actor_loss"),
            "critic_loss": self.last.get("critic_loss"),
            "fps": fps,
        }
        self.writer.write(row)
        self.last_eval_success = result["success_rate"]
        self.eval_history.append((self.num_timesteps, float(result["success_rate"])))
        self.logger.record(tracking.EVAL_SUCCESS, result["success_rate"])
        self.logger.record(tracking.EVAL_RETURN, result["return_mean"])
        if result["final_distance_mean"] is not None:
            self.logger.record(tracking.EVAL_DISTANCE, result["final_distance_mean"])
        self.logger.dump(self.num_timesteps)

    def _log_progress(self) -> None:
        elapsed = time.perf_counter() - self._t0
        fps = self.num_timesteps / max(elapsed, 1e-9)
        eta = (self.total_steps - self.num_timesteps) / max(fps, 1e-9)
        last = "n/a" if self.last_eval_success is None else f"{self.last_eval_success:.0%}"
        log.info("step %d/%d (%.0f%%) | %.0f steps/s | last eval success %s | ETA %s",
                 self.num_timesteps, self.total_steps, 100 * self.num_timesteps / self.total_steps,
                 fps, last, _hms(eta))


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class EarlyStopping(BaseCallback):
    """Ends ``learn`` once the last ``patience`` periodic evaluations all reached ``success``.

    Reads the evaluations :class:`MetricsCallback` recorded (place it after that callback);
    the final evaluation then runs as usual. ``stopped_at`` is the env step it stopped at.
    """

    def __init__(self, metrics: MetricsCallback, success: float, patience: int) -> None:
        super().__init__()
        self.metrics, self.success, self.patience = metrics, success, patience
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        recent = self.metrics.eval_history[-self.patience:]
        if len(recent) == self.patience and all(s >= self.success for _, s in recent):
            self.stopped_at = self.num_timesteps
            log.info("early stop at %d env steps: eval success >= %.0f%% in the last %d evaluations",
                     self.num_timesteps, 100 * self.success, self.patience)
            return False
        return True
