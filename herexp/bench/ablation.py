"""Lever ablation for :mod:`herexp.bench` (``ablation=true``): ms per update, one lever at a time.

Three models are built through the training path from the preset with
``algo.learning_starts`` out of reach (the warm-up fills the buffers without training):
``algo=sac`` twice and ``algo=sac_fast`` once. Each step times ``model.train(n, batch)`` only
(no env stepping), alternating the steps in every round:

1. ``sb3``          SAC.train + HerReplayBuffer (the reference);
2. ``+her_sampler`` SAC.train + FastHerReplayBuffer (O(batch) sampler; the second stock model's
   buffer, same storage layout);
3. ``+lean_update`` FastSAC.train with SB3's Adam via ``opt.step()`` (functional nets, flatten
   once, detached critics in the actor loss, foreach polyak, no ``.item()``);
4. ``+fused_adam``  ... with fused Adam, still through ``opt.step()``;
5. ``+direct_adam`` ... calling the functional Adam directly (FastSAC's default, one core);
6. ``+parallel_critics`` ... with the twin critics on a second thread (``algo.parallel_critics``).

Steps 3-6 share one FastSAC (same buffer, same weights) and differ only in its constructor
levers ``optimizer_impl`` / ``direct_adam`` / ``parallel_critics``, set on the model before each
timing; all include the hand-written critic backward of :mod:`herexp.fast.update`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from stable_baselines3 import SAC

from herexp.bench.presets import Preset
from herexp.bench.runs import Built, build_variant, learn, summarize

STEPS = ("sb3", "+her_sampler", "+lean_update", "+fused_adam", "+direct_adam", "+parallel_critics")
# FastSAC levers of each fast step (FastSAC's constructor arguments; its defaults are +direct_adam)
LEVERS: dict[str, dict[str, Any]] = {
    "+lean_update": {"optimizer_impl": "default", "direct_adam": False, "parallel_critics": False},
    "+fused_adam": {"optimizer_impl": "fused", "direct_adam": False, "parallel_critics": False},
    "+direct_adam": {"optimizer_impl": "fused", "direct_adam": True, "parallel_critics": False},
    "+parallel_critics": {"optimizer_impl": "fused", "direct_adam": True, "parallel_critics": True},
}
NO_TRAINING = "algo.learning_starts=1000000000"  # the warm-up only fills the buffer


def build_models(preset: Preset, extra: Sequence[str] = (), device: str = "cpu") -> dict[str, Built]:
    """The model each step times, buffers filled by the preset's warm-up."""
    from herexp.fast import FastHerReplayBuffer

    fill = [*extra, NO_TRAINING]
    stock, swapped = build_variant(preset, "stock", fill, device), build_variant(preset, "stock", fill, device)
    fast = build_variant(preset, "fast", fill, device)
    for built in (stock, swapped, fast):
        learn(built, preset.warmup)
    swapped.model.replay_buffer.__class__ = FastHerReplayBuffer  # same storage layout, faster sampler
    return {"sb3": stock, "+her_sampler": swapped, **{step: fast for step in LEVERS}}


def set_levers(model: SAC, step: str) -> None:
    """Give the shared FastSAC the levers of ``step`` (stock steps have none)."""
    for name, value in LEVERS.get(step, {}).items():
        setattr(model, name, value)


def run_ablation(preset: Preset, repeats: int, extra: Sequence[str] = (), device: str = "cpu",
                 updates: int = 40) -> dict[str, Any]:
    """ms per update for each step of :data:`STEPS`, and each step's ratio to ``sb3``."""
    models = build_models(preset, extra, device)
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    try:
        for _ in range(repeats):
            for step in STEPS:
                model = models[step].model
                set_levers(model, step)
                model.train(3, model.batch_size)  # warm the chosen implementation
                t0 = time.perf_counter()
                model.train(updates, model.batch_size)
                times[step].append(1e3 * (time.perf_counter() - t0) / updates)
    finally:
        for built in {id(b): b for b in models.values()}.values():
            built.close()
    ms = {s: summarize(v) for s, v in times.items()}
    ratios = {s: summarize([r / t for r, t in zip(times["sb3"], times[s], strict=True)]) for s in STEPS}
    return {"ms_per_update": ms, "speedup_vs_sb3": ratios}


def print_ablation(name: str, res: dict[str, Any]) -> None:
    print(f"\n== ablation {name}: ms per update (train() only), speed-up vs SB3")
    for s in STEPS:
        m, r = res["ms_per_update"][s], res["speedup_vs_sb3"][s]
        print(f"  {s:14s} {m['median']:6.2f} ms  x{r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f})")
