"""Sweep mode: rank a sweep's configurations (aggregate's table) and pick best / worst / no-HER
runs, rendered side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herexp import runfolder
from herexp.video import tiles
from herexp.video.render import _episode_entry, render_run, write_video


# --- sweep mode: which runs to show -------------------------------------------------------------
@dataclass
class Pick:
    """One column of the sweep video: a config's representative run and its group statistics."""

    role: str  # best | worst | no-HER
    run_dir: Path  # the seed whose success rate is closest to its config's mean
    label: str  # the config's factor values, as the aggregate report labels it
    mean: float  # mean final success rate over the config's seeds
    std: float | None  # sample std (ddof=1) over seeds; None for a single seed
    n: int  # seeds


def rank_configs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Completed runs with a model, grouped into configurations and ranked exactly as
    ``herexp.aggregate`` ranks them (same factors and labels; best mean success first, tie:
    lower std)."""
    from herexp.aggregate.load import load_folders
    from herexp.aggregate.stats import config_table

    loaded = load_folders([sweep_dir])
    runs = loaded.completed
    runs = runs[[(Path(f) / runfolder.MODEL).exists() for f in runs["folder"]]]
    if runs.empty:
        raise ValueError(f"sweep_dir={sweep_dir}: no completed run with a {runfolder.MODEL} below it")
    ranking = []
    for c in config_table(runs, loaded.factors, "success_rate"):
        group = runs[runs["config"] == c["config"]]
        rep = min(zip(group["folder"], group["success_rate"]), key=lambda r: (abs(r[1] - c["mean"]), r[0]))[0]
        ranking.append({"rank": c["rank"], "label": c["config"] if loaded.factors else Path(rep).name,
                        "mean": c["mean"], "std": c["std"], "n": c["n"],
                        "her": bool(runfolder.read_config(rep)["her"]["enabled"]), "run_dir": str(rep),
                        "runs": sorted(group["folder"])})
    return ranking


def select_runs(sweep_dir: str | Path, pick: Sequence[str] = ("best", "worst"),
                noher: bool = True) -> tuple[list[Pick], list[dict[str, Any]]]:
    """The picked configs (best/worst among HER configs, or among all when none uses HER), plus the
    best no-HER config when ``noher``; a config is shown once. Returns (picks, full ranking)."""
    ranking = rank_configs(sweep_dir)
    her = [g for g in ranking if g["her"]] or ranking
    chosen = {"best": her[0], "worst": her[-1]}
    unknown = sorted(set(pick) - set(chosen))
    if unknown:
        raise ValueError(f"pick={','.join(pick)}: unknown {unknown}; use best, worst or best,worst")
    roles = [(r, chosen[r]) for r in pick]
    no_her = [g for g in ranking if not g["her"]]
    if noher and no_her:
        roles.append(("no-HER", no_her[0]))
    picks, seen = [], set()
    for role, g in roles:
        if g["rank"] not in seen:
            seen.add(g["rank"])
            picks.append(Pick(role, Path(g["run_dir"]), g["label"], g["mean"], g["std"], g["n"]))
    return picks, ranking


def _pick_lines(p: Pick) -> list[str]:
    spread = f"±{p.std:.0%}" if p.std is not None else ""
    return [f"{p.role.upper()} {p.mean:.0%}{spread} (n={p.n}) · {p.run_dir.name}", p.label]


def video_of_sweep(sweep_dir: str | Path, pick: Sequence[str] = ("best", "worst"), noher: bool = True,
                   episodes: int = 1, width: int = 240, height: int = 240, fps: int = 25,
                   deterministic: bool | None = None, out: str | Path | None = None, gif: bool = True,
                   device: str = "cpu", camera: str = "auto") -> dict[str, Any]:
    """Side by side, one column per picked config (best | worst | no-HER), one row per episode."""
    sweep_dir = Path(sweep_dir)
    picks, ranking = select_runs(sweep_dir, pick, noher)
    columns = [render_run(p.run_dir, episodes, width, height, camera, device, deterministic)[1] for p in picks]
    cells = [(p, col[i]) for i in range(episodes) for p, col in zip(picks, columns)]  # row-major
    labelled = [tiles.label_episode(e.frames, _pick_lines(p), e.record["seed"], e.record["success"])
                for p, e in cells]
    frames = tiles.grid_video(labelled, len(picks))
    path = Path(out) if out else sweep_dir / runfolder.VIDEO_DIR / "best_vs_worst.mp4"
    return write_video(frames, path, fps, gif, {
        "layout": "columns", "columns": [p.role for p in picks], "ranking": ranking,
        "rendered_frames": sum(len(e.frames) for _, e in cells),
        "episodes": [_episode_entry(e, p.run_dir, role=p.role, title=p.label, group_mean=p.mean)
                     for p, e in cells]})


