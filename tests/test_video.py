"""herexp.video: headless rollout videos of a tiny checkpoint, tiling/labels, best/worst selection.

MUJOCO_GL is set before any herexp import (herexp.envs imports gymnasium/mujoco); EGL is
Mesa's software EGL on CPU-only machines. Contract checked here: a run-mode video tiles its
episodes played simultaneously, so it has max(episode length) frames, and its JSON sidecar
records every rendered frame (episodes x steps) with the same seeds/outcomes as eval.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from herexp import agent, envs, runfolder, video  # noqa: E402
from herexp.video import tiles  # noqa: E402
from tests.conftest import ROOT, TINY, compose_cfg, run_cli  # noqa: E402

STEPS = 50  # FetchReach episode length


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny training run (model.zip, eval.json, summary.json) in ~6 s."""
    run = tmp_path_factory.mktemp("video") / "run"
    proc = run_cli("herexp.train", [*TINY, f"hydra.run.dir={run}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _read_mp4(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [frame for frame in reader]  # list(reader) trusts a huge __len__: MemoryError


def _red_pixels(frame: np.ndarray) -> int:
    """Pixels of the red goal sphere (rgba 1 0 0), outside the label strips."""
    h = frame.shape[0]
    scene = frame[h // 6: h - h // 8].astype(int)
    return int(((scene[..., 0] > 120) & (scene[..., 1] < 60) & (scene[..., 2] < 60)).sum())


# --- real rendering -------------------------------------------------------------------------------

def test_run_video_cli_headless(tiny_run: Path) -> None:
    proc = run_cli("herexp.video", [f"run_dir={tiny_run}", "episodes=2"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    vdir = tiny_run / runfolder.VIDEO_DIR
    mp4, gif, side = vdir / "policy.mp4", vdir / "policy.gif", vdir / "policy.json"
    assert mp4.stat().st_size > 10_000
    frames = _read_mp4(mp4)
    assert len(frames) == STEPS  # 2 tiles played side by side: one video frame per step
    assert frames[0].shape == (240, 2 * 240 + 2, 3)  # 2x1 grid with a 2 px gap
    assert frames[0].std() > 20  # not blank
    assert _red_pixels(frames[0]) > 20  # the goal is visible
    meta = json.loads(side.read_text())
    assert meta["n_frames"] == STEPS and meta["layout"] == "grid"
    assert meta["rendered_frames"] == 2 * STEPS == sum(e["n_frames"] for e in meta["episodes"])
    # Same episodes as the run's scored evaluation: seeds, outcomes, final distances.
    scored = runfolder.read_eval(tiny_run)["per_episode"][:2]
    assert [e["seed"] for e in meta["episodes"]] == [1_000_000, 1_000_001]  # eval.seed_offset + i
    for shown, ev in zip(meta["episodes"], scored):
        assert shown["seed"] == ev["seed"] and shown["success"] == ev["success"]
        assert shown["final_distance"] == pytest.approx(ev["final_distance"], abs=1e-6)
    with Image.open(gif) as im:
        assert im.n_frames == STEPS // 2 and im.width <= 320
    assert gif.stat().st_size < 5_000_000


def _fake_sweep_from(run: Path, root: Path) -> Path:
    """Three 'configs' sharing the tiny model: good (HER), bad (HER), and no-HER."""
    for name, value, her, rate in (("ent0.1_seed0", 0.1, True, 0.9), ("ent0.2_seed0", 0.2, True, 0.3),
                                   ("noher_seed0", 0.1, False, 0.0)):
        dst = root / name
        shutil.copytree(run, dst, ignore=shutil.ignore_patterns(runfolder.VIDEO_DIR, runfolder.WANDB_DIR))
        s = runfolder.read_summary(dst)
        s["config"]["entropy"]["value"], s["config"]["her"]["enabled"], s["success_rate"] = value, her, rate
        runfolder.write_summary(dst, s)
    return root


def test_sweep_video_columns(tiny_run: Path, tmp_path: Path) -> None:
    sweep = _fake_sweep_from(tiny_run, tmp_path / "sweep")
    meta = video.video_of_sweep(sweep, pick=["best", "worst"], episodes=1, width=160, height=160, gif=False)
    assert meta["columns"] == ["best", "worst", "no-HER"]
    assert [Path(e["run_dir"]).name for e in meta["episodes"]] == ["ent0.1_seed0", "ent0.2_seed0", "noher_seed0"]
    frames = _read_mp4(sweep / runfolder.VIDEO_DIR / "best_vs_worst.mp4")
    assert len(frames) == STEPS and frames[0].shape == (160, 3 * 160 + 2 * 2, 3)
    assert meta["rendered_frames"] == 3 * STEPS


def test_training_video_callback(tmp_path: Path) -> None:
    """eval.video_every=100 with n_envs=2 over 200 env steps -> videos at steps 100 and 200."""
    cfg = compose_cfg([*TINY, "total_steps=200", "eval.video_every=100"])
    venv = envs.make_train_env(cfg)
    try:
        model = agent.build_model(cfg, venv)
        callbacks = video.training_callbacks(cfg, tmp_path, model, None)
        model.learn(total_timesteps=200, callback=callbacks)
    finally:
        venv.close()
    vdir = tmp_path / runfolder.VIDEO_DIR
    assert sorted(p.name for p in vdir.glob("*.mp4")) == ["step_100.mp4", "step_200.mp4"]
    assert len(_read_mp4(vdir / "step_200.mp4")) == STEPS
    assert json.loads((vdir / "step_100.json").read_text())["step"] == 100
    assert video.training_callbacks(compose_cfg(TINY), tmp_path, model, None) == []  # off by default


def test_wandb_offline_logging(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(runfolder.WANDB_DIR))
    vdir = run / runfolder.VIDEO_DIR
    if not (vdir / "policy.mp4").exists():  # test order independence
        video.write_video([np.zeros((32, 32, 3), np.uint8)] * 4, vdir / "policy.mp4")
    files_dir = Path(video.log_to_wandb(run, [vdir / "policy.mp4", vdir / "policy.gif"], "x", "g"))
    assert files_dir.is_relative_to(run / runfolder.WANDB_DIR)
    logged = sorted(p.suffix for p in (files_dir / "media" / "videos").rglob("*.*"))
    assert logged == [".gif", ".mp4"]


# --- backend selection ----------------------------------------------------------------------------

def test_gl_backend_respects_env_and_explains_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert video.ensure_gl_backend() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    tried = []

    def fail(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        tried.append(kw["env"]["MUJOCO_GL"])  # type: ignore[index]
        return subprocess.CompletedProcess(cmd, 1, "", "ImportError: libOSMesa.so: not found")

    monkeypatch.setattr(video.subprocess, "run", fail)
    with pytest.raises(RuntimeError, match="libegl1.*libosmesa6"):
        video.ensure_gl_backend()
    assert tried == ["egl", "osmesa"] and "MUJOCO_GL" not in os.environ

    monkeypatch.setattr(video.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0))
    assert video.ensure_gl_backend() == "egl" and os.environ["MUJOCO_GL"] == "egl"


# --- tiling and labels on synthetic frames --------------------------------------------------------

def _solid(value: int, h: int = 60, w: int = 80) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_label_frame_marks_outcome() -> None:
    plain = _solid(128, 120, 240)
    ok = tiles.label_frame(plain, ["push_her | ent0.1"], "episode seed 7: SUCCESS", True)
    bad = tiles.label_frame(plain, ["push_her | ent0.1"], "episode seed 7: FAIL", False)
    assert ok.shape == plain.shape and ok.dtype == np.uint8
    assert (plain == 128).all()  # input untouched
    assert not np.array_equal(ok[:12], plain[:12])  # top strip: text drawn
    assert np.array_equal(ok[50:70], plain[50:70])  # the scene in between stays visible
    assert tuple(ok[-1, -1]) == tiles.SUCCESS_RGB and tuple(bad[-1, -1]) == tiles.FAIL_RGB
    assert (ok[-14:] == 255).all(axis=-1).any()  # white outcome text on the bar
    long = tiles.label_frame(plain, ["x" * 200], "y" * 200, None)  # too long: cut, no error
    assert tuple(long[-1, -1]) == tiles.NEUTRAL_RGB


def test_label_episode_uses_final_outcome() -> None:
    frames = tiles.label_episode([_solid(0), _solid(50), _solid(100)], ["cfg"], 1_000_003, success=True)
    assert len(frames) == 3 and all(tuple(f[-1, -1]) == tiles.SUCCESS_RGB for f in frames)
    assert tiles.outcome_text(5, False) == "episode seed 5: FAIL"


def test_pad_and_grid_video() -> None:
    short = [_solid(10), _solid(20)]
    long = [_solid(30), _solid(40), _solid(50), _solid(60)]
    padded = tiles.pad_episodes([short, long])
    assert [len(e) for e in padded] == [4, 4] and padded[0][3] is short[-1]
    assert tiles.grid_cols(1) == 1 and tiles.grid_cols(2) == 2 and tiles.grid_cols(4) == 2
    assert tiles.grid_cols(5) == 3
    video_frames = tiles.grid_video([short, long, long], cols=2, gap=2)
    assert len(video_frames) == 4
    f = video_frames[3]
    assert f.shape == (2 * 60 + 2, 2 * 80 + 2, 3)
    assert f[0, 0, 0] == 20 and f[0, 82, 0] == 60 and f[62, 0, 0] == 60  # row-major, padded
    assert f[62, 82, 0] == 0 and f[60, 0, 0] == 0  # empty cell and gap stay black
    with pytest.raises(ValueError, match="one shape"):
        tiles.tile([_solid(0), _solid(0, 10, 10)], cols=2)
    with pytest.raises(ValueError, match="no frames"):
        tiles.pad_episodes([[], long])


def test_pad_to_multiple_and_gif_frames() -> None:
    assert tiles.pad_to_multiple(_solid(9, 61, 81), 2).shape == (62, 82, 3)
    assert tiles.pad_to_multiple(_solid(9, 64, 80), 16).shape == (64, 80, 3)
    gif = tiles.gif_frames([_solid(i, 240, 642) for i in range(10)], max_width=320, every=2)
    assert len(gif) == 5 and gif[0].size == (320, 120)


# --- best / worst / no-HER selection --------------------------------------------------------------

def _fake_run(root: Path, name: str, value: float, seed: int, rate: float, her: bool = True,
              status: str = runfolder.STATUS_COMPLETED, model: bool = True) -> Path:
    run = root / name
    run.mkdir(parents=True)
    if model:
        (run / runfolder.MODEL).write_bytes(b"")
    cfg = {"env": {"id": "FetchPush-v4", "name": "push"}, "her": {"enabled": her, "n_sampled_goal": 4},
           "entropy": {"mode": "fixed", "value": value}, "seed": seed, "name": f"{name}",
           "logger": {"wandb": {"mode": "disabled"}}, "eval": {"seed_offset": 1_000_000}}
    runfolder.write_summary(run, {"status": status, "success_rate": rate, "config": cfg, "name": name})
    return run


def test_select_best_worst_noher(tmp_path: Path) -> None:
    for seed, rates in enumerate(zip((0.9, 0.8, 0.7), (0.5, 0.5, 0.5), (0.1, 0.3, 0.2))):
        for value, rate in zip((0.05, 0.1, 0.2), rates):
            _fake_run(tmp_path, f"ent{value}_seed{seed}", value, seed, rate)
    _fake_run(tmp_path, "noher_seed0", 0.05, 0, 0.0, her=False)
    _fake_run(tmp_path, "ent0.3_seed0", 0.3, 0, 1.0, status=runfolder.STATUS_FAILED)  # ignored
    _fake_run(tmp_path, "ent0.4_seed0", 0.4, 0, 1.0, model=False)  # no checkpoint: ignored
    picks, ranking = video.select_runs(tmp_path, ["best", "worst"])
    assert [(p.role, p.run_dir.name) for p in picks] == [
        ("best", "ent0.05_seed1"),  # mean 0.8: the seed closest to the mean
        ("worst", "ent0.2_seed2"),  # mean 0.2
        ("no-HER", "noher_seed0")]
    assert picks[0].label == "her=on ent_coef=0.05"  # the aggregate report's label of that config
    assert picks[0].mean == pytest.approx(0.8) and picks[0].n == 3
    assert [g["rank"] for g in ranking] == [1, 2, 3, 4] and ranking[-1]["her"] is False
    only_best, _ = video.select_runs(tmp_path, ["best"], noher=False)
    assert [p.role for p in only_best] == ["best"]
    with pytest.raises(ValueError, match="pick=median"):
        video.select_runs(tmp_path, ["median"])


def test_select_ties_and_single_config(tmp_path: Path) -> None:
    _fake_run(tmp_path / "a", "x_seed0", 0.1, 0, 0.5)
    _fake_run(tmp_path / "a", "x_seed1", 0.1, 1, 0.5)
    _fake_run(tmp_path / "a", "y_seed0", 0.2, 0, 0.0)
    _fake_run(tmp_path / "a", "y_seed1", 0.2, 1, 1.0)  # same mean, larger std: ranks second
    picks, _ = video.select_runs(tmp_path / "a")
    assert [p.run_dir.parent.name + "/" + p.run_dir.name for p in picks] == ["a/x_seed0", "a/y_seed0"]
    _fake_run(tmp_path / "b", "z_seed0", 0.1, 0, 0.5)
    picks, _ = video.select_runs(tmp_path / "b")  # best is worst: shown once
    assert [p.role for p in picks] == ["best"] and picks[0].label == "z_seed0"
    with pytest.raises(ValueError, match="no completed run"):
        video.select_runs(tmp_path / "empty")
