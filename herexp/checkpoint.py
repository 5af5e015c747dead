"""Run checkpoints: write ``<run>/checkpoint/`` every ``checkpoint.every`` env steps and on
SIGINT / SIGTERM / SIGUSR2, verified on disk, with the previous one kept.

Layout (written into ``checkpoint.tmp/``, verified, then renamed to ``checkpoint/``)::

    weights.pt         policy weights and the actor / critic / entropy optimizer states
    replay_buffer.pkl  the replay buffer up to its write head (HER episode bookkeeping included)
    state.pkl          RNGs, env physics, SB3's loop state, VecNormalize statistics, callbacks
    state.json         num_timesteps, train time so far, W&B run id, config and the size and
                       SHA-256 of every other file -- written LAST: a folder without it is incomplete

Each file is hashed while it is written, fsynced, then read back and compared; only a
checkpoint whose files all match goes live. The live one then becomes ``checkpoint.prev/`` and
the new one ``checkpoint/``, so the last good copy is never deleted before the new one is
proven. :func:`recover` is what a resume reads: the newest checkpoint whose files still match
their sizes and hashes, with what was damaged in the newer ones (a node crash, a full disk).

A checkpoint is written at the start of a rollout (after the previous gradient steps), the one
point where buffer, envs and networks agree. A signal only raises a flag; the checkpoint is
written at the next rollout start, then training stops (:class:`StopRequested`). A second
Ctrl-C stops at once. The checkpoints are deleted when the run completes unless ``checkpoint.keep=true``.
The resume decision (which checkpoint, which config) is :mod:`herexp.resume`.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import pickle
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from herexp import runfolder, snapshot
from herexp.callbacks import EveryNEnvSteps

log = logging.getLogger(__name__)

DIR = "checkpoint"  # the latest verified checkpoint
PREVIOUS = DIR + ".prev"  # the one before it, kept until a newer one is proven
TMP = DIR + ".tmp"  # being written; a stale one is removed on the next start
DAMAGED = DIR + ".damaged"  # a latest checkpoint that failed verification, set aside when resuming
_LEGACY_OLD = DIR + ".old"  # left by older herexp between two renames
STATE_JSON = "state.json"
WEIGHTS, BUFFER, STATE_PKL = "weights.pt", "replay_buffer.pkl", "state.pkl"
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR2", None)) if s is not None)
_CHUNK = 1 << 20


class StopRequested(Exception):
    """A signal asked the run to stop; the checkpoint at ``steps`` env steps is written."""

    def __init__(self, signum: int, steps: int, checkpointed: bool) -> None:
        super().__init__(f"{signal.Signals(signum).name} at {steps} env steps")
        self.signum, self.steps, self.checkpointed = signum, steps, checkpointed


def path(run_dir: Path) -> Path:
    """The latest checkpoint's folder, ``<run>/checkpoint``."""
    return Path(run_dir) / DIR


def _read_state_json(ckpt: Path) -> dict[str, Any] | None:
    try:
        data = runfolder.read_json(ckpt / STATE_JSON)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """``state.json`` of the latest checkpoint (not re-verified; see :func:`recover`), or None."""
    return _read_state_json(path(run_dir))


