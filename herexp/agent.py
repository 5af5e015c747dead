"""SB3 SAC (+ HerReplayBuffer) from the config, and loading saved models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from herexp import entropy, envs


def her_kwargs(hcfg: DictConfig) -> dict[str, Any]:
    """``replay_buffer_class`` / ``replay_buffer_kwargs`` for SAC (empty when HER is off)."""
    if not hcfg.enabled:
        return {}
    return {
        "replay_buffer_class": HerReplayBuffer,
        "replay_buffer_kwargs": {
            "n_sampled_goal": int(hcfg.n_sampled_goal),
            "goal_selection_strategy": str(hcfg.goal_selection_strategy),
        },
    }


def sac_class(fast: bool) -> type[SAC]:
    """Stock SB3 SAC, or herexp's drop-in fast subclass (same losses, same checkpoints)."""
    if not fast:
        return SAC
    from herexp.fast import FastSAC  # imported lazily: the fast path is optional

    return FastSAC


def build_model(cfg: DictConfig, env: VecEnv, tensorboard_dir: str | None = None) -> SAC:
    """SAC from the config: HER buffer, entropy mode arguments, seed and device."""
    a = cfg.algo
    kwargs: dict[str, Any] = her_kwargs(cfg.her)
    if cfg.her.enabled and a.fast:
        from herexp.fast import FastHerReplayBuffer

        kwargs["replay_buffer_class"] = FastHerReplayBuffer
    if a.fast:
        kwargs["parallel_critics"] = a.parallel_critics
    kwargs.update(entropy.sac_kwargs(cfg.entropy))
    return sac_class(a.fast)(
        "MultiInputPolicy",
        env,
        learning_rate=a.learning_rate,
        buffer_size=a.buffer_size,
        learning_starts=a.learning_starts,
        batch_size=a.batch_size,
        tau=a.tau,
        gamma=a.gamma,
        train_freq=a.train_freq,
        gradient_steps=a.gradient_steps,
        policy_kwargs={"net_arch": list(a.net_arch)},
        tensorboard_log=tensorboard_dir,
        seed=cfg.seed,
        device=cfg.device,
        verbose=0,
        **kwargs,
    )


def load_model(checkpoint: str | Path, env_id: str, device: str = "auto") -> SAC:
    """Load a checkpoint (stock or fast). HER checkpoints need their env to rebuild the buffer."""
    env = DummyVecEnv([lambda: envs.make_env(env_id)])
    # buffer_size=1: the buffer is rebuilt on load but never used for evaluation.
    return SAC.load(str(checkpoint), env=env, device=device, custom_objects={"buffer_size": 1})
