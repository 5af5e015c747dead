"""Inside a search trial's run: periodic evaluations reported to the study, and pruning.

:class:`TrialReporter` follows the run's periodic evaluations (:class:`herexp.callbacks.
MetricsCallback`, placed before it). At each one it opens the trial in the study's storage
(``trial.storage``; the study is ``study``) and records this seed's success at that env step.
A trial of k seeds is judged on the seeds' **mean at the same env step**: the seed whose
evaluation completes a step (every seed has one there) reports the mean with
``trial.report(mean, step)`` and asks the study's pruner (``trial.should_prune()``). When it
says prune, the step is recorded on the trial, this run stops at once, and every other seed of
the trial stops at its next evaluation. The run then ends with status ``pruned`` (no final
evaluation): :class:`TrialPruned`, which :mod:`herexp.train` turns into the summary.

Only what is reported lives in the study; the callback keeps no state of its own, so a run
resumed from its checkpoint goes on reporting where the stopped attempt left off.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig
from stable_baselines3.common.callbacks import BaseCallback

from herexp.search import storage as storage_mod

log = logging.getLogger(__name__)
PRUNED_AT = "herexp:pruned_at"  # trial system attribute: the env step at which the pruner stopped the trial


def eval_key(seed: int, step: int) -> str:
    """The trial system attribute holding one seed's periodic eval success at one env step."""
    return f"herexp:eval:{seed}:{step}"


class TrialPruned(Exception):
    """The study's pruner stopped this trial: the run stopped after ``steps`` env steps."""

    def __init__(self, steps: int, judged_at: int, last_success: float | None) -> None:
        super().__init__(f"pruned by the study at {judged_at} env steps (stopped at {steps})")
        self.steps, self.judged_at, self.last_success = steps, judged_at, last_success


class TrialReporter(BaseCallback):
    """Reports the run's periodic evaluations to its search trial and stops the run when pruned."""

    def __init__(self, cfg: DictConfig, metrics: Any) -> None:
        super().__init__()
        self.spec, self.study_name = str(cfg.trial.storage), str(cfg.study)
        self.number, self.seed, self.metrics = int(cfg.trial.number), int(cfg.seed), metrics
        self.judged_at: int | None = None  # the env step the trial was pruned at
        self._done = 0
        self._storage: Any = None
        self._trial: Any = None
        self._trial_id: int | None = None
        self._seeds: list[int] = []

    def _on_training_start(self) -> None:
        import optuna

        study, storage = storage_mod.load_for_trial(self.spec, self.study_name)
        self._storage = storage
        study_id = storage.get_study_id_from_name(self.study_name)
        self._trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        self._trial = optuna.trial.Trial(study, self._trial_id)
        frozen = storage.get_trial(self._trial_id)
        self._seeds = [int(s) for s in frozen.user_attrs.get("seeds", [self.seed])]
        self.judged_at = frozen.system_attrs.get(PRUNED_AT)
        self._done = len(self.metrics.eval_history)  # evaluations restored from a checkpoint were reported

    def _on_step(self) -> bool:
        if self.judged_at is not None:
            return False
        history = self.metrics.eval_history
        if len(history) <= self._done:
            return True
        new, self._done = history[self._done:], len(history)
        for step, success in new:
            if self._report(int(step), float(success)):
                log.info("trial %d pruned at %d env steps (this run at %d): stopping", self.number, self.judged_at,
                         self.num_timesteps)
                return False
        return True

    def _report(self, step: int, success: float) -> bool:
        """Record this seed's evaluation; report the seeds' mean when complete; True when pruned."""
        from optuna.exceptions import UpdateFinishedTrialError

        storage, tid = self._storage, self._trial_id
        try:
            storage.set_trial_system_attr(tid, eval_key(self.seed, step), success)
        except UpdateFinishedTrialError:  # the study has already closed this trial
            self.judged_at = step
            return True
        frozen = storage.get_trial(tid)
        if frozen.system_attrs.get(PRUNED_AT) is not None:  # another seed of the trial was judged first
            self.judged_at = int(frozen.system_attrs[PRUNED_AT])
            return True
        values = [frozen.system_attrs.get(eval_key(s, step)) for s in self._seeds]
        if any(v is None for v in values) or step in frozen.intermediate_values:
            return False
        self._trial.report(sum(values) / len(values), step)
        if self._trial.should_prune():
            storage.set_trial_system_attr(tid, PRUNED_AT, step)
            self.judged_at = step
            return True
        return False

    def raise_if_pruned(self) -> None:
        """After ``learn``: :class:`TrialPruned` when the trial was pruned."""
        if self.judged_at is not None:
            last = self.metrics.eval_history[-1][1] if self.metrics.eval_history else None
            raise TrialPruned(int(self.num_timesteps), int(self.judged_at), last)


def trial_reporter(cfg: DictConfig, metrics: Any) -> TrialReporter | None:
    """The reporter of a search trial's run (``trial.number`` and ``trial.storage`` set), else None."""
    if cfg.trial.number is None or cfg.trial.storage is None:
        return None
    return TrialReporter(cfg, metrics)
