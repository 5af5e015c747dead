"""FastSAC: SB3's SAC with a lean ``train()`` and action sampling; identical learning.

Drop-in subclass of :class:`stable_baselines3.SAC` (same constructor, same attributes, same
checkpoint: ``SAC.load`` reads a FastSAC zip). What changes is *how* one update is evaluated:

* observations are flattened once per batch (one ``cat``) instead of per forward, and the
  MLPs run as plain ``addmm``/``relu`` over SB3's own parameters (:mod:`herexp.fast.nets`);
* the update itself (:mod:`herexp.fast.update`) back-propagates the critics by hand, without
  an autograd graph: the critic loss's weight gradients, and for the actor loss only the
  gradient w.r.t. the action, on the rows where each critic is the minimum (SB3 also forms the
  critic weight gradients there and throws them away); ``parallel_critics`` runs the twin
  critics on two threads;
* the entropy-coefficient gradient is written in closed form (``-mean(log_pi + target)``)
  and stepped with the *same* ``ent_coef_optimizer`` object, so its hooks still fire;
* Adam runs torch's fused CPU kernel (``foreach`` on CUDA) and is called through the functional
  ``torch.optim.adam.adam`` on the optimizer's own state (:mod:`herexp.fast.optim`): the same
  algorithm and state dict; the flags are reset to SB3's defaults inside saved checkpoints;
* ``set_training_mode`` only walks the modules when the mode changes (no Dropout/BatchNorm in
  these MLPs, so the flag changes nothing), and action sampling skips ``predict``'s wrappers;
* polyak averaging is two ``torch._foreach_*`` calls per critic (bit-identical to ``polyak_update``);
* no ``.item()`` inside the loop: losses are kept as tensors and logged once per call.

Every step re-reads ``ent_coef_tensor`` / ``log_ent_coef`` / ``target_entropy``, so entropy
schedules that ``fill_`` the tensor or clamp the log-coefficient keep working. Policies the
lean path does not cover (gSDE, custom extractors, non-ReLU MLPs) fall back to ``SAC.train``.
Equivalence with ``SAC.train`` (same weights + same batch + same RNG -> same parameters and
losses within 1e-5) is tested in ``tests/test_fast.py``.
"""

from __future__ import annotations

import os
import types
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnvWrapper

from herexp.fast import nets as fnets
from herexp.fast import update
from herexp.fast.her_buffer import FlatSamples, flat_samples

# Adam implementations FastSAC can select (``optimizer_impl``): "fused" (one C++ kernel per
# tensor: 2.7x faster than SB3's default for-loop Adam on the critic, measured), "foreach", or
# "default" (SB3's). All three are the same algorithm on the same state.
OPTIMIZER_IMPLS = ("fused", "foreach", "default")

_USER_FLAGS: weakref.WeakKeyDictionary[th.optim.Optimizer, bool] = weakref.WeakKeyDictionary()


def _user_chose_impl(opt: th.optim.Optimizer) -> bool:
    """Whether the optimizer was built with an explicit ``foreach`` / ``fused`` (then it is left
    alone); remembered from the first look, before herexp sets either flag."""
    if opt not in _USER_FLAGS:
        _USER_FLAGS[opt] = any(g.get("foreach") is not None or g.get("fused") is not None for g in opt.param_groups)
    return _USER_FLAGS[opt]


def _set_adam_impl(optimizers: list[th.optim.Optimizer], impl: str) -> None:
    """Select Adam's implementation in place (a param-group flag; the maths is the same).
    Optimizers whose owner chose ``foreach``/``fused`` keep that choice."""
    optimizers = [o for o in optimizers if not _user_chose_impl(o)]
    if impl == "fused" and not _fused_ok(optimizers):
        impl = "foreach"
    for opt in optimizers:
        for group in opt.param_groups:
            group["foreach"] = True if impl == "foreach" else None
            group["fused"] = True if impl == "fused" else None


def _fused_ok(optimizers: list[th.optim.Optimizer]) -> bool:
    """Fused Adam on CPU only (torch >= 2.4 has the kernel). On CUDA, torch's default is already
    ``foreach``, and a state created unfused keeps ``step`` on the CPU, which fused rejects."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    if "cpu" not in _get_fused_kernels_supported_devices():
        return False
    return all(p.device.type == "cpu" and p.is_floating_point()
               for opt in optimizers for g in opt.param_groups for p in g["params"])


_POOL: ThreadPoolExecutor | None = None


def _critic_pool() -> ThreadPoolExecutor:
    """The process's one helper thread for ``parallel_critics`` (created on first use, reused)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herexp-critic")
    return _POOL


