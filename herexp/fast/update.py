"""One SAC gradient step, FastSAC's way: SB3's ``SAC.train`` maths, critics back-propagated by hand.

The whole update on one screen (``model`` is a :class:`herexp.fast.FastSAC`)::

    a_pi, log_pi = actor(s)                                 # autograd graph: the actor only
    alpha step (auto): d/dlog_alpha = -mean(log_pi + target_entropy)
    a', log_pi' = actor(s');  y = r + (1 - d) * gamma * (min_i Qtarg_i(s', a') - alpha * log_pi')
    per critic i:  Q_i(s, a) -> dL/dQ_i = (Q_i - y) / n -> dW by hand -> Adam on critic i's tensors
                   Q_i(s, a_pi) with the new weights
    per row: the critic with min Q_i(s, a_pi) gives dQ/da_pi (by hand, on its rows only)
    per critic i:  polyak target_i <- (1 - tau) target_i + tau Q_i
    actor: backward of mean(alpha * log_pi) + sum(a_pi * (-dQ/da_pi / n)), Adam

This is SB3's order of operations and SB3's RNG use; only *how* the critic gradients are formed
differs (no autograd graph for the critics; the actor loss's critic gradients w.r.t. weights,
which SB3 computes and throws away, are never formed). Equality with ``SAC.train`` (same
weights, batch and RNG -> parameters and losses within 1e-5) is tested in ``tests/test_fast.py``.

Twin critics are independent given the target ``y`` and the chosen rows, so with a ``pool`` (a
one-thread executor; torch releases the GIL inside its kernels) critic 0 runs on the calling
thread and the others on the pool's thread: the same operations on the same tensors, on two
cores. Each critic's Adam update touches only its own tensors, which is what one Adam step over
all of them does (Adam is element-wise).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, TypeVar

import torch as th

from herexp.fast import nets as fnets
from herexp.fast.her_buffer import FlatSamples
from herexp.fast.optim import adam_params, adam_step, can_step_directly, zero_grad

if TYPE_CHECKING:
    from herexp.fast.sac import FastSAC

T = TypeVar("T")


def for_each_critic(pool: Executor | None, fn: Callable[[int], T], n: int) -> list[T]:
    """``[fn(i) for i in range(n)]``; with a pool, ``fn(1..n-1)`` run on its thread meanwhile.

    Grad mode is thread-local: the pool's share runs under ``no_grad`` (as the caller's does).
    """
    if pool is None or n == 1:
        return [fn(i) for i in range(n)]

    def rest() -> list[T]:
        with th.no_grad():
            return [fn(i) for i in range(1, n)]

    future = pool.submit(rest)
    try:
        first = fn(0)
    finally:
        others = future.result()  # waits even when fn(0) raised: never leave the pool mid-step
    return [first, *others]


def row_subsets(device: th.device) -> bool:
    """Back-propagate each critic on its own rows (CPU: half the work), or on every row with a
    zero gradient where it is not the minimum (GPU: ``nonzero`` would force a host sync)."""
    return device.type == "cpu"


def entropy_step(model: FastSAC, log_prob: th.Tensor, auto: bool) -> tuple[th.Tensor, th.Tensor]:
    """(ent_coef used by this step, ent_coef_loss); steps ``log_ent_coef`` in auto mode."""
    if not auto:
        return model.ent_coef_tensor, th.zeros((), device=model.device)
    ent_coef = th.exp(model.log_ent_coef.detach())
    err = (log_prob.detach() + model.target_entropy).mean()
    loss = -(model.log_ent_coef.detach() * err)  # before the step, as SB3 logs it
    # d/dlog_alpha of -(log_alpha * (log_pi + target)).mean(): closed form, no autograd pass
    model.log_ent_coef.grad = -err.reshape(model.log_ent_coef.shape)
    adam_step(model.ent_coef_optimizer, model.direct_adam)  # opt.step() itself when hooks are registered
    return ent_coef, loss


def gradient_step(model: FastSAC, nets: fnets.SacNets, data: FlatSamples, auto: bool, polyak: bool,
                  pool: Executor | None) -> th.Tensor:
    """One SAC update on ``data``; returns ``[ent_coef, actor_loss, critic_loss, ent_coef_loss]``."""
    obs, n, k = data.observations, data.observations.shape[0], len(nets.critics)
    actions_pi, log_prob = fnets.actor_sample(nets, obs)
    log_prob = log_prob.reshape(-1, 1)  # type: ignore[union-attr]
    ent_coef, ent_coef_loss = entropy_step(model, log_prob, auto)
    critic_opt = model.critic.optimizer
    # critics on two threads need a per-critic Adam step: a hook-free, initialised Adam
    pool = pool if pool is not None and can_step_directly(critic_opt, model.direct_adam) else None
    params = model._fast_params[0]  # each critic's tensors, in its optimizer's order
    with th.no_grad():
        next_actions, next_log_prob = fnets.actor_sample(nets, data.next_observations)
        xa = th.cat([obs, data.actions], dim=1)
        xa_next = th.cat([data.next_observations, next_actions], dim=1)
        x_pi = th.cat([obs, actions_pi.detach()], dim=1)

        def forward(i: int) -> tuple[list[th.Tensor], th.Tensor]:
            return fnets.mlp_forward(nets.critics[i], xa), fnets.mlp_forward(nets.critics_target[i], xa_next)[-1]

        fwd = for_each_critic(pool, forward, k)
        next_q = th.cat([q for _, q in fwd], dim=1).amin(dim=1, keepdim=True)
        next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)  # type: ignore[union-attr]
        discounts = data.discounts if data.discounts is not None else model.gamma
        target_q = data.rewards + (1 - data.dones) * discounts * next_q
        zero_grad(critic_opt)

        def critic_update(i: int) -> tuple[th.Tensor, list[th.Tensor] | None]:
            loss = fnets.critic_grads(nets.critics[i], fwd[i][0], target_q)
            if pool is None:
                return loss, None  # one Adam step for all critics below
            adam_params(critic_opt, params[i])
            return loss, fnets.mlp_forward(nets.critics[i], x_pi)

        updated = for_each_critic(pool, critic_update, k)
        critic_loss = th.stack([loss for loss, _ in updated]).sum()
        if pool is None:
            adam_step(critic_opt, model.direct_adam)  # opt.step() itself with hooks or before the state exists
        acts_pi = [a if a is not None else fnets.mlp_forward(q, x_pi) for (_, a), q in zip(updated, nets.critics)]
        min_qf_pi, which = th.cat([a[-1] for a in acts_pi], dim=1).min(dim=1, keepdim=True)

        def action_grad(i: int) -> th.Tensor:
            mine = which == i  # SB3's th.min routes each row's gradient to one critic (the first on ties)
            if polyak:
                model.polyak_critic(i)
            if not row_subsets(obs.device):  # every row, zero where another critic is the minimum
                return fnets.mlp_input_grad(nets.critics[i], acts_pi[i], mine * (-1.0 / n), obs.shape[1])
            rows = mine.reshape(-1).nonzero().reshape(-1)  # CPU: back-propagate this critic's rows only
            grad = fnets.mlp_input_grad_rows(nets.critics[i], acts_pi[i], rows, -1.0 / n, obs.shape[1])
            return th.zeros_like(actions_pi).index_copy_(0, rows, grad)

        dq_da = th.stack(for_each_critic(pool, action_grad, k)).sum(dim=0)  # one non-zero term per row
        actor_loss = (ent_coef * log_prob.detach() - min_qf_pi).mean()
    zero_grad(model.actor.optimizer)
    # grad of mean(alpha * log_pi - min Q(s, a_pi)) w.r.t. the actor = grad of this surrogate
    ((ent_coef * log_prob).mean() + (actions_pi * dq_da).sum()).backward()
    adam_step(model.actor.optimizer, model.direct_adam)
    return th.stack([ent_coef.detach().reshape(()), actor_loss, critic_loss, ent_coef_loss.reshape(())])
