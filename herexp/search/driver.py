"""The study's driver: trials as ordinary herexp runs through the configured launcher.

A trial is ``seeds_per_trial`` runs (seeds ``seed .. seed+k-1`` when k > 1), each a job of the
launcher (joblib, submitit), in its own folder ``multirun/<study>/trialNNN_<labels>`` named by
:mod:`herexp.identity`. ``n_jobs`` worker threads each launch one run at a time and take the next
one as soon as theirs ends -- the pending runs of open trials first, then a new trial asked from
the study -- so no core waits for a batch. When a trial's last run ends it is told to the study:
the mean final success of its seeds (``completed``), ``pruned`` when the pruner stopped it, or
``fail``; a progress line says so with the best value so far.

Resume: the study's trials that are still ``RUNNING`` when a sweeper starts were cut off (kill,
Ctrl-C, preemption); they are relaunched first, under their own numbers and folders, and their
runs resume from their checkpoints. New trials are asked until the study holds ``n_trials``.
After Ctrl-C no further run starts and the interrupted trials stay open for the rerun.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from herexp import cli, identity, jobs, runfolder
from herexp import sweep as sweep_mod
from herexp.search import STUDY_FILE, settings, space, storage

log = logging.getLogger("herexp.search")
FINISHED = (runfolder.STATUS_COMPLETED, runfolder.STATUS_PRUNED)


@dataclass
class Run:
    """One run of a trial: its launcher overrides and folder."""

    trial: int
    overrides: list[str]
    folder: Path


@dataclass
class Trial:
    """A trial in flight: its runs and how many have ended."""

    number: int
    params: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    ended: int = 0


def plan(config: DictConfig, arguments: list[str]) -> tuple[settings.Settings, space.Space]:
    """The checked sweeper settings and search space of a sweep config and its command's overrides."""
    s = settings.settings(config.hydra.sweeper)
    lines = space.sweeper_lines(config.hydra.sweeper.get("params")) + list(arguments)
    sp = space.parse_space(lines, lambda key: OmegaConf.select(config, key, default=None), s.seeds_per_trial)
    if not sp.params:
        raise cli.UsageError("the search space is empty: give hydra.sweeper.params in a sweep file or "
                             f"key=choice(...) on the command line ({space.GRAMMAR})")
    if s.sampler == "grid":
        sp.grid()  # a continuous parameter is refused here
    return s, sp


def study_meta(s: settings.Settings, sp: space.Space) -> dict[str, Any]:
    """herexp's settings as the study records them (:data:`herexp.search.storage.META_KEY`)."""
    return {"space": sp.to_json()["params"], "direction": s.direction, "seeds_per_trial": s.seeds_per_trial,
            "pruner": s.pruner, "pruner_kwargs": s.pruner_kwargs, "sampler": s.sampler, "seed": s.seed}


def sweep(config: DictConfig, launcher: Any, arguments: list[str]) -> None:
    """Run the study of a ``--multirun hydra/sweeper=optuna`` command (the plugin's ``sweep``)."""
    sweep_dir = Path(config.hydra.sweep.dir)
    try:
        s, sp = plan(config, arguments)
        spec = storage.storage_spec(s.storage, sweep_dir)
        with storage.sweeper_lock(sweep_dir, str(config.study)):
            n_trials = min(s.n_trials, sp.grid_size()) if s.sampler == "grid" else s.n_trials
            sampler = settings.make_sampler(s, sp.grid() if s.sampler == "grid" else None)
            study = storage.create_or_load(spec, str(config.study), study_meta(s, sp), sampler,
                                           settings.make_pruner(s.pruner, s.pruner_kwargs))
            runfolder.write_json_atomic(sweep_dir / STUDY_FILE, {
                "study": str(config.study), "storage": spec, "n_trials": n_trials, **study_meta(s, sp),
                "space": sp.to_json(), "arguments": list(arguments)})
            workers = s.n_jobs or sweep_mod.launcher_workers(config) or 1
            StudyRunner(study, sp, config, launcher, spec, n_trials, s.seeds_per_trial, workers).run()
    except cli.UsageError as exc:
        if cli.full_errors():
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(cli.EXIT_USAGE) from None


