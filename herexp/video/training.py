"""The training-time video callback (``eval.video_every``): the only part of herexp.video that
``herexp.train`` imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from omegaconf import DictConfig
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from herexp import evaluation, runfolder
from herexp.callbacks import EveryNEnvSteps


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
        from herexp.video import render  # rendering is loaded only when a run records videos

        self.render = render
        render.ensure_gl_backend()  # fail at start-up, not after hours of training

    def __call__(self, step: int) -> dict[str, Any]:
        if self.env is None:
            self.env = self.render.make_render_env(self.cfg.env.id, *self.size)
        ev = self.cfg.eval
        (ep,) = self.render.record_episodes(self.model, self.env, evaluation.eval_seeds(ev.seed_offset, 1),
                                            ev.deterministic, self.vecnorm)
        lines = [f"{self.cfg.name} @ {step:,} steps"]
        frames = self.render.tiles.label_episode(ep.frames, lines, ep.record["seed"], ep.record["success"])
        return self.render.write_video(frames, self.run_dir / runfolder.VIDEO_DIR / f"step_{step}.mp4", self.fps, True, {
            "layout": "single", "step": step, "episodes": [self.render._episode_entry(ep, self.run_dir, title=lines[0])]})

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


