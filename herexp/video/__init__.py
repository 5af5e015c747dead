"""Watch the policies: rollout videos of a run, and best vs worst vs no-HER of a sweep.

``render`` (GL probing, the render env, frames, MP4/GIF), ``sweep`` (ranking and picks),
``training`` (the ``eval.video_every`` callback, the only part ``herexp.train`` imports), ``tiles``
(labelled grids) and ``cli`` (``python -m herexp.video``). Names are re-exported lazily, so
importing ``herexp.video.training`` loads no rendering code.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "ensure_gl_backend": "render", "make_render_env": "render", "load_policy": "render", "record_episodes": "render",
    "write_video": "render", "render_run": "render", "video_of_run": "render", "Policy": "render",
    "Episode": "render", "subprocess": "render", "GL_BACKENDS": "render", "CLOSE_CAMERA": "render",
    "Pick": "sweep", "rank_configs": "sweep", "select_runs": "sweep", "video_of_sweep": "sweep",
    "VideoCallback": "training", "TrainingRecorder": "training", "training_callbacks": "training",
    "main": "cli", "log_to_wandb": "cli", "VideoArgs": "cli", "USAGE": "cli",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"herexp.video.{_HOME[name]}"), name)
    raise AttributeError(f"module 'herexp.video' has no attribute {name!r}")
