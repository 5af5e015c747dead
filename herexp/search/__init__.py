"""Search: herexp's Optuna sweeper (``--multirun hydra/sweeper=optuna``) and its study.

The Hydra plugin (``hydra_plugins/herexp_optuna``) is a thin shell; the domain lives here:

* :mod:`~herexp.search.settings` -- the sweeper's keys (``hydra.sweeper.*``), checked, and the
  Optuna sampler and pruner they name;
* :mod:`~herexp.search.space` -- the search space in Hydra's override grammar (``choice``,
  ``range``, ``interval``, ``tag(log, ...)``) as Optuna distributions, and a trial's overrides;
* :mod:`~herexp.search.check` -- the command-line check before any trial starts;
* :mod:`~herexp.search.storage` -- the study in a journal file in the sweep folder;
* :mod:`~herexp.search.driver` -- trials as ordinary runs through the configured launcher,
  ``n_jobs`` runs in flight, resume, values told to the study, a progress line per trial;
* :mod:`~herexp.search.reporter` -- inside a trial's run: periodic evaluations reported to the
  study, pruning (status ``pruned``);
* :mod:`~herexp.search.report` and :mod:`~herexp.search.listing` -- the study in
  ``herexp.aggregate`` and ``herexp.sweep list``.

Nothing here imports Optuna at module level except the modules that talk to a study, so
composing a config and checking a command line stay fast.
"""

from __future__ import annotations

from typing import Any

SWEEPER_TARGET = "hydra_plugins.herexp_optuna.optuna_sweeper.HerexpOptunaSweeper"
STUDY_FILE = "study.json"  # in the sweep folder: the study's settings, space and storage
JOURNAL_FILE = "optuna.journal"  # in the sweep folder: the default storage (Optuna's JournalStorage)


def is_search(config: Any) -> bool:
    """True when a composed config (with its ``hydra`` node) selects herexp's Optuna sweeper."""
    try:
        target = config.hydra.sweeper.get("_target_")
    except (AttributeError, KeyError):
        return False
    return str(target) == SWEEPER_TARGET
