"""Training-time callbacks: periodic evaluation -> metrics.csv / TensorBoard / W&B, progress.

All frequencies are in environment steps. SB3 calls ``_on_step`` once per *vector* step,
when ``num_timesteps`` has grown by ``n_envs``; :class:`EveryNEnvSteps` fires when a
multiple of ``n`` is crossed, so "every 50 000 steps" means the same with 1 or 8 envs.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from herexp import tracking
from herexp.entropy.control import current_ent_coef
from herexp.runfolder import MetricsWriter

log = logging.getLogger(__name__)

EvalFn = Callable[[], dict[str, Any]]  # returns eval.json-shaped aggregates
Clock = Callable[[], float]  # seconds, monotonic
WARMUP_ETA = "n/a (warm-up)"
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


class LearningPhaseRate:
    """Steps/s and time left, measured from the first step past ``learning_starts``.

    Before ``learning_starts`` the agent takes random actions and makes no gradient updates, so
    warm-up steps run several times faster than learning steps and would make an estimate
    far too optimistic. The rate counts only steps taken since learning started.
    """

    def __init__(self, total_steps: int, learning_starts: int, clock: Clock = time.perf_counter) -> None:
        self.total_steps, self.learning_starts, self.clock = total_steps, learning_starts, clock
        self._mark: tuple[int, float] | None = None  # (steps, time) at the first learning step

    def observe(self, num_timesteps: int) -> None:
        if self._mark is None and num_timesteps > self.learning_starts:
            self._mark = (num_timesteps, self.clock())

    def rate(self, num_timesteps: int) -> float | None:
        """Learning-phase steps/s, or None while nothing has been measured past the warm-up."""
        if self._mark is None:
            return None
        steps, t = self._mark
        dt = self.clock() - t
        return (num_timesteps - steps) / dt if num_timesteps > steps and dt > 0 else None

    def eta(self, num_timesteps: int) -> str:
        rate = self.rate(num_timesteps)
        return WARMUP_ETA if rate is None else _hms((self.total_steps - num_timesteps) / rate)


def multirun_job_label() -> str:
    """``[<job folder>] `` inside a Hydra multirun (parallel jobs share a console), else ``""``."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return f"[{Path(HydraConfig.get().runtime.output_dir).name}] "
    except Exception:  # noqa: BLE001 - a label is cosmetic; never fail a run over it
        pass
    return ""


class _Bar:
    """A tqdm bar on the terminal; console log lines are printed above it while it is open."""

    def __init__(self, total: int, initial: int, file: IO[str]) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        # tqdm's own time-left estimate is left out: it would count the fast warm-up steps
        self.tqdm = tqdm(total=total, initial=initial, unit="step", file=file, dynamic_ncols=True,
                         bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]")
        self._redirect = logging_redirect_tqdm(tqdm_class=tqdm)
        self._redirect.__enter__()

    def update(self, num_timesteps: int, postfix: str) -> None:
        self.tqdm.set_postfix_str(postfix, refresh=False)
        self.tqdm.update(num_timesteps - self.tqdm.n)

    def close(self) -> None:
        self._redirect.__exit__(None, None, None)
        self.tqdm.close()


