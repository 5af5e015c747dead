"""The Optuna sweeper's keys (``hydra.sweeper.*``): schema, checks, and the sampler and pruner.

``hydra/sweeper=optuna`` selects :class:`SweeperConfig` (registered by the Hydra plugin
``hydra_plugins/herexp_optuna``); every key is typed there, with its default and a one-line doc.
:func:`settings` checks the ranges types cannot express, each problem one ``UsageError``
naming the key, what is allowed and a fix. :func:`make_sampler` and :func:`make_pruner` build the
Optuna objects the names stand for; ``sampler_kwargs`` / ``pruner_kwargs`` go to their
constructors (an unknown argument is a one-line error with a did-you-mean).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from herexp.cli import UsageError, did_you_mean
from herexp.search import SWEEPER_TARGET

DIRECTIONS = ("maximize", "minimize")
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler"}
PRUNERS = {"median": "MedianPruner", "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner", "none": "NopPruner"}


@dataclass
class SweeperConfig:
    """herexp's Optuna sweeper (``hydra/sweeper=optuna``): each trial is an ordinary herexp run."""

    _target_: str = SWEEPER_TARGET
    n_trials: int = 20  # trials in the study, counted over every session (a rerun continues to this many)
    direction: str = "maximize"  # maximize | minimize the trial value: the mean final eval success of its seeds
    sampler: str = "tpe"  # tpe | random | grid (grid: every point of a discrete space once)
    seed: Optional[int] = None  # the sampler's seed (null: a random one)
    sampler_kwargs: Dict[str, Any] = field(default_factory=dict)  # more arguments of the Optuna sampler
    pruner: str = "median"  # median | successive_halving | hyperband | none, on the periodic evaluations
    pruner_kwargs: Dict[str, Any] = field(default_factory=dict)  # arguments of the Optuna pruner (steps: env steps)
    seeds_per_trial: int = 1  # runs per trial, seeds seed .. seed+k-1; value and pruning use their mean
    storage: Optional[str] = None  # null: a journal file <sweep dir>/optuna.journal; or a file path / RDB URL
    n_jobs: Optional[int] = None  # runs in flight at once (null: the joblib launcher's n_jobs, else 1)
    params: Dict[str, Any] = field(default_factory=dict)  # the search space: key -> choice(...) | range(...) | interval(...)


@dataclass(frozen=True)
class Settings:
    """The checked sweeper keys (``params`` apart: :mod:`herexp.search.space`)."""

    n_trials: int
    direction: str
    sampler: str
    seed: int | None
    sampler_kwargs: dict[str, Any]
    pruner: str
    pruner_kwargs: dict[str, Any]
    seeds_per_trial: int
    storage: str | None
    n_jobs: int | None


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def settings(node: Any) -> Settings:
    """The sweeper's keys from ``hydra.sweeper`` (a config node or a mapping), checked."""
    get = node.get
    s = Settings(n_trials=int(get("n_trials", 20)), direction=str(get("direction", "maximize")),
                 sampler=str(get("sampler", "tpe")), seed=get("seed"),
                 sampler_kwargs=dict(_plain(get("sampler_kwargs")) or {}), pruner=str(get("pruner", "median")),
                 pruner_kwargs=dict(_plain(get("pruner_kwargs")) or {}),
                 seeds_per_trial=int(get("seeds_per_trial", 1)), storage=get("storage"), n_jobs=get("n_jobs"))
    if s.n_trials <= 0:
        raise UsageError(f"hydra.sweeper.n_trials={s.n_trials} is invalid: must be >= 1. Fix: hydra.sweeper.n_trials=20")
    if s.seeds_per_trial < 1:
        raise UsageError(f"hydra.sweeper.seeds_per_trial={s.seeds_per_trial} is invalid: must be >= 1. "
                         "Fix: hydra.sweeper.seeds_per_trial=1")
    if s.n_jobs is not None and s.n_jobs < 1:
        raise UsageError(f"hydra.sweeper.n_jobs={s.n_jobs} is invalid: must be >= 1 or null (the launcher's). "
                         "Fix: hydra.sweeper.n_jobs=2")
    for key, value, names in (("direction", s.direction, DIRECTIONS), ("sampler", s.sampler, SAMPLERS),
                              ("pruner", s.pruner, PRUNERS)):
        if value not in names:
            raise UsageError(f"hydra.sweeper.{key}={value} is not one of {', '.join(names)}"
                             f"{did_you_mean(value, names)}")
    _check_kwargs("sampler", _optuna_class("samplers", SAMPLERS[s.sampler]), s.sampler_kwargs,
                  reserved=("seed", "search_space"))
    _check_kwargs("pruner", _optuna_class("pruners", PRUNERS[s.pruner]), s.pruner_kwargs)
    return s


def _optuna_class(module: str, name: str) -> type:
    import optuna

    return getattr(getattr(optuna, module), name)


def _check_kwargs(what: str, cls: type, kwargs: dict[str, Any], reserved: tuple[str, ...] = ()) -> None:
    """Every ``<what>_kwargs`` key is an argument of the Optuna class (``seed`` has its own key)."""
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", *reserved)]
    for key in kwargs:
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            raise UsageError(f"hydra.sweeper.{what}_kwargs.{key} is not an argument of optuna's {cls.__name__}"
                             f"{did_you_mean(key, allowed)} (its arguments: {listed})")


def make_sampler(s: Settings, grid: dict[str, list[Any]] | None = None) -> Any:
    """The Optuna sampler of the settings; ``grid`` is the search space for ``sampler=grid``."""
    cls = _optuna_class("samplers", SAMPLERS[s.sampler])
    if s.sampler == "grid":
        return cls(grid or {}, seed=s.seed, **s.sampler_kwargs)
    return cls(seed=s.seed, **s.sampler_kwargs)


def make_pruner(name: str, kwargs: dict[str, Any]) -> Any:
    """The Optuna pruner ``name`` with ``kwargs`` (steps are env steps)."""
    return _optuna_class("pruners", PRUNERS[name])(**kwargs)
