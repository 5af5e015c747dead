"""Watch the policies: rollout videos of a run, and best vs worst vs no-HER of a sweep.

    python -m herexp.video run_dir=<run folder> episodes=4          # <run>/videos/policy.mp4 + .gif
    python -m herexp.video sweep_dir=multirun/ch04_push pick=best,worst   # <sweep>/videos/best_vs_worst.*

Episodes are rolled out by :func:`herexp.evaluation.run_episode` with the run's own evaluation
settings (``eval.seed_offset``, ``eval.deterministic``, VecNormalize stats), exactly as
``herexp.evaluate`` does, so episode ``i`` of the video is episode ``i`` of ``eval.json``.
Frames are grabbed after every ``env.step`` (``on_step`` hook): an episode of T steps gives T
frames. Run mode tiles the episodes in a grid played simultaneously (video length = the longest
episode); sweep mode puts one column per picked config (best | worst | no-HER) and one row per
episode. Next to each ``.mp4`` a ``.json`` sidecar lists every tile (run, seed, success,
return, frames rendered) and a ``.gif`` (every 2nd frame, <= 320 px wide) is written.

Rendering is MuJoCo offscreen. With ``MUJOCO_GL`` unset, :func:`ensure_gl_backend` probes EGL
then OSMesa in a subprocess and sets it; Gymnasium reads ``MUJOCO_GL`` when the first frame is
rendered, so this works even after mujoco was imported. Options: see ``USAGE``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from herexp import agent, cli, envs, evaluate, evaluation, runfolder, tracking
from herexp import video_tiles as tiles
from herexp.callbacks import EveryNEnvSteps

log = logging.getLogger("herexp.video")
USAGE = ("usage: python -m herexp.video run_dir=<run> [episodes=4] | sweep_dir=<sweep> [pick=best,worst] "
         "[noher=true] [episodes=1]  [width=240] [height=240] [fps=25] [deterministic=true|false] "
         "[camera=auto|close|default] [out=<file.mp4>] [gif=true] [wandb=false] [device=cpu]")


@dataclass
class VideoArgs:
    """Arguments of ``python -m herexp.video`` (one of run_dir / sweep_dir)."""

    run_dir: Optional[str] = None  # one run: its first `episodes` evaluation episodes
    sweep_dir: Optional[str] = None  # a sweep: best / worst / no-HER configurations side by side
    episodes: Optional[int] = None  # default 4 (run) or 1 (sweep)
    pick: Any = "best,worst"  # sweep: which configurations
    noher: bool = True  # sweep: add the best no-HER configuration
    width: int = 240
    height: int = 240
    fps: int = 25
    deterministic: Optional[bool] = None  # default: the run's eval.deterministic
    camera: str = "auto"  # auto | close | default
    out: Optional[str] = None
    gif: bool = True
    wandb: bool = False
    device: str = "cpu"
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


# --- sweep mode: which runs to show -------------------------------------------------------------
@dataclass
class Pick:
    """One column of the sweep video: a config's representative run and its group statistics."""

    role: str  # best | worst | no-HER
    run_dir: Path  # the seed whose success rate is closest to its config's mean
    label: str  # the config's factor values, as the aggregate report labels it
    mean: float  # mean final success rate over the config's seeds
    std: float | None  # sample std (ddof=1) over seeds; None for a single seed
    n: int  # seeds


