"""OverlappedVecEnv: step the training envs in a worker process while the update runs.

On a 2-core host one SAC update (~10 ms) and one vector step of 8 Fetch envs (~11 ms) can run
at the same time. ``OverlappedVecEnv`` hosts a ``DummyVecEnv`` of all the envs in one worker
process (``n_workers`` > 1 splits them) and exposes the ordinary SB3 ``VecEnv`` API, so it
drops into ``make_vec_env(..., vec_env_cls=OverlappedVecEnv)`` and under ``VecNormalize``.

The overlap itself is driven by :class:`herexp.fast.FastSAC`: during ``learn`` it registers a
hook that this env runs between ``step_async`` (actions sent, the worker starts stepping) and
``step_wait`` (results received); FastSAC defers each ``train()`` call into that hook.

Exact semantics versus SB3 (stock order: act a_t with theta_t, step, store, callbacks, train
-> theta_{t+1}): update t runs while the worker executes step t+1, after step t was stored and
step t's callbacks ran, so it samples *the same buffer* (transitions <= t), sees the same
VecNormalize statistics and the same entropy coefficient writes as SB3's update t, and step
t+1's callbacks (evaluation, checkpoints, entropy schedules) see theta_{t+1} as in SB3. The one
difference: the behaviour action a_{t+1} is chosen by theta_t instead of theta_{t+1} (a
one-update policy lag in data collection). The last deferred update runs at
``on_training_end`` (before any other callback's), so ``learn`` performs the same number of
updates. ``compute_reward`` (for HER relabeling) runs on a local env copy in the main
process, not through the worker.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnvIndices, VecEnvStepReturn


def _worker(remote: Any, parent_remote: Any, fns: CloudpickleWrapper, fast_fetch_obs: bool) -> None:
    """Serve commands for one DummyVecEnv until ``close``."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the
    # parent handles it and closes this worker, which must not print its own traceback
    torch.set_num_threads(1)
    parent_remote.close()
    try:  # a fresh (forkserver/spawn) interpreter: Fetch ids must be registered again
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        if fast_fetch_obs:
            from herexp.fast import fetch_obs

            fetch_obs.enable()  # identical observations, ~25 % cheaper Fetch steps
    except ImportError:
        pass
    try:
        venv = DummyVecEnv(fns.var)
    except Exception as exc:  # noqa: BLE001 - reported to the main process on its first command
        remote.recv()
        remote.send(("error", exc))
        remote.close()
        return
    handlers: dict[str, Callable[[Any], Any]] = {
        "step": lambda a: (venv.step_async(a), venv.step_wait())[1],
        "reset": lambda so: (setattr(venv, "_seeds", so[0]), setattr(venv, "_options", so[1]),
                             venv.reset(), list(venv.reset_infos))[2:],
        "get_attr": lambda d: venv.get_attr(d[0], indices=d[1]),
        "set_attr": lambda d: venv.set_attr(d[0], d[1], indices=d[2]),
        "env_method": lambda d: venv.env_method(d[0], *d[1], indices=d[3], **d[2]),
        "env_is_wrapped": lambda d: venv.env_is_wrapped(d[0], indices=d[1]),
        "get_images": lambda d: venv.get_images(),
    }
    while True:
        cmd, data = remote.recv()
        if cmd == "close":
            venv.close()
            remote.close()
            return
        try:
            remote.send(("ok", handlers[cmd](data)))
        except Exception as exc:  # noqa: BLE001 - re-raised in the main process
            remote.send(("error", exc))


