"""Headless MuJoCo rendering of evaluation episodes: GL backend probing, the render env, the
run's policy loaded as ``herexp.evaluate`` loads it, frame grabbing and MP4/GIF writing.

Rendering is MuJoCo offscreen. With ``MUJOCO_GL`` unset, :func:`ensure_gl_backend` probes EGL
then OSMesa in a subprocess and sets it; Gymnasium reads ``MUJOCO_GL`` when the first frame is
rendered, so this works even after mujoco was imported.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from herexp import agent, envs, evaluate, evaluation, runfolder
from herexp.video import tiles

log = logging.getLogger("herexp.video")

GL_BACKENDS = ("egl", "osmesa")  # headless, in order of preference (EGL is GPU-accelerated on NVIDIA)
GL_INSTALL_HINT = ("Install one: EGL (Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri; on GPU hosts "
                   "the NVIDIA driver ships EGL) or OSMesa (apt-get install libosmesa6), or set MUJOCO_GL "
                   "yourself (egl | osmesa | glfw with a display).")
_PROBE = "from mujoco.{0} import GLContext; c = GLContext(8, 8); c.make_current(); c.free()"
# Fetch's default camera (distance 2.5 m) shows the goal as a few pixels at 240 px; this one
# frames the table so the red goal sphere, the gripper and the block are clearly visible.
CLOSE_CAMERA = {"distance": 1.5, "azimuth": 150.0, "elevation": -30.0, "lookat": np.array([1.3, 0.75, 0.45])}
_CLOSE_CAMERA_ENVS = ("FetchReach", "FetchPush", "FetchPickAndPlace")  # Slide's goals lie off this view


def ensure_gl_backend() -> str:
    """The MuJoCo offscreen backend: ``MUJOCO_GL`` if set, else the first of EGL / OSMesa that can
    create a context (probed in a subprocess: a broken driver cannot crash this process).
    Sets ``MUJOCO_GL``; raises ``RuntimeError`` naming what to install when none works."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    errors = []
    for backend in GL_BACKENDS:
        proc = subprocess.run([sys.executable, "-c", _PROBE.format(backend)], capture_output=True, text=True,
                              env={**os.environ, "MUJOCO_GL": backend}, timeout=120)
        if proc.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            log.info("MuJoCo rendering backend: %s", backend)
            return backend
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        errors.append(f"{backend}: {last}")
    raise RuntimeError(f"no headless OpenGL backend for MuJoCo works ({'; '.join(errors)}). {GL_INSTALL_HINT}")


def make_render_env(env_id: str, width: int = 240, height: int = 240, camera: str = "auto") -> gym.Env:
    """The evaluation env with ``render_mode="rgb_array"`` (same dynamics, seeds and wrappers)."""
    if camera not in ("auto", "close", "default"):
        raise ValueError(f"camera={camera!r}: use auto, close or default")
    ensure_gl_backend()
    kwargs: dict[str, Any] = {"render_mode": "rgb_array", "width": int(width), "height": int(height)}
    if camera == "close" or (camera == "auto" and env_id.startswith(_CLOSE_CAMERA_ENVS)):
        kwargs["default_camera_config"] = CLOSE_CAMERA
    return envs.make_env(env_id, **kwargs)


@dataclass
class Policy:
    """A trained policy with its run's evaluation settings."""

    model: BaseAlgorithm
    vecnorm: VecNormalize | None
    env_id: str
    deterministic: bool
    seed_offset: int


@dataclass
class Episode:
    """One rendered evaluation episode: its frames and its eval.json per-episode record."""

    frames: list[np.ndarray]
    record: dict[str, Any]


def load_policy(run_dir: str | Path, device: str = "cpu", deterministic: bool | None = None) -> Policy:
    """Model + VecNormalize + eval settings of a run folder, as ``herexp.evaluate`` loads them."""
    args: dict[str, Any] = {"run_dir": str(run_dir)}
    if deterministic is not None:
        args["deterministic"] = deterministic
    s = evaluate._settings(args)  # the same defaults/seeds as herexp.evaluate
    model = agent.load_model(s["checkpoint"], s["env"], device=device)
    vecnorm = envs.load_vecnormalize(s["vecnorm"], s["env"]) if s["vecnorm"] else None
    return Policy(model, vecnorm, s["env"], bool(s["deterministic"]), int(s["seed_offset"]))


