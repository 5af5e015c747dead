"""Sweeps: grid expansion, a tiny real joblib multirun (resume, crash isolation, no leaks
between jobs in a reused loky worker), submitit_local for real, the SLURM preset composed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from herexp import runfolder as rf
from herexp.sweep import duplicates, expand_jobs, job_dirs, progress_line
from tests.conftest import TINY, compose_cfg, run_cli

SWEEP_ARGS = [*[o for o in TINY if not o.startswith("logger.")], "logger.wandb.mode=offline",
              "total_steps=200", "eval.freq=100", "study=tiny"]
JOBLIB = "hydra.launcher.n_jobs=2"


def test_ch04_push_expands_to_120_distinct_jobs() -> None:
    cfg, jobs = expand_jobs(["sweep=ch04_push"])
    names = {n for _, n in job_dirs(["sweep=ch04_push"])[1]}
    assert len(jobs) == 120 and len(names) == 120
    assert cfg.env.id == "FetchPush-v4" and cfg.her.enabled and cfg.total_steps == 2_000_000
    levels: dict[str, set[str]] = {}
    for job in jobs:
        for line in job:
            k, _, v = line.partition("=")
            levels.setdefault(k, set()).add(v)
    assert levels["entropy"] == {"fixed_005", "fixed_01", "fixed_02"}
    assert levels["her.n_sampled_goal"] == {"4", "8"} and levels["algo.learning_starts"] == {"1000", "5000"}
    assert levels["algo.gamma"] == {"0.95", "0.98"} and levels["seed"] == {"0", "1", "2", "42", "77"}
    assert "ent0.05_nsg4_ls1000_g0.95_seed0" in names and "ent0.2_nsg8_ls5000_g0.98_seed77" in names


def test_other_sweeps_and_cli_grids() -> None:
    _, jobs = job_dirs(["sweep=her_vs_noher", "env=reach"])
    assert [n for _, n in jobs] == [f"reach_{h}_seed{s}" for h in ("her", "noher") for s in range(3)]
    cfg, jobs = job_dirs(["sweep=ablation_nsg"])
    assert [n for _, n in jobs] == ["nsg2", "nsg4", "nsg8"] and cfg.study == "ablation_nsg"
    _, jobs = job_dirs(["sweep=fast_vs_stock"])
    assert [n for _, n in jobs] == ["sac_seed0", "sac_seed1", "sac_seed2", "sac_fast_seed0", "sac_fast_seed1",
                                    "sac_fast_seed2"]
    _, jobs = job_dirs(["seed=range(5)", "algo.gamma=0.95,0.98"])
    assert len({n for _, n in jobs}) == 10 and duplicates(jobs) == {}


def test_grid_cells_that_are_the_same_run_are_found() -> None:
    """``entropy.value=0.05`` on top of the entropy options makes all three the same run: the
    folders say so (``ent0.05``, not ``ent0.1_ent0.05``) and the sweep refuses the grid."""
    _, jobs = job_dirs(["sweep=ch04_push", "entropy.value=0.05", "eval.freq=1000"])
    clashes = duplicates(jobs)
    assert len(jobs) == 120 and len(clashes) == 40
    assert [" ".join(j[:1]) for j in clashes["ent0.05_nsg4_ls1000_g0.95_seed0"]] == [
        "entropy=fixed_005", "entropy=fixed_01", "entropy=fixed_02"]


def test_list_command(tmp_path: Path) -> None:
    proc = run_cli("herexp.sweep", ["list", "sweep=ch04_push"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 121 and lines[-1] == "120 jobs in multirun/ch04_push"
    assert all("pending" in line for line in lines[:-1])


def _multirun(cwd: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("herexp.train", ["--multirun", *SWEEP_ARGS, *extra], cwd=cwd, timeout=600)


def _statuses(sweep_dir: Path) -> dict[str, str]:
    return {n: j["status"] for n, j in json.loads((sweep_dir / "sweep.json").read_text())["jobs"].items()}


def test_tiny_multirun_resume_and_isolation(tmp_path: Path) -> None:
    grid = ("seed=0,1", "entropy=fixed_005,fixed_01", JOBLIB)
    proc = _multirun(tmp_path, *grid)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_dir = tmp_path / "multirun" / "tiny"
    runs = sorted(p for p in sweep_dir.iterdir() if (p / rf.SUMMARY).exists())
    assert len(runs) == 4 and all(rf.is_completed(r) for r in runs)
    assert "4 completed, 0 skipped, 0 failed" in proc.stderr
    assert set(_statuses(sweep_dir).values()) == {"completed"}
    # loky reuses the 2 workers for 4 jobs: each job still has its own W&B run, its own log
    # (naming only itself) and one torch thread.
    for run in runs:
        assert len(list((run / rf.WANDB_DIR).glob("offline-run-*"))) == 1
        text = (run / "train.log").read_text()
        name = rf.read_summary(run)["name"]
        others = {rf.read_summary(r)["name"] for r in runs} - {name}
        assert f"run {name} ->" in text and not any(f"run {o} ->" in text for o in others)
        assert rf.read_meta(run)["torch_threads"] == 1

    before = {r.name: (r / rf.SUMMARY).read_bytes() for r in runs}
    proc = _multirun(tmp_path, *grid)  # resume: all skipped, nothing redone
    assert proc.returncode == 0 and "0 completed, 4 skipped, 0 failed" in proc.stderr
    assert {r.name: (r / rf.SUMMARY).read_bytes() for r in runs} == before

    (runs[0] / rf.SUMMARY).unlink()  # as if killed mid-run: only that job is redone
    shutil.rmtree(runs[0] / rf.WANDB_DIR)
    proc = _multirun(tmp_path, *grid)
    assert proc.returncode == 0 and "1 completed, 3 skipped, 0 failed" in proc.stderr
    assert rf.is_completed(runs[0])
    assert all((r / rf.SUMMARY).read_bytes() == before[r.name] for r in runs[1:])

    # The real folders aggregate end-to-end; a corrupt and an empty folder are skipped.
    (sweep_dir / "empty_job").mkdir()
    (sweep_dir / "corrupt_job").mkdir()
    (sweep_dir / "corrupt_job" / rf.SUMMARY).write_text("{not json")
    proc = run_cli("herexp.aggregate", [str(sweep_dir)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((sweep_dir / "aggregate" / "report.json").read_text())
    assert report["n_runs"] == 4 and report["n_configs"] == 2 and report["factors"] == ["ent_coef"]
    assert all(c["n"] == 2 and c["ci95_low"] is not None for c in report["configs"])
    assert {Path(s["path"]).name for s in report["skipped"]} >= {"corrupt_job"}
    assert (sweep_dir / "aggregate" / "learning_curves.png").stat().st_size > 0


def test_failing_job_does_not_sink_the_sweep(tmp_path: Path) -> None:
    proc = _multirun(tmp_path, "seed=0", "algo.gamma=0.95,1.5", JOBLIB)
    assert proc.returncode == 1
    assert "1 completed, 0 skipped, 1 failed" in proc.stderr and "algo.gamma=1.5 is invalid" in proc.stderr
    manifest = json.loads((tmp_path / "multirun" / "tiny" / "sweep.json").read_text())
    assert manifest["n_jobs"] == 2 and manifest["grid"] == {} and "algo.gamma=0.95,1.5" in manifest["overrides"]
    statuses = _statuses(tmp_path / "multirun" / "tiny")
    assert sorted(statuses.values()) == ["completed", "failed"]
    failed = next(n for n, s in statuses.items() if s == "failed")
    assert "g1.5" in failed and "Traceback" in rf.read_summary(tmp_path / "multirun" / "tiny" / failed)["traceback"]


def test_submitit_local_two_jobs(tmp_path: Path) -> None:
    proc = _multirun(tmp_path, "seed=0,1", "hydra/launcher=submitit_local", "logger.wandb.mode=disabled")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in (tmp_path / "multirun" / "tiny").iterdir() if (p / rf.SUMMARY).exists()]
    assert len(runs) == 2 and all(rf.is_completed(r) for r in runs)
    assert "2 completed, 0 skipped, 0 failed" in proc.stderr
    assert json.loads((tmp_path / "multirun" / "tiny" / "sweep.json").read_text())["n_jobs"] == 2


def test_slurm_preset_composes() -> None:
    cfg = compose_cfg(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1"],
                      hydra_cfg=True)
    lc = cfg.hydra.launcher
    assert lc._target_.endswith("SlurmLauncher") and lc.partition == "gpu" and lc.gpus_per_node == 1
    assert lc.max_num_timeout > 0 and lc.cpus_per_task >= 1 and lc.array_parallelism > 0 and lc.mem_gb > 0


def test_progress_line() -> None:
    jobs = {f"j{i}": {"status": s, "finished": "x"} for i, s in enumerate(["completed"] * 35 + ["failed"] * 2)}
    line = progress_line({"n_jobs": 120, "jobs": jobs, "started_unix": 0})
    assert line.startswith("37/120 done · 2 failed")


