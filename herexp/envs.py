"""Fetch environments: training VecEnv, evaluation env, seeding and compatibility checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import gymnasium_robotics
from omegaconf import DictConfig
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")

gym.register_envs(gymnasium_robotics)  # idempotent; makes Fetch ids known to gym.make


@dataclass(frozen=True)
class EnvInfo:
    """Facts read from the env itself (recorded in meta.json)."""

    id: str
    max_episode_steps: int | None
    distance_threshold: float | None  # success radius in metres (Fetch: 0.05)
    reward_type: str | None  # "sparse" | "dense"
    goal_conditioned: bool  # dict obs with observation / achieved_goal / desired_goal
    action_dim: int


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """One environment; raises ``ValueError`` naming ``env.id`` when the id is unknown."""
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, ...
        raise ValueError(f"env.id={env_id!r} is not a registered Gymnasium env: {exc}. "
                         "Fix: env=push (see herexp/conf/env/)") from exc


def env_info(env_id: str) -> EnvInfo:
    """Read thresholds, episode length and observation layout from a throwaway instance."""
    env = make_env(env_id)
    try:
        space = env.observation_space
        goal = isinstance(space, gym.spaces.Dict) and all(k in space.spaces for k in GOAL_KEYS)
        u = env.unwrapped
        return EnvInfo(
            id=env_id,
            max_episode_steps=env.spec.max_episode_steps if env.spec else None,
            distance_threshold=getattr(u, "distance_threshold", None),
            reward_type=getattr(u, "reward_type", None),
            goal_conditioned=goal,
            action_dim=int(env.action_space.shape[0]) if env.action_space.shape else 0,
        )
    finally:
        env.close()


def check_env_compatible(cfg: DictConfig) -> EnvInfo:
    """Environment-dependent validation, before any SB3 object exists."""
    info = env_info(cfg.env.id)
    check_env_facts(info, bool(cfg.her.enabled), bool(cfg.env.sparse), int(cfg.n_envs),
                    int(cfg.algo.learning_starts))
    return info


def check_env_facts(info: EnvInfo, her: bool, sparse: bool, n_envs: int, learning_starts: int) -> None:
    """Raise ``ValueError`` (key, value, rule, fix) when the config does not fit the env."""
    if her and not info.goal_conditioned:
        raise ValueError(
            f"her.enabled=true needs a goal-conditioned env (dict observation with {GOAL_KEYS}), "
            f"but env.id={info.id!r} is not. Fix: her=off, or a Fetch env (env=push)")
    if info.reward_type is not None and (info.reward_type == "sparse") != sparse:
        raise ValueError(f"env.sparse={sparse} but {info.id} has reward_type="
                         f"{info.reward_type!r}. Fix: env.sparse={info.reward_type == 'sparse'}")
    if her and info.max_episode_steps:
        # HER samples only finished episodes; with n_envs envs in lockstep, the first ones end
        # at n_envs x max_episode_steps env steps, and SB3's sampler fails before that.
        first_done = n_envs * info.max_episode_steps
        if learning_starts < first_done:
            raise ValueError(
                f"algo.learning_starts={learning_starts} is invalid: with HER it must be >= n_envs x "
                f"max_episode_steps = {n_envs} x {info.max_episode_steps} = {first_done} (HER samples only "
                f"finished episodes). Fix: algo.learning_starts={first_done}")


def make_train_env(cfg: DictConfig) -> VecEnv:
    """``n_envs`` training envs (env i seeded ``seed + i``) as the ``algo=`` option steps them
    (in this process; ``algo=sac_fast algo.overlap_envs=true``: in a worker process),
    VecNormalize'd when ``algo.normalize`` (normalised observations clipped to ``+-algo.clip_obs``).

    VecNormalize normalises observations only (rewards stay sparse 0/-1); SB3's replay
    buffers store raw observations and normalise at sampling, so HER recomputes rewards on
    raw goals.
    """
    from herexp import algos

    algo = algos.option(cfg.algo)
    venv = algo.vec_env(cfg.env.id, cfg.n_envs, cfg.seed)
    if algo.normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, gamma=algo.gamma, **algo.normalize_kwargs())
    return venv


def make_eval_env(env_id: str) -> gym.Env:
    """A single, unwrapped-vector env for :mod:`herexp.evaluation` (seeded per episode)."""
    return make_env(env_id)


def load_vecnormalize(path: str | Path, env_id: str) -> VecNormalize:
    """Observation statistics saved with a checkpoint, frozen for evaluation."""
    venv = DummyVecEnv([lambda: make_env(env_id)])
    vn = VecNormalize.load(str(path), venv)
    vn.training = False
    vn.norm_reward = False
    return vn
