"""Timed pieces of :mod:`herexp.bench`: building each variant and measuring it.

Variants (all on the same config; only the implementation differs):

* ``stock``        SB3 ``SAC`` + ``HerReplayBuffer`` + ``DummyVecEnv`` (the reference);
* ``fast``         :class:`herexp.fast.FastSAC` + ``FastHerReplayBuffer`` + ``DummyVecEnv``;
* ``fast_overlap`` ``fast`` on :class:`herexp.fast.vec_env.OverlappedVecEnv` (env stepping in a
  worker process, overlapped with the update: uses a second core);
* ``fast_par`` / ``fast_overlap_par``: the same with ``parallel_critics=True`` (the twin critics'
  share of each update on a second thread).

``stock`` and ``fast`` use one core; the others are what a single run does with two.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

VARIANTS = ("stock", "fast", "fast_overlap", "fast_par", "fast_overlap_par")


@dataclass
class BenchConfig:
    """What to run; defaults = the chapter config on FetchPush (8 envs, one update per step)."""

    env_id: str = "FetchPush-v4"
    n_envs: int = 8
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    learning_rate: float = 3e-4
    buffer_size: int = 1_000_000
    batch_size: int = 256
    gamma: float = 0.95
    learning_starts: int = 1000
    normalize: bool = False
    steps: int = 2000  # timed env steps per repeat and variant
    warmup: int = 1600  # env steps before timing (>= learning_starts + a few updates)
    device: str = "cpu"
    seed: int = 0


def register_envs() -> None:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def make_env(cfg: BenchConfig, variant: str) -> VecEnv:
    """The training VecEnv of a variant (VecNormalize'd when ``cfg.normalize``)."""
    if variant.startswith("fast_overlap"):
        from herexp.fast.vec_env import make_overlapped_vec_env

        venv = make_overlapped_vec_env(cfg.env_id, n_envs=cfg.n_envs, seed=cfg.seed)
    else:
        venv = make_vec_env(cfg.env_id, n_envs=cfg.n_envs, seed=cfg.seed, vec_env_cls=DummyVecEnv)
    if cfg.normalize:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, gamma=cfg.gamma)
    return venv


def make_model(cfg: BenchConfig, variant: str, env: VecEnv | None = None) -> SAC:
    """SAC (stock) or FastSAC with the same constructor kwargs as ``herexp.agent.build_model``."""
    from herexp.fast import FastHerReplayBuffer, FastSAC

    fast = variant != "stock"
    extra = {"parallel_critics": True} if variant.endswith("_par") else {}
    model = (FastSAC if fast else SAC)(
        "MultiInputPolicy", env if env is not None else make_env(cfg, variant),
        replay_buffer_class=FastHerReplayBuffer if fast else HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        ent_coef="auto", policy_kwargs={"net_arch": list(cfg.net_arch)}, learning_rate=cfg.learning_rate,
        buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts, batch_size=cfg.batch_size,
        tau=0.005, gamma=cfg.gamma, train_freq=1, gradient_steps=1, seed=cfg.seed, device=cfg.device, verbose=0, **extra)
    model.set_logger(configure(None, []))
    return model


def learn(model: SAC, steps: int, reset: bool = True) -> None:
    """``model.learn``; fast variants run with :mod:`herexp.fast.fetch_obs` on (stock never does)."""
    from herexp.fast import FastSAC, fetch_obs

    if isinstance(model, FastSAC):
        with fetch_obs.enabled():
            model.learn(steps, reset_num_timesteps=reset)
    else:
        fetch_obs.disable()
        model.learn(steps, reset_num_timesteps=reset)


def timed_learn(model: SAC, steps: int) -> dict[str, float]:
    """Continue ``learn`` for ``steps`` env steps; env-steps/s and updates/s."""
    n0, u0 = model.num_timesteps, model._n_updates
    _sync(model.device)
    t0 = time.perf_counter()
    learn(model, steps, reset=False)
    _sync(model.device)
    dt = time.perf_counter() - t0
    return {"env_steps_per_s": (model.num_timesteps - n0) / dt, "updates_per_s": (model._n_updates - u0) / dt,
            "seconds": dt}


def her_sample_us(model: SAC, n: int = 200) -> float:
    """Mean µs per ``replay_buffer.sample(batch_size)`` (what each update pays for its batch)."""
    rb = model.replay_buffer
    env = model._vec_normalize_env
    t0 = time.perf_counter()
    for _ in range(n):
        rb.sample(model.batch_size, env=env)  # type: ignore[union-attr]
    return 1e6 * (time.perf_counter() - t0) / n


def env_step_us(env_id: str, n: int = 500, seed: int = 0, fast_obs: bool = False) -> float:
    """Mean µs per single-env ``step`` with random actions (resets excluded from the timing)."""
    from herexp.fast import fetch_obs

    with fetch_obs.enabled() if fast_obs else _nothing():
        return _env_step_us(env_id, n, seed)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _env_step_us(env_id: str, n: int, seed: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    total, steps = 0.0, 0
    while steps < n:
        action = env.action_space.sample()
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(action)
        total += time.perf_counter() - t0
        steps += 1
        if term or trunc:
            env.reset()
    env.close()
    return 1e6 * total / n


def _sync(device: th.device | str) -> None:
    if th.device(device).type == "cuda":
        th.cuda.synchronize()


def summarize(values: list[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    arr = np.asarray(values, dtype=float)
    return {"min": float(arr.min()), "median": float(np.median(arr)), "max": float(arr.max())}


def run_variants(cfg: BenchConfig, variants: list[str], repeats: int) -> dict[str, Any]:
    """Build every variant, warm each up, then time them alternately (A/B/C, A/B/C, ...)."""
    models = {v: make_model(cfg, v) for v in variants}
    for model in models.values():
        learn(model, cfg.warmup)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(repeats):
        for v in variants:
            runs[v].append(timed_learn(models[v], cfg.steps))
    out: dict[str, Any] = {"runs": runs, "her_sample_us": {}, "ratios": {}}
    for v, model in models.items():
        out["her_sample_us"][v] = her_sample_us(model)
        model.env.close()  # type: ignore[union-attr]
    if "stock" in runs:
        for v in variants:
            if v == "stock":
                continue
            for key in ("env_steps_per_s", "updates_per_s"):
                ratios = [r[key] / s[key] for r, s in zip(runs[v], runs["stock"], strict=True) if s[key] > 0]
                if ratios:
                    out["ratios"][f"{v}/stock {key}"] = summarize(ratios)
    out["summary"] = {v: {k: summarize([r[k] for r in rs]) for k in ("env_steps_per_s", "updates_per_s")}
                      for v, rs in runs.items()}
    return out