def record_episodes(model: BaseAlgorithm, env: gym.Env, seeds: Sequence[int], deterministic: bool,
                    vecnorm: VecNormalize | None = None) -> list[Episode]:
    """Roll out one episode per seed with the evaluation loop, grabbing a frame after each step."""
    frames: list[list[np.ndarray]] = [[] for _ in seeds]

    def grab(episode: int, step: int, env: gym.Env, info: dict[str, Any]) -> None:
        frames[episode].append(env.render())

    records = [evaluation.run_episode(model, env, s, deterministic, vecnorm, on_step=grab, episode=i)
               for i, s in enumerate(seeds)]
    return [Episode(f, r) for f, r in zip(frames, records)]


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: int = 25, gif: bool = True,
                sidecar: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``path`` (.mp4, H.264 via imageio-ffmpeg), ``.gif`` and the ``.json`` sidecar; return the
    sidecar plus ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    padded = [tiles.pad_to_multiple(f, 2) for f in frames]  # yuv420p needs even sizes
    with imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                            pixelformat="yuv420p", macro_block_size=1) as writer:
        for f in padded:
            writer.append_data(f)
    info = {"video": path.name, "gif": None, "fps": fps, "n_frames": len(padded),
            "height": padded[0].shape[0], "width": padded[0].shape[1],
            "gl_backend": os.environ.get("MUJOCO_GL"), **(sidecar or {})}
    if gif:
        images = tiles.gif_frames(frames)
        gif_path = path.with_suffix(".gif")
        images[0].save(gif_path, save_all=True, append_images=images[1:], loop=0, optimize=True,
                       duration=round(1000 * 2 / fps))  # every 2nd frame: same speed as the mp4
        info["gif"] = gif_path.name
    runfolder.write_json_atomic(path.with_suffix(".json"), info)
    log.info("video: %s (%d frames%s)", path, len(padded), f", gif {info['gif']}" if gif else "")
    return {**info, "path": str(path)}  # the sidecar keeps names only (the folder may move)


def _episode_entry(ep: Episode, run_dir: Path, **extra: Any) -> dict[str, Any]:
    r = ep.record
    return {**extra, "run_dir": str(run_dir), "seed": r["seed"], "success": r["success"], "return": r["return"],
            "length": r["length"], "final_distance": r["final_distance"], "n_frames": len(ep.frames)}


def render_run(run_dir: str | Path, episodes: int, width: int = 240, height: int = 240, camera: str = "auto",
               device: str = "cpu", deterministic: bool | None = None) -> tuple[Policy, list[Episode]]:
    """Load a run's policy and render its first ``episodes`` evaluation episodes."""
    policy = load_policy(run_dir, device, deterministic)
    env = make_render_env(policy.env_id, width, height, camera)
    try:
        return policy, record_episodes(policy.model, env, evaluation.eval_seeds(policy.seed_offset, episodes),
                                       policy.deterministic, policy.vecnorm)
    finally:
        env.close()


def video_of_run(run_dir: str | Path, episodes: int = 4, width: int = 240, height: int = 240, fps: int = 25,
                 deterministic: bool | None = None, out: str | Path | None = None, gif: bool = True,
                 device: str = "cpu", camera: str = "auto") -> dict[str, Any]:
    """The first ``episodes`` evaluation episodes of a run, tiled in a grid played simultaneously."""
    run_dir = Path(run_dir)
    policy, eps = render_run(run_dir, episodes, width, height, camera, device, deterministic)
    name = runfolder.read_config(run_dir)["name"]
    labelled = [tiles.label_episode(e.frames, [name], e.record["seed"], e.record["success"]) for e in eps]
    frames = tiles.grid_video(labelled, tiles.grid_cols(len(eps)))
    path = Path(out) if out else run_dir / runfolder.VIDEO_DIR / "policy.mp4"
    return write_video(frames, path, fps, gif, {
        "layout": "grid", "deterministic": policy.deterministic, "rendered_frames": sum(len(e.frames) for e in eps),
        "episodes": [_episode_entry(e, run_dir, title=name) for e in eps]})


