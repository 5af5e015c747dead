"""The run-folder contract: file names, JSON keys, CSV columns, atomic writes and readers.

Train, evaluate, sweep, video and aggregate all go through this module, so they cannot drift.
A run folder (Hydra's run dir) holds::

    .hydra/config.yaml      resolved config (Hydra)       train.log          the run's log
    model.zip               SB3 checkpoint                vecnormalize.pkl   obs statistics (if used)
    meta.json               versions, device, git, timing metrics.csv        one row per periodic eval
    eval.json               final evaluation              summary.json       written LAST, atomically
    tb/                     TensorBoard events            wandb/             W&B offline run

``summary.json`` is the commit record: a folder without one is unfinished; ``status`` is
``completed``, ``failed``, ``interrupted`` or ``pruned`` (a search trial's run the study stopped). Sweeps skip folders whose summary says ``completed``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from herexp import legacy

MODEL = "model.zip"
VECNORM = "vecnormalize.pkl"
META = "meta.json"
METRICS = "metrics.csv"
EVAL = "eval.json"
SUMMARY = "summary.json"
HYDRA_CONFIG = ".hydra/config.yaml"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"
TENSORBOARD_DIR = "tb"
WANDB_DIR = "wandb"
VIDEO_DIR = "videos"

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"  # stopped by Ctrl-C / SIGTERM; a rerun redoes it
STATUS_PRUNED = "pruned"  # a search trial's run stopped by the study's pruner: final, neither failed nor completed
STATUSES = (STATUS_COMPLETED, STATUS_FAILED, STATUS_INTERRUPTED, STATUS_PRUNED)

# metrics.csv: one row per periodic evaluation (and one for the final evaluation).
METRICS_COLUMNS = (
    "step",  # environment steps (num_timesteps) at the evaluation
    "eval_success_rate",  # fraction 0..1 of episodes successful at their last step
    "eval_return_mean",  # mean undiscounted episode return
    "eval_final_distance_mean",  # mean ||achieved - desired|| (m) at the last observation
    "eval_object_displacement_mean",  # mean distance (m) the object moved per episode (empty without one)
    "rollout_success_rate",  # training episodes (SB3's last 100), fraction 0..1
    "ent_coef",  # entropy coefficient SAC/TQC used in its latest gradient step (empty for TD3/DDPG)
    "actor_loss",
    "critic_loss",
    "fps",  # environment steps per second since the previous row
)

# eval.json aggregate keys; each per_episode entry has EPISODE_KEYS.
EVAL_KEYS = ("success_rate", "return_mean", "return_std", "final_distance_mean", "final_distance_std",
             "object_displacement_mean", "ep_len_mean", "n_episodes", "deterministic", "seeds", "per_episode")
EPISODE_KEYS = ("seed", "return", "length", "success", "final_distance", "time_to_success", "object_displacement")

# summary.json keys (status first; config is the resolved config).
SUMMARY_KEYS = ("status", "success_rate", "return_mean", "final_distance_mean", "total_steps",
                "train_time_s", "steps_per_s", "early_stopped_at_step", "diagnostics", "overrides", "config", "name",
                "error", "traceback")


def _clean(obj: Any) -> Any:
    """Make numpy scalars / NaN JSON-safe (NaN -> null, numpy -> Python)."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc).

    Elsewhere it is read by setting a restrictive 077 for an instant under a lock, so a file
    another thread creates meanwhile ends up too private rather than too open.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old


def file_mode() -> int:
    """Permissions of a newly created regular file: ``0o666`` less the umask (022 -> 0644)."""
    return 0o666 & ~current_umask()


class WriteFailed(OSError):
    """An OSError (a full disk, a read-only folder, ...) raised while writing a run file;
    ``filename`` is that file, ``errno`` and ``strerror`` are the cause's."""


@contextmanager
def writing(path: str | os.PathLike[str], discard: bool = False) -> Iterator[None]:
    """Turn an OSError raised in the block into :class:`WriteFailed` naming ``path``;
    ``discard``: remove what was written of ``path`` then (a part of a model reads as none)."""
    try:
        yield
    except OSError as exc:
        if discard:
            Path(path).unlink(missing_ok=True)
        if isinstance(exc, WriteFailed):
            raise
        raise WriteFailed(exc.errno, exc.strerror or str(exc), str(path)) from exc


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON to a temp file in the same folder, fsync, then rename over ``path``.

    The file gets the permissions ``open()`` would give it (0644 under umask 022), not the
    owner-only 0600 of the private temp file. On any error the temp file is removed and
    ``path`` is unchanged (:class:`WriteFailed` for an OSError).
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "w") as f:
                json.dump(_clean(obj), f, indent=2, sort_keys=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path) as f:
        return json.load(f)


