"""``python -m herexp.video``: watch the policies: rollout videos of a run, and best vs worst vs no-HER of a sweep.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from herexp import cli, evaluate, runfolder, tracking
from herexp.video.render import video_of_run
from herexp.video.sweep import video_of_sweep

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


