"""Where a study lives: Optuna's journal storage in the sweep folder (no database server).

The default storage is ``<sweep dir>/optuna.journal`` (``JournalStorage`` over a
``JournalFileBackend``): one append-only file, locked per write, which every process of the
study opens on its own (the sweeper, and each trial's run to report its evaluations), also on a
shared filesystem under SLURM. ``hydra.sweeper.storage`` may name another journal file or an RDB
URL (``sqlite:///study.db``, ``postgresql://...``).

The study records herexp's settings as its user attribute ``herexp`` (:data:`META_KEY`): the
search space, direction, seeds per trial and the pruner, so a trial's run rebuilds the same
pruner and a rerun with another space is refused instead of mixing two searches in one study.
A trial records ``overrides`` (for its resume), ``folders`` and ``seeds`` (user attributes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from herexp.cli import UsageError
from herexp.search import JOURNAL_FILE

META_KEY = "herexp"
LOCK_FILE = ".study.lock"
SAME_STUDY_KEYS = ("space", "direction", "seeds_per_trial")  # a rerun must agree on these


def storage_spec(storage: str | None, sweep_dir: str | Path) -> str:
    """The storage a study's processes open: an RDB URL as given, a journal file as an absolute
    path (default ``<sweep dir>/optuna.journal``)."""
    if storage and "://" in storage:
        return storage
    return str(Path(storage or Path(sweep_dir) / JOURNAL_FILE).resolve())


def open_storage(spec: str) -> Any:
    """The Optuna storage of a spec (:func:`storage_spec`); Optuna's info logging off."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(spec))


def create_or_load(spec: str, name: str, meta: dict[str, Any], sampler: Any, pruner: Any) -> Any:
    """The study ``name`` in the storage, created with ``meta`` or loaded when it exists; a
    UsageError when the existing study was made with another space, direction or seed count."""
    import optuna

    study = optuna.create_study(storage=open_storage(spec), study_name=name, direction=meta["direction"],
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    old = study.user_attrs.get(META_KEY)
    if old is None:
        study.set_user_attr(META_KEY, meta)
        return study
    changed = [k for k in SAME_STUDY_KEYS if old.get(k) != meta.get(k)]
    if changed:
        raise UsageError(f"study {name} in {spec} was made with another {', '.join(changed)} "
                         f"({len(study.trials)} trials so far). Fix: the same search as before, another study=, "
                         f"or delete {spec} to start over")
    if old != meta:  # the pruner may change between sessions: the trials' runs read it from here
        study.set_user_attr(META_KEY, meta)
    return study


def load_for_trial(spec: str, name: str) -> tuple[Any, Any]:
    """``(study, its storage)`` as a trial's run opens them: the study with its own pruner."""
    import optuna

    from herexp.search.settings import make_pruner

    storage = open_storage(spec)
    meta = optuna.load_study(study_name=name, storage=storage).user_attrs.get(META_KEY) or {}
    pruner = make_pruner(meta.get("pruner", "none"), dict(meta.get("pruner_kwargs") or {}))
    return optuna.load_study(study_name=name, storage=storage, pruner=pruner), storage


def read_study(spec: str, name: str | None = None) -> Any:
    """An existing study, for reports and listings (the only one in the storage when ``name`` is None)."""
    import optuna

    storage = open_storage(spec)
    if name is None:
        names = optuna.get_all_study_names(storage)
        if len(names) != 1:
            raise ValueError(f"{spec} holds {len(names)} studies ({', '.join(names)}): name one")
        name = names[0]
    return optuna.load_study(study_name=name, storage=storage)


@contextlib.contextmanager
def sweeper_lock(sweep_dir: str | Path, name: str) -> Iterator[None]:
    """Held while a sweeper runs the study: a second sweeper of the same study is refused
    (a killed one releases it with its process)."""
    path = Path(sweep_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise UsageError(f"study {name} is already running (sweeper pid {f.read().strip() or '?'}, {path}); "
                             "wait for it, or stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
