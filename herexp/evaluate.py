"""Re-evaluate a saved model with the training code path.

    python -m herexp.evaluate run_dir=outputs/2026-11-24/10-00-00_push_her_fixed_seed0
    python -m herexp.evaluate checkpoint=path/model.zip env=FetchPush-v4 n_episodes=20
    python -m herexp.evaluate run_dir=... deterministic=false seeds=[1000000,1000001] out=eval2.json

Defaults (episodes, seeds, determinism) come from the run's own config, so with no overrides
the numbers reproduce the run's eval.json exactly. Writes ``<run_dir>/eval_reeval.json``
(or ``out=``) and prints the aggregates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import OmegaConf

from herexp import agent, cli, envs, evaluation, runfolder

log = logging.getLogger("herexp.evaluate")
USAGE = "usage: python -m herexp.evaluate run_dir=<folder> | checkpoint=<model.zip> env=<env id> " \
        "[n_episodes=N] [deterministic=true|false] [seeds=[...]] [device=cpu] [out=<file.json>]"


@dataclass
class EvaluateArgs:
    """Arguments of ``python -m herexp.evaluate`` (unset values come from the run's config)."""

    run_dir: Optional[str] = None  # a run folder (model.zip, vecnormalize.pkl, config)
    checkpoint: Optional[str] = None  # or a bare checkpoint, with env=
    env: Optional[str] = None  # Gymnasium id for checkpoint=
    n_episodes: Optional[int] = None  # default: the run's eval.n_episodes (100)
    deterministic: Optional[bool] = None  # default: the run's eval.deterministic
    seed_offset: Optional[int] = None  # episode i uses seed seed_offset + i
    seeds: Optional[List[int]] = None  # explicit episode seeds (overrides n_episodes/seed_offset)
    device: str = "auto"
    out: Optional[str] = None  # default: <run_dir>/eval_reeval.json


def describe_unusable_run(run_dir: Path) -> str | None:
    """Why a folder has no model to load (None when it has one): missing, not a run, its status."""
    if not run_dir.is_dir():
        return f"run_dir={run_dir}: folder not found"
    summary = runfolder.read_summary(run_dir)
    if summary is None and not (run_dir / runfolder.HYDRA_CONFIG).is_file():
        return f"run_dir={run_dir} is not a run folder (no {runfolder.SUMMARY} or {runfolder.HYDRA_CONFIG})"
    if (run_dir / runfolder.MODEL).is_file():
        return None
    status = (summary or {}).get("status")
    if status == runfolder.STATUS_INTERRUPTED:
        why = f"the run was interrupted at {summary.get('interrupted_at_step')} env steps"  # type: ignore[union-attr]
    elif status == runfolder.STATUS_FAILED:
        why = f"the run failed ({summary.get('error')})"  # type: ignore[union-attr]
    elif status == runfolder.STATUS_COMPLETED:
        why = "the run completed but its model was removed"
    else:
        steps = runfolder.read_metrics(run_dir)["step"]
        at = f" after {int(steps.iloc[-1])} env steps" if len(steps) else ""
        why = f"the run is unfinished (killed, or still running{at})"
    return f"run_dir={run_dir} has no {runfolder.MODEL}: {why}. Fix: rerun its training command"


def _settings(args: dict[str, Any]) -> dict[str, Any]:
    """Merge CLI args over the run's config (run_dir=) or bare defaults (checkpoint=)."""
    given = {k: v for k, v in args.items() if v is not None}
    if "run_dir" in given:
        run_dir = Path(given["run_dir"])
        if problem := describe_unusable_run(run_dir):
            raise cli.UsageError(problem)
        cfg = runfolder.read_config(run_dir)
        ev = cfg["eval"]
        vecnorm = run_dir / runfolder.VECNORM
        base = {"checkpoint": run_dir / runfolder.MODEL, "env": cfg["env"]["id"],
                "n_episodes": ev["n_episodes"], "deterministic": ev["deterministic"],
                "seed_offset": ev["seed_offset"], "vecnorm": vecnorm if vecnorm.exists() else None,
                "out": run_dir / "eval_reeval.json"}
    elif "checkpoint" in given and "env" in given:
        ckpt = Path(given["checkpoint"])
        if not ckpt.is_file():
            raise cli.UsageError(f"checkpoint={ckpt}: file not found")
        vecnorm = ckpt.parent / runfolder.VECNORM
        base = {"checkpoint": ckpt, "env": given["env"], "n_episodes": 100, "deterministic": True,
                "seed_offset": 1_000_000, "vecnorm": vecnorm if vecnorm.exists() else None,
                "out": ckpt.parent / "eval_reeval.json"}
    else:
        raise cli.UsageError(f"give run_dir=<folder>, or checkpoint=<model.zip> with env=<env id>. {USAGE}")
    base.update({k: v for k, v in given.items() if k not in ("run_dir", "checkpoint")})
    if base["n_episodes"] < 1:
        raise cli.UsageError(f"n_episodes={base['n_episodes']} is invalid: must be >= 1. Fix: n_episodes=100")
    if "seeds" not in given:
        base["seeds"] = evaluation.eval_seeds(base["seed_offset"], base["n_episodes"])
    return base


def load_checkpoint(s: dict[str, Any]) -> tuple[Any, Any]:
    """Model and frozen VecNormalize statistics; an unreadable file is a UsageError naming it."""
    try:
        model = agent.load_model(s["checkpoint"], s["env"], device=s.get("device", "auto"))
        vecnorm = envs.load_vecnormalize(s["vecnorm"], s["env"]) if s["vecnorm"] else None
    except Exception as exc:  # noqa: BLE001 - zip/pickle/torch errors all mean "cannot read it"
        raise cli.UsageError(f"cannot read checkpoint {s['checkpoint']}: {type(exc).__name__}: {exc}") from exc
    return model, vecnorm


def evaluate_checkpoint(s: dict[str, Any]) -> dict[str, Any]:
    """Load the model (+ VecNormalize stats) and run :func:`herexp.evaluation.evaluate`."""
    model, vecnorm = load_checkpoint(s)
    env = envs.make_eval_env(s["env"])
    try:
        return evaluation.evaluate(model, env, list(s["seeds"]), bool(s["deterministic"]), vecnorm)
    finally:
        env.close()


def main(argv: Sequence[str]) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = OmegaConf.to_container(cli.parse_typed(EvaluateArgs, argv, USAGE))
    settings = _settings(args)  # type: ignore[arg-type]
    result = evaluate_checkpoint(settings)
    result["checkpoint"] = str(settings["checkpoint"])
    runfolder.write_json_atomic(settings["out"], result)
    head = {k: result[k] for k in ("success_rate", "return_mean", "final_distance_mean", "object_displacement_mean",
                                   "n_episodes")}
    log.info("%s\nwritten: %s", json.dumps(head, indent=2), settings["out"])
    return result


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
