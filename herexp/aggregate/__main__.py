"""``python -m herexp.aggregate``: sweep/run folders or a raw sweep file -> report + plots.

    python -m herexp.aggregate multirun/ch04_push
    python -m herexp.aggregate --raw sweep_results_raw.json --metric return_mean
    python -m herexp.aggregate multirun/ch04_push --wandb     # + an offline W&B run of job type aggregate

Exit status: 0 when a report was written (even if some folders were skipped), 2 when no
valid run was found or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from herexp.aggregate import NoRunsError, aggregate
from herexp.aggregate import report as report_mod
from herexp.aggregate.stats import METRICS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m herexp.aggregate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sweep/run folders or a raw sweep file -> report.md, report.json, runs.csv, "
                    "configs.csv and PNG plots.",
        epilog="examples:\n  python -m herexp.aggregate multirun/ch04_push\n"
               "  python -m herexp.aggregate --raw sweep_results_raw.json --metric return_mean")
    p.add_argument("inputs", nargs="*", help="sweep or run folders, searched recursively")
    p.add_argument("--raw", metavar="FILE", help="the reference project's sweep_results_raw.json")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <first input>/aggregate/)")
    p.add_argument("--metric", choices=METRICS, default="success_rate", help="metric to rank by")
    p.add_argument("--compare", metavar="FACTOR", help="compare the arms of this factor (default: her)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replications (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the paths written")
    p.add_argument("--wandb", action="store_true",
                   help="also log the report to W&B (job type aggregate, the runs' project and group)")
    p.add_argument("--wandb-mode", choices=("offline", "online"), default="offline",
                   help="W&B mode for --wandb (default offline: <out>/wandb, upload with wandb sync)")
    args = p.parse_args(argv)
    if bool(args.inputs) == bool(args.raw):
        p.error("give one or more folders, or --raw FILE (not both)")
    if args.reps < 1:
        p.error("--reps must be >= 1")
    return args


def missing_paths(args: argparse.Namespace) -> str | None:
    """``path not found: X`` when an input folder or the raw file does not exist."""
    missing = [path for path in [*args.inputs, *([args.raw] if args.raw else [])] if not Path(path).exists()]
    if not missing:
        return None
    return f"path not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := missing_paths(args):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    console = Console(width=max(Console().width, 120))
    try:
        res = aggregate(args.inputs, args.raw, args.out, metric=args.metric, compare=args.compare,
                        reps=args.reps, seed=args.seed, make_plots=not args.no_plots)
    except NoRunsError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 2
    except ValueError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 2
    r = res.report
    if not args.quiet:
        console.print(f"[bold]{r['n_runs']} runs, {r['n_configs']} configurations, factors: "
                      f"{', '.join(r['factors']) or 'none'}; metric {r['metric']}[/]; "
                      f"{len(r['failed'])} failed, {len(r['skipped'])} skipped")
        for table in report_mod.headline_tables(r):
            console.print(report_mod.to_rich(table))
        poi = r["robust"]["probability_of_improvement"]
        if poi:
            console.print(f"P(best config beats runner-up) = {poi['value']:.2f} "
                          f"[{poi['ci95_low']:.2f}, {poi['ci95_high']:.2f}] (rliable, bootstrap)")
    if args.wandb:
        from herexp.aggregate.wandb_log import log_report

        res.paths["wandb"] = Path(log_report(res, args.wandb_mode))
    console.print("[bold]wrote:[/]")
    for path in [*res.paths.values(), *res.plots]:
        console.print(f"  {path}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