class MetricsCallback(BaseCallback):
    """Periodic evaluation + training scalars -> one metrics.csv row, TensorBoard and W&B.

    Also keeps the latest SB3 training scalars (they are cleared from the logger at each
    dump), and logs a progress line (steps, fps, last eval success, ETA), prefixed with the job
    folder name in a multirun. ``label`` overrides that prefix; ``clock`` is for tests. A single
    run on a terminal also shows a progress bar (``bar``: None = when stdout is a terminal and
    this is not a multirun job), written to ``bar_file`` (stdout).
    """

    def __init__(self, writer: MetricsWriter, eval_fn: EvalFn, eval_freq: int, total_steps: int,
                 progress_every: int, label: str | None = None, clock: Clock = time.perf_counter,
                 bar: bool | None = None, bar_file: IO[str] | None = None) -> None:
        super().__init__()
        self.writer, self.eval_fn, self.total_steps = writer, eval_fn, total_steps
        self.eval_due = EveryNEnvSteps(eval_freq)
        self.progress_due = EveryNEnvSteps(progress_every or max(1, total_steps // 20))
        self.last: dict[str, float] = {}
        self.last_eval_success: float | None = None
        self.eval_history: list[tuple[int, float]] = []  # (env steps, success) of every evaluation
        self.label = label
        self._clock = clock
        self._want_bar, self._bar_file, self._bar = bar, bar_file, None
        self._t0 = self._t_row = clock()
        self._steps_row = self._steps0 = 0
        self._rate = LearningPhaseRate(total_steps, 0, clock)

    def _on_training_start(self) -> None:
        self._t0 = self._t_row = self._clock()
        self._steps_row = self._steps0 = self.num_timesteps
        self._rate = LearningPhaseRate(self.total_steps, int(getattr(self.model, "learning_starts", 0)), self._clock)
        self._rate.observe(self.num_timesteps)
        if self.label is None:
            self.label = multirun_job_label()
        file = self._bar_file or sys.stdout
        show = (file.isatty() and not self.label) if self._want_bar is None else self._want_bar
        self._bar = _Bar(self.total_steps, self.num_timesteps, file) if show else None

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _capture_train_scalars(self) -> None:
        values = self.logger.name_to_value
        for name, key in _LOSS_KEYS.items():
            if key in values:
                self.last[name] = float(values[key])

    def _on_step(self) -> bool:
        self._rate.observe(self.num_timesteps)
        self._capture_train_scalars()
        # The final evaluation (more episodes) writes the row at total_steps.
        if self.eval_due(self.num_timesteps) and self.num_timesteps < self.total_steps:
            self.record_eval(self.eval_fn())
        if self.progress_due(self.num_timesteps):
            self._log_progress()
        if self._bar is not None:
            last = "n/a" if self.last_eval_success is None else f"{self.last_eval_success:.0%}"
            self._bar.update(self.num_timesteps, f"last eval {last}, ETA {self._rate.eta(self.num_timesteps)}")
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
        now = self._clock()
        fps = (self.num_timesteps - self._steps_row) / max(now - self._t_row, 1e-9)
        self._t_row, self._steps_row = now, self.num_timesteps
        row = {
            "step": self.num_timesteps,
            "eval_success_rate": result["success_rate"],
            "eval_return_mean": result["return_mean"],
            "eval_final_distance_mean": result["final_distance_mean"],
            "eval_object_displacement_mean": result.get("object_displacement_mean"),
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
        if result.get("object_displacement_mean") is not None:
            self.logger.record(tracking.EVAL_DISPLACEMENT, result["object_displacement_mean"])
        self.logger.dump(self.num_timesteps)

    def progress_line(self) -> str:
        """``[job] step 5000/100000 (5%) | 180 steps/s | last eval success 20% | ETA 8m48s``.

        steps/s and ETA are those of the learning phase; during the warm-up steps/s is the warm-up
        rate, marked ``(warm-up)``, and the ETA reads ``n/a (warm-up)``.
        """
        n = self.num_timesteps
        rate = self._rate.rate(n)
        if rate is None:
            fps = f"{(n - self._steps0) / max(self._clock() - self._t0, 1e-9):.0f} steps/s (warm-up)"
        else:
            fps = f"{rate:.0f} steps/s"
        last = "n/a" if self.last_eval_success is None else f"{self.last_eval_success:.0%}"
        return (f"{self.label or ''}step {n}/{self.total_steps} ({100 * n / self.total_steps:.0f}%) | {fps} | "
                f"last eval success {last} | ETA {self._rate.eta(n)}")

    def _log_progress(self) -> None:
        log.info("%s", self.progress_line())


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
