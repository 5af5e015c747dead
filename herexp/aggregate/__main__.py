"""``python -m herexp.aggregate``: sweep/run folders or a raw sweep file -> report + plots.

    python -m herexp.aggregate multirun/ch04_push
    python -m herexp.aggregate multirun/a multirun/b metric=return_mean compare=gamma out=results/
    python -m herexp.aggregate raw=sweep_results_raw.json metric=return_mean
    python -m herexp.aggregate multirun/ch04_push wandb=true     # + an offline W&B run of job type aggregate

Folders are positional (or ``inputs=[a,b]``); everything else is typed ``key=value``
(:mod:`herexp.cli`). Exit status: 0 when a report was written (even if some folders were
skipped), 2 with one ``error:`` line when no valid run was found or the arguments are wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import OmegaConf

from herexp import cli
from herexp.aggregate import NoRunsError, Result, aggregate
from herexp.aggregate import report as report_mod
from herexp.aggregate.stats import METRICS

USAGE = ("usage: python -m herexp.aggregate <folder>... | raw=<file.json>  [out=<dir>] [metric=success_rate] "
         "[compare=<factor>] [at_step=<env steps>] [reps=2000] [seed=0] [plots=true] [quiet=false] [wandb=false] [wandb_mode=offline]")
WANDB_MODES = ("offline", "online")


@dataclass
class AggregateArgs:
    """Arguments of ``python -m herexp.aggregate`` (folders by position, the rest key=value)."""

    inputs: List[str] = field(default_factory=list)  # sweep or run folders, searched recursively
    raw: Optional[str] = None  # or the reference project's sweep_results_raw.json
    out: Optional[str] = None  # output folder (default: <first input>/aggregate/)
    metric: str = "success_rate"  # success_rate | return_mean | final_distance_mean (ranking metric)
    compare: Optional[str] = None  # compare the arms of this factor (default: her, when it varies)
    at_step: Optional[int] = None  # compare runs at this env step: each one's last evaluation at or before it
    reps: int = 2000  # bootstrap replications
    seed: int = 0  # bootstrap seed
    plots: bool = True  # write the PNG plots
    quiet: bool = False  # print only the paths written
    wandb: bool = False  # also log the report to W&B (job type aggregate, the runs' project and group)
    wandb_mode: str = "offline"  # offline (<out>/wandb, upload with wandb sync) | online


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    """Typed arguments; a :class:`~herexp.cli.UsageError` for anything the user must fix."""
    args: dict[str, Any] = OmegaConf.to_container(  # type: ignore[assignment]
        cli.parse_typed(AggregateArgs, argv, USAGE, positional="inputs"))
    if bool(args["inputs"]) == bool(args["raw"]):
        raise cli.UsageError(f"give one or more folders, or raw=<file.json> (not both). {USAGE}")
    cli.choice("metric", args["metric"], METRICS)
    cli.choice("wandb_mode", args["wandb_mode"], WANDB_MODES)
    if args["at_step"] is not None and (args["at_step"] < 1 or args["raw"]):
        raise cli.UsageError(f"at_step={args['at_step']} is invalid: must be >= 1, with run folders (not raw=). "
                             "Fix: at_step=250000")
    if args["reps"] < 1:
        raise cli.UsageError(f"reps={args['reps']} is invalid: must be >= 1. Fix: reps=2000")
    missing = [p for p in [*args["inputs"], *([args["raw"]] if args["raw"] else [])] if not Path(p).exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise cli.UsageError(f"path not found: {missing[0]}{more}")
    return args


def _print_report(res: Result, console: Any) -> None:
    r = res.report
    at = f" at {r['at_step']:,} env steps" if r.get("at_step") else ""
    console.print(f"[bold]{r['n_runs']} runs, {r['n_configs']} configurations, factors: "
                  f"{', '.join(r['factors']) or 'none'}; metric {r['metric']}{at}[/]; "
                  f"{len(r['failed'])} failed, {len(r['pruned'])} pruned, {len(r['skipped'])} skipped")
    for table in report_mod.headline_tables(r):
        console.print(report_mod.to_rich(table))
    poi = r["robust"]["probability_of_improvement"]
    if poi:
        console.print(f"P(best config beats runner-up) = {poi['value']:.2f} "
                      f"[{poi['ci95_low']:.2f}, {poi['ci95_high']:.2f}] (rliable, bootstrap)")


def main(argv: Sequence[str]) -> Result:
    """Aggregate, print the headline tables and the paths written; return the result."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    console = Console(width=max(Console().width, 120))
    try:
        res = aggregate(args["inputs"], args["raw"], args["out"], metric=args["metric"], compare=args["compare"],
                        reps=args["reps"], seed=args["seed"], make_plots=args["plots"], at_step=args["at_step"])
    except (NoRunsError, ValueError) as exc:  # no usable run, an unknown compare= factor
        raise cli.UsageError(str(exc).replace("\n", " ")) from exc
    if not args["quiet"]:
        _print_report(res, console)
    if args["wandb"]:
        from herexp.aggregate.wandb_log import log_report

        res.paths["wandb"] = Path(log_report(res, args["wandb_mode"]))
    console.print("[bold]wrote:[/]")
    for path in [*res.paths.values(), *res.plots]:
        console.print(f"  {path}", soft_wrap=True)
    return res


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
