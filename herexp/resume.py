"""How a run starts in a folder that already holds something: skip, resume, refuse or start over.

* A folder whose ``summary.json`` says ``completed`` is **skipped** only when the config it
  recorded equals the job's (bookkeeping keys excepted, :func:`config_differences`; ``3e-4`` and
  ``0.0003`` are one value). Any other value is :class:`CompletedMismatch`: one line naming the
  folder, the keys and both values, and nothing is touched.
* A folder with a checkpoint **resumes** from the newest checkpoint that verifies
  (:func:`herexp.checkpoint.recover`); a damaged latest one falls back to the previous with one
  warning line (the file, the env steps lost). None intact: :class:`CheckpointDamaged`, which
  offers ``resume=false``. A checkpoint made with another config: :class:`ResumeMismatch`.
* Otherwise (nothing, a failed attempt, ``resume=false``) the run **starts over** after
  :func:`cleanup_attempt` removed what an earlier attempt left.
* :func:`write_failure` is the one line for a result that could not be written (a full disk).
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

from herexp import checkpoint, identity, legacy, runfolder

log = logging.getLogger("herexp.checkpoint")

# A resumed run may differ in bookkeeping (herexp.identity) and in when it stops early; a
# completed run is only the same result when everything else, early stopping included, is equal.
RESUMABLE_CHANGES = ("early_stop",)
_SHOWN = 5  # differing keys named in one line
FIX_SWEEP = "another study= (a new sweep folder), or remove the folder to redo the run"
FIX_RUN = "another hydra.run.dir, or remove the folder to redo the run"


class ResumeMismatch(Exception):
    """The run folder's checkpoint was made with a different config."""


class CompletedMismatch(Exception):
    """The run folder holds a completed run made with a different config."""


class CheckpointDamaged(Exception):
    """The run folder's checkpoints all fail verification."""


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "",
                       allowed: tuple[str, ...] = RESUMABLE_CHANGES) -> list[str]:
    """Dotted keys (bookkeeping keys and the top-level ``allowed`` excluded) whose values differ
    between two resolved configs. Numbers compare by value: ``3e-4 == 0.0003``, ``1 == 1.0``."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        full = f"{prefix}{key}"
        if not prefix and (identity.is_bookkeeping(key) or key in allowed):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, full + ".", allowed)
        elif a != b:
            out.append(full)
    return out


def _lookup(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "(absent)"
        node = node[part]
    return node


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def describe_differences(old: dict[str, Any], new: dict[str, Any], keys: list[str]) -> str:
    """``algo.gamma=0.9 there, 0.90000001 here; seed=0 there, 1 here`` (the first five keys)."""
    parts = [f"{k}={_show(_lookup(old, k))} there, {_show(_lookup(new, k))} here" for k in keys[:_SHOWN]]
    more = f"; ... ({len(keys) - _SHOWN} more keys)" if len(keys) > _SHOWN else ""
    return "; ".join(parts) + more


def completed_mismatch(run_dir: Path, resolved: dict[str, Any], fix: str) -> str | None:
    """The one-line reason a completed folder cannot stand for this job, or None (not completed,
    or completed with the same config: skip it). ``fix`` ends the line."""
    if not runfolder.is_completed(run_dir):
        return None
    try:
        recorded = runfolder.read_config(run_dir)
    except (OSError, ValueError):
        recorded = {}
    diffs = config_differences(recorded, resolved, allowed=())
    if not diffs:
        return None
    return (f"{run_dir} holds a completed run made with a different config ({describe_differences(recorded, resolved, diffs)}). "
            f"Fix: {fix}")


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop metrics.csv rows after ``step`` (written after the checkpoint by the stopped attempt)
    and any row cut short by a crash or a full disk."""
    p = Path(run_dir) / runfolder.METRICS
    if not p.exists():
        return
    lines = p.read_text().splitlines(keepends=True)
    n_fields = len(runfolder.METRICS_COLUMNS)

    def whole(ln: str) -> bool:
        return ln.endswith("\n") and len(ln.rstrip("\r\n").split(",")) == n_fields

    kept = lines[:1] + [ln for ln in lines[1:] if whole(ln) and int(float(ln.split(",", 1)[0])) <= step]
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
    if checkpoint.path(run_dir).exists():
        stale.append(checkpoint.path(run_dir))
    checkpoint.remove(run_dir)
    if stale:
        log.info("cleared an earlier attempt: %s", ", ".join(p.name for p in stale))


def plan(run_dir: Path, resolved: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """Decide how a run starts: the checkpoint's state.json to resume from, or None to start over
    (after clearing what an earlier failed, interrupted or killed attempt left behind)."""
    run_dir = Path(run_dir)
    if checkpoint.remove_stale(run_dir):
        log.info("removed a partly written checkpoint (%s)", run_dir / checkpoint.TMP)
    if resume and runfolder.status(run_dir) != runfolder.STATUS_FAILED:
        state = _intact_state(run_dir)
        if state is not None:
            # a checkpoint written before options owned their code compares in today's shape
            diffs = config_differences(legacy.upgrade(state.get("config") or {}), resolved)
            if diffs:
                raise ResumeMismatch(
                    f"{run_dir} has a checkpoint at {state['num_timesteps']} env steps made with a different "
                    f"config ({', '.join(diffs[:_SHOWN])}{' ...' if len(diffs) > _SHOWN else ''}). Fix: rerun "
                    "with the same settings, or resume=false to start over")
            return state
    cleanup_attempt(run_dir)
    return None


def _intact_state(run_dir: Path) -> dict[str, Any] | None:
    """The newest intact checkpoint's state (one warning when a newer one was damaged), None
    when there is none; CheckpointDamaged when there are checkpoints and none is intact."""
    state, damaged = checkpoint.recover(run_dir)
    if state is None and damaged:
        raise CheckpointDamaged(
            f"{'; '.join(d.describe() for d in damaged)}: no intact checkpoint to resume from. "
            "Fix: resume=false to start the run over")
    if state is not None and damaged:
        steps, lost = state["num_timesteps"], damaged[0].steps
        what = (f"{lost - steps} env steps lost" if lost is not None else f"the env steps after {steps} are lost")
        log.warning("damaged checkpoint (%s): resuming from the previous checkpoint at %d env steps (%s)",
                    damaged[0].describe(), steps, what)
    return state


def write_failure(exc: OSError, run_dir: Path) -> str:
    """The one line for a result that could not be written, with what a rerun will do:
    ``no space left on device while writing <file> (run folder <dir>): free space and rerun;
    the last checkpoint at 400 env steps is intact``."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    cause = cause[:1].lower() + cause[1:]
    file = exc.filename or "a run file"
    fix = "free space and rerun" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that and rerun"
    state = checkpoint.read_state(run_dir)
    then = (f"the last checkpoint at {state['num_timesteps']} env steps is intact" if state
            else "no checkpoint was written yet, so the rerun starts from step 0")
    return f"{cause} while writing {file} (run folder {run_dir}): {fix}; {then}"


class ResultsNotWritten(Exception):
    """A run file could not be written (:func:`write_failure` is the message); nothing that reads
    as completed was left, and the rerun resumes from the last checkpoint."""
