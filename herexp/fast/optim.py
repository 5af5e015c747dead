"""Adam steps without ``Optimizer.step``'s per-call bookkeeping (same maths, same state).

``torch.optim.Adam.step`` spends ~150 µs per call on CPU around a ~15 µs fused kernel
(profiler ``record_function``, hook dispatch, ``_init_group``). For SAC's small networks that is
~0.45 ms per update. :func:`adam_step` calls the same functional ``torch.optim.adam.adam``
with the optimizer's own state tensors and param-group hyperparameters, so the state dict, the
checkpoint and the arithmetic are those of ``opt.step()``. It falls back to ``opt.step()``
whenever anything could differ: another optimizer class, registered step hooks (e.g. herexp's
entropy floor on ``ent_coef_optimizer``), global hooks, or state not yet initialised, and
whenever the caller passes ``direct=False`` (FastSAC's ``direct_adam``; the benchmark's lever
ablation times ``opt.step()`` that way).
"""

from __future__ import annotations

import torch as th
from torch.optim import adam as _adam
from torch.optim import optimizer as _optimizer


def _has_hooks(opt: th.optim.Optimizer) -> bool:
    return bool(opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
                or _optimizer._global_optimizer_pre_hooks or _optimizer._global_optimizer_post_hooks)


def zero_grad(opt: th.optim.Optimizer) -> None:
    """``opt.zero_grad(set_to_none=True)`` without the profiler wrapper."""
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = None


def can_step_directly(opt: th.optim.Optimizer, direct: bool = True) -> bool:
    """Whether :func:`adam_step` / :func:`adam_params` would skip ``opt.step()`` for ``opt`` now
    (never when ``direct`` is False)."""
    if not direct or type(opt) is not th.optim.Adam or _has_hooks(opt):
        return False
    for group in opt.param_groups:
        if group["capturable"] or group["differentiable"]:
            return False
        for p in group["params"]:
            if not opt.state.get(p) or p.is_sparse or th.is_complex(p):
                return False  # the first step initialises the state exactly as torch does
    return True


def adam_step(opt: th.optim.Optimizer, direct: bool = True) -> None:
    """``opt.step()`` for a hook-free, initialised ``torch.optim.Adam``; else (or with
    ``direct=False``) ``opt.step()`` itself."""
    if not can_step_directly(opt, direct):
        opt.step()
        return
    with th.no_grad():
        for group in opt.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            _functional_adam(group, params, [opt.state[p] for p in params])


def adam_params(opt: th.optim.Optimizer, params: list[th.Tensor]) -> None:
    """The part of ``opt.step()`` that updates ``params`` (Adam is element-wise: stepping a subset
    now and the rest later equals one step). Only when :func:`can_step_directly`."""
    wanted = {id(p) for p in params if p.grad is not None}
    with th.no_grad():
        for group in opt.param_groups:
            mine = [p for p in group["params"] if id(p) in wanted]
            if mine:
                _functional_adam(group, mine, [opt.state[p] for p in mine])


def _functional_adam(group: dict, params: list[th.Tensor], states: list[dict]) -> None:
    beta1, beta2 = group["betas"]
    _adam.adam(
        params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
        [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else [], [s["step"] for s in states],
        foreach=group["foreach"], capturable=False, differentiable=False, fused=group["fused"],
        grad_scale=None, found_inf=None, has_complex=False,
        decoupled_weight_decay=group.get("decoupled_weight_decay", False), amsgrad=group["amsgrad"],
        beta1=beta1, beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
        maximize=group["maximize"])
