"""A search command checked before any trial starts (``python -m herexp.train --multirun
hydra/sweeper=optuna ...``), as :mod:`herexp.preflight` checks a grid.

The sweeper's keys and the search space are parsed (:func:`herexp.search.driver.plan`), then a
few jobs are composed and validated like any run: every parameter at its extremes (each value of
a choice), the others at their first value. A parameter that is not a config key, a value out of
range or an option that does not exist is one ``UsageError`` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig

from herexp import jobs
from herexp.cli import UsageError, did_you_mean
from herexp.search import driver


def check(composer: Any, overrides: Sequence[str], base: DictConfig,
          check_job: Callable[[DictConfig, Sequence[str]], None]) -> int:
    """Check a search command (``base``: its fixed overrides composed, Hydra config included);
    return the number of runs it will make. ``composer`` and ``check_job`` are the preflight's."""
    s, sp = driver.plan(base, list(overrides))
    _check_groups(composer, sp)
    first = sp.probes()[0]
    for probe in sp.probes():
        varied = next((k for k, v in probe.items() if v != first[k]), next(iter(probe)))
        job = sp.overrides(probe)
        try:
            check_job(composer.compose(job), composer.known)
        except UsageError as exc:
            raise UsageError(f"{exc} (search space: {sp.keys[varied]}={sp.text[varied]})") from exc
    n_trials = min(s.n_trials, sp.grid_size()) if s.sampler == "grid" else s.n_trials
    return n_trials * s.seeds_per_trial


def _check_groups(composer: Any, sp: Any) -> None:
    """A parameter over an option group (``entropy=choice(fixed_005,fixed_01)``) chooses options."""
    from optuna.distributions import CategoricalDistribution

    for key, d in sp.params.items():
        if key not in jobs.GROUPS:
            continue
        if not isinstance(d, CategoricalDistribution):
            raise UsageError(f"{key}={sp.text[key]}: {key} is an option group; search it with "
                             f"{key}=choice(a,b,...)")
        options = composer.jobs.options(key)
        for value in d.choices:
            if str(value) not in options:
                raise UsageError(f"{key}={value} is not an option{did_you_mean(str(value), options)}: choose "
                                 f"one of {', '.join(options)} (herexp/conf/{key}/)")
