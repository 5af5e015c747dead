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
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from herexp import agent, envs, evaluation, runfolder

log = logging.getLogger("herexp.evaluate")
USAGE = "usage: python -m herexp.evaluate run_dir=<folder> | checkpoint=<model.zip> env=<env id> " \
        "[n_episodes=N] [deterministic=true|false] [seeds=[...]] [device=cpu] [out=<file.json>]"


def _settings(args: dict[str, Any]) -> dict[str, Any]:
    """Merge CLI args over the run's config (run_dir=) or bare defaults (checkpoint=)."""
    if "run_dir" in args:
        run_dir = Path(args["run_dir"])
        cfg = runfolder.read_config(run_dir)
        ev = cfg["eval"]
        vecnorm = run_dir / runfolder.VECNORM
        base = {"checkpoint": run_dir / runfolder.MODEL, "env": cfg["env"]["id"],
                "n_episodes": ev["n_episodes"], "deterministic": ev["deterministic"],
                "seed_offset": ev["seed_offset"], "vecnorm": vecnorm if vecnorm.exists() else None,
                "out": run_dir / "eval_reeval.json"}
    elif "checkpoint" in args and "env" in args:
        ckpt = Path(args["checkpoint"])
        vecnorm = ckpt.parent / runfolder.VECNORM
        base = {"checkpoint": ckpt, "env": args["env"], "n_episodes": 100, "deterministic": True,
                "seed_offset": 1_000_000, "vecnorm": vecnorm if vecnorm.exists() else None,
                "out": ckpt.parent / "eval_reeval.json"}
    else:
        raise SystemExit(USAGE)
    base.update({k: v for k, v in args.items() if k not in ("run_dir", "checkpoint")})
    if "seeds" not in args:
        base["seeds"] = evaluation.eval_seeds(base["seed_offset"], base["n_episodes"])
    return base


def evaluate_checkpoint(s: dict[str, Any]) -> dict[str, Any]:
    """Load the model (+ VecNormalize stats) and run :func:`herexp.evaluation.evaluate`."""
    model = agent.load_model(s["checkpoint"], s["env"], device=s.get("device", "auto"))
    vecnorm = envs.load_vecnormalize(s["vecnorm"], s["env"]) if s["vecnorm"] else None
    env = envs.make_eval_env(s["env"])
    try:
        return evaluation.evaluate(model, env, list(s["seeds"]), bool(s["deterministic"]), vecnorm)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = OmegaConf.to_container(OmegaConf.from_cli(argv if argv is not None else sys.argv[1:]))
    settings = _settings(args)  # type: ignore[arg-type]
    result = evaluate_checkpoint(settings)
    result["checkpoint"] = str(settings["checkpoint"])
    runfolder.write_json_atomic(settings["out"], result)
    head = {k: result[k] for k in ("success_rate", "return_mean", "final_distance_mean", "n_episodes")}
    log.info("%s\nwritten: %s", json.dumps(head, indent=2), settings["out"])
    return result


if __name__ == "__main__":
    main()
