"""The five entropy-coefficient modes of SAC, as SB3 arguments plus one callback each.

=============  =====================================================================
``fixed``      constant coefficient ``entropy.value`` (chapter best on Push: 0.05)
``auto``       SB3's automatic tuning towards ``target_entropy`` (collapses on sparse Push)
``auto_floor`` automatic tuning that never goes below ``entropy.min`` (hard floor)
``schedule``   hold ``max`` for ``warmup_frac`` of training, then linear decay to ``min``
``adaptive``   every ``check_freq`` env steps, nudge the coefficient towards a target success
=============  =====================================================================

Correctness rules (the chapter's reference scripts broke all three):

* What changes is what SAC's loss reads: ``model.ent_coef_tensor`` for non-learned modes and
  ``model.log_ent_coef`` for learned ones. Setting ``model.ent_coef`` mid-run changes nothing.
* Progress is measured in environment steps (``model.num_timesteps``), never callback calls.
* The coefficient in use is logged as ``train/ent_coef`` every update (SB3 records it in
  ``SAC.train``; :class:`EntropyCallback` records it for scheduled modes too).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import torch as th
from omegaconf import DictConfig
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

from herexp.tracking import TRAIN_ENT_COEF_TARGET

# Scheduled modes start SB3 with a float coefficient so SAC builds ``ent_coef_tensor``
# (not a learned ``log_ent_coef``); the callback then writes the scheduled value into it.
_CONTROLLED = ("schedule", "adaptive")


def sac_kwargs(ecfg: DictConfig) -> dict[str, Any]:
    """SB3 ``SAC`` constructor arguments (``ent_coef``, ``target_entropy``) for a mode."""
    mode = ecfg.mode
    if mode == "fixed":
        return {"ent_coef": float(ecfg.value)}
    if mode in ("auto", "auto_floor"):
        ent = "auto" if ecfg.value is None else f"auto_{float(ecfg.value)}"
        te = ecfg.target_entropy
        return {"ent_coef": ent, "target_entropy": te if te == "auto" else float(te)}
    if mode == "schedule":
        return {"ent_coef": float(ecfg.max)}
    if mode == "adaptive":
        return {"ent_coef": adaptive_start(ecfg)}
    raise ValueError(f"entropy.mode={mode!r} is unknown")


def adaptive_start(ecfg: DictConfig) -> float:
    """Adaptive mode starts at ``entropy.value`` when given, else at ``entropy.max``."""
    return float(ecfg.max if ecfg.value is None else ecfg.value)


def current_ent_coef(model: SAC) -> float:
    """The coefficient SAC's next gradient step will use (one host sync: not for hot loops)."""
    if getattr(model, "log_ent_coef", None) is not None:
        return float(th.exp(model.log_ent_coef.detach()).item())
    return float(model.ent_coef_tensor.item())


class LinearSchedule:
    """``max`` until ``warmup_frac * total_steps`` env steps, then linear to ``min`` at the end."""

    def __init__(self, vmax: float, vmin: float, warmup_frac: float, total_steps: int) -> None:
        self.vmax, self.vmin, self.total = vmax, vmin, total_steps
        self.start = warmup_frac * total_steps

    def __call__(self, num_timesteps: int) -> float:
        if num_timesteps <= self.start:
            return self.vmax
        frac = min(1.0, (num_timesteps - self.start) / max(1.0, self.total - self.start))
        return self.vmax + frac * (self.vmin - self.vmax)


