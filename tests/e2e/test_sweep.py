"""Sweeps: grid expansion, a tiny real joblib multirun (resume, crash isolation, no leaks
between jobs in a reused loky worker), submitit_local for real, the SLURM preset composed."""

from __future__ import annotations

import json
from pathlib import Path

from herexp import runfolder as rf
from herexp.sweep import duplicates, job_dirs, progress_line
from herexp.wandb_records import OfflineRun, offline_runs, read_offline_run
from tests.conftest import TINY, compose_cfg, run_cli

SWEEP_ARGS = [*[o for o in TINY if not o.startswith("logger.")], "logger.wandb.mode=offline",
              "total_steps=200", "eval.freq=100", "study=tiny"]
JOBLIB = "hydra.launcher.n_jobs=2"


def test_ch04_push_expands_to_120_distinct_jobs() -> None:
    cfg, named = job_dirs(["sweep=ch04_push"])
    jobs = [job for job, _ in named]
    names = [n for _, n in named]
    assert len(jobs) == 120 and len(set(names)) == 120
    # Hydra's order (entropy slowest, seed fastest), each folder next to the overrides it names
    cell = ["her.n_sampled_goal=4", "algo.learning_starts=1000", "algo.gamma=0.95"]
    assert named[:2] == [(["entropy=fixed_005", *cell, "seed=0", "sweep=ch04_push"], "ent0.05_nsg4_ls1000_g0.95_seed0"),
                         (["entropy=fixed_005", *cell, "seed=1", "sweep=ch04_push"], "ent0.05_nsg4_ls1000_g0.95_seed1")]
    assert named[-1] == (["entropy=fixed_02", "her.n_sampled_goal=8", "algo.learning_starts=5000", "algo.gamma=0.98",
                          "seed=77", "sweep=ch04_push"], "ent0.2_nsg8_ls5000_g0.98_seed77")
    assert names[:6] == ["ent0.05_nsg4_ls1000_g0.95_seed0", "ent0.05_nsg4_ls1000_g0.95_seed1",
                         "ent0.05_nsg4_ls1000_g0.95_seed2", "ent0.05_nsg4_ls1000_g0.95_seed42",
                         "ent0.05_nsg4_ls1000_g0.95_seed77", "ent0.05_nsg4_ls1000_g0.98_seed0"]
    assert cfg.env.id == "FetchPush-v4" and cfg.her.enabled and cfg.total_steps == 2_000_000
    levels: dict[str, set[str]] = {}
    for job in jobs:
        for line in job:
            k, _, v = line.partition("=")
            levels.setdefault(k, set()).add(v)
    assert levels["entropy"] == {"fixed_005", "fixed_01", "fixed_02"}
    assert levels["her.n_sampled_goal"] == {"4", "8"} and levels["algo.learning_starts"] == {"1000", "5000"}
    assert levels["algo.gamma"] == {"0.95", "0.98"} and levels["seed"] == {"0", "1", "2", "42", "77"}


def test_other_sweeps_and_cli_grids() -> None:
    _, jobs = job_dirs(["sweep=her_vs_noher", "env=reach"])
    assert [n for _, n in jobs] == [f"reach_{h}_seed{s}" for h in ("her", "noher") for s in range(3)]
    cfg, jobs = job_dirs(["sweep=ablation_nsg"])
    assert [n for _, n in jobs] == ["nsg2", "nsg4", "nsg8"] and cfg.study == "ablation_nsg"
    _, jobs = job_dirs(["sweep=fast_vs_stock"])
    assert [n for _, n in jobs] == ["sac_seed0", "sac_seed1", "sac_seed2", "sac_fast_seed0", "sac_fast_seed1",
                                    "sac_fast_seed2"]
    _, jobs = job_dirs(["seed=range(5)", "algo.gamma=0.95,0.98"])
    assert [n for _, n in jobs] == ["g0.95_seed0", "g0.98_seed0", "g0.95_seed1", "g0.98_seed1", "g0.95_seed2",
                                    "g0.98_seed2", "g0.95_seed3", "g0.98_seed3", "g0.95_seed4", "g0.98_seed4"]
    assert jobs[1][0] == ["seed=0", "algo.gamma=0.98"] and duplicates(jobs) == {}


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


