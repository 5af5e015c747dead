"""The local launcher (``hydra/launcher=local``, the default): Hydra's joblib launcher whose jobs fail alone.

Hydra's joblib plugin runs each job through :func:`hydra.core.utils.run_job` in a loky worker.
An exception there *before* the task function runs (composing the job's config, creating its
folder when a plain file holds the name, writing ``.hydra/``, opening ``train.log``) leaves the
worker, and joblib then abandons the rest of the sweep with a traceback. Here each job runs
inside a guard: such a failure is recorded as the job's failure (manifest entry, progress
line, the end-of-sweep report; :func:`herexp.sweep.record_failed_job`) and the job returns no
value, as a job whose task failed does, so the other jobs run and the sweep exits 1.

Every key of the plugin stays the same (``n_jobs``, ``backend``, ``timeout``, ...); only
Hydra's public API is used (``run_job``, ``setup_globals``, ``Singleton`` state, ``JobReturn``).
Hydra instantiates launchers from the ``hydra_plugins`` namespace only: the plugin class is
``hydra_plugins.herexp_launcher.joblib_launcher.JoblibLauncher``, which calls :func:`launch`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as PluginJoblibLauncher
from omegaconf import DictConfig, open_dict

log = logging.getLogger("herexp.launcher")


def run_guarded(idx: int, overrides: Sequence[str], hydra_context: HydraContext, config: DictConfig,
                task_function: TaskFunction, singleton_state: dict[Any, Any]) -> JobReturn:
    """One job in a worker, as the plugin runs it; a failure in Hydra's job set-up becomes the
    job's recorded failure instead of the sweep's end."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config: DictConfig | None = None
    try:
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except Exception as exc:  # noqa: BLE001 - the job's failure, recorded; the sweep goes on
        from herexp import sweep

        sweep.record_failed_job(config, _folder(sweep_config), list(overrides), f"{type(exc).__name__}: {exc}")
        ret = JobReturn(overrides=list(overrides), cfg=None, hydra_cfg=None, working_dir=str(Path.cwd()))
        ret.status, ret.return_value = JobStatus.COMPLETED, None  # no value, as for a failed task
        return ret


def _folder(sweep_config: DictConfig | None) -> Path | None:
    """The job's folder, when its config got far enough to name it."""
    if sweep_config is None:
        return None
    try:
        return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    except Exception:  # noqa: BLE001 - naming the folder is what failed
        return None


def launch(launcher: PluginJoblibLauncher, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> Sequence[JobReturn]:
    """What the joblib plugin's ``launch`` does (loky workers, the plugin's keys), each job run
    by :func:`run_guarded`; one JobReturn per job, none raising."""
    from joblib import Parallel, delayed

    setup_globals()
    config, task_function, hydra_context = launcher.config, launcher.task_function, launcher.hydra_context
    assert config is not None and task_function is not None and hydra_context is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    joblib_cfg = dict(launcher.joblib)
    joblib_cfg["backend"] = "loky"  # as the plugin: threads are incompatible with Hydra
    for key in ("pre_dispatch", "batch_size", "max_nbytes"):
        value = joblib_cfg.get(key)
        if isinstance(value, str) and value.isdigit():
            joblib_cfg[key] = int(value)
    log.info("Joblib.Parallel(%s) is launching %d jobs", ",".join(f"{k}={v}" for k, v in joblib_cfg.items()),
             len(job_overrides))
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    for idx, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
    state = Singleton.get_state()
    runs = Parallel(**joblib_cfg)(
        delayed(run_guarded)(initial_job_idx + idx, overrides, hydra_context, config, task_function, state)
        for idx, overrides in enumerate(job_overrides))
    return list(runs)
