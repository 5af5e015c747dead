"""FastHerReplayBuffer: SB3's HerReplayBuffer with an O(batch) sampler.

SB3's ``HerReplayBuffer.sample`` builds ``ep_length > 0`` over the whole buffer and runs
``np.flatnonzero`` on it for every batch (1 M entries at the chapter's capacity), then builds
real and virtual halves as separate dicts of tensors and concatenates them. This subclass keeps
the storage, ``add`` and episode bookkeeping untouched and changes only sampling:

* indices are drawn uniformly from the filled region and the (rare) ones that fall on an
  invalid slot (an episode still running, or one being overwritten) are redrawn: rejection
  sampling, so the batch is still i.i.d. uniform over exactly SB3's valid set;
* relabeling is SB3's own ``_sample_goals`` (``future``/``final``/``episode``) on the first
  ``int(her_ratio * batch)`` draws, and rewards come from the env's ``compute_reward``
  (looked up once when the vec env is a ``DummyVecEnv``, instead of ``env_method`` each batch);
* numpy gathers happen once per field; :meth:`sample_flat` also flattens the dict observation
  into one float32 tensor in the policy's key order, which FastSAC consumes directly.

The batch order is SB3's (real transitions first, relabeled ones after). Invariants are
tested in ``tests/test_fast_her_buffer.py`` (including an unfinished episode at the write head
and a wrapped-around buffer).
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper, VecNormalize

from herexp.fast.nets import flatten_obs

_MAX_REJECTION_ROUNDS = 32  # then fall back to SB3's full scan (only when few slots are valid)


class FlatSamples(NamedTuple):
    """A batch with observations already flattened to float32 (policy key order)."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None


def flat_samples(data: Any, keys: list[str]) -> FlatSamples:
    """Flatten any SB3 replay sample (dict or flat observations) into :class:`FlatSamples`."""
    return FlatSamples(flatten_obs(data.observations, keys), data.actions, flatten_obs(data.next_observations, keys),
                       data.dones, data.rewards, getattr(data, "discounts", None))


def _normalize(obs: dict[str, np.ndarray], env: VecNormalize | None) -> dict[str, np.ndarray]:
    """``env.normalize_obs(obs)`` without its defensive deepcopy (``obs`` is our own fresh gather)."""
    if env is None:
        return obs
    if isinstance(env, VecNormalize) and env.norm_obs and isinstance(env.obs_rms, dict):
        for key in env.norm_obs_keys:
            obs[key] = env._normalize_obs(obs[key], env.obs_rms[key]).astype(np.float32)
        return obs
    return env.normalize_obs(obs)  # type: ignore[return-value]


