"""The model of a composed config, and loading a saved one: the one place train, bench, tests,
``herexp.evaluate`` and ``herexp.video`` get their SB3 models from.

What the model is belongs to the ``algo=`` option (:mod:`herexp.algos`: SAC, fast SAC, TD3,
DDPG, TQC) and, for SAC-like algorithms, its entropy coefficient to the ``entropy=`` option
(:mod:`herexp.entropy.options`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from herexp import algos, entropy, envs


def build_model(cfg: DictConfig, env: VecEnv, tensorboard_dir: str | None = None) -> OffPolicyAlgorithm:
    """The ``algo=`` option's model on ``env``: HER buffer, entropy arguments, seed and device.

    Entropy options that act during training (schedules, floors) are wired by
    ``entropy.option(cfg.entropy).attach(model, total_steps)``, which returns their callbacks."""
    return algos.option(cfg.algo).build(env, cfg.her, entropy.option(cfg.entropy), seed=cfg.seed,
                                        device=cfg.device, tensorboard_dir=tensorboard_dir)


def load_model(checkpoint: str | Path, env_id: str, device: str = "auto") -> OffPolicyAlgorithm:
    """Load a ``model.zip`` of any herexp algorithm (its class is read from the zip).
    HER checkpoints need their env to rebuild the buffer."""
    cls = algos.saved_model_class(checkpoint)
    env = DummyVecEnv([lambda: envs.make_env(env_id)])
    # buffer_size=1: the buffer is rebuilt on load but never used for evaluation.
    return cls.load(str(checkpoint), env=env, device=device, custom_objects={"buffer_size": 1})
