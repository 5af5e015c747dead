"""Which algorithm a saved ``model.zip`` belongs to, read from the zip itself.

SB3 does not store the algorithm class in a checkpoint, but its ``data`` record names the policy
class's module (``stable_baselines3.sac.policies``, ``sb3_contrib.tqc.policies``, ...). TD3 and
DDPG share TD3's policy; a DDPG checkpoint is told apart by SB3's DDPG settings (one actor update
per critic update, target-noise clip 0). Works for bare checkpoints too (``herexp.evaluate
checkpoint=...``); FastSAC checkpoints are SAC checkpoints.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

_POLICY_PACKAGES = {  # policy module prefix -> (package, class)
    "stable_baselines3.sac.": ("stable_baselines3", "SAC"),
    "stable_baselines3.td3.": ("stable_baselines3", "TD3"),
    "sb3_contrib.tqc.": ("sb3_contrib", "TQC"),
}


def _data(checkpoint: str | Path) -> dict[str, Any]:
    with zipfile.ZipFile(checkpoint) as z:
        return json.loads(z.read("data"))


def saved_model_class(checkpoint: str | Path) -> type[Any]:
    """The SB3 class whose ``load`` reads ``checkpoint`` (``ValueError`` when unknown)."""
    import importlib

    data = _data(checkpoint)
    module = str((data.get("policy_class") or {}).get("__module__", ""))
    for prefix, (package, name) in _POLICY_PACKAGES.items():
        if module.startswith(prefix):
            if name == "TD3" and data.get("policy_delay") == 1 and data.get("target_noise_clip") == 0.0:
                name = "DDPG"
            return getattr(importlib.import_module(package), name)
    raise ValueError(f"{checkpoint}: policy module {module!r} is not one of herexp's algorithms "
                     f"({', '.join(p.rstrip('.') for p in _POLICY_PACKAGES)})")
