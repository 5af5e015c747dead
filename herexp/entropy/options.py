"""The ``entropy=`` options: one class each, owning its SB3 arguments, callbacks, checks and label.

==============  ======================  ====================================================
option          class                   what it does
==============  ======================  ====================================================
``fixed``       :class:`Fixed`          constant coefficient ``value`` (``fixed_005``, ``fixed_01``,
                                        ``fixed_02`` are presets of it; 0.05 is the chapter's best on Push)
``auto``        :class:`Auto`           SB3's automatic tuning towards ``target_entropy``
                                        (collapses on sparse Push)
``auto_floor``  :class:`AutoFloor`      automatic tuning that never goes below ``min`` (hard floor)
``schedule``    :class:`Schedule`       hold ``max`` for ``warmup_frac`` of training, then linear to ``min``
``adaptive``    :class:`Adaptive`       every ``check_freq`` env steps, nudge the coefficient
                                        towards a target rolling success
``none``        :class:`NoEntropy`      algorithms without an entropy term (``algo=td3``, ``algo=ddpg``
                                        select it)
==============  ======================  ====================================================

Each class is a dataclass whose fields are the option's keys (defaults and docs live here
once); :mod:`herexp.options` registers it as the option's structured config. What the
methods guarantee:

* :meth:`EntropyOption.model_kwargs` are the ``ent_coef`` / ``target_entropy`` arguments of
  SB3's ``SAC`` (and sb3-contrib's ``TQC``, which reads the same attributes);
* :meth:`EntropyOption.attach` finishes the wiring on the built model and returns the callbacks
  ``learn`` needs; what changes is what the loss reads (``ent_coef_tensor`` / ``log_ent_coef``,
  see :mod:`herexp.entropy.control`), in environment steps;
* :meth:`EntropyOption.validate` raises one-line ``ValueError`` s naming key, value, range and fix;
* :attr:`EntropyOption.label` names runs (``ent0.05``, ``entauto``, ``entschedule``; ``""`` for none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from herexp import labels, options
from herexp.options import check

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback

GROUP = "entropy"


def _g(value: float) -> str:
    return labels.number(float(value))  # reads back as the value: distinct values, distinct run names


@dataclass
class EntropyOption:
    """What every ``entropy=`` option provides (the base has no keys)."""

    name: ClassVar[str] = ""  # the option name: entropy=<name>

    def validate(self, total_steps: int) -> None:
        """Ranges the types cannot express (``ValueError``: key, value, range, fix)."""

    def model_kwargs(self) -> dict[str, Any]:
        """SB3 constructor arguments (``ent_coef``, ``target_entropy``)."""
        return {}

    def attach(self, model: BaseAlgorithm, total_steps: int) -> list[BaseCallback]:
        """Finish the wiring on a built model; return the callbacks ``learn`` needs."""
        return []

    @property
    def label(self) -> str:
        """The option's label in run names and W&B tags."""
        return f"ent{self.name}"

    @property
    def ent_coef(self) -> Optional[float]:
        """The constant coefficient, when the option fixes one (the ``ent_coef`` factor)."""
        return None


@dataclass
class Fixed(EntropyOption):
    """A constant coefficient: SAC's loss uses ``value`` in every gradient step."""

    name: ClassVar[str] = "fixed"
    value: float = 0.05  # the coefficient (the chapter's best on sparse Push)

    def validate(self, total_steps: int) -> None:
        check(self.value > 0, "entropy.value", self.value, "> 0", "entropy.value=0.05")

    def model_kwargs(self) -> dict[str, Any]:
        return {"ent_coef": float(self.value)}

    @property
    def label(self) -> str:
        return f"ent{_g(self.value)}"

    @property
    def ent_coef(self) -> Optional[float]:
        return float(self.value)


@dataclass
class Auto(EntropyOption):
    """SB3's automatic tuning: ``log_ent_coef`` is learned so the policy entropy tracks ``target_entropy``."""

    name: ClassVar[str] = "auto"
    target_entropy: Any = "auto"  # "auto" (= -dim A) or a number
    init: Optional[float] = None  # initial coefficient (null = SB3's 1.0)

    def validate(self, total_steps: int) -> None:
        te = self.target_entropy
        ok = te == "auto" or (isinstance(te, (int, float)) and not isinstance(te, bool) and math.isfinite(te))
        check(ok, "entropy.target_entropy", te, '"auto" or a finite number', "entropy.target_entropy=auto")
        check(self.init is None or self.init > 0, "entropy.init", self.init, "> 0 (initial coefficient) or null",
              "entropy.init=null")

    def model_kwargs(self) -> dict[str, Any]:
        te = self.target_entropy
        return {"ent_coef": "auto" if self.init is None else f"auto_{float(self.init)}",
                "target_entropy": te if te == "auto" else float(te)}

    @property
    def label(self) -> str:
        return f"ent{self.name}" + ("" if self.init is None else _g(self.init))


