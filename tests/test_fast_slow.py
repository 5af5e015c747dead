"""(c) Slow learning check: the Reach quickstart reaches >= 0.9 success with stock SB3, the fast
update, and the fast update with both two-core options (overlapped env stepping, with its
one-update policy lag, and the twin critics on two threads), 3 seeds each.

Quickstart config: FetchReach-v4, HER future k=4, 1 env, VecNormalize(norm_obs=True,
norm_reward=False), net_arch [64, 64], lr 1e-3, learning_starts 1000, 5000 steps, gamma 0.95,
batch 256, ent_coef auto; evaluation on 100 fixed seeds (1_000_000 + i), deterministic.
Run with ``pytest -m slow tests/test_fast_slow.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import gymnasium as gym
import gymnasium_robotics
import numpy as np
import pytest
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from herexp.fast import FastHerReplayBuffer, FastSAC
from herexp.fast.vec_env import OverlappedVecEnv

gym.register_envs(gymnasium_robotics)

ENV_ID = "FetchReach-v4"
STEPS = 5000
EVAL_SEEDS = range(1_000_000, 1_000_100)


def _train(variant: str, seed: int) -> tuple[SAC, VecNormalize]:
    vec_cls = OverlappedVecEnv if variant == "fast_overlap_par" else DummyVecEnv
    venv = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=seed, vec_env_cls=vec_cls), norm_obs=True,
                        norm_reward=False, gamma=0.95)
    fast = variant != "stock"
    extra = {"parallel_critics": True} if variant == "fast_overlap_par" else {}
    model = (FastSAC if fast else SAC)(
        "MultiInputPolicy", venv, replay_buffer_class=FastHerReplayBuffer if fast else HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        policy_kwargs={"net_arch": [64, 64]}, learning_rate=1e-3, buffer_size=100_000, learning_starts=1000,
        batch_size=256, gamma=0.95, ent_coef="auto", seed=seed, device="cpu", **extra)
    model.learn(STEPS)
    assert model._n_updates == STEPS - 1000  # SB3 updates once per step after learning_starts
    return model, venv


def _success_rate(model: SAC, venv: VecNormalize) -> float:
    venv.training = False
    env = gym.make(ENV_ID)
    successes = []
    for seed in EVAL_SEEDS:
        obs, _ = env.reset(seed=seed)
        done, info = False, {}
        while not done:
            action, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
            obs, _, term, trunc, info = env.step(action)
            done = term or trunc
        successes.append(float(info["is_success"]))
    env.close()
    return float(np.mean(successes))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["stock", "fast", "fast_overlap_par"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reach_quickstart_learns(variant: str, seed: int) -> None:
    model, venv = _train(variant, seed)
    try:
        rate = _success_rate(model, venv)
    finally:
        venv.close()
    assert rate >= 0.9, f"{variant} seed {seed}: success {rate:.2f} < 0.9"
