"""Timed pieces of :mod:`herexp.bench`: building each variant through the training path, measuring it.

A model is built exactly as ``herexp.train`` builds it (:func:`herexp.envs.make_train_env`, then
:func:`herexp.agent.build_model`), from a config composed by :mod:`herexp.bench.presets`. Fast
variants (``algo=sac_fast``) run with :mod:`herexp.fast.fetch_obs` on, as training does; stock never.
Timing is A/B alternating in one process, so machine load hits every variant alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from omegaconf import DictConfig
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

from herexp import agent, algos, envs
from herexp.algos.sac_fast import SacFast
from herexp.bench.presets import Preset, compose, overrides


@dataclass
class Built:
    """One benchmarked model and the composed config it was built from."""

    cfg: DictConfig
    model: SAC

    @property
    def fast_obs(self) -> bool:
        """Whether training would run this config with :mod:`herexp.fast.fetch_obs` (``algo=sac_fast``)."""
        return isinstance(algos.option(self.cfg.algo), SacFast)

    def close(self) -> None:
        self.model.env.close()  # type: ignore[union-attr]


def build(cfg: DictConfig) -> Built:
    """The training VecEnv and model of ``cfg`` (no TensorBoard, SB3's logger silenced)."""
    venv = envs.make_train_env(cfg)
    model = agent.build_model(cfg, venv, None)
    model.set_logger(configure(None, []))
    return Built(cfg, model)


def build_variant(preset: Preset, variant: str, extra: Sequence[str] = (), device: str = "cpu") -> Built:
    """Compose ``preset`` + ``variant`` (+ the user's overrides) and build it."""
    return build(compose(overrides(preset, variant, extra, device)))


@contextmanager
def fetch_obs_as_training(fast_obs: bool) -> Iterator[None]:
    """:mod:`herexp.fast.fetch_obs` on for fast configs (restored after), off for stock."""
    from herexp.fast import fetch_obs

    if fast_obs:
        with fetch_obs.enabled():
            yield
    else:
        fetch_obs.disable()
        yield


def learn(built: Built, steps: int, reset: bool = True) -> None:
    """``model.learn(steps)`` with the observation code training would use."""
    with fetch_obs_as_training(built.fast_obs):
        built.model.learn(steps, reset_num_timesteps=reset)


def timed_learn(built: Built, steps: int) -> dict[str, float]:
    """Continue ``learn`` for ``steps`` env steps; env-steps/s and updates/s."""
    model = built.model
    n0, u0 = model.num_timesteps, model._n_updates
    _sync(model.device)
    t0 = time.perf_counter()
    learn(built, steps, reset=False)
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

    with fetch_obs.enabled() if fast_obs else nullcontext():
        env = envs.make_env(env_id)
        try:
            return _mean_step_us(env, n, seed)
        finally:
            env.close()


def _mean_step_us(env: gym.Env, n: int, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    total = 0.0
    for _ in range(n):
        action = env.action_space.sample()
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(action)
        total += time.perf_counter() - t0
        if term or trunc:
            env.reset()
    return 1e6 * total / n


def _sync(device: th.device | str) -> None:
    if th.device(device).type == "cuda":
        th.cuda.synchronize()


def summarize(values: list[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    arr = np.asarray(values, dtype=float)
    return {"min": float(arr.min()), "median": float(np.median(arr)), "max": float(arr.max())}


def run_variants(preset: Preset, variants: Sequence[str], repeats: int, extra: Sequence[str] = (),
                 device: str = "cpu") -> dict[str, Any]:
    """Build every variant, warm each up, then time them alternately (A/B/C, A/B/C, ...)."""
    built = {v: build_variant(preset, v, extra, device) for v in variants}
    try:
        for b in built.values():
            learn(b, preset.warmup)
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for _ in range(repeats):
            for v in variants:
                runs[v].append(timed_learn(built[v], preset.steps))
        out: dict[str, Any] = {"runs": runs, "her_sample_us": {v: her_sample_us(b.model) for v, b in built.items()},
                               "overrides": {v: overrides(preset, v, extra, device) for v in variants}}
    finally:
        for b in built.values():
            b.close()
    out["ratios"] = _ratios(runs)
    out["summary"] = {v: {k: summarize([r[k] for r in rs]) for k in ("env_steps_per_s", "updates_per_s")}
                      for v, rs in runs.items()}
    return out


def _ratios(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per-repeat ``variant_i / stock_i`` for env-steps/s and updates/s (empty without stock)."""
    out: dict[str, dict[str, float]] = {}
    if "stock" not in runs:
        return out
    for v, rs in runs.items():
        if v == "stock":
            continue
        for key in ("env_steps_per_s", "updates_per_s"):
            ratios = [r[key] / s[key] for r, s in zip(rs, runs["stock"], strict=True) if s[key] > 0]
            if ratios:
                out[f"{v}/stock {key}"] = summarize(ratios)
    return out


def print_preset(name: str, cfg: DictConfig, res: dict[str, Any]) -> None:
    """The preset's table: env-steps/s, updates/s, HER sample cost per variant, then ratios."""
    print(f"\n== {name}: {cfg.env.id} n_envs={cfg.n_envs} net={list(cfg.algo.net_arch)} (env step "
          f"{res['env_step_us']:.0f} us, {res['env_step_us_fast_obs']:.0f} us with herexp.fast.fetch_obs)")
    for v, s in res["summary"].items():
        e, u = s["env_steps_per_s"], s["updates_per_s"]
        print(f"  {v:16s} env-steps/s {e['median']:7.1f} [{e['min']:.1f}-{e['max']:.1f}]  "
              f"updates/s {u['median']:6.1f}  HER sample {res['her_sample_us'][v]:6.0f} us/batch")
    for k, r in res["ratios"].items():
        print(f"  ratio {k:38s} median {r['median']:.2f}x  (min {r['min']:.2f}, max {r['max']:.2f})")
