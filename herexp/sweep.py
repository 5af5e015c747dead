"""Sweeps: deterministic job folders, the sweep manifest, progress, and ``list``.

Hydra's launcher (joblib locally, submitit on SLURM) runs :func:`herexp.train.train` once per
job; this module adds what Hydra lacks:

* **Deterministic folders** — ``multirun/<study>/<job_dir>``, e.g.
  ``ent0.05_nsg4_ls1000_g0.95_seed0``, named by :func:`herexp.identity.job_dir_name` from the
  composed values of what the job's overrides change, so re-running a sweep maps every job to
  the same folder and completed jobs are skipped.
* **Manifest + progress** — :class:`SweepCallback` keeps ``multirun/<study>/sweep.json`` (grid,
  start time, parallel workers, per-job status and start/finish times) and logs
  ``37/120 done · 2 failed · 0 skipped · 4 running · ETA 3h10m (4 parallel)``.
* **Crash isolation** — a failing job writes ``status: failed`` and the sweep goes on; at the
  end the callback prints ``N completed, N skipped, N failed`` and exits 1 if any failed.

``python -m herexp.sweep list sweep=ch04_push`` prints the expanded jobs without training.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from herexp import identity, jobs, runfolder, search
from herexp.cli import EXIT_INTERRUPTED

log = logging.getLogger("herexp.sweep")
MANIFEST = "sweep.json"
USER_STOPS = ("SIGINT", "SIGTERM")  # a person or the machine stopping the sweep; SIGUSR2 is submitit's requeue
STOP_MARKER = ".stopped"  # in the sweep folder: the signal that stopped the sweep; no job starts after it
_launcher_pid: int | None = None  # the process that launched the sweep (its jobs run here when n_jobs=1)
_failures: dict[str, str] = {}  # job folder -> why it failed where no summary.json could say it


def note_failure(run_dir: str | os.PathLike[str], reason: str) -> None:
    """Record why a job failed without a summary saying so (a config that differs from a
    completed folder's, a damaged checkpoint, a full disk, Hydra's job set-up): the job's
    :meth:`SweepCallback.on_job_end`, in the same process, marks it failed with this reason."""
    _failures[str(Path(run_dir).absolute())] = reason


def request_stop(sweep_dir: Path, signal_name: str) -> None:
    """Ask every worker of the sweep to start no further job (safe inside a signal handler)."""
    with contextlib.suppress(OSError):
        (Path(sweep_dir) / STOP_MARKER).write_text(signal_name)


def stop_requested(sweep_dir: Path) -> str | None:
    """The signal that stopped the sweep, or None."""
    try:
        return (Path(sweep_dir) / STOP_MARKER).read_text().strip() or "SIGINT"
    except OSError:
        return None


def record_failed_job(config: DictConfig, folder: Path | None, overrides: Sequence[str], reason: str) -> None:
    """Mark a job failed in the manifest (with ``reason``) and log its line and the progress line:
    for a job that failed before its task ran (Hydra's job set-up), whose callbacks never ended it.
    ``folder`` is None when the job's folder could not even be named (the entry is its overrides)."""
    name = folder.name if folder is not None else " ".join(overrides)
    log.error("failed: %s: %s", folder or name, reason)
    with _job_entry(config, name) as (manifest, job):
        job.update({"overrides": job.get("overrides", list(overrides)), "status": runfolder.STATUS_FAILED,
                    "success_rate": None, "error": reason, "finished": datetime.now().isoformat(timespec="seconds"),
                    "finished_unix": time.time()})
    log.info(progress_line(manifest))


class _LauncherStop:
    """Signal handlers of the process that launches parallel jobs (joblib workers).

    Ctrl-C reaches every process of the terminal's group: the workers checkpoint their jobs and
    record them interrupted, and this process, instead of aborting them mid-checkpoint, asks that
    no further job start and waits for the running ones. A second Ctrl-C stops at once."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir, self.signal_name = sweep_dir, None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        request_stop(self.sweep_dir, self.signal_name)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

def job_dirs(overrides: Sequence[str]) -> tuple[DictConfig, list[tuple[list[str], str]]]:
    """The sweep's base config and ``(job overrides, job folder name)`` for every job, named by
    :func:`herexp.identity.job_dir_name` from each job's composed config."""
    composer = jobs.composer()
    cfg, grid = composer.expand(overrides)
    return cfg, [(job, identity.job_dir_name(composer.job(job), job)) for job in grid]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock shared by all job processes updating one manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _job_entry(config: DictConfig, name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(manifest, the job's entry)`` under the manifest's lock, to change in place; written after."""
    path = Path(config.hydra.sweep.dir) / MANIFEST
    with _locked(path):
        manifest = _read_manifest(path)
        yield manifest, manifest.setdefault("jobs", {}).setdefault(name, {})
        try:
            runfolder.write_json_atomic(path, manifest)
        except OSError as exc:  # a full disk must not end the other jobs: the job's own line says it
            log.error("error: could not update %s: %s", path, exc.strerror or exc)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return runfolder.read_json(path)
    except (OSError, ValueError):
        return {}


def _params(config: DictConfig) -> dict[str, Any]:
    params = config.hydra.sweeper.get("params")
    return dict(OmegaConf.to_container(params)) if params else {}  # type: ignore[arg-type]


def launcher_workers(config: DictConfig) -> int | None:
    """Jobs the launcher runs at once when the config says (joblib ``n_jobs``), else None."""
    launcher = config.hydra.get("launcher") or {}
    n = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")).lower() else None
    if n is None:
        return None
    n = int(n)
    return max(1, n if n > 0 else (os.cpu_count() or 1) + 1 + n)  # joblib: -1 = every CPU


def search_jobs(config: DictConfig) -> int:
    """Runs a search will have made: trials x seeds per trial (``hydra.sweeper``)."""
    sw = config.hydra.sweeper
    return int(sw.get("n_trials") or 0) * int(sw.get("seeds_per_trial") or 1)


def _counts(jobs: dict[str, dict[str, Any]]) -> dict[str, int]:
    out = {"completed": 0, "skipped": 0, "failed": 0, "interrupted": 0, "pending": 0, runfolder.STATUS_PRUNED: 0}
    for j in jobs.values():
        out[j["status"]] = out.get(j["status"], 0) + 1
    return out


def duplicates(jobs: Sequence[tuple[list[str], str]]) -> dict[str, list[list[str]]]:
    """Folders that more than one job maps to (jobs whose composed configs are the same run,
    e.g. ``sweep=ch04_push entropy.value=0.05`` makes every entropy option 0.05)."""
    by_name: dict[str, list[list[str]]] = {}
    for job, name in jobs:
        by_name.setdefault(name, []).append(job)
    return {n: js for n, js in by_name.items() if len(js) > 1}


class SweepCallback(Callback):
    """Hydra callback: manifest, per-job status, progress line and the end-of-sweep report.

    ``on_job_*`` run inside the worker process of each job (loky, submitit), so the manifest
    is updated under a file lock. Nothing here runs for single (non-multirun) runs.
    """

    def __init__(self) -> None:
        self._was_completed: dict[str, bool] = {}
        self._stop: _LauncherStop | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _launcher_pid
        _launcher_pid = os.getpid()
        sweep_dir = Path(config.hydra.sweep.dir)
        (sweep_dir / STOP_MARKER).unlink(missing_ok=True)  # a rerun resumes a stopped sweep
        if (launcher_workers(config) or 1) > 1 and threading.current_thread() is threading.main_thread():
            self._stop = _LauncherStop(sweep_dir)
        task = list(config.hydra.overrides.task)
        searching = search.is_search(config)  # a search's trials add their jobs as they start
        _, jobs = ([], []) if searching else job_dirs(task)
        clashes = duplicates(jobs)
        if clashes:  # two grid cells that are the same run would race in one folder
            for name, lines in clashes.items():
                print(f"sweep {config.study}: {len(lines)} jobs are the same run ({sweep_dir / name}): "
                      + " | ".join(" ".join(j) for j in lines), file=sys.stderr)
            raise SystemExit(2)
        path = sweep_dir / MANIFEST
        with _locked(path):
            old = _read_manifest(path)
            manifest = {
                "study": config.study, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "started_unix": time.time(), "grid": _params(config), "workers": launcher_workers(config),
                "overrides": task, "n_jobs": len(jobs), "jobs": {}, "previous_sessions": old.get("previous_sessions", 0)
                + (1 if old else 0),
            }
            if searching:  # the trials' runs of earlier sessions stay listed
                manifest.update({"jobs": old.get("jobs", {}), "n_jobs": search_jobs(config)})
            for job, name in jobs:  # pre-fill: completed folders stay completed; everything else will run
                st = runfolder.status(sweep_dir / name)
                entry = {"overrides": job, "status": "completed" if st == runfolder.STATUS_COMPLETED else "pending"}
                if st not in (None, runfolder.STATUS_COMPLETED):
                    entry["previous_status"] = st  # failed: redone from scratch; interrupted: resumed
                manifest["jobs"][name] = entry
            runfolder.write_json_atomic(path, manifest)
        log.info("sweep %s: %d jobs -> %s", config.study, len(jobs), sweep_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            out = config.hydra.runtime.output_dir
            self._was_completed[out] = runfolder.is_completed(out)
            with _job_entry(config, Path(out).name) as (_, job):
                job["started_unix"] = time.time()
                job.pop("finished_unix", None)
                if not self._was_completed[out]:  # a completed folder is skipped, not run
                    job["status"] = "running"

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        out = Path(config.hydra.runtime.output_dir)
        summary = runfolder.read_summary(out) or {}
        skipped = self._was_completed.pop(str(out), False)
        failure = _failures.pop(str(out.absolute()), None)
        if failure is None and not summary and stop_requested(Path(config.hydra.sweep.dir)):
            with _job_entry(config, out.name) as (_, job):  # never started (herexp.train): still pending
                job["status"] = "pending"
                job.pop("started_unix", None)
            return
        if failure is not None:
            status, error, success = runfolder.STATUS_FAILED, failure, None
        else:
            status = "skipped" if skipped else summary.get("status", runfolder.STATUS_FAILED)
            error, success = summary.get("error"), summary.get("success_rate")
        with _job_entry(config, out.name) as (manifest, job):
            job.update({"status": status, "success_rate": success, "error": error,
                        "finished": datetime.now().isoformat(timespec="seconds"), "finished_unix": time.time()})
        if status == runfolder.STATUS_FAILED:
            log.error("failed: %s: %s", out.name, error or "no summary written")
        log.info(progress_line(manifest))
        signal_name = summary.get("stop_signal") if status == runfolder.STATUS_INTERRUPTED else None
        if signal_name in USER_STOPS:
            # Ctrl-C or SIGTERM stops the sweep, as it would without herexp: the job has checkpointed
            # and no job starts after it. Jobs running in this process (n_jobs=1) stop it here.
            request_stop(Path(config.hydra.sweep.dir), signal_name)
            if os.getpid() == _launcher_pid:
                self._report(config, f"stopped by {signal_name}")
                raise SystemExit(EXIT_INTERRUPTED)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._stop is not None:
            self._stop.restore()
        stopped = stop_requested(Path(config.hydra.sweep.dir))
        failed = self._report(config, f"stopped by {stopped}" if stopped else "")
        if stopped:
            raise SystemExit(EXIT_INTERRUPTED)
        if failed:
            raise SystemExit(1)

    @staticmethod
    def _report(config: DictConfig, stopped: str = "") -> bool:
        """Print the end-of-sweep report; True when a job failed or was interrupted."""
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = _read_manifest(sweep_dir / MANIFEST).get("jobs", {})
        c = _counts(jobs)
        failed = sorted(n for n, j in jobs.items() if j["status"] in ("failed", "interrupted"))
        not_started = f", {c['pending']} not started" if stopped else ""
        pruned = f"{c['pruned']} pruned, " if c["pruned"] else ""
        print(f"sweep {config.study}{f' {stopped}' if stopped else ''}: {c['completed']} completed, {pruned}"
              f"{c['skipped']} skipped, {c['failed']} failed, {c['interrupted']} interrupted{not_started} "
              f"({sweep_dir})", file=sys.stderr)
        for name in failed:
            print(f"  {jobs[name]['status']}: {sweep_dir / name}  {jobs[name].get('error') or ''}", file=sys.stderr)
        if c["interrupted"] or not_started:
            print("  rerun the same command to resume the interrupted jobs from their checkpoints"
                  + (" and run the rest" if not_started else ""), file=sys.stderr)
        return bool(failed)


def _running(jobs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [j for j in jobs.values() if j.get("status") == "running"]


def observed_workers(jobs: dict[str, dict[str, Any]], now: float) -> int:
    """Most jobs that ran at the same time (skipped jobs excluded: they take no time)."""
    events = sorted((t, d) for j in jobs.values() if "started_unix" in j and j.get("status") != "skipped"
                    for t, d in ((j["started_unix"], 1), (j.get("finished_unix", now), -1)))
    # at equal times a finish (-1) sorts first: a worker that picks the next job up is one worker
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    return peak


def sweep_eta(manifest: dict[str, Any], now: float | None = None) -> tuple[float, int] | None:
    """(seconds left, parallel workers), or None before a job of this session has completed.

    A job takes the mean duration of this session's completed jobs; running jobs have already
    done part of theirs; the pending ones go, in order, to whichever of the workers frees up first.
    Workers are the launcher's (joblib ``n_jobs``, in the manifest) or, when the launcher does not
    say (SLURM, submitit), the most jobs seen running at once.
    """
    now = time.time() if now is None else now
    jobs = manifest.get("jobs", {})
    durations = [j["finished_unix"] - j["started_unix"] for j in jobs.values()
                 if j.get("status") == "completed" and "started_unix" in j and "finished_unix" in j]
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    c, running = _counts(jobs), _running(jobs)
    total = manifest.get("n_jobs", len(jobs))
    pending = max(0, total - c["completed"] - c["skipped"] - c["failed"] - c["interrupted"] - c["pruned"]
                  - len(running))
    workers = max(1, len(running), manifest.get("workers") or observed_workers(jobs, now))
    free = sorted(max(0.0, mean - (now - j["started_unix"])) for j in running)
    free += [0.0] * (workers - len(free))
    heapq.heapify(free)
    for _ in range(pending):
        heapq.heappush(free, heapq.heappop(free) + mean)
    return max(free), workers


def progress_line(manifest: dict[str, Any], now: float | None = None) -> str:
    """``37/120 done · 2 failed · 0 skipped · 4 running · ETA 3h10m (4 parallel)`` from the manifest."""
    jobs = manifest.get("jobs", {})
    c = _counts(jobs)
    total = manifest.get("n_jobs", len(jobs))
    done = c["completed"] + c["skipped"] + c["failed"] + c["interrupted"] + c["pruned"]
    est = sweep_eta(manifest, now)
    eta = "n/a (no job completed yet)" if est is None else f"{_hms(est[0])} ({est[1]} parallel)"
    stopped = f" · {c['interrupted']} interrupted" if c["interrupted"] else ""
    pruned = f" · {c['pruned']} pruned" if c["pruned"] else ""
    return (f"{done}/{total} done · {c['failed']} failed{stopped}{pruned} · {c['skipped']} skipped · "
            f"{len(_running(jobs))} running · ETA {eta}")


def _hms(s: float) -> str:
    h, rem = divmod(int(max(0, s)), 3600)
    return f"{h}h{rem // 60:02d}m"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m herexp.sweep list sweep=ch04_push [overrides]``: the jobs, one line each (a
    search's trials and their runs with ``hydra/sweeper=optuna``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "list":
        print("usage: python -m herexp.sweep list sweep=<name> [key=value ...]", file=sys.stderr)
        return 2
    from herexp import checkpoint, cli, preflight

    try:
        preflight.check_train_command(["--multirun", *args[1:]])
    except cli.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    from herexp.search import listing

    base = listing.base_config(args[1:])
    if search.is_search(base):  # a study: its trials, not a grid
        return listing.show(base, args[1:])
    cfg, jobs = job_dirs(args[1:])
    sweep_dir = Path(cfg.hydra.sweep.dir)
    for i, (job, name) in enumerate(jobs):
        st = runfolder.status(sweep_dir / name) or "pending"
        ckpt = checkpoint.read_state(sweep_dir / name) if st != runfolder.STATUS_COMPLETED else None
        if ckpt:  # resumable: show where it will continue from
            st = f"{'pending' if st == 'pending' else st} @{ckpt['num_timesteps']}"
        print(f"{i:4d}  {st:11s}  {sweep_dir / name}  {' '.join(job)}")
    print(f"{len(jobs)} jobs in {sweep_dir}")
    for name, lines in duplicates(jobs).items():
        print(f"warning: {len(lines)} jobs are the same run ({name}); --multirun refuses this grid", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