class StudyRunner:
    """Keeps ``workers`` runs in flight until the study holds ``n_trials`` finished trials."""

    def __init__(self, study: Any, sp: space.Space, config: DictConfig, launcher: Any, spec: str, n_trials: int,
                 seeds_per_trial: int, workers: int) -> None:
        self.study, self.space, self.config, self.launcher = study, sp, config, launcher
        self.spec, self.n_trials, self.k, self.workers = spec, n_trials, seeds_per_trial, workers
        self.sweep_dir = Path(config.hydra.sweep.dir)
        self._lock = threading.Lock()
        self._queue: collections.deque[Run] = collections.deque()
        self._open: dict[int, Trial] = {}
        self._job_idx = 0
        self._n_trials_so_far = len(study.get_trials(deepcopy=False))

    def run(self) -> None:
        """Resume the open trials, ask new ones up to ``n_trials``, wait for every run."""
        from optuna.trial import TrialState

        for ft in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self._enqueue(Trial(ft.number, dict(ft.params)), list(ft.user_attrs.get("overrides") or []))
            log.info("trial %d resumes (%s)", ft.number, _params_text(ft.params))
        log.info("study %s: %d of %d trials so far, %d open; %d runs in flight -> %s", self.config.study,
                 self._n_trials_so_far, self.n_trials, len(self._open), self.workers, self.spec)
        n = min(self.workers, max(1, len(self._queue) + (self.n_trials - self._n_trials_so_far) * self.k))
        if n == 1:  # in this thread: a job the launcher runs here needs the main thread's signal handlers
            self._work()
        else:
            threads = [threading.Thread(target=self._work, name=f"trial-worker-{i}", daemon=True) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self._final_line()

    # ------------------------------------------------------------------ trials and runs
    def _enqueue(self, trial: Trial, run_overrides: list[list[str]]) -> None:
        trial.runs = [Run(trial.number, ov, self.sweep_dir / self._folder(ov)) for ov in run_overrides]
        self._open[trial.number] = trial
        self._queue.extend(trial.runs)

    @staticmethod
    def _folder(overrides: list[str]) -> str:
        return identity.job_dir_name(jobs.composer().job(overrides), overrides)

    def _ask(self) -> Trial:
        trial = self.study.ask(fixed_distributions=self.space.params)
        params = {k: trial.params[k] for k in self.space.params}
        base = self.space.overrides(params)
        if self.k > 1:
            base = [line for line in base if line.partition("=")[0].lstrip("+~") != identity.SEED]
        base += [f"trial.number={trial.number}", f"trial.storage={space.encode(self.spec)}",
                 f"trial.params=[{','.join(k.lstrip('+~') for k in self.space.params)}]"]
        seeds = [int(self.config.seed) + i for i in range(self.k)] if self.k > 1 else [int(self.config.seed)]
        runs = [[*base, f"seed={s}"] for s in seeds] if self.k > 1 else [base]
        t = Trial(trial.number, params)
        self._enqueue(t, runs)
        trial.set_user_attr("overrides", runs)
        trial.set_user_attr("seeds", seeds)
        trial.set_user_attr("folders", [r.folder.name for r in t.runs])
        self._n_trials_so_far += 1
        log.info("trial %d asked: %s", trial.number, _params_text(params))
        return t

    def _next(self) -> Run | None:
        with self._lock:
            if sweep_mod.stop_requested(self.sweep_dir):
                return None
            if not self._queue and self._n_trials_so_far < self.n_trials:
                self._ask()
            return self._queue.popleft() if self._queue else None

    def _work(self) -> None:
        while (run := self._next()) is not None:
            if runfolder.status(run.folder) not in FINISHED:  # a resumed trial's finished runs stay as they are
                with self._lock:
                    idx, self._job_idx = self._job_idx, self._job_idx + 1
                try:
                    self.launcher.launch([run.overrides], initial_job_idx=idx)
                except Exception as exc:  # noqa: BLE001 - the run's own failure is in its folder; the study goes on
                    log.error("trial %d: run %s did not complete: %s: %s", run.trial, run.folder.name,
                              type(exc).__name__, exc)
            with self._lock:
                trial = self._open[run.trial]
                trial.ended += 1
                if trial.ended == len(trial.runs):
                    del self._open[run.trial]
                    self._tell(trial)

    def _tell(self, trial: Trial) -> None:
        """Tell the study how a trial whose runs have all ended came out (or leave it open)."""
        from optuna.trial import TrialState

        summaries = [runfolder.read_summary(r.folder) or {} for r in trial.runs]
        states = [s.get("status") for s in summaries]
        if any(st in (None, runfolder.STATUS_INTERRUPTED) for st in states) and (
                sweep_mod.stop_requested(self.sweep_dir) or runfolder.STATUS_INTERRUPTED in states):
            log.info("trial %d interrupted: it resumes from its checkpoints when the command is rerun", trial.number)
            return
        if all(st == runfolder.STATUS_COMPLETED for st in states):
            value = sum(float(s["success_rate"]) for s in summaries) / len(summaries)
            self._tell_study(trial.number, value)
            outcome = f"completed: {value:.3f}" + (f" (mean of {len(states)} seeds)" if len(states) > 1 else "")
        elif runfolder.STATUS_PRUNED in states:
            self._tell_study(trial.number, state=TrialState.PRUNED)
            at = max(int(s.get("pruned_at_step") or 0) for s in summaries if s.get("status") == runfolder.STATUS_PRUNED)
            outcome = f"pruned at {at} env steps"
        else:
            self._tell_study(trial.number, state=TrialState.FAIL)
            errors = [f"{r.folder.name}: {s.get('error') or s.get('status') or 'no summary.json'}"
                      for r, s in zip(trial.runs, summaries) if s.get("status") != runfolder.STATUS_COMPLETED]
            outcome = "failed (" + "; ".join(errors) + ")"
        log.info("trial %d %s | %s", trial.number, outcome, self._standing())

    def _tell_study(self, number: int, value: float | None = None, state: Any = None) -> None:
        try:
            self.study.tell(number, value, state=state)
        except RuntimeError as exc:  # the grid sampler stops the study once every point is taken;
            if "Study.stop" not in str(exc):  # the trial is recorded before it says so
                raise

    # ------------------------------------------------------------------ progress
    def _standing(self) -> str:
        """``best 0.833 (trial 1) | 5/8 trials: 3 completed, 1 pruned, 0 failed, 2 running``."""
        counts = trial_counts(self.study)
        done = counts["completed"] + counts["pruned"] + counts["failed"]
        return (f"{_best_text(self.study)} | {done}/{self.n_trials} trials: {counts['completed']} completed, "
                f"{counts['pruned']} pruned, {counts['failed']} failed, {counts['running']} running")

    def _final_line(self) -> None:
        stopped = sweep_mod.stop_requested(self.sweep_dir)
        print(f"study {self.config.study}{f' stopped by {stopped}' if stopped else ''}: {self._standing()} "
              f"({self.spec}); report: python -m herexp.aggregate {self.sweep_dir}", file=sys.stderr)


def trial_counts(study: Any) -> dict[str, int]:
    """Trials of a study by state: ``completed``, ``pruned``, ``failed``, ``running`` (open)."""
    from optuna.trial import TrialState

    names = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "running"}
    out = dict.fromkeys(("completed", "pruned", "failed", "running"), 0)
    for t in study.get_trials(deepcopy=False):
        out[names[t.state]] += 1
    return out


def _best_text(study: Any) -> str:
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return "best n/a (no completed trial yet)"
    best = study.best_trial
    return f"best {best.value:.3f} (trial {best.number}: {_params_text(best.params)})"


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={space.encode(v)}" for k, v in params.items())
