"""What produced a run: library versions, device, host and git commit (-> meta.json)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "stable-baselines3", "gymnasium", "gymnasium-robotics", "mujoco", "hydra-core",
            "omegaconf", "wandb", "numpy", "herexp")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide what a run learns."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(cwd: str | Path | None = None) -> str | None:
    """HEAD commit of the source checkout (with ``-dirty`` when modified), None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_meta(device: str, **extra: Any) -> dict[str, Any]:
    """meta.json content: versions, device, host, git commit, plus timing fields from the run."""
    import torch

    return {
        "versions": versions(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        **extra,
    }
