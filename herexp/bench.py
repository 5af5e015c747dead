"""Speed benchmark: stock SB3 vs herexp's fast path on the same config (``make bench``).

    python -m herexp.bench                          # presets push8 + push1 + reach1, CPU, one thread
    python -m herexp.bench --presets push8 --repeats 5 --steps 4000
    python -m herexp.bench --pack 1,2               # sweep packing: aggregate env-steps/s of N runs
    python -m herexp.bench --ablation               # ms per update, adding one lever at a time
    python -m herexp.bench --device cuda            # GPU mode (skipped with a message without CUDA)

Every variant is built once, warmed up past ``learning_starts``, then timed *alternately*
(stock, fast, fast_overlap, stock, ...) in one process, so machine load hits all of them alike;
ratios are per repeat (fast_i / stock_i) with min / median / max. Also reported: HER
``sample`` µs per batch at the configured capacity and single-env ``step`` µs. Results are
printed and written as JSON (``--out``). Timing is never asserted in tests.

Presets: ``push8`` = the chapter config (FetchPush, 8 envs, [256, 256], one update per vector
step); ``push1`` = the same with 1 env (one update per env step: the update dominates);
``reach1`` = the quickstart (FetchReach, 1 env, [64, 64], lr 1e-3, VecNormalize).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from herexp.bench_runs import VARIANTS, BenchConfig, env_step_us, register_envs, run_variants

log = logging.getLogger("herexp.bench")
SWEEP_STEPS = 120 * 2_000_000  # the chapter sweep: 120 runs x 2 M env steps

PRESETS: dict[str, BenchConfig] = {
    "push8": BenchConfig(),
    "push1": BenchConfig(n_envs=1, steps=600, warmup=1300),
    "reach1": BenchConfig(env_id="FetchReach-v4", n_envs=1, net_arch=[64, 64], learning_rate=1e-3,
                          normalize=True, steps=1000, warmup=1300),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m herexp.bench", description=__doc__.split("\n")[0])
    p.add_argument("--presets", default="push8,push1,reach1", help=f"comma list of {sorted(PRESETS)} ('' = none)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {VARIANTS}")
    p.add_argument("--repeats", type=int, default=3, help="alternating A/B rounds per preset")
    p.add_argument("--steps", type=int, default=None, help="timed env steps per round (default: per preset)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (sweeps use 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--pack", default="", help="comma list of concurrent-run counts, e.g. 1,2 (sweep packing)")
    p.add_argument("--pack-variants", default="stock,fast,fast_overlap", help="variants the packing runs use")
    p.add_argument("--ablation", action="store_true", help="per-lever ms/update instead of the A/B run")
    p.add_argument("--out", default="outputs/bench/bench.json", help="JSON result file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one packed run
    return p.parse_args(argv)


def _host() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "load_avg": os.getloadavg(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def bench_presets(args: argparse.Namespace) -> dict[str, Any]:
    """A/B timing of every preset; returns the JSON-able result."""
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results: dict[str, Any] = {}
    for name in [s.strip() for s in args.presets.split(",") if s.strip()]:
        cfg = replace(PRESETS[name], device=args.device)
        if args.steps:
            cfg = replace(cfg, steps=args.steps)
        log.info("preset %s: %s", name, cfg)
        t0 = time.perf_counter()
        res = run_variants(cfg, variants, args.repeats)
        res["config"] = asdict(cfg)
        res["env_step_us"] = env_step_us(cfg.env_id)
        res["env_step_us_fast_obs"] = env_step_us(cfg.env_id, fast_obs=True)
        res["wall_s"] = time.perf_counter() - t0
        results[name] = res
        _print_preset(name, res)
    return results


def _print_preset(name: str, res: dict[str, Any]) -> None:
    print(f"\n== {name}: {res['config']['env_id']} n_envs={res['config']['n_envs']} "
          f"net={res['config']['net_arch']} (env step {res['env_step_us']:.0f} us, "
          f"{res['env_step_us_fast_obs']:.0f} us with herexp.fast.fetch_obs)")
    for v, s in res["summary"].items():
        e, u = s["env_steps_per_s"], s["updates_per_s"]
        print(f"  {v:16s} env-steps/s {e['median']:7.1f} [{e['min']:.1f}-{e['max']:.1f}]  "
              f"updates/s {u['median']:6.1f}  HER sample {res['her_sample_us'][v]:6.0f} us/batch")
    for k, r in res["ratios"].items():
        print(f"  ratio {k:38s} median {r['median']:.2f}x  (min {r['min']:.2f}, max {r['max']:.2f})")


def bench_pack(args: argparse.Namespace) -> dict[str, Any]:
    """Aggregate env-steps/s of N concurrent push8 runs (separate processes, one thread each)."""
    out: dict[str, Any] = {}
    steps = args.steps or 2000
    for variant in [v.strip() for v in args.pack_variants.split(",") if v.strip()]:
        for n in [int(x) for x in args.pack.split(",") if x.strip()]:
            cmd = [sys.executable, "-m", "herexp.bench", "--child", "--variants", variant,
                   "--steps", str(steps), "--threads", str(args.threads)]
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(n)]
            rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["env_steps_per_s"] for p in procs]
            agg = sum(rates)
            out[f"{variant} x{n}"] = {"per_run_env_steps_per_s": rates, "aggregate_env_steps_per_s": agg,
                                      "sweep_120x2M_hours": SWEEP_STEPS / agg / 3600}
            print(f"  pack {n} x {variant:12s}: per run {[round(r) for r in rates]}, aggregate {agg:.0f} "
                  f"env-steps/s -> 120 x 2M sweep {SWEEP_STEPS / agg / 3600:.0f} h on one such host")
    return out


def _child(args: argparse.Namespace) -> None:
    """One packed run: warm up, time ``--steps`` env steps, print one JSON line."""
    from herexp.bench_runs import learn, make_model, timed_learn

    cfg = replace(PRESETS["push8"], device=args.device, steps=args.steps or 2000)
    model = make_model(cfg, args.variants)
    learn(model, cfg.warmup)
    res = timed_learn(model, cfg.steps)
    model.env.close()  # type: ignore[union-attr]
    print(json.dumps(res))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table and write JSON to ``--out``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parse(argv)
    import torch

    torch.set_num_threads(args.threads)
    register_envs()
    if args.child:
        _child(args)
        return {}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("GPU mode: CUDA is not available on this host; nothing to run (use --device cpu).")
        return {}
    result: dict[str, Any] = {"host": _host(), "threads": args.threads, "device": args.device}
    if args.ablation:
        from herexp.bench_ablation import print_ablation, run_ablation

        result["ablation"] = {}
        for name in [s.strip() for s in args.presets.split(",") if s.strip()]:
            result["ablation"][name] = run_ablation(replace(PRESETS[name], device=args.device), args.repeats)
            print_ablation(name, result["ablation"][name])
    elif args.presets:
        result["presets"] = bench_presets(args)
    if args.pack:
        result["pack"] = bench_pack(args)
    result["host"]["load_avg_end"] = os.getloadavg()
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