def rank_configs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Completed runs with a model, grouped into configurations and ranked exactly as
    ``herexp.aggregate`` ranks them (same factors and labels; best mean success first, tie:
    lower std)."""
    from herexp.aggregate.load import load_folders
    from herexp.aggregate.stats import config_table

    loaded = load_folders([sweep_dir])
    runs = loaded.completed
    runs = runs[[(Path(f) / runfolder.MODEL).exists() for f in runs["folder"]]]
    if runs.empty:
        raise ValueError(f"sweep_dir={sweep_dir}: no completed run with a {runfolder.MODEL} below it")
    ranking = []
    for c in config_table(runs, loaded.factors, "success_rate"):
        group = runs[runs["config"] == c["config"]]
        rep = min(zip(group["folder"], group["success_rate"]), key=lambda r: (abs(r[1] - c["mean"]), r[0]))[0]
        ranking.append({"rank": c["rank"], "label": c["config"] if loaded.factors else Path(rep).name,
                        "mean": c["mean"], "std": c["std"], "n": c["n"],
                        "her": bool(runfolder.read_config(rep)["her"]["enabled"]), "run_dir": str(rep),
                        "runs": sorted(group["folder"])})
    return ranking


def select_runs(sweep_dir: str | Path, pick: Sequence[str] = ("best", "worst"),
                noher: bool = True) -> tuple[list[Pick], list[dict[str, Any]]]:
    """The picked configs (best/worst among HER configs, or among all when none uses HER), plus the
    best no-HER config when ``noher``; a config is shown once. Returns (picks, full ranking)."""
    ranking = rank_configs(sweep_dir)
    her = [g for g in ranking if g["her"]] or ranking
    chosen = {"best": her[0], "worst": her[-1]}
    unknown = sorted(set(pick) - set(chosen))
    if unknown:
        raise ValueError(f"pick={','.join(pick)}: unknown {unknown}; use best, worst or best,worst")
    roles = [(r, chosen[r]) for r in pick]
    no_her = [g for g in ranking if not g["her"]]
    if noher and no_her:
        roles.append(("no-HER", no_her[0]))
    picks, seen = [], set()
    for role, g in roles:
        if g["rank"] not in seen:
            seen.add(g["rank"])
            picks.append(Pick(role, Path(g["run_dir"]), g["label"], g["mean"], g["std"], g["n"]))
    return picks, ranking


def _pick_lines(p: Pick) -> list[str]:
    spread = f"±{p.std:.0%}" if p.std is not None else ""
    return [f"{p.role.upper()} {p.mean:.0%}{spread} (n={p.n}) · {p.run_dir.name}", p.label]


def video_of_sweep(sweep_dir: str | Path, pick: Sequence[str] = ("best", "worst"), noher: bool = True,
                   episodes: int = 1, width: int = 240, height: int = 240, fps: int = 25,
                   deterministic: bool | None = None, out: str | Path | None = None, gif: bool = True,
                   device: str = "cpu", camera: str = "auto") -> dict[str, Any]:
    """Side by side, one column per picked config (best | worst | no-HER), one row per episode."""
    sweep_dir = Path(sweep_dir)
    picks, ranking = select_runs(sweep_dir, pick, noher)
    columns = [render_run(p.run_dir, episodes, width, height, camera, device, deterministic)[1] for p in picks]
    cells = [(p, col[i]) for i in range(episodes) for p, col in zip(picks, columns)]  # row-major
    labelled = [tiles.label_episode(e.frames, _pick_lines(p), e.record["seed"], e.record["success"])
                for p, e in cells]
    frames = tiles.grid_video(labelled, len(picks))
    path = Path(out) if out else sweep_dir / runfolder.VIDEO_DIR / "best_vs_worst.mp4"
    return write_video(frames, path, fps, gif, {
        "layout": "columns", "columns": [p.role for p in picks], "ranking": ranking,
        "rendered_frames": sum(len(e.frames) for _, e in cells),
        "episodes": [_episode_entry(e, p.run_dir, role=p.role, title=p.label, group_mean=p.mean)
                     for p, e in cells]})


def log_to_wandb(folder: Path, files: Sequence[Path], name: str, group: str | None,
                 project: str = "herexp", entity: str | None = None) -> str:
    """Log videos to a new **offline** W&B run (job_type ``video``) in ``<folder>/wandb``.

    Appending to a finished offline run is not supported by W&B, so the video run shares the
    training run's name and group instead; ``wandb sync <folder>/wandb/offline-run-*`` uploads it.
    """
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    (folder / runfolder.WANDB_DIR).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, entity=entity, group=group, job_type="video", name=name, dir=str(folder),
                     mode="offline", reinit="finish_previous",
                     settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
    try:
        run.log({f"video/{f.stem}_{f.suffix[1:]}": wandb.Video(str(f), format=f.suffix[1:]) for f in map(Path, files)})
        return str(run.dir)
    finally:
        tracking.finish_wandb(run, failed=False)


class VideoCallback(BaseCallback):
    """Calls ``make_video(num_timesteps)`` each time ``num_timesteps`` crosses a multiple of
    ``video_every`` env steps (0 = never); ``close`` runs when training ends."""

    def __init__(self, video_every: int, make_video: Callable[[int], Any],
                 close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.due, self.make_video, self.close = EveryNEnvSteps(video_every), make_video, close

    def _on_step(self) -> bool:
        if self.due(self.num_timesteps):
            self.make_video(self.num_timesteps)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"due": self.due._last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.due._last = state["due"]

    def _on_training_end(self) -> None:
        if self.close is not None:
            self.close()


class TrainingRecorder:
    """``make_video`` for :class:`VideoCallback`: evaluation episode 0 (seed ``eval.seed_offset``)
    of the model being trained -> ``<run>/videos/step_<N>.mp4`` (+ .gif, .json)."""

    def __init__(self, cfg: DictConfig, run_dir: Path, model: BaseAlgorithm, vecnorm: VecNormalize | None,
                 width: int = 240, height: int = 240, fps: int = 25) -> None:
        self.cfg, self.run_dir, self.model, self.vecnorm, self.fps = cfg, Path(run_dir), model, vecnorm, fps
        self.size = (width, height)
        self.env: gym.Env | None = None
        ensure_gl_backend()  # fail at start-up, not after hours of training

    def __call__(self, step: int) -> dict[str, Any]:
        if self.env is None:
            self.env = make_render_env(self.cfg.env.id, *self.size)
        ev = self.cfg.eval
        (ep,) = record_episodes(self.model, self.env, evaluation.eval_seeds(ev.seed_offset, 1), ev.deterministic,
                                self.vecnorm)
        lines = [f"{self.cfg.name} @ {step:,} steps"]
        frames = tiles.label_episode(ep.frames, lines, ep.record["seed"], ep.record["success"])
        return write_video(frames, self.run_dir / runfolder.VIDEO_DIR / f"step_{step}.mp4", self.fps, True, {
            "layout": "single", "step": step, "episodes": [_episode_entry(ep, self.run_dir, title=lines[0])]})

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def training_callbacks(cfg: DictConfig, run_dir: Path, model: BaseAlgorithm,
                       vecnorm: VecNormalize | None) -> list[BaseCallback]:
    """``[VideoCallback]`` when ``eval.video_every > 0``, else ``[]`` (for herexp.train)."""
    if cfg.eval.video_every <= 0:
        return []
    rec = TrainingRecorder(cfg, run_dir, model, vecnorm)
    return [VideoCallback(cfg.eval.video_every, rec, rec.close)]


def _as_list(value: Any) -> list[str]:
    return [str(v).strip() for v in (value if isinstance(value, (list, tuple)) else str(value).split(","))]


def _log_wandb(args: dict[str, Any], result: dict[str, Any]) -> str:
    """W&B name: the run's own (run mode) or ``<sweep>_best_vs_worst`` (sweep mode); group and
    project: those of the runs shown (the study)."""
    folder = Path(args.get("run_dir") or args["sweep_dir"])
    cfg = runfolder.read_config(result["episodes"][0]["run_dir"])
    w = cfg["logger"]["wandb"]
    name = cfg["name"] if "run_dir" in args else f"{folder.name}_best_vs_worst"
    group = w.get("group") or cfg["study"]  # the study: beside the runs it shows
    mp4 = Path(result["path"])
    files = [mp4] + ([mp4.with_suffix(".gif")] if result["gif"] else [])
    return log_to_wandb(folder, files, name, group, w.get("project", "herexp"), w.get("entity"))


def main(argv: Sequence[str]) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # "No OpenGL_accelerate module" noise
    parsed: dict[str, Any] = OmegaConf.to_container(cli.parse_typed(VideoArgs, argv, USAGE))  # type: ignore[assignment]
    args = {k: v for k, v in parsed.items() if v is not None}
    if ("run_dir" in args) == ("sweep_dir" in args):
        raise cli.UsageError(f"give exactly one of run_dir=<run> or sweep_dir=<sweep>. {USAGE}")
    if "run_dir" in args and (problem := evaluate.describe_unusable_run(Path(args["run_dir"]))):
        raise cli.UsageError(problem)
    if "sweep_dir" in args and not Path(args["sweep_dir"]).is_dir():
        raise cli.UsageError(f"sweep_dir={args['sweep_dir']}: folder not found")
    common = {k: args[k] for k in ("width", "height", "fps", "deterministic", "out", "gif", "device", "camera")
              if k in args}
    if "run_dir" in args:
        result = video_of_run(args["run_dir"], int(args.get("episodes", 4)), **common)
    else:
        result = video_of_sweep(args["sweep_dir"], _as_list(args["pick"]), bool(args["noher"]),
                                int(args.get("episodes", 1)), **common)
    if args["wandb"]:
        result["wandb_dir"] = _log_wandb(args, result)
    for e in result["episodes"]:
        log.info("%-8s seed %d: %s (return %.1f) %s", e.get("role", ""), e["seed"],
                 "SUCCESS" if e["success"] else "FAIL", e["return"], e["run_dir"])
    return result


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