def test_ch04_push_fast_is_the_chapter_grid_at_the_preset() -> None:
    """What ``python -m herexp.sweep list sweep=ch04_push_fast`` lists: 120 jobs."""
    _, named = job_dirs(["sweep=ch04_push_fast"])
    names = [n for _, n in named]
    assert len(names) == 120 and len(set(names)) == 120
    assert (names[0], names[-1]) == ("ent0.05_nsg4_ls1000_g0.95_seed0", "ent0.2_nsg8_ls5000_g0.98_seed77")
    cfg = compose_cfg(["sweep=ch04_push_fast", "entropy=fixed_01", "algo.gamma=0.98", "seed=42"])
    assert (cfg.entropy.value, cfg.algo.gamma, cfg.seed, cfg.study) == (0.1, 0.98, 42, "ch04_push_fast")
    # the preset's base under every cell: 4 envs, normalization, lr 1e-3, tau 0.05, 500 k with early stop
    assert (cfg.n_envs, cfg.algo.normalize, cfg.algo.learning_rate, cfg.algo.tau) == (4, True, 1e-3, 0.05)
    assert (cfg.total_steps, cfg.early_stop.success, cfg.early_stop.patience, cfg.eval.freq) == (500_000, 0.95, 2, 25_000)


def _multirun(cwd: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("herexp.train", ["--multirun", *SWEEP_ARGS, *extra], cwd=cwd, timeout=600)


def _statuses(sweep_dir: Path) -> dict[str, str]:
    return {n: j["status"] for n, j in json.loads((sweep_dir / "sweep.json").read_text())["jobs"].items()}


# The job folders of the 2x2 grid below (sorted), each with the grid overrides that name it: the
# labels of every override that changes what a run learns, from its composed value
# (total_steps=300 then 200 -> total_steps200), seed last; no eval.* / logger.* / study bookkeeping.
_TINY = "ls100_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps200"
TINY_JOBS = {
    f"reach_ent0.05_{_TINY}_seed0": ["seed=0", "entropy=fixed_005"],
    f"reach_ent0.05_{_TINY}_seed1": ["seed=1", "entropy=fixed_005"],
    f"reach_ent0.1_{_TINY}_seed0": ["seed=0", "entropy=fixed_01"],
    f"reach_ent0.1_{_TINY}_seed1": ["seed=1", "entropy=fixed_01"],
}


def _wandb_run(run: Path) -> OfflineRun:
    (path,) = offline_runs(run / rf.WANDB_DIR)  # exactly one W&B run per job folder
    return read_offline_run(path)


def _tb_steps(run: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    (events,) = (run / rf.TENSORBOARD_DIR).glob("events.out.tfevents.*")  # one event file
    steps: dict[str, list[int]] = {}
    for event in EventFileLoader(str(events)).Load():
        for value in event.summary.value:
            steps.setdefault(value.tag, []).append(event.step)
    return steps


def _check_wandb(run: Path) -> OfflineRun:
    """One W&B run named like its folder, grouped by study, factors on top, env steps on x."""
    w, summary = _wandb_run(run), rf.read_summary(run)
    assert (w.name, w.group, w.job_type, w.project) == (run.name, "tiny", "train", "herexp")
    assert w.summary["status"] == "completed" and w.summary["final/success_rate"] == summary["success_rate"]
    assert w.summary["final/return_mean"] == summary["return_mean"] and w.summary["steps_per_s"] > 0
    assert isinstance(w.summary["diagnoses"], str) and w.summary["train_time_s"] > 0
    assert w.config["factor/env"] == "reach" and w.config["factor/n_envs"] == 2 and w.config["seed"] in (0, 1)
    assert w.args == summary["overrides"] and w.program == "-m herexp.train"
    steps = [row["_step"] for row in w.history]
    assert steps == sorted(set(steps)) and steps[-1] == 200  # strictly increasing, in env steps
    assert all(row["env_steps"] == row["_step"] for row in w.history) and w.step_metrics == {"*": "env_steps"}
    for tag, tb in _tb_steps(run).items():
        assert tb == sorted(set(tb)) and tb[-1] <= 200, tag  # strictly increasing
    return w


def test_tiny_multirun_resume_and_isolation(tmp_path: Path) -> None:
    grid = ("seed=0,1", "entropy=fixed_005,fixed_01", JOBLIB)
    proc = _multirun(tmp_path, *grid)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_dir = tmp_path / "multirun" / "tiny"
    runs = sorted(p for p in sweep_dir.iterdir() if (p / rf.SUMMARY).exists())
    assert [r.name for r in runs] == list(TINY_JOBS) and all(rf.is_completed(r) for r in runs)
    # each folder holds the job it names (a seed or entropy swap between folders fails here)
    assert {r.name: rf.read_summary(r)["overrides"][-2:] for r in runs} == TINY_JOBS
    manifest_jobs = json.loads((sweep_dir / "sweep.json").read_text())["jobs"]
    assert {name: job["overrides"][-2:] for name, job in manifest_jobs.items()} == TINY_JOBS
    assert "4 completed, 0 skipped, 0 failed" in proc.stderr
    assert _statuses(sweep_dir) == dict.fromkeys(TINY_JOBS, "completed")
    # W&B: 4 runs, named like their folders, 4 ids, factor labels as tags, the job's options.
    wb = {r.name: _check_wandb(r) for r in runs}
    assert len({w.id for w in wb.values()}) == 4
    assert {n: (w.config["seed"], w.config["factor/ent_coef"]) for n, w in wb.items()} == dict(
        zip(TINY_JOBS, [(0, 0.05), (1, 0.05), (0, 0.1), (1, 0.1)]))
    first = wb[list(TINY_JOBS)[0]]
    assert first.tags == ["reach", "sac_fast", "her", "ent0.05", "ls100", "batch_size32", "buffer_size5000",
                          "net_arch-16-16", "n_envs2", "total_steps200"]
    assert first.config["options"] == {"env": "reach", "algo": "sac_fast", "her": "on", "entropy": "fixed_005"}
    # loky reuses the 2 workers for 4 jobs: each job still has its own W&B run, its own log
    # (naming only itself) and one torch thread.
    for run in runs:
        text = (run / "train.log").read_text()
        name = rf.read_summary(run)["name"]
        assert name == run.name
        others = {rf.read_summary(r)["name"] for r in runs} - {name}
        assert f"run {name} ->" in text and not any(f"run {o} ->" in text for o in others)
        assert rf.read_meta(run)["torch_threads"] == 1
        assert f"[{run.name}] step " in text  # progress lines name their job
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert manifest["workers"] == 2
    assert all(j["started_unix"] < j["finished_unix"] for j in manifest["jobs"].values())
    assert "ETA 0h00m (2 parallel)" in proc.stdout  # the last job: nothing left

    before = {r.name: (r / rf.SUMMARY).read_bytes() for r in runs}
    proc = _multirun(tmp_path, *grid)  # resume: all skipped, nothing redone
    assert proc.returncode == 0 and "0 completed, 4 skipped, 0 failed" in proc.stderr
    assert {r.name: (r / rf.SUMMARY).read_bytes() for r in runs} == before

    # As if killed mid-run: no summary, but the attempt's W&B run and TensorBoard file stay.
    # The redo clears them, so the folder still syncs as one W&B run (same id) whose steps and
    # TensorBoard steps never go back.
    (runs[0] / rf.SUMMARY).unlink()
    stale = [_wandb_run(runs[0]).path / "stale", next((runs[0] / rf.TENSORBOARD_DIR).iterdir()).with_name("stale")]
    for marker in stale:
        marker.write_text("earlier attempt")
    proc = _multirun(tmp_path, *grid)
    assert proc.returncode == 0 and "1 completed, 3 skipped, 0 failed" in proc.stderr
    assert rf.is_completed(runs[0]) and not any(m.exists() for m in stale)
    assert _check_wandb(runs[0]).id == wb[runs[0].name].id
    assert all((r / rf.SUMMARY).read_bytes() == before[r.name] for r in runs[1:])

    # The real folders aggregate end-to-end (and into W&B); a corrupt and an empty folder are skipped.
    (sweep_dir / "empty_job").mkdir()
    (sweep_dir / "corrupt_job").mkdir()
    (sweep_dir / "corrupt_job" / rf.SUMMARY).write_text("{not json")
    proc = run_cli("herexp.aggregate", [str(sweep_dir), "wandb=true"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((sweep_dir / "aggregate" / "report.json").read_text())
    assert report["n_runs"] == 4 and report["n_configs"] == 2 and report["factors"] == ["ent_coef"]
    assert all(c["n"] == 2 and c["ci95_low"] is not None for c in report["configs"])
    assert {Path(s["path"]).name for s in report["skipped"]} >= {"corrupt_job"}
    assert (sweep_dir / "aggregate" / "learning_curves.png").stat().st_size > 0
    agg = _wandb_run(sweep_dir / "aggregate")
    assert (agg.group, agg.job_type) == ("tiny", "aggregate")
    assert agg.history[0]["tables/configs"]["nrows"] == 2 and "plots/learning_curves" in agg.history[0]


def test_failing_job_does_not_sink_the_sweep(tmp_path: Path) -> None:
    """A job that crashes at run time (its folder holds a directory where eval.json goes, so
    clearing the earlier attempt fails) and one that cannot even start (a plain file where its
    folder goes: Hydra's job set-up fails in the worker) are recorded as failed, with their
    reasons; the other job completes and the sweep exits 1."""
    folder = "reach_ls100_g0.9_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps200_seed{}"
    _, jobs = job_dirs([*SWEEP_ARGS, "seed=0,1,2", "algo.gamma=0.9"])
    assert [(j[-2:], n) for j, n in jobs] == [(["seed=0", "algo.gamma=0.9"], folder.format(0)),
                                              (["seed=1", "algo.gamma=0.9"], folder.format(1)),
                                              (["seed=2", "algo.gamma=0.9"], folder.format(2))]
    broken = tmp_path / "multirun" / "tiny" / folder.format(1)
    (broken / rf.EVAL / "x").mkdir(parents=True)
    (tmp_path / "multirun" / "tiny" / folder.format(2)).write_text("not a folder")
    proc = _multirun(tmp_path, "seed=0,1,2", "algo.gamma=0.9", JOBLIB)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "sweep tiny: 1 completed, 0 skipped, 2 failed, 0 interrupted (multirun/tiny)" in proc.stderr
    assert "IsADirectoryError" in proc.stderr
    manifest = json.loads((tmp_path / "multirun" / "tiny" / "sweep.json").read_text())
    assert manifest["n_jobs"] == 3 and manifest["grid"] == {} and "seed=0,1,2" in manifest["overrides"]
    statuses = _statuses(tmp_path / "multirun" / "tiny")
    assert statuses == {folder.format(0): "completed", folder.format(1): "failed", folder.format(2): "failed"}
    assert "Traceback" in rf.read_summary(broken)["traceback"]
    assert manifest["jobs"][folder.format(2)]["error"] == (
        f"FileExistsError: [Errno 17] File exists: 'multirun/tiny/{folder.format(2)}'")
    assert (tmp_path / "multirun" / "tiny" / folder.format(2)).read_text() == "not a folder"  # left as it was


def test_grid_of_identical_runs_is_refused_before_training(tmp_path: Path) -> None:
    """her=on and her=off both forced to her.enabled=true are one run: no job starts."""
    proc = _multirun(tmp_path, "seed=0", "her=on,off", "her.enabled=true", "logger.wandb.mode=disabled")
    assert proc.returncode == 2
    assert "2 jobs are the same run (multirun/tiny/reach_her_ls100_" in proc.stderr
    assert not (tmp_path / "multirun" / "tiny").exists()


def test_submitit_local_two_jobs(tmp_path: Path) -> None:
    proc = _multirun(tmp_path, "seed=0,1", "hydra/launcher=submitit_local", "logger.wandb.mode=disabled")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in (tmp_path / "multirun" / "tiny").iterdir() if (p / rf.SUMMARY).exists())
    assert {r.name: rf.read_summary(r)["config"]["seed"] for r in runs} == {
        "reach_ls100_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps200_seed0": 0,
        "reach_ls100_batch_size32_buffer_size5000_net_arch-16-16_n_envs2_total_steps200_seed1": 1}
    assert all(rf.is_completed(r) for r in runs)
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


