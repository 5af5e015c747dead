"""The one evaluation loop: train-time periodic evals, final eval, herexp.evaluate and videos.

Episode ``i`` is reset with seed ``eval.seed_offset + i``, so every checkpoint of every run
sees the same goals (a paired comparison) and never a training seed.

On tasks with an object (Fetch Push, PickAndPlace, Slide: ``achieved_goal`` is the object's
position) each episode also records how far the object moved between reset and the last step,
so a policy that never touches the object is told apart from one that pushes it the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

Frame = np.ndarray
FrameHook = Callable[[int, int, gym.Env, dict[str, Any]], None]  # (episode, step, env, info)


def eval_seeds(seed_offset: int, n_episodes: int) -> list[int]:
    """The fixed evaluation seeds: ``seed_offset .. seed_offset + n_episodes - 1``."""
    return list(range(seed_offset, seed_offset + n_episodes))


def _distance(obs: dict[str, np.ndarray]) -> float:
    return float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))


def has_object(env: gym.Env, obs: Any) -> bool:
    """Whether ``achieved_goal`` is an object's position (Fetch Push/PickAndPlace/Slide, not Reach)."""
    return bool(getattr(env.unwrapped, "has_object", False)) and isinstance(obs, dict) and "achieved_goal" in obs


def object_displacement(start: np.ndarray, end: np.ndarray) -> float:
    """How far the object moved (m): the distance between its positions at two times."""
    return float(np.linalg.norm(np.asarray(end, dtype=float) - np.asarray(start, dtype=float)))


def resting_distance(env: gym.Env, seeds: Sequence[int]) -> float | None:
    """Mean distance to the goal with the object left where it starts, on these episode seeds:
    the final distance of a policy that never moves the object (None without an object)."""
    dists = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        if not has_object(env, obs):
            return None
        dists.append(_distance(obs))
    return float(np.mean(dists)) if dists else None


def run_episode(model: BaseAlgorithm, env: gym.Env, seed: int, deterministic: bool,
                vecnorm: VecNormalize | None = None, on_step: FrameHook | None = None,
                episode: int = 0) -> dict[str, Any]:
    """Roll out one episode; return the per-episode record of eval.json."""
    obs, info = env.reset(seed=seed)
    start = np.array(obs["achieved_goal"], dtype=float) if has_object(env, obs) else None
    ret, length, time_to_success = 0.0, 0, None
    success = False
    done = False
    while not done:
        policy_obs = vecnorm.normalize_obs(obs) if vecnorm is not None else obs
        action, _ = model.predict(policy_obs, deterministic=deterministic)
        obs, reward, terminated, truncated, info = env.step(action)
        ret += float(reward)
        length += 1
        success = bool(info.get("is_success", False))
        if success and time_to_success is None:
            time_to_success = length
        if on_step is not None:
            on_step(episode, length, env, info)
        done = terminated or truncated
    return {
        "seed": seed,
        "return": ret,
        "length": length,
        "success": success,  # at the last step, as Fetch's is_success is reported
        "final_distance": _distance(obs) if isinstance(obs, dict) and "achieved_goal" in obs else None,
        "time_to_success": time_to_success,  # first step with is_success, None if never
        # how far the object moved from reset to the last step (m); None without an object (Reach)
        "object_displacement": None if start is None else object_displacement(start, obs["achieved_goal"]),
    }


def evaluate(model: BaseAlgorithm, env: gym.Env, seeds: Sequence[int], deterministic: bool = True,
             vecnorm: VecNormalize | None = None, on_step: FrameHook | None = None) -> dict[str, Any]:
    """Evaluate on the given episode seeds; return eval.json's content (aggregates + episodes)."""
    episodes = [run_episode(model, env, s, deterministic, vecnorm, on_step, i) for i, s in enumerate(seeds)]
    returns = np.array([e["return"] for e in episodes], dtype=float)
    dists = np.array([e["final_distance"] for e in episodes if e["final_distance"] is not None], dtype=float)
    moved = np.array([e["object_displacement"] for e in episodes if e["object_displacement"] is not None], dtype=float)
    return {
        "success_rate": float(np.mean([e["success"] for e in episodes])),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "final_distance_mean": float(dists.mean()) if dists.size else None,
        "final_distance_std": float(dists.std()) if dists.size else None,
        "object_displacement_mean": float(moved.mean()) if moved.size else None,
        "ep_len_mean": float(np.mean([e["length"] for e in episodes])),
        "n_episodes": len(episodes),
        "deterministic": deterministic,
        "seeds": list(seeds),
        "per_episode": episodes,
    }
