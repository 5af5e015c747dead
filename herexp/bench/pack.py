"""Sweep packing for :mod:`herexp.bench` (``pack=1,2``): aggregate env-steps/s of N concurrent runs.

Each run is a separate process (``python -m herexp.bench child=true ...``, one torch thread),
as a sweep's jobs are; every child builds the ``push8`` preset with one variant through the
training path, warms up, times ``steps`` env steps and prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from herexp.bench.presets import PRESETS
from herexp.bench.runs import build_variant, learn, timed_learn

SWEEP_STEPS = 120 * 2_000_000  # the chapter sweep: 120 runs x 2 M env steps
PACK_PRESET = "push8"


def child_command(variant: str, steps: int, threads: int, device: str, extra: Sequence[str]) -> list[str]:
    """The command line of one packed run."""
    return [sys.executable, "-m", "herexp.bench", "child=true", f"variants={variant}", f"steps={steps}",
            f"threads={threads}", f"device={device}", f"overrides={json.dumps(list(extra))}"]  # quoted: YAML


def run_child(variant: str, steps: int, extra: Sequence[str] = (), device: str = "cpu") -> dict[str, float]:
    """One packed run (in the child process): build, warm up, time ``steps`` env steps."""
    preset = PRESETS[PACK_PRESET]
    built = build_variant(preset, variant, extra, device)
    try:
        learn(built, preset.warmup)
        return timed_learn(built, steps)
    finally:
        built.close()


def bench_pack(counts: Sequence[int], variants: Sequence[str], steps: int, threads: int, device: str,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """For each variant and N in ``counts``: N concurrent runs, their rates and the sum."""
    out: dict[str, Any] = {}
    for variant in variants:
        for n in counts:
            cmd = child_command(variant, steps, threads, device, extra)
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
            rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["env_steps_per_s"] for p in procs]
            agg = sum(rates)
            hours = SWEEP_STEPS / agg / 3600
            out[f"{variant} x{n}"] = {"per_run_env_steps_per_s": rates, "aggregate_env_steps_per_s": agg,
                                      "sweep_120x2M_hours": hours}
            print(f"  pack {n} x {variant:12s}: per run {[round(r) for r in rates]}, aggregate {agg:.0f} "
                  f"env-steps/s -> 120 x 2M sweep {hours:.0f} h on one such host")
    return out
