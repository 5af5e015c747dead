"""Capture and restore the in-memory state of a training run, so a resumed run continues
exactly where it stopped.

SB3 saves weights and optimizer states but not the random number generators (SB3 issue
#1526), the envs' physics, the collection loop (``_last_obs``, episode counters) or the replay
buffer's position; a resumed SB3 run therefore truncates its last trajectories and draws new
random numbers. Here every source is captured:

* python ``random``, numpy's global generator (HER sampling), torch's CPU/CUDA generators
  (SAC's action sampling), the model's action space (warm-up actions);
* per training env: its ``np_random``, MuJoCo's full integration state (``mj_getState``), the
  goal, the time limit's step counter and the Monitor's episode counters;
* SB3's loop state (``_last_obs``, ``_last_original_obs``, ``_episode_num``, ``_n_updates``,
  episode info buffers), VecNormalize's running statistics;
* the replay buffer (HER episode bookkeeping included), saved up to its write head only.

Exactness holds for MuJoCo (Fetch) envs in this process; envs stepped in another process
(``algo.overlap_envs``) are not captured.
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

_LOOP_KEYS = ("num_timesteps", "_episode_num", "_n_updates", "_last_obs", "_last_original_obs",
              "_last_episode_starts", "ep_info_buffer", "ep_success_buffer", "_current_progress_remaining")
_MONITOR_KEYS = ("rewards", "needs_reset", "episode_returns", "episode_lengths", "episode_times", "total_steps")
_VECNORM_KEYS = ("obs_rms", "ret_rms", "returns", "old_obs", "old_reward")


class NotCapturable(RuntimeError):
    """The run's envs live where this process cannot read their state."""


# --- random number generators -------------------------------------------------------------------

def rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "action_space": model.action_space.np_random.bit_generator.state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


# --- environments -------------------------------------------------------------------------------

def _base_vec_env(venv: VecEnv) -> VecEnv:
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    return venv


def _layers(env: gym.Env) -> list[Any]:
    out = [env]
    while hasattr(out[-1], "env"):
        out.append(out[-1].env)
    return out


def env_state(env: gym.Env) -> dict[str, Any]:
    """One env's state: generator, physics, goal, time-limit and Monitor counters."""
    u = env.unwrapped
    state: dict[str, Any] = {"np_random": u.np_random.bit_generator.state}
    for layer in _layers(env):
        if isinstance(layer, gym.wrappers.TimeLimit):
            state["elapsed_steps"] = layer._elapsed_steps
        if isinstance(layer, Monitor):
            state["monitor"] = {k: _copy(getattr(layer, k)) for k in _MONITOR_KEYS}
    if hasattr(u, "data") and hasattr(u, "model"):  # MuJoCo
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(u.model, spec))
        mujoco.mj_getState(u.model, u.data, physics, spec)
        state["physics"] = physics
    if hasattr(u, "goal"):
        state["goal"] = np.copy(u.goal)
    return state


