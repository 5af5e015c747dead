"""``python -m herexp.bench``: stock SB3 vs herexp's fast path on the same training config.

    python -m herexp.bench                                  # presets push8 + push1 + reach1, CPU, one thread
    python -m herexp.bench presets=push8 repeats=5 steps=4000
    python -m herexp.bench presets=reach1 overrides=[algo.batch_size=512]   # any training override
    python -m herexp.bench pack=1,2                         # sweep packing: aggregate env-steps/s of N runs
    python -m herexp.bench ablation=true                    # ms per update, adding one lever at a time
    python -m herexp.bench device=cuda                      # GPU mode (skipped with a message without CUDA)

Every variant of a preset is built once through the training path (:mod:`herexp.bench.presets`),
warmed up past ``learning_starts``, then timed *alternately* (stock, fast, fast_overlap, stock,
...) in one process; ratios are per repeat (fast_i / stock_i) with min / median / max. Also
reported: HER ``sample`` µs per batch at the configured capacity and single-env ``step`` µs.
Results are printed and written as JSON (``out=``). Timing is never asserted in tests.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import OmegaConf

from herexp import cli, runfolder
from herexp.bench.presets import PRESETS, VARIANTS, compose, overrides

log = logging.getLogger("herexp.bench")
USAGE = ("usage: python -m herexp.bench [presets=push8,push1,reach1] [variants=stock,fast,...] [repeats=3] "
         "[steps=N] [warmup=N] [threads=1] [device=cpu|cuda] [overrides=[key=value,...]] [pack=1,2] "
         "[pack_variants=stock,fast,fast_overlap] [ablation=true] [out=outputs/bench/bench.json]")


@dataclass
class BenchArgs:
    """Arguments of ``python -m herexp.bench`` (presets and variants: herexp/bench/presets.py)."""

    presets: Any = "push8,push1,reach1"  # comma list of push8, push1, reach1 (empty: none)
    variants: Any = ",".join(VARIANTS)  # comma list of stock, fast, fast_overlap, fast_par, fast_overlap_par
    repeats: int = 3  # alternating A/B rounds per preset
    steps: Optional[int] = None  # timed env steps per round (default: the preset's)
    warmup: Optional[int] = None  # env steps before timing (default: the preset's)
    threads: int = 1  # torch intra-op threads (sweeps use 1)
    device: str = "cpu"  # cpu | cuda
    overrides: List[str] = field(default_factory=list)  # training overrides added to every preset
    pack: Any = ""  # comma list of concurrent-run counts, e.g. 1,2 (sweep packing of push8)
    pack_variants: Any = "stock,fast,fast_overlap"  # variants the packed runs use
    ablation: bool = False  # ms per update, one lever at a time, instead of the A/B run
    out: str = "outputs/bench/bench.json"  # JSON result file
    child: bool = False  # internal: one packed run, prints one JSON line


def _check(args: dict[str, Any]) -> dict[str, Any]:
    """Names checked against the presets and variants (did-you-mean), counts >= 1."""
    args["presets"] = cli.comma_list("presets", args["presets"], list(PRESETS))
    args["variants"] = cli.comma_list("variants", args["variants"], list(VARIANTS))
    args["pack_variants"] = cli.comma_list("pack_variants", args["pack_variants"], list(VARIANTS))
    try:
        args["pack"] = [int(n) for n in str(args["pack"] or "").split(",") if n.strip()]
    except ValueError:
        raise cli.UsageError(f"pack={args['pack']} is invalid: a comma list of run counts, e.g. pack=1,2") from None
    counts = {k: args[k] for k in ("repeats", "steps", "warmup", "threads")} | {"pack": min(args["pack"], default=1)}
    for key, value in counts.items():
        if value is not None and value < 1:
            raise cli.UsageError(f"{key}={args[key]} is invalid: must be >= 1")
    if args["device"] != "cpu" and not str(args["device"]).startswith("cuda"):
        raise cli.UsageError(f"device={args['device']} is invalid: must be cpu, cuda or cuda:N")
    if not args["variants"] and not args["pack"]:
        raise cli.UsageError(f"variants= is empty: nothing to time. {USAGE}")
    return args


def _host() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "load_avg": os.getloadavg(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _presets(args: dict[str, Any]) -> dict[str, Any]:
    """A/B timing of every preset (the JSON-able result)."""
    from herexp.bench.runs import env_step_us, print_preset, run_variants

    results: dict[str, Any] = {}
    for name in args["presets"]:
        preset = replace(PRESETS[name], steps=args["steps"] or PRESETS[name].steps,
                         warmup=args["warmup"] or PRESETS[name].warmup)
        cfg = compose(overrides(preset, args["variants"][0], args["overrides"], args["device"]))
        log.info("preset %s: %s", name, " ".join(preset.overrides))
        t0 = time.perf_counter()
        res = run_variants(preset, args["variants"], args["repeats"], args["overrides"], args["device"])
        res.update(env_id=cfg.env.id, steps=preset.steps, warmup=preset.warmup,
                   env_step_us=env_step_us(cfg.env.id), env_step_us_fast_obs=env_step_us(cfg.env.id, fast_obs=True),
                   wall_s=time.perf_counter() - t0)
        results[name] = res
        print_preset(name, cfg, res)
    return results


def _ablation(args: dict[str, Any]) -> dict[str, Any]:
    """ms per update of every lever, per preset."""
    from herexp.bench.ablation import print_ablation, run_ablation

    out = {}
    for name in args["presets"]:
        preset = replace(PRESETS[name], warmup=args["warmup"] or PRESETS[name].warmup)
        out[name] = run_ablation(preset, args["repeats"], args["overrides"], args["device"])
        print_ablation(name, out[name])
    return out


def main(argv: Sequence[str]) -> dict[str, Any]:
    """Run the benchmark; print tables and write the JSON result to ``out``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _check(OmegaConf.to_container(cli.parse_typed(BenchArgs, argv, USAGE)))  # type: ignore[arg-type]
    import torch  # after parsing: --help and typos answer without loading torch

    torch.set_num_threads(args["threads"])
    if args["child"]:
        from herexp.bench.pack import run_child

        print(json.dumps(run_child(args["variants"][0], args["steps"] or 2000, args["overrides"], args["device"])))
        return {}
    if args["device"].startswith("cuda") and not torch.cuda.is_available():
        print("GPU mode: CUDA is not available on this host; nothing to run (use device=cpu).")
        return {}
    result: dict[str, Any] = {"host": _host(), "threads": args["threads"], "device": args["device"],
                              "overrides": args["overrides"]}
    if args["ablation"]:
        result["ablation"] = _ablation(args)
    elif args["presets"]:
        result["presets"] = _presets(args)
    if args["pack"]:
        from herexp.bench.pack import bench_pack

        result["pack"] = bench_pack(args["pack"], args["pack_variants"], args["steps"] or 2000, args["threads"],
                                    args["device"], args["overrides"])
    result["host"]["load_avg_end"] = os.getloadavg()
    path = Path(args["out"])
    path.parent.mkdir(parents=True, exist_ok=True)
    runfolder.write_json_atomic(path, result)
    print(f"\nwrote {path}")
    return result