def write_summary(run_dir: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write summary.json (last file of a run) atomically. ``status`` is required."""
    if summary.get("status") not in STATUSES:
        raise ValueError(f"summary status must be one of {STATUSES}")
    return write_json_atomic(Path(run_dir) / SUMMARY, summary)


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's summary, or None when missing or unreadable (unfinished or corrupt)."""
    try:
        data = read_json(Path(run_dir) / SUMMARY)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def status(run_dir: str | os.PathLike[str]) -> str | None:
    """``completed``, ``failed``, ``interrupted``, ``pruned`` or None (no readable summary: never started or killed)."""
    s = read_summary(run_dir)
    return s.get("status") if s else None


def is_completed(run_dir: str | os.PathLike[str]) -> bool:
    return status(run_dir) == STATUS_COMPLETED


def read_eval(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return read_json(Path(run_dir) / EVAL)


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return read_json(Path(run_dir) / META)


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved config of a run: summary.json's copy, else Hydra's .hydra/config.yaml; in
    today's shape also when saved before options owned their code (:func:`herexp.legacy.upgrade`)."""
    s = read_summary(run_dir)
    if s and isinstance(s.get("config"), dict):
        return legacy.upgrade(s["config"])
    from omegaconf import OmegaConf

    saved = OmegaConf.to_container(OmegaConf.load(Path(run_dir) / HYDRA_CONFIG), resolve=False)
    return legacy.upgrade(saved) if isinstance(saved, dict) else saved  # type: ignore[return-value]


def upgrade_metrics_header(path: Path) -> bool:
    """Rewrite a metrics.csv whose header is not :data:`METRICS_COLUMNS` under those columns
    (values by column name; columns it lacks stay empty). Returns whether it was rewritten."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) == METRICS_COLUMNS:
            return False
        rows = list(reader)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return True


class MetricsWriter:
    """Writes metrics.csv rows and flushes each one, so a killed run keeps its curve.

    ``fresh=True`` (a new attempt of a run) truncates rows left by an earlier, failed attempt.
    A resumed run whose file has another header (written before a column was added) gets its
    rows rewritten under today's columns first, the new ones empty.
    """

    def __init__(self, run_dir: str | os.PathLike[str], fresh: bool = False) -> None:
        self.path = Path(run_dir) / METRICS
        new = fresh or not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            upgrade_metrics_header(self.path)
        with writing(self.path):
            self._file = open(self.path, "w" if fresh else "a", newline="")  # noqa: SIM115 - closed in close()
            self._writer = csv.DictWriter(self._file, fieldnames=METRICS_COLUMNS, extrasaction="ignore")
            if new:
                self._writer.writeheader()
                self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(METRICS_COLUMNS)
        if unknown:  # a new metric must be added to METRICS_COLUMNS (and the README) first
            raise ValueError(f"unknown metrics.csv columns {sorted(unknown)}; known: {METRICS_COLUMNS}")
        with writing(self.path):
            self._writer.writerow({k: _clean(row.get(k)) for k in METRICS_COLUMNS})
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            with writing(self.path):
                self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | os.PathLike[str]):  # -> pandas.DataFrame
    """metrics.csv as a DataFrame with METRICS_COLUMNS (empty frame when missing)."""
    import pandas as pd

    path = Path(run_dir) / METRICS
    if not path.exists():
        return pd.DataFrame(columns=list(METRICS_COLUMNS))
    return pd.read_csv(path)


def clear_attempt(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete what an earlier, superseded attempt of this run left: its W&B offline runs
    (``wandb/``), TensorBoard event files (``tb/``) and summary.json (the folder is unfinished
    again until this attempt ends). A redone run starts over from step 0 under the same W&B
    id, so leftovers would sync as a second run or a curve stepping back. Returns what was removed."""
    import shutil

    removed = []
    for sub in (WANDB_DIR, TENSORBOARD_DIR, SUMMARY):
        path = Path(run_dir) / sub
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


def find_run_dirs(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Every folder below ``root`` (itself included) that looks like a run: it has a
    summary.json or a .hydra/config.yaml. Sorted, so reports are stable."""
    root = Path(root)
    seen: set[Path] = set()
    for marker in (SUMMARY, HYDRA_CONFIG):
        for p in root.rglob(marker):
            run = p.parent if marker == SUMMARY else p.parent.parent
            if WANDB_DIR in run.parts:  # wandb's own files are never runs
                continue
            seen.add(run)
    yield from sorted(seen)
