"""``python -m herexp.sweep list`` for a search: the study's trials, their runs and states.

One line per run of each trial (trial number, trial state, value, the run's folder status --
``@<step>`` where a checkpoint waits -- and the sampled values), then the trials counted by
state: ``8 trials of 8 in multirun/tiny: 5 completed, 2 pruned, 0 failed, 1 running``.
Before the first session it prints the search space and the number of trials to come.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from herexp import checkpoint, jobs, runfolder
from herexp.search import STUDY_FILE, driver, report, storage


def base_config(overrides: Sequence[str]) -> DictConfig:
    """A multirun command's base config (its fixed overrides composed, Hydra config included)."""
    return jobs.composer().base(overrides)


def _run_status(folder: Path) -> str:
    st = runfolder.status(folder) or "pending"
    ckpt = checkpoint.read_state(folder) if st != runfolder.STATUS_COMPLETED else None
    return f"{st} @{ckpt['num_timesteps']}" if ckpt else st


def show(base: DictConfig, overrides: Sequence[str]) -> int:
    """Print the study of a search command; return the exit status (0)."""
    sweep_dir = Path(base.hydra.sweep.dir)
    study_file = sweep_dir / STUDY_FILE
    if not study_file.is_file():
        s, sp = driver.plan(base, list(overrides))
        print(f"study {base.study}: no trial yet; {s.n_trials} trials x {s.seeds_per_trial} seed(s), sampler "
              f"{s.sampler}, pruner {s.pruner} -> {sweep_dir}")
        for key, text in sp.text.items():
            print(f"  {sp.keys[key]}={text}")
        return 0
    spec = runfolder.read_json(study_file)
    study = storage.read_study(spec["storage"], spec.get("study"))
    for t in study.get_trials(deepcopy=False):
        state = report.STATE_NAMES[t.state.name]
        value = "" if t.value is None else f"{t.value:.3f}"
        params = " ".join(f"{k}={v}" for k, v in t.params.items())
        for folder in t.user_attrs.get("folders") or []:
            print(f"{t.number:4d}  {state:9s}  {value:6s}  {_run_status(sweep_dir / folder):14s}  "
                  f"{sweep_dir / folder}  {params}")
    c = driver.trial_counts(study)
    print(f"{len(study.trials)} trials of {spec.get('n_trials')} in {sweep_dir}: {c['completed']} completed, "
          f"{c['pruned']} pruned, {c['failed']} failed, {c['running']} running")
    return 0