class FastHerReplayBuffer(HerReplayBuffer):
    """HerReplayBuffer with the same sampling distribution and a faster sampler.

    Observations are stored as float32 (``store_float32=True``): Fetch envs return float64,
    and SB3 keeps them twice (observation and next observation), ~0.5 GB per 1 M transitions;
    the networks read float32 anyway, so float32 storage halves that and changes nothing but the
    float64 -> float32 rounding, which now happens when a transition is stored.
    """

    def __init__(self, *args: Any, store_float32: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if store_float32:
            for store in (self.observations, self.next_observations):
                for key, arr in store.items():
                    if arr.dtype == np.float64:  # np.zeros: pages are only touched when written
                        store[key] = np.zeros(arr.shape, dtype=np.float32)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_reward_fn", None)  # a bound method of a live env: not picklable in general
        return state

    def _compute_reward(self, achieved: np.ndarray, desired: np.ndarray, infos: Any) -> np.ndarray:
        """``compute_reward`` of env 0, as SB3 calls it through ``env_method``."""
        fn = self.__dict__.get("_reward_fn")
        if fn is None:
            base = self.env
            while isinstance(base, VecEnvWrapper):
                base = base.venv
            if isinstance(base, DummyVecEnv):
                fn = base.envs[0].get_wrapper_attr("compute_reward")
            elif callable(getattr(base, "compute_reward", None)):
                fn = base.compute_reward  # e.g. herexp.fast.vec_env.OverlappedVecEnv (local copy)
            else:
                assert self.env is not None, "FastHerReplayBuffer needs a VecEnv to compute rewards"
                env = self.env

                def fn(a: np.ndarray, d: np.ndarray, i: Any) -> np.ndarray:
                    return env.env_method("compute_reward", a, d, i, indices=[0])[0]
            self._reward_fn = fn
        return np.asarray(fn(achieved, desired, infos)).astype(np.float32)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, env) of ``batch_size`` i.i.d. draws, uniform over slots with ``ep_length > 0``."""
        upper = (self.buffer_size if self.full else self.pos) * self.n_envs
        flat_len = self.ep_length.reshape(-1)
        if upper > 0:
            idx = np.random.randint(0, upper, size=batch_size)
            for _ in range(_MAX_REJECTION_ROUNDS):
                bad = flat_len[idx] <= 0
                n_bad = int(np.count_nonzero(bad))
                if n_bad == 0:
                    return np.unravel_index(idx, self.ep_length.shape)  # type: ignore[return-value]
                idx[bad] = np.random.randint(0, upper, size=n_bad)
        valid = np.flatnonzero(self.ep_length > 0)  # SB3's scan: few valid slots (or none)
        if valid.size == 0:
            raise RuntimeError(
                "Unable to sample before the end of the first episode. We recommend choosing a value "
                "for learning_starts that is greater than the maximum number of timesteps in the environment."
            )
        idx = np.random.choice(valid, size=batch_size, replace=True)
        return np.unravel_index(idx, self.ep_length.shape)  # type: ignore[return-value]

    def _sample_numpy(self, batch_size: int, env: VecNormalize | None) -> tuple[dict, dict, np.ndarray, np.ndarray,
                                                                                np.ndarray]:
        """Normalized numpy batch: (obs, next_obs, actions, dones, rewards)."""
        rows, envs = self.sample_indices(batch_size)
        nb_virtual = int(self.her_ratio * batch_size)
        n_real = batch_size - nb_virtual
        # SB3 relabels the first nb_virtual draws and puts the real ones first in the batch
        rows = np.concatenate([rows[nb_virtual:], rows[:nb_virtual]])
        envs = np.concatenate([envs[nb_virtual:], envs[:nb_virtual]])
        obs = {k: v[rows, envs] for k, v in self.observations.items()}
        next_obs = {k: v[rows, envs] for k, v in self.next_observations.items()}
        rewards = self.rewards[rows, envs].astype(np.float32)
        if nb_virtual > 0:
            v_rows, v_envs = rows[n_real:], envs[n_real:]
            goals = self._sample_goals(v_rows, v_envs)
            obs["desired_goal"][n_real:] = goals
            next_obs["desired_goal"][n_real:] = goals
            if self.copy_info_dict:
                infos = copy.deepcopy(self.infos[v_rows, v_envs])
            else:
                infos = [{} for _ in range(nb_virtual)]
            rewards[n_real:] = self._compute_reward(next_obs["achieved_goal"][n_real:], goals, infos)
        dones = (self.dones[rows, envs] * (1 - self.timeouts[rows, envs])).reshape(-1, 1)
        rewards = self._normalize_reward(rewards.reshape(-1, 1), env)
        return _normalize(obs, env), _normalize(next_obs, env), self.actions[rows, envs], dones, rewards

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> DictReplayBufferSamples:  # type: ignore[override]
        """Same distribution and layout as ``HerReplayBuffer.sample`` (dict observations)."""
        obs, next_obs, actions, dones, rewards = self._sample_numpy(batch_size, env)
        return DictReplayBufferSamples(
            observations={k: self.to_torch(v) for k, v in obs.items()},
            actions=self.to_torch(actions),
            next_observations={k: self.to_torch(v) for k, v in next_obs.items()},
            dones=self.to_torch(dones),
            rewards=self.to_torch(rewards),
        )

    def sample_flat(self, batch_size: int, env: VecNormalize | None = None, keys: list[str] | None = None
                    ) -> FlatSamples:
        """Like :meth:`sample`, observations concatenated in ``keys`` order as one float32 tensor."""
        keys = list(self.observations.keys()) if keys is None else keys
        obs, next_obs, actions, dones, rewards = self._sample_numpy(batch_size, env)

        def flat(o: dict[str, np.ndarray]) -> th.Tensor:
            arr = np.concatenate([o[k].reshape(batch_size, -1) for k in keys], axis=1).astype(np.float32)
            return self.to_torch(arr)

        return FlatSamples(flat(obs), self.to_torch(actions).float(), flat(next_obs),
                           self.to_torch(dones).float(), self.to_torch(rewards).float())