def _forget_pool() -> None:
    """A forked child has none of the parent's threads: it creates its own pool when needed."""
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


class FastSAC(SAC):
    """SAC with a faster, semantically identical update (see the module docstring).

    ``parallel_critics=True`` runs the twin critics' share of each update on two threads (a
    second core; same arithmetic). Leave it off when runs are packed one per core.
    ``optimizer_impl`` picks Adam's kernel (:data:`OPTIMIZER_IMPLS`; ``"fused"`` falls back to
    ``"foreach"`` where torch has no fused kernel) and ``direct_adam=False`` steps every optimizer
    through ``opt.step()`` instead of the functional call (:mod:`herexp.fast.optim`): levers the
    benchmark's ablation turns off one at a time; the defaults are the fast path. They are
    attributes of the model, so they may also be changed between ``train`` calls.
    """

    _fast_nets_cache: fnets.SacNets | None | bool = False  # False = not built yet
    # class-level defaults: SAC.load restores a FastSAC without calling __init__
    parallel_critics: bool = False
    optimizer_impl: str = "fused"
    direct_adam: bool = True

    def __init__(self, *args: Any, parallel_critics: bool = False, optimizer_impl: str = "fused",
                 direct_adam: bool = True, **kwargs: Any) -> None:
        if optimizer_impl not in OPTIMIZER_IMPLS:
            raise ValueError(f"optimizer_impl={optimizer_impl!r} is not one of {OPTIMIZER_IMPLS}")
        super().__init__(*args, **kwargs)
        self.parallel_critics = parallel_critics
        self.optimizer_impl = optimizer_impl
        self.direct_adam = direct_adam

    def _fast_nets(self) -> fnets.SacNets | None:
        """Functional views of the policy (built lazily: ``SAC.load`` skips ``__init__``)."""
        cache = self.__dict__.get("_fast_nets_cache", False)
        if cache is False or (cache is not None and cache.actor_mu[0] is not self.actor.mu.weight):
            cache = fnets.supported(self.policy)
            self._fast_nets_cache = cache
            self._fast_params = ([[p for layer in q for p in layer] for q in cache.critics],
                                 [[p for layer in q for p in layer] for q in cache.critics_target]) if cache else None
            self._mode_matters = fnets.mode_matters(self.policy)
            if cache is not None and not self._mode_matters:
                # train()/eval() flips flags that nothing reads in a Dropout/BatchNorm-free MLP but
                # costs ~0.1 ms per call (a recursive module walk): only walk when the mode changes
                self.policy.set_training_mode = types.MethodType(fnets.lazy_set_training_mode, self.policy)
        return cache  # type: ignore[return-value]

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_fast_nets_cache", "_fast_params", "_pending", "_defer",
                "_mode_matters", "parallel_critics", "optimizer_impl", "direct_adam"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save exactly as SAC does: Adam flags are restored to SB3's defaults in the file."""
        opts = [o for o in (self.actor.optimizer, self.critic.optimizer, self.ent_coef_optimizer) if o is not None]
        _set_adam_impl(opts, "default")
        super().save(*args, **kwargs)

    def _sample_flat(self, batch_size: int, keys: list[str]) -> FlatSamples:
        rb = self.replay_buffer
        if hasattr(rb, "sample_flat"):
            return rb.sample_flat(batch_size, env=self._vec_normalize_env, keys=keys)  # type: ignore[union-attr]
        return flat_samples(rb.sample(batch_size, env=self._vec_normalize_env), keys)  # type: ignore[union-attr]

    def learn(self, total_timesteps: int, callback: MaybeCallback = None, log_interval: int = 4,
              tb_log_name: str = "SAC", reset_num_timesteps: bool = True, progress_bar: bool = False) -> FastSAC:
        """``SAC.learn``; with an :class:`~herexp.fast.vec_env.OverlappedVecEnv` the updates are
        deferred into the env's step (overlapped with env stepping; semantics in that module)."""
        base = self.env
        while isinstance(base, VecEnvWrapper):
            base = base.venv
        overlap = base is not None and hasattr(base, "step_hook")
        if overlap:
            self._pending: tuple[int, int] | None = None
            self._defer = True
            base.step_hook = self._run_pending  # type: ignore[union-attr]
            callback = _with_flush(callback)
        try:
            return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps,
                                 progress_bar)
        finally:
            if overlap:
                self._defer = False
                self._pending = None
                base.step_hook = None  # type: ignore[union-attr]

    def _run_pending(self) -> None:
        """Run the deferred update, if any (called by the env between step_async and step_wait)."""
        pending = self.__dict__.get("_pending")
        if pending is not None:
            self._pending = None
            self._train_now(*pending)
            self.policy.set_training_mode(False)  # back to collect_rollouts' mode

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Same update as :meth:`SAC.train`, evaluated with less overhead (deferred when overlapping)."""
        if self.__dict__.get("_defer"):
            self._run_pending()
            self._pending = (gradient_steps, batch_size)
            return
        self._train_now(gradient_steps, batch_size)

    def _train_now(self, gradient_steps: int, batch_size: int) -> None:
        nets = self._fast_nets()
        if nets is None:
            return super().train(gradient_steps, batch_size)
        if self._mode_matters:  # else the flags change nothing; skipping saves two walks per step
            self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        auto = self.ent_coef_optimizer is not None and self.log_ent_coef is not None
        if auto:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        _set_adam_impl(optimizers, self.optimizer_impl)
        logs = [self._gradient_step(nets, batch_size, step, auto) for step in range(gradient_steps)]
        self._n_updates += gradient_steps
        self._record(logs, auto)

    def _gradient_step(self, nets: fnets.SacNets, batch_size: int, step: int, auto: bool) -> th.Tensor:
        """One SAC gradient step (:func:`herexp.fast.update.gradient_step`); returns its 4 log values."""
        data = self._sample_flat(batch_size, nets.obs_keys)
        pool = _critic_pool() if self.parallel_critics and len(nets.critics) > 1 else None
        return update.gradient_step(self, nets, data, auto, step % self.target_update_interval == 0, pool)

    def polyak_critic(self, i: int) -> None:
        """``polyak_update`` of target critic ``i`` as two multi-tensor ops (the same mul_/add_ per tensor)."""
        params, targets = self._fast_params[0][i], self._fast_params[1][i]
        with th.no_grad():
            th._foreach_mul_(targets, 1 - self.tau)
            th._foreach_add_(targets, params, alpha=self.tau)

    def _record(self, logs: list[th.Tensor], auto: bool) -> None:
        """SB3's train/* records; one host transfer per train() call."""
        if not logs:
            return
        ent, actor, critic, ent_loss = th.stack(logs).mean(dim=0).tolist()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", ent)
        self.logger.record("train/actor_loss", actor)
        self.logger.record("train/critic_loss", critic)
        if auto:
            self.logger.record("train/ent_coef_loss", ent_loss)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
                       ) -> tuple[np.ndarray, np.ndarray]:
        """SB3's action sampling with the functional actor in place of ``predict`` (same RNG use)."""
        nets = self._fast_nets()
        warmup = self.num_timesteps < learning_starts
        if nets is None or warmup or self.use_sde or not isinstance(self.action_space, spaces.Box):
            return super()._sample_action(learning_starts, action_noise, n_envs)
        obs = self._last_obs
        if nets.obs_keys:
            flat = np.concatenate([obs[k].reshape(n_envs, -1) for k in nets.obs_keys], axis=1)  # type: ignore[index]
        else:
            flat = np.asarray(obs).reshape(n_envs, -1)
        with th.no_grad():
            x = th.as_tensor(flat, device=self.device).float()
            squashed = fnets.actor_sample(nets, x, with_log_prob=False)[0].cpu().numpy()
        unscaled = self.policy.unscale_action(squashed.reshape((-1, *self.action_space.shape)))
        scaled = self.policy.scale_action(unscaled)
        if action_noise is not None:
            scaled = np.clip(scaled + action_noise(), -1, 1)
        return self.policy.unscale_action(scaled), scaled


class _FlushPending(BaseCallback):
    """Runs FastSAC's last deferred update at the end of ``learn`` (before other callbacks)."""

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.model._run_pending()  # type: ignore[attr-defined]


def _with_flush(callback: MaybeCallback) -> CallbackList:
    if callback is None:
        rest: list[BaseCallback] = []
    elif isinstance(callback, list):
        rest = list(callback)
    elif isinstance(callback, BaseCallback):
        rest = [callback]
    else:
        rest = [ConvertCallback(callback)]
    return CallbackList([_FlushPending(), *rest])