class AdaptiveController:
    """Multiplicative success-tracking controller on the entropy coefficient.

    Every ``check_freq`` env steps after ``warmup_steps``, once ``window`` episodes have
    finished: rolling success below ``target - tolerance`` means too little exploration pays
    off -> raise by ``(1 + rate)``; above ``target + tolerance`` -> lower by ``(1 - rate)``;
    always clamped to ``[vmin, vmax]``.
    """

    def __init__(self, start: float, vmin: float, vmax: float, target: float, tolerance: float,
                 rate: float, window: int, check_freq: int, warmup_steps: int) -> None:
        self.value, self.vmin, self.vmax = start, vmin, vmax
        self.target, self.tolerance, self.rate = target, tolerance, rate
        self.check_freq, self.warmup_steps = check_freq, warmup_steps
        self.successes: deque[float] = deque(maxlen=window)
        self._next_check = max(check_freq, warmup_steps)

    def add_episode(self, success: bool) -> None:
        self.successes.append(float(success))

    def update(self, num_timesteps: int) -> float:
        """Adjust (at most once per elapsed check interval) and return the current value."""
        if num_timesteps < self._next_check:
            return self.value
        # Next check at the first multiple of check_freq after now: robust to n_envs > 1.
        self._next_check = (num_timesteps // self.check_freq + 1) * self.check_freq
        if len(self.successes) < (self.successes.maxlen or 0):
            return self.value
        rate = float(np.mean(self.successes))
        if rate < self.target - self.tolerance:
            self.value *= 1.0 + self.rate
        elif rate > self.target + self.tolerance:
            self.value *= 1.0 - self.rate
        self.value = min(self.vmax, max(self.vmin, self.value))
        return self.value


def install_floor(model: SAC, vmin: float) -> None:
    """Make ``log_ent_coef >= log(vmin)`` hold after every entropy-optimizer step.

    A post-step hook on SB3's ``ent_coef_optimizer`` runs after each gradient step (also
    when ``gradient_steps > 1``), so the coefficient SAC reads in the next step is never
    below the floor — a hard floor, not a periodic soft clamp.
    """
    if getattr(model, "ent_coef_optimizer", None) is None:
        raise ValueError("entropy.mode=auto_floor needs a learned coefficient (ent_coef='auto')")
    log_min = math.log(vmin)

    def _clamp(_opt: th.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        with th.no_grad():
            model.log_ent_coef.clamp_(min=log_min)

    model.ent_coef_optimizer.register_step_post_hook(_clamp)
    _clamp(model.ent_coef_optimizer, None, None)  # an initial value below the floor, too


class EntropyCallback(BaseCallback):
    """Applies ``schedule`` / ``adaptive`` by writing ``model.ent_coef_tensor`` each step.

    ``_on_step`` runs after every vector step, before the next ``SAC.train``, so the value
    written here is exactly the one the next gradient step uses.
    """

    def __init__(self, ecfg: DictConfig, total_steps: int) -> None:
        super().__init__()
        self.mode = ecfg.mode
        self.key = ecfg.key
        warm = int(ecfg.warmup_frac * total_steps)
        self.schedule = LinearSchedule(ecfg.max, ecfg.min, ecfg.warmup_frac, total_steps)
        self.adaptive = AdaptiveController(adaptive_start(ecfg), ecfg.min, ecfg.max, ecfg.target, ecfg.tolerance,
                                           ecfg.rate, ecfg.window, ecfg.check_freq, warm)

    def _on_training_start(self) -> None:
        self._apply(self._value())

    def state_dict(self) -> dict[str, Any]:
        """The adaptive controller's value, next check and success window (herexp.checkpoint)."""
        return {"adaptive": dict(vars(self.adaptive))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self.adaptive).update(state["adaptive"])

    def _value(self) -> float:
        if self.mode == "schedule":
            return self.schedule(self.num_timesteps)
        return self.adaptive.update(self.num_timesteps)

    def _apply(self, value: float) -> None:
        self.model.ent_coef_tensor.fill_(value)
        self.logger.record(TRAIN_ENT_COEF_TARGET, value)

    def _on_step(self) -> bool:
        if self.mode == "adaptive":
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                if done and self.key in info:
                    self.adaptive.add_episode(bool(info[self.key]))
        self._apply(self._value())
        return True


def setup(model: SAC, ecfg: DictConfig, total_steps: int) -> list[BaseCallback]:
    """Finish wiring a mode on a built model; return the callbacks ``learn`` needs."""
    if ecfg.mode == "auto_floor":
        install_floor(model, float(ecfg.min))
    if ecfg.mode in _CONTROLLED:
        return [EntropyCallback(ecfg, total_steps)]
    return []
