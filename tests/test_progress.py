"""Progress lines: single-run ETA from the learning-phase rate, the sweep ETA with parallel
workers, and the job-folder prefix of progress lines in a multirun (injected clocks, literal numbers)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from herexp import sweep
from herexp.callbacks import LearningPhaseRate, MetricsCallback, multirun_job_label
from tests.conftest import compose_cfg


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _callback(clock: FakeClock, learning_starts: int = 1000, total: int = 5000,
              label: str | None = "") -> tuple[MetricsCallback, SimpleNamespace]:
    model = SimpleNamespace(num_timesteps=0, learning_starts=learning_starts, logger=SimpleNamespace(name_to_value={}))
    cb = MetricsCallback(writer=None, eval_fn=dict, eval_freq=0, total_steps=total,  # type: ignore[arg-type]
                         progress_every=10**9, label=label, clock=clock)
    cb.init_callback(model)  # type: ignore[arg-type]
    cb.on_training_start({}, {})
    return cb, model


def _advance(cb: MetricsCallback, model: SimpleNamespace, clock: FakeClock, steps: int, seconds: float) -> None:
    """``steps`` env steps in 100-step vector steps, evenly over ``seconds``."""
    for _ in range(steps // 100):
        clock.t += seconds / (steps // 100)
        model.num_timesteps += 100
        cb.on_step()


def test_eta_waits_for_the_learning_phase_then_uses_its_rate() -> None:
    # the quickstart's shape: 1000 warm-up steps at 500 steps/s, then learning at 1000 steps / 12 s
    clock = FakeClock()
    cb, model = _callback(clock)
    _advance(cb, model, clock, 1000, 2.0)
    assert cb.progress_line() == ("step 1000/5000 (20%) | 500 steps/s (warm-up) | last eval success n/a | "
                                  "ETA n/a (warm-up)")
    _advance(cb, model, clock, 100, 1.2)  # step 1100 is the first learning step seen: the rate starts here
    assert cb.progress_line().endswith("ETA n/a (warm-up)")
    _advance(cb, model, clock, 1000, 12.0)
    # 1000 steps / 12 s = 83 steps/s; (5000 - 2100) / 83.3 = 34.8 s (the whole-run rate, 138/s, said 21 s)
    assert cb.progress_line() == "step 2100/5000 (42%) | 83 steps/s | last eval success n/a | ETA 0m34s"


@pytest.mark.parametrize("steps, eta", [(1000, "n/a (warm-up)"), (1001, "n/a (warm-up)"), (1500, "1m10s")])
def test_learning_phase_rate_boundary(steps: int, eta: str) -> None:
    clock = FakeClock()
    rate = LearningPhaseRate(total_steps=10_000, learning_starts=1000, clock=clock)
    rate.observe(1000)  # not past learning_starts: still warm-up
    clock.t = 5.0
    rate.observe(1001)  # first learning step
    clock.t = 5.0 + 499 / 120  # 120 steps/s
    # at 1500: (10000 - 1500) / 120 = 70.8 s
    assert rate.eta(steps) == eta


def test_progress_line_prefix() -> None:
    cb, model = _callback(FakeClock(), label="[ent0.05_nsg4_ls1000_g0.95_seed0] ")
    assert cb.progress_line().startswith("[ent0.05_nsg4_ls1000_g0.95_seed0] step 0/5000 (0%) | ")


@pytest.mark.parametrize("mode, label", [(RunMode.MULTIRUN, "[ent0.05_nsg4_ls1000_g0.95_seed0] "),
                                         (RunMode.RUN, "")])
def test_multirun_job_label(tmp_path: Path, mode: RunMode, label: str) -> None:
    cfg = compose_cfg([], hydra_cfg=True)
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.runtime.output_dir = str(tmp_path / "multirun" / "ch04" / "ent0.05_nsg4_ls1000_g0.95_seed0")
    HydraConfig.instance().set_config(cfg)
    try:
        assert multirun_job_label() == label
        cb, _ = _callback(FakeClock(), label=None)  # the callback finds the label itself
        assert cb.progress_line().startswith(f"{label}step 0/5000")
    finally:
        HydraConfig.instance().cfg = None  # type: ignore[assignment]


# --- sweep ETA ------------------------------------------------------------------------------------

def _two_workers(workers: int | None) -> dict:
    """10 jobs on 2 workers at t = 700 s: two completed (600 s, 500 s), two running, six pending."""
    jobs = {
        "j0": {"status": "completed", "started_unix": 0.0, "finished_unix": 600.0},
        "j1": {"status": "completed", "started_unix": 0.0, "finished_unix": 500.0},
        "j2": {"status": "running", "started_unix": 600.0},
        "j3": {"status": "running", "started_unix": 500.0},
        **{f"p{i}": {"status": "pending"} for i in range(6)},
    }
    return {"n_jobs": 10, "jobs": jobs, "started_unix": 0.0, "workers": workers}


@pytest.mark.parametrize("workers", [2, None])  # from the launcher config, or seen overlapping
def test_sweep_eta_with_parallel_workers(workers: int | None) -> None:
    # mean 550 s; running jobs need 450 s and 350 s more; six pending jobs over 2 workers:
    # 350 -> 900 -> 1450 -> 2000 and 450 -> 1000 -> 1550 -> 2100: 2100 s (serial estimate: 2800 s)
    m = _two_workers(workers)
    assert sweep.sweep_eta(m, now=700.0) == (2100.0, 2)
    assert sweep.progress_line(m, now=700.0) == "2/10 done · 0 failed · 0 skipped · 2 running · ETA 0h35m (2 parallel)"


def test_sweep_eta_four_workers_and_before_any_completion() -> None:
    jobs = {**{f"c{i}": {"status": "completed", "started_unix": 600.0 * (i // 4), "finished_unix": 600.0 * (i // 4 + 1)}
               for i in range(8)},
            **{f"r{i}": {"status": "running", "started_unix": 1200.0} for i in range(4)},
            **{f"p{i}": {"status": "pending"} for i in range(108)}}
    m = {"n_jobs": 120, "jobs": jobs, "workers": None}
    assert sweep.observed_workers(jobs, now=1200.0) == 4
    assert sweep.sweep_eta(m, now=1200.0) == (16800.0, 4)  # 600 s + 27 rounds of 600 s per worker
    assert sweep.progress_line(m, now=1200.0).endswith("ETA 4h40m (4 parallel)")
    first = {"n_jobs": 4, "jobs": {"a": {"status": "running", "started_unix": 0.0}, "b": {"status": "failed",
             "started_unix": 0.0, "finished_unix": 1.0}}}
    assert sweep.progress_line(first, now=5.0) == ("1/4 done · 1 failed · 0 skipped · 1 running · "
                                                   "ETA n/a (no job completed yet)")


def test_skipped_jobs_do_not_count_as_parallel() -> None:
    jobs = {"s": {"status": "skipped", "started_unix": 10.0, "finished_unix": 10.1},
            "c": {"status": "completed", "started_unix": 0.0, "finished_unix": 100.0}}
    assert sweep.observed_workers(jobs, now=100.0) == 1


@pytest.mark.parametrize("overrides, workers", [(["hydra.launcher.n_jobs=2"], 2), ([], os.cpu_count()),
                                                (["hydra/launcher=submitit_local"], None)])
def test_launcher_workers(overrides: list[str], workers: int | None) -> None:
    assert sweep.launcher_workers(compose_cfg(overrides, hydra_cfg=True)) == workers


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, label, shown", [(True, "", True), (False, "", False),
                                               (True, "[ent0.05_seed0] ", False)])
def test_progress_bar_only_for_a_single_run_on_a_terminal(tty: bool, label: str, shown: bool) -> None:
    clock, term = FakeClock(), _Terminal(tty)
    model = SimpleNamespace(num_timesteps=0, learning_starts=1000, logger=SimpleNamespace(name_to_value={}))
    cb = MetricsCallback(writer=None, eval_fn=dict, eval_freq=0, total_steps=5000,  # type: ignore[arg-type]
                         progress_every=10**9, label=label, clock=clock, bar_file=term)
    cb.init_callback(model)  # type: ignore[arg-type]
    cb.on_training_start({}, {})
    _advance(cb, model, clock, 1100, 3.2)
    _advance(cb, model, clock, 1000, 12.0)
    cb.on_training_end()
    out = term.getvalue()
    assert ("2100/5000" in out and "last eval n/a, ETA 0m34s" in out) is shown
    assert (out == "") is (not shown)
