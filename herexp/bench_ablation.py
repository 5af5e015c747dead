"""Lever ablation for :mod:`herexp.bench` (``--ablation``): ms per update, one lever at a time.

All steps share one filled buffer and time ``model.train(n, batch)`` only (no env stepping),
alternating the steps in every round:

1. ``sb3``          SAC.train + HerReplayBuffer (the reference);
2. ``+her_sampler`` SAC.train + FastHerReplayBuffer (O(batch) sampler);
3. ``+lean_update`` FastSAC.train with SB3's Adam via ``opt.step()`` (functional nets, flatten
   once, detached critics in the actor loss, foreach polyak, no ``.item()``);
4. ``+fused_adam``  ... with fused Adam, still through ``opt.step()``;
5. ``+direct_adam`` ... calling the functional Adam directly (FastSAC's default, one core);
6. ``+parallel_critics`` ... with the twin critics on a second thread (``algo.parallel_critics``).

Steps 3-6 all include the hand-written critic backward of :mod:`herexp.fast.update`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from stable_baselines3 import SAC

from herexp.bench_runs import BenchConfig, learn, make_model, summarize

STEPS = ("sb3", "+her_sampler", "+lean_update", "+fused_adam", "+direct_adam", "+parallel_critics")


def _configure(step: str) -> None:
    from herexp.fast import optim, sac

    optim.DIRECT = step in ("+direct_adam", "+parallel_critics")
    sac.OPTIM_IMPL = "fused" if step in ("+fused_adam", "+direct_adam", "+parallel_critics") else "default"


def run_ablation(cfg: BenchConfig, repeats: int, updates: int = 40) -> dict[str, Any]:
    """ms per update for each step of :data:`STEPS`, and each step's ratio to ``sb3``."""
    from herexp.fast import FastHerReplayBuffer

    cfg = replace(cfg, learning_starts=10**9)  # fill the buffer without training
    stock = make_model(cfg, "stock")
    swapped = make_model(cfg, "stock")
    fast = make_model(cfg, "fast")
    for model in (stock, swapped, fast):
        learn(model, cfg.warmup)
    swapped.replay_buffer.__class__ = FastHerReplayBuffer  # same storage layout, faster sampler
    models: dict[str, SAC] = {"sb3": stock, "+her_sampler": swapped, "+lean_update": fast, "+fused_adam": fast,
                              "+direct_adam": fast, "+parallel_critics": fast}
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    try:
        for _ in range(repeats):
            for step in STEPS:
                _configure(step)
                model = models[step]
                fast.parallel_critics = step == "+parallel_critics"
                model.train(3, cfg.batch_size)  # warm the chosen implementation
                t0 = time.perf_counter()
                model.train(updates, cfg.batch_size)
                times[step].append(1e3 * (time.perf_counter() - t0) / updates)
    finally:
        _configure("+direct_adam")
        fast.parallel_critics = False
        for model in (stock, swapped, fast):
            model.env.close()  # type: ignore[union-attr]
    ms = {s: summarize(v) for s, v in times.items()}
    ratios = {s: summarize([r / t for r, t in zip(times["sb3"], times[s], strict=True)]) for s in STEPS}
    return {"ms_per_update": ms, "speedup_vs_sb3": ratios}


def print_ablation(name: str, res: dict[str, Any]) -> None:
    print(f"\n== ablation {name}: ms per update (train() only), speed-up vs SB3")
    for s in STEPS:
        m, r = res["ms_per_update"][s], res["speedup_vs_sb3"][s]
        print(f"  {s:14s} {m['median']:6.2f} ms  x{r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f})")