class _HashingWriter:
    """A binary file that hashes and counts what is written through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        """Hash, count and write ``data``: bytes, or any buffer (pickle protocol 5 hands large
        arrays over as ``PickleBuffer``)."""
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += view.nbytes
        return self.f.write(view)

    def flush(self) -> None:
        self.f.flush()


def _write(file: Path, dump: Callable[[Any], None]) -> dict[str, Any]:
    """Write ``file`` with ``dump(fileobj)``, fsync it; return its size and SHA-256."""
    with runfolder.writing(file), open(file, "wb") as f:
        w = _HashingWriter(f)
        dump(w)
        f.flush()
        os.fsync(f.fileno())
    return {"size": w.size, "sha256": w.sha.hexdigest()}


def _digest(file: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    with open(file, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def verify(ckpt: Path, state: dict[str, Any] | None = None) -> str | None:
    """What is wrong with a checkpoint folder (``"replay_buffer.pkl has 1024 of 37522 bytes"``),
    or None when every file matches the size and SHA-256 its ``state.json`` records.

    A checkpoint written before files were recorded (no ``files`` in ``state.json``) is taken as
    it is."""
    state = _read_state_json(ckpt) if state is None else state
    if state is None:
        return f"{STATE_JSON} is {'unreadable' if (ckpt / STATE_JSON).exists() else 'missing'}"
    for name, want in (state.get("files") or {}).items():
        try:
            size, sha = _digest(ckpt / name)
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror})"
        if size != want["size"]:
            return f"{name} has {size} of {want['size']} bytes"
        if sha != want["sha256"]:
            return f"{name} does not match its SHA-256"
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: Path, model: BaseAlgorithm, callbacks: Sequence[BaseCallback], info: dict[str, Any]) -> float:
    """Write a checkpoint, verify it on disk, then make it the latest (the previous one is kept
    as ``checkpoint.prev``); return the seconds it took. On any error nothing but the partial
    ``checkpoint.tmp`` changed, and that is removed: the latest checkpoint stays as it was."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    final, tmp, prev = path(run_dir), run_dir / TMP, run_dir / PREVIOUS
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with runfolder.writing(tmp):
            tmp.mkdir(parents=True)
        cb_states = {i: cb.state_dict() for i, cb in enumerate(callbacks) if hasattr(cb, "state_dict")}
        files = {
            WEIGHTS: _write(tmp / WEIGHTS, lambda f: torch.save(snapshot.weights_state(model), f)),
            BUFFER: _write(tmp / BUFFER, lambda f: pickle.dump(snapshot.buffer_state(model), f,
                                                               protocol=pickle.HIGHEST_PROTOCOL)),
            STATE_PKL: _write(tmp / STATE_PKL, lambda f: pickle.dump({**snapshot.capture(model), "callbacks": cb_states},
                                                                     f, protocol=pickle.HIGHEST_PROTOCOL)),
        }
        state = {"num_timesteps": int(model.num_timesteps), **info, "files": files}
        runfolder.write_json_atomic(tmp / STATE_JSON, state)
        problem = verify(tmp, state)
        if problem is not None:
            raise runfolder.WriteFailed(errno.EIO, f"the checkpoint does not read back ({problem})", str(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(prev, ignore_errors=True)
        final.rename(prev)
    tmp.rename(final)
    _fsync_dir(run_dir)
    return time.perf_counter() - t0


def load(run_dir: Path, model: BaseAlgorithm, callbacks: Sequence[BaseCallback]) -> None:
    """Put a freshly built model (same config) and its callbacks in the latest checkpoint's state."""
    d = path(run_dir)
    snapshot.set_weights_state(model, torch.load(d / WEIGHTS, weights_only=False))
    with open(d / BUFFER, "rb") as f:
        snapshot.set_buffer_state(model, pickle.load(f))
    with open(d / STATE_PKL, "rb") as f:
        state = pickle.load(f)
    snapshot.restore(model, state)
    for i, cb in enumerate(callbacks):
        if i in state["callbacks"]:
            cb.load_state_dict(state["callbacks"][i])  # type: ignore[attr-defined]


@dataclass
class Damage:
    """A checkpoint that failed verification: its folder, the problem, its env steps if known."""

    folder: Path
    problem: str
    steps: int | None

    def describe(self) -> str:
        """``<run>/checkpoint/replay_buffer.pkl has 1024 of 37522 bytes``."""
        return f"{self.folder}/{self.problem}"


def recover(run_dir: Path) -> tuple[dict[str, Any] | None, list[Damage]]:
    """The newest checkpoint that verifies (its ``state.json``, made the latest: a damaged latest
    is moved to ``checkpoint.damaged``) and the damaged ones newer than it. ``(None, [])``: no
    checkpoint at all."""
    run_dir = Path(run_dir)
    damaged: list[Damage] = []
    for name in (DIR, PREVIOUS, _LEGACY_OLD):
        folder = run_dir / name
        if not folder.is_dir():
            continue
        state = _read_state_json(folder)
        problem = verify(folder, state)
        if problem is None:
            if name != DIR:
                _promote(run_dir, folder)
            return state, damaged
        damaged.append(Damage(folder, problem, (state or {}).get("num_timesteps")))
    return None, damaged


def _promote(run_dir: Path, folder: Path) -> None:
    """Make an intact older checkpoint the latest; a damaged latest is kept aside, not deleted."""
    latest, aside = path(run_dir), Path(run_dir) / DAMAGED
    if latest.exists():
        shutil.rmtree(aside, ignore_errors=True)
        latest.rename(aside)
    folder.rename(latest)


def remove_stale(run_dir: Path) -> bool:
    """Remove a partly written ``checkpoint.tmp`` (a run killed while writing); True if there was one."""
    tmp = Path(run_dir) / TMP
    if not tmp.exists():
        return False
    shutil.rmtree(tmp, ignore_errors=True)
    return True


def remove(run_dir: Path) -> None:
    """Delete every checkpoint folder of the run (latest, previous, partial, set aside)."""
    for name in (DIR, TMP, PREVIOUS, DAMAGED, _LEGACY_OLD):
        shutil.rmtree(Path(run_dir) / name, ignore_errors=True)


class StopFlag:
    """Signal handlers that only raise a flag (SIGINT twice: stop at once)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Install for SIGINT/SIGTERM/SIGUSR2 (main thread only); SIGTERM is left to submitit
        when it owns it (it ignores SIGTERM and requeues on SIGUSR2, which is chained)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in STOP_SIGNALS:
            current = signal.getsignal(sig)
            if sig == signal.SIGTERM and _owned_by_submitit(current):
                continue
            self.previous[sig] = current
            signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)

    def chain(self) -> None:
        """After the checkpoint: let submitit requeue the job (its SIGUSR2 handler exits)."""
        handler = self.previous.get(self.signum) if self.signum is not None else None
        if self.signum != signal.SIGINT and callable(handler) and _owned_by_submitit(handler):
            handler(self.signum, None)


def _owned_by_submitit(handler: Any) -> bool:
    return type(getattr(handler, "__self__", None)).__module__.startswith("submitit")


class CheckpointCallback(BaseCallback):
    """Writes checkpoints every ``every`` env steps (0 = only on a stop signal) at rollout starts."""

    def __init__(self, run_dir: Path, every: int, flag: StopFlag, callbacks: Sequence[BaseCallback],
                 info: Any, enabled: bool = True) -> None:
        super().__init__()
        self.run_dir, self.flag, self.callbacks, self.info = Path(run_dir), flag, callbacks, info
        self.enabled = enabled  # False: envs in another process (algo.overlap_envs) cannot be captured
        self.due = EveryNEnvSteps(every if enabled else 0)
        self.last_step = -1
        self.seconds = 0.0

    def _init_callback(self) -> None:
        steps = self.model.num_timesteps  # > 0 when resumed: that checkpoint exists already
        self.due._last = steps // self.due.n if self.due.n > 0 else 0
        self.last_step = steps if steps > 0 else -1

    def _on_rollout_start(self) -> None:
        steps = self.model.num_timesteps
        periodic = self.due(steps)
        if self.enabled and (periodic or self.flag.signum is not None) and steps != self.last_step:
            self.seconds += save(self.run_dir, self.model, self.callbacks, self.info())
            self.last_step = steps
            log.info("checkpoint at %d env steps -> %s", steps, path(self.run_dir))
        if self.flag.signum is not None:
            raise StopRequested(self.flag.signum, steps, checkpointed=self.enabled)

    def _on_step(self) -> bool:
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"due": self.due._last, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.due._last, self.seconds = state["due"], state["seconds"]