def set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    u = env.unwrapped
    u.np_random.bit_generator.state = state["np_random"]
    for layer in _layers(env):
        if hasattr(layer, "_has_reset"):  # OrderEnforcing: the restored episode is under way
            layer._has_reset = True
        if hasattr(layer, "checked_data_reuse"):  # PassiveEnvChecker: its first-step checks ran before
            layer.checked_reset = layer.checked_step = layer.checked_data_reuse = True
        if isinstance(layer, gym.wrappers.TimeLimit) and "elapsed_steps" in state:
            layer._elapsed_steps = state["elapsed_steps"]
        if isinstance(layer, Monitor) and "monitor" in state:
            for k, v in state["monitor"].items():
                setattr(layer, k, _copy(v))
    if "physics" in state:
        import mujoco

        mujoco.mj_setState(u.model, u.data, state["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(u.model, u.data)
    if "goal" in state:
        u.goal = np.copy(state["goal"])


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def envs_state(venv: VecEnv) -> list[dict[str, Any]]:
    base = _base_vec_env(venv)
    if not isinstance(base, DummyVecEnv):
        raise NotCapturable(f"{type(base).__name__} steps its envs in another process")
    return [env_state(e) for e in base.envs]


def set_envs_state(venv: VecEnv, states: list[dict[str, Any]]) -> None:
    base = _base_vec_env(venv)
    if not isinstance(base, DummyVecEnv) or len(base.envs) != len(states):
        raise NotCapturable("the checkpoint's envs do not match this run's envs")
    for env, state in zip(base.envs, states):
        set_env_state(env, state)


# --- SB3's collection loop and VecNormalize ------------------------------------------------------

def loop_state(model: BaseAlgorithm) -> dict[str, Any]:
    state = {k: getattr(model, k, None) for k in _LOOP_KEYS}
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None:
        state["vecnormalize"] = {k: getattr(vecnorm, k, None) for k in _VECNORM_KEYS}
    if getattr(model, "log_ent_coef", None) is not None:
        state["log_ent_coef"] = model.log_ent_coef.detach().clone()
    if getattr(model, "ent_coef_tensor", None) is not None:
        state["ent_coef_tensor"] = model.ent_coef_tensor.detach().clone()
    return state


def set_loop_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    for k in _LOOP_KEYS:
        setattr(model, k, state[k])
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None and "vecnormalize" in state:
        for k, v in state["vecnormalize"].items():
            setattr(vecnorm, k, v)
    with torch.no_grad():
        if "log_ent_coef" in state:
            model.log_ent_coef.copy_(state["log_ent_coef"])
        if "ent_coef_tensor" in state:
            model.ent_coef_tensor.copy_(state["ent_coef_tensor"])


# --- weights and optimizers ---------------------------------------------------------------------

def _optimizers(model: BaseAlgorithm) -> dict[str, torch.optim.Optimizer]:
    names = {"actor": getattr(getattr(model, "actor", None), "optimizer", None),
             "critic": getattr(getattr(model, "critic", None), "optimizer", None),
             "ent_coef": getattr(model, "ent_coef_optimizer", None)}
    return {k: v for k, v in names.items() if v is not None}


def weights_state(model: BaseAlgorithm) -> dict[str, Any]:
    return {"policy": model.policy.state_dict(), "optimizers": {k: o.state_dict() for k, o in _optimizers(model).items()}}


def set_weights_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    model.policy.load_state_dict(state["policy"])
    for k, opt in _optimizers(model).items():
        opt.load_state_dict(state["optimizers"][k])


# --- replay buffer ------------------------------------------------------------------------------

def buffer_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The replay buffer's attributes; arrays over its slots are kept up to the write head."""
    rb = model.replay_buffer
    filled = rb.buffer_size if rb.full else rb.pos
    state: dict[str, Any] = {}
    for key, value in vars(rb).items():
        if key in ("env", "_reward_fn", "device"):
            continue
        state[key] = _slice(value, rb.buffer_size, filled)
    state["_filled"] = filled
    return state


def _slice(value: Any, size: int, filled: int) -> Any:
    if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == size:
        return value[:filled]  # a view: pickled at once, no second copy in memory
    if isinstance(value, dict):
        return {k: _slice(v, size, filled) for k, v in value.items()}
    return value


def set_buffer_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    rb = model.replay_buffer
    filled = state["_filled"]
    for key, value in state.items():
        if key == "_filled":
            continue
        current = getattr(rb, key, None)
        _restore_into(rb, key, current, value, filled)


def _restore_into(owner: Any, key: str, current: Any, value: Any, filled: int) -> None:
    if isinstance(current, np.ndarray) and isinstance(value, np.ndarray) and value.shape[1:] == current.shape[1:] \
            and value.shape[0] == filled and current.shape[0] >= filled and current.ndim:
        current[:filled] = value
    elif isinstance(current, dict) and isinstance(value, dict):
        for k, v in value.items():
            _restore_into(current, k, current.get(k), v, filled)
    elif isinstance(owner, dict):
        owner[key] = value
    else:
        setattr(owner, key, value)


def capture(model: BaseAlgorithm) -> dict[str, Any]:
    """Everything but the weights and the buffer (small; pickled into state.pkl)."""
    env = model.get_env()
    return {"rng": rng_state(model), "envs": envs_state(env), "loop": loop_state(model)}  # type: ignore[arg-type]


def restore(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    set_envs_state(model.get_env(), state["envs"])  # type: ignore[arg-type]
    set_loop_state(model, state["loop"])
    set_rng_state(model, state["rng"])


