"""How entropy options act on a running SAC/TQC: the coefficient read, scheduled and floored.

Correctness rules (the chapter's reference scripts broke all three):

* What changes is what the loss reads: ``model.ent_coef_tensor`` for non-learned options and
  ``model.log_ent_coef`` for learned ones. Setting ``model.ent_coef`` mid-run changes nothing.
* Progress is measured in environment steps (``model.num_timesteps``), never callback calls.
* The coefficient in use is logged as ``train/ent_coef`` every update (SB3 records it in
  ``SAC.train``; :class:`EntropyCallback` also records the value it writes as ``train/ent_coef_target``).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from herexp.tracking import TRAIN_ENT_COEF_TARGET


def current_ent_coef(model: BaseAlgorithm) -> float | None:
    """The coefficient the next gradient step will use; None for algorithms without one (TD3,
    DDPG). One host sync: not for hot loops."""
    if getattr(model, "log_ent_coef", None) is not None:
        return float(th.exp(model.log_ent_coef.detach()).item())
    if getattr(model, "ent_coef_tensor", None) is not None:
        return float(model.ent_coef_tensor.item())
    return None


class Controller(Protocol):
    """A coefficient as a function of env steps (``schedule``, ``adaptive``)."""

    def __call__(self, num_timesteps: int) -> float: ...


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

    __call__ = update


def install_floor(model: BaseAlgorithm, vmin: float) -> None:
    """Make ``log_ent_coef >= log(vmin)`` hold after every entropy-optimizer step.

    A post-step hook on SB3's ``ent_coef_optimizer`` runs after each gradient step (also
    when ``gradient_steps > 1``), so the coefficient the loss reads in the next step is never
    below the floor — a hard floor, not a periodic soft clamp.
    """
    if getattr(model, "ent_coef_optimizer", None) is None:
        raise ValueError("entropy=auto_floor needs a learned coefficient (ent_coef='auto')")
    log_min = math.log(vmin)

    def _clamp(_opt: th.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        with th.no_grad():
            model.log_ent_coef.clamp_(min=log_min)

    model.ent_coef_optimizer.register_step_post_hook(_clamp)
    _clamp(model.ent_coef_optimizer, None, None)  # an initial value below the floor, too


class EntropyCallback(BaseCallback):
    """Writes ``controller(num_timesteps)`` into ``model.ent_coef_tensor`` after every vector step.

    ``_on_step`` runs after every vector step, before the next gradient step, so the value
    written here is exactly the one the next update uses. With ``success_key`` the controller
    also sees every finished training episode (``info[success_key]``; the adaptive option).
    """

    def __init__(self, controller: Controller, success_key: str | None = None) -> None:
        super().__init__()
        self.controller, self.success_key = controller, success_key

    def _on_training_start(self) -> None:
        self._apply(self.controller(self.num_timesteps))

    def state_dict(self) -> dict[str, Any]:
        """The adaptive controller's value, next check and success window (herexp.checkpoint);
        a schedule is a function of the env step and has no state."""
        return {"adaptive": dict(vars(self.controller))} if self.success_key else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.success_key and "adaptive" in state:
            vars(self.controller).update(state["adaptive"])

    def _apply(self, value: float) -> None:
        self.model.ent_coef_tensor.fill_(value)
        self.logger.record(TRAIN_ENT_COEF_TARGET, value)

    def _on_step(self) -> bool:
        if self.success_key:
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                if done and self.success_key in info:
                    self.controller.add_episode(bool(info[self.success_key]))  # type: ignore[attr-defined]
        self._apply(self.controller(self.num_timesteps))
        return True
