"""Run checkpoints: write ``<run>/checkpoint/`` every ``checkpoint.every`` env steps and on
SIGINT / SIGTERM / SIGUSR2, and resume from it when the same command runs again.

Layout (written into ``checkpoint.tmp/``, then renamed over ``checkpoint/``)::

    weights.pt         policy weights and the actor / critic / entropy optimizer states
    replay_buffer.pkl  the replay buffer up to its write head (HER episode bookkeeping included)
    state.pkl          RNGs, env physics, SB3's loop state, VecNormalize statistics, callbacks
    state.json         num_timesteps, train time so far, W&B run id, config — written LAST:
                       a checkpoint without it is incomplete and ignored

A checkpoint is written at the start of a rollout (after the previous gradient steps), the one
point where buffer, envs and networks agree. A signal only raises a flag; the checkpoint is
written at the next rollout start, then training stops (:class:`StopRequested`). A second
Ctrl-C stops at once. Only the latest checkpoint is kept; it is deleted when the run completes
unless ``checkpoint.keep=true``.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from herexp import identity, legacy, runfolder, snapshot
from herexp.callbacks import EveryNEnvSteps

log = logging.getLogger(__name__)

DIR = "checkpoint"
STATE_JSON = "state.json"
# A resumed run may differ in bookkeeping (herexp.identity) and in when it stops early.
RESUMABLE_CHANGES = ("early_stop",)
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR2", None)) if s is not None)


class StopRequested(Exception):
    """A signal asked the run to stop; the checkpoint at ``steps`` env steps is written."""

    def __init__(self, signum: int, steps: int, checkpointed: bool) -> None:
        super().__init__(f"{signal.Signals(signum).name} at {steps} env steps")
        self.signum, self.steps, self.checkpointed = signum, steps, checkpointed


def path(run_dir: Path) -> Path:
    return Path(run_dir) / DIR


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """``state.json`` of a complete checkpoint, or None."""
    try:
        data = runfolder.read_json(path(run_dir) / STATE_JSON)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys (bookkeeping keys excluded) whose values differ between two resolved configs."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        full = f"{prefix}{key}"
        if not prefix and (identity.is_bookkeeping(key) or key in RESUMABLE_CHANGES):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, full + ".")
        elif a != b:
            out.append(full)
    return out


def save(run_dir: Path, model: BaseAlgorithm, callbacks: Sequence[BaseCallback], info: dict[str, Any]) -> float:
    """Write the checkpoint atomically; return the seconds it took."""
    t0 = time.perf_counter()
    final, tmp = path(run_dir), Path(run_dir) / (DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(snapshot.weights_state(model), tmp / "weights.pt")
    with open(tmp / "replay_buffer.pkl", "wb") as f:
        pickle.dump(snapshot.buffer_state(model), f, protocol=pickle.HIGHEST_PROTOCOL)
    cb_states = {i: cb.state_dict() for i, cb in enumerate(callbacks) if hasattr(cb, "state_dict")}
    with open(tmp / "state.pkl", "wb") as f:
        pickle.dump({**snapshot.capture(model), "callbacks": cb_states}, f, protocol=pickle.HIGHEST_PROTOCOL)
    runfolder.write_json_atomic(tmp / STATE_JSON, {"num_timesteps": int(model.num_timesteps), **info})
    old = Path(run_dir) / (DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return time.perf_counter() - t0


def load(run_dir: Path, model: BaseAlgorithm, callbacks: Sequence[BaseCallback]) -> None:
    """Put a freshly built model (same config) and its callbacks in the checkpoint's state."""
    d = path(run_dir)
    snapshot.set_weights_state(model, torch.load(d / "weights.pt", weights_only=False))
    with open(d / "replay_buffer.pkl", "rb") as f:
        snapshot.set_buffer_state(model, pickle.load(f))
    with open(d / "state.pkl", "rb") as f:
        state = pickle.load(f)
    snapshot.restore(model, state)
    for i, cb in enumerate(callbacks):
        if i in state["callbacks"]:
            cb.load_state_dict(state["callbacks"][i])  # type: ignore[attr-defined]


def remove(run_dir: Path) -> None:
    for name in (DIR, DIR + ".tmp", DIR + ".old"):
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


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop metrics.csv rows after ``step`` (written after the checkpoint by the stopped attempt)."""
    p = Path(run_dir) / runfolder.METRICS
    if not p.exists():
        return
    lines = p.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(float(ln.split(",", 1)[0])) <= step]
    p.write_text("".join(kept))


def truncate_tensorboard(run_dir: Path, step: int) -> None:
    """Rewrite the TensorBoard event files keeping only events at or before ``step``, so the
    resumed attempt's events continue the curve with no duplicated or backward steps."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    tb = Path(run_dir) / runfolder.TENSORBOARD_DIR
    files = sorted(tb.glob("events.out.tfevents.*")) if tb.is_dir() else []
    if not files:
        return
    kept = [e for f in files for e in EventFileLoader(str(f)).Load() if e.step <= step and not e.file_version]
    for f in files:
        f.unlink()
    writer = EventFileWriter(str(tb), filename_suffix=".kept")
    for event in kept:
        writer.add_event(event)
    writer.close()
    # TensorBoard reads event files in name order: the kept history must sort before the file the
    # resumed attempt writes next, so it takes the name of the stopped attempt's first file.
    for written in tb.glob("events.out.tfevents.*.kept"):
        written.rename(files[0])


def cleanup_attempt(run_dir: Path) -> None:
    """A run starting over: remove what an earlier attempt left (W&B runs, TensorBoard events,
    summary, curve, results, checkpoint), so the folder syncs as one W&B run with one curve."""
    run_dir = Path(run_dir)
    stale = runfolder.clear_attempt(run_dir)
    for name in (runfolder.METRICS, runfolder.EVAL, runfolder.META, runfolder.MODEL, runfolder.VECNORM):
        if (run_dir / name).exists():
            (run_dir / name).unlink()
            stale.append(run_dir / name)
    if path(run_dir).exists():
        stale.append(path(run_dir))
    remove(run_dir)
    if stale:
        log.info("cleared an earlier attempt: %s", ", ".join(p.name for p in stale))



class ResumeMismatch(Exception):
    """The run folder's checkpoint was made with a different config."""


def plan(run_dir: Path, resolved: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """Decide how a run starts: the checkpoint's state.json to resume from, or None to start over
    (after clearing what an earlier failed, interrupted or killed attempt left behind)."""
    run_dir = Path(run_dir)
    state = read_state(run_dir) if resume else None
    if state is not None and runfolder.status(run_dir) != runfolder.STATUS_FAILED:
        # a checkpoint written before options owned their code compares in today's shape
        diffs = config_differences(legacy.upgrade(state.get("config") or {}), resolved)
        if diffs:
            raise ResumeMismatch(
                f"{run_dir} has a checkpoint at {state['num_timesteps']} env steps made with a different "
                f"config ({', '.join(diffs[:5])}{' ...' if len(diffs) > 5 else ''}). Fix: rerun with the same "
                "settings, or resume=false to start over")
        return state
    cleanup_attempt(run_dir)
    return None