@dataclass
class AutoFloor(Auto):
    """Automatic tuning with a hard floor: ``log_ent_coef >= log(min)`` after every gradient step."""

    name: ClassVar[str] = "auto_floor"
    min: float = 0.01  # the floor

    def validate(self, total_steps: int) -> None:
        super().validate(total_steps)
        check(self.min > 0, "entropy.min", self.min, "> 0 (the floor)", "entropy.min=0.01")

    def attach(self, model: BaseAlgorithm, total_steps: int) -> list[BaseCallback]:
        from herexp.entropy.control import install_floor

        install_floor(model, float(self.min))
        return []


def _check_range(vmin: float, vmax: float, warmup_frac: float) -> None:
    check(0 < vmin <= vmax, "entropy.min", vmin, f"in (0, entropy.max={vmax}]", "entropy.min=0.01")
    check(0.0 <= warmup_frac < 1.0, "entropy.warmup_frac", warmup_frac, "in [0, 1)", "entropy.warmup_frac=0.1")


@dataclass
class Schedule(EntropyOption):
    """Hold ``max`` for ``warmup_frac`` of ``total_steps`` (env steps), then decay linearly to ``min``."""

    name: ClassVar[str] = "schedule"
    max: float = 0.3  # the value at the start
    min: float = 0.01  # the value at total_steps
    warmup_frac: float = 0.1  # fraction of total_steps held at max

    def validate(self, total_steps: int) -> None:
        _check_range(self.min, self.max, self.warmup_frac)

    def model_kwargs(self) -> dict[str, Any]:
        # a float coefficient: SAC builds ent_coef_tensor (nothing learned), the callback writes it
        return {"ent_coef": float(self.max)}

    def attach(self, model: BaseAlgorithm, total_steps: int) -> list[BaseCallback]:
        from herexp.entropy.control import EntropyCallback, LinearSchedule

        return [EntropyCallback(LinearSchedule(self.max, self.min, self.warmup_frac, total_steps))]


@dataclass
class Adaptive(EntropyOption):
    """Every ``check_freq`` env steps after the warm-up, once ``window`` episodes finished: x(1+rate)
    when the rolling success is below ``target - tolerance``, x(1-rate) above ``target + tolerance``,
    clamped to [min, max]."""

    name: ClassVar[str] = "adaptive"
    init: Optional[float] = None  # start value (null = max)
    min: float = 0.01  # lower clamp
    max: float = 0.3  # upper clamp
    check_freq: int = 1000  # env steps between adjustments
    warmup_frac: float = 0.05  # fraction of total_steps before the first adjustment
    target: float = 0.2  # target rolling success rate
    tolerance: float = 0.05  # dead band around the target
    rate: float = 0.1  # multiplicative step
    window: int = 200  # episodes in the rolling success window
    key: str = "is_success"  # info key counted as success

    @property
    def start(self) -> float:
        """The coefficient at step 0: ``init``, else ``max``."""
        return float(self.max if self.init is None else self.init)

    def validate(self, total_steps: int) -> None:
        if self.init is not None:
            check(self.min <= self.init <= self.max, "entropy.init", self.init, f"in [entropy.min, entropy.max] = "
                  f"[{self.min}, {self.max}] (adaptive start value)", "entropy.init=null")
        _check_range(self.min, self.max, self.warmup_frac)
        check(0 < self.check_freq <= total_steps, "entropy.check_freq", self.check_freq,
              f"in (0, total_steps={total_steps}]", "entropy.check_freq=1000")
        check(0 < self.rate < 1, "entropy.rate", self.rate, "in (0, 1)", "entropy.rate=0.1")
        check(self.window >= 1, "entropy.window", self.window, ">= 1", "entropy.window=200")
        check(0 <= self.target <= 1, "entropy.target", self.target, "in [0, 1]", "entropy.target=0.2")
        check(self.tolerance >= 0, "entropy.tolerance", self.tolerance, ">= 0", "entropy.tolerance=0.05")

    def model_kwargs(self) -> dict[str, Any]:
        return {"ent_coef": self.start}

    def attach(self, model: BaseAlgorithm, total_steps: int) -> list[BaseCallback]:
        from herexp.entropy.control import AdaptiveController, EntropyCallback

        controller = AdaptiveController(self.start, self.min, self.max, self.target, self.tolerance, self.rate,
                                        self.window, self.check_freq, int(self.warmup_frac * total_steps))
        return [EntropyCallback(controller, success_key=self.key)]

    @property
    def label(self) -> str:
        return f"ent{self.name}" + ("" if self.init is None else _g(self.init))


@dataclass
class NoEntropy(EntropyOption):
    """No entropy term: deterministic-policy algorithms (TD3, DDPG) explore with action noise."""

    name: ClassVar[str] = "none"

    @property
    def label(self) -> str:
        return ""  # run names of TD3/DDPG carry no entropy part: push_td3_her_seed0


OPTIONS: dict[str, type[EntropyOption]] = {
    c.name: c for c in (Fixed, Auto, AutoFloor, Schedule, Adaptive, NoEntropy)}


def register() -> None:
    """Store every option's schema (``schema/entropy/<name>``) in Hydra's ConfigStore."""
    options.register_all(GROUP, OPTIONS)


def option(node: Any) -> EntropyOption:
    """The entropy option of a composed ``cfg.entropy`` node."""
    return options.build_as(node, GROUP, EntropyOption, "entropy=auto")