class OverlappedVecEnv(VecEnv):
    """All envs in ``n_workers`` processes; ``step_async`` returns at once (see module doc).

    ``fast_fetch_obs`` enables :mod:`herexp.fast.fetch_obs` in the workers (identical observations).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], n_workers: int = 1, start_method: str | None = None,
                 fast_fetch_obs: bool = True):
        n = len(env_fns)
        n_workers = max(1, min(n_workers, n))
        self._chunks = [list(c) for c in np.array_split(np.arange(n), n_workers)]
        method = start_method or ("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        ctx = mp.get_context(method)
        self._remotes, self._procs = [], []
        for chunk in self._chunks:
            remote, work_remote = ctx.Pipe()
            fns = CloudpickleWrapper([env_fns[i] for i in chunk])
            proc = ctx.Process(target=_worker, args=(work_remote, remote, fns, fast_fetch_obs), daemon=True)
            proc.start()
            work_remote.close()
            self._remotes.append(remote)
            self._procs.append(proc)
        self._in_flight = False
        self._stash: VecEnvStepReturn | None = None
        self._closed = False
        self.step_hook: Callable[[], None] | None = None  # run between step_async and step_wait
        self.num_envs = n  # needed by get_attr before VecEnv.__init__ sets it
        obs_space, act_space, spec = (self.get_attr(a, [0])[0] for a in ("observation_space", "action_space", "spec"))
        self._spec = spec
        self._env_fn0 = env_fns[0]
        self._local: gym.Env | None = None  # built on first compute_reward
        super().__init__(n, obs_space, act_space)

    # -- helpers ---------------------------------------------------------------------------
    def _call(self, cmd: str, data_per_worker: Sequence[Any]) -> list[Any]:
        self._drain()
        for remote, data in zip(self._remotes, data_per_worker, strict=True):
            remote.send((cmd, data))
        return [self._recv(r) for r in self._remotes]

    @staticmethod
    def _recv(remote: Any) -> Any:
        status, value = remote.recv()
        if status == "error":
            raise value
        return value

    def _drain(self) -> None:
        """Receive an in-flight step before any other command (keeps the pipes in order)."""
        if self._in_flight:
            self._stash = self._collect()

    def _collect(self) -> VecEnvStepReturn:
        parts = [self._recv(r) for r in self._remotes]
        self._in_flight = False
        obs = [p[0] for p in parts]
        if isinstance(obs[0], dict):
            cat_obs: Any = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
        else:
            cat_obs = np.concatenate(obs)
        infos = [info for p in parts for info in p[3]]
        return cat_obs, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]), infos

    def _split(self, values: Sequence[Any]) -> list[list[Any]]:
        return [[values[i] for i in chunk] for chunk in self._chunks]

    def _route(self, indices: VecEnvIndices) -> list[tuple[int, list[int]]]:
        """(worker, local indices) pairs for global env indices."""
        wanted = set(self._get_indices(indices))
        out = []
        for w, chunk in enumerate(self._chunks):
            local = [j for j, i in enumerate(chunk) if i in wanted]
            if local:
                out.append((w, local))
        return out

    # -- VecEnv API ------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        self._drain()
        for remote, chunk in zip(self._remotes, self._chunks, strict=True):
            remote.send(("step", actions[chunk]))
        self._in_flight = True

    def step_wait(self) -> VecEnvStepReturn:
        if self.step_hook is not None and self._in_flight:
            self.step_hook()  # the deferred gradient update, while the worker steps
        if self._stash is not None:
            out, self._stash = self._stash, None
            return out
        return self._collect()

    def reset(self) -> Any:
        results = self._call("reset", list(zip(self._split(self._seeds), self._split(self._options), strict=True)))
        self.reset_infos = [info for _, infos in results for info in infos]
        self._reset_seeds()
        self._reset_options()
        obs = [r[0] for r in results]
        if isinstance(obs[0], dict):
            return {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
        return np.concatenate(obs)

    def close(self) -> None:
        if self._closed:
            return
        self._drain()
        self._stash = None
        for remote in self._remotes:
            remote.send(("close", None))
        for proc in self._procs:
            proc.join(timeout=10)
        if self._local is not None:
            self._local.close()
        self._closed = True

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [img for imgs in self._call("get_images", [None] * len(self._remotes)) for img in imgs]

    def _per_worker(self, cmd: str, indices: VecEnvIndices, make: Callable[[list[int]], Any]) -> list[Any]:
        """Send ``cmd`` to the workers holding ``indices`` (local indices); results in env order."""
        self._drain()
        routes = self._route(indices)
        for w, local in routes:
            self._remotes[w].send((cmd, make(local)))
        out: list[Any] = []
        for w, _ in routes:
            out.extend(self._recv(self._remotes[w]) or [])
        return out

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._per_worker("get_attr", indices, lambda loc: (attr_name, loc))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._per_worker("set_attr", indices, lambda loc: (attr_name, value, loc))

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
                   ) -> list[Any]:
        return self._per_worker("env_method", indices, lambda loc: (method_name, method_args, method_kwargs, loc))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._per_worker("env_is_wrapped", indices, lambda loc: (wrapper_class, loc))

    def _make_local(self) -> gym.Env:
        """Env 0 rebuilt from its id and kwargs: no Monitor, so no second writer of its monitor file."""
        if self._spec is not None:
            try:
                return gym.make(self._spec.id, **self._spec.kwargs)
            except gym.error.Error:
                pass
        return self._env_fn0()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Env 0's ``compute_reward`` on a local copy (a pure function of its arguments for goal
        envs), so HER relabeling never waits for the worker."""
        if self._local is None:
            self._local = self._make_local()
        return self._local.get_wrapper_attr("compute_reward")(achieved_goal, desired_goal, info)


def make_overlapped_vec_env(env_id: str | Callable[..., gym.Env], n_envs: int, seed: int | None = None,
                            n_workers: int = 1, **kwargs: Any) -> VecEnv:
    """``make_vec_env`` with :class:`OverlappedVecEnv` (env i seeded ``seed + i``, Monitor-wrapped)."""
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=OverlappedVecEnv,
                        vec_env_kwargs={"n_workers": n_workers}, **kwargs)
