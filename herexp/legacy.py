"""Configs saved before each option owned its code, read in today's shape.

Runs written before the ``algo=`` and ``entropy=`` options became classes saved a flat entropy
block whose ``mode`` string chose the meaning of 12 shared keys (``entropy.value`` was the
constant for ``fixed`` and the initial value for ``auto``/``adaptive``), and an SAC block with
``name`` and a ``fast`` switch. :func:`upgrade` rewrites such a resolved config into what the
same run composes to today (a ``_target_`` and only the option's own keys), so run folders,
checkpoints and ``docs/push_search`` keep loading in :mod:`herexp.aggregate`,
:mod:`herexp.diagnostics` and the resume check. Keys added since (:data:`ADDED_KEYS`) get the
default that reproduces what a run without them did, so such a run resumes and compares as the
same run. A config already in today's shape is returned unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from herexp.options import TARGET

_ENTROPY = "herexp.entropy.options."
# mode -> (class, {today's key: the old key it reads})
_ENTROPY_MODES: dict[str, tuple[str, dict[str, str]]] = {
    "fixed": ("Fixed", {"value": "value"}),
    "auto": ("Auto", {"target_entropy": "target_entropy", "init": "value"}),
    "auto_floor": ("AutoFloor", {"target_entropy": "target_entropy", "init": "value", "min": "min"}),
    "schedule": ("Schedule", {"max": "max", "min": "min", "warmup_frac": "warmup_frac"}),
    "adaptive": ("Adaptive", {"init": "value", **{k: k for k in ("min", "max", "check_freq", "warmup_frac", "target",
                                                                 "tolerance", "rate", "window", "key")}}),
}
_FAST_ONLY = ("overlap_envs", "parallel_critics")
# block -> {key added later: the value that behaves as runs saved without it did}
ADDED_KEYS: dict[str, dict[str, Any]] = {"algo": {"clip_obs": None, "random_action_prob": 0.0}}


def is_legacy(config: Mapping[str, Any]) -> bool:
    """True for a config saved before options owned their code (``entropy.mode``, ``algo.fast``)."""
    ent, algo = config.get("entropy"), config.get("algo")
    return (isinstance(ent, Mapping) and "mode" in ent and TARGET not in ent) or \
        (isinstance(algo, Mapping) and TARGET not in algo)


def _entropy(old: Mapping[str, Any]) -> dict[str, Any]:
    cls, keys = _ENTROPY_MODES[str(old["mode"])]
    return {**{new: old[key] for new, key in keys.items() if key in old}, TARGET: _ENTROPY + cls}


def _algo(old: Mapping[str, Any]) -> dict[str, Any]:
    fast = bool(old.get("fast", False))
    new = {k: v for k, v in old.items() if k not in ("name", "fast", *_FAST_ONLY)}
    if fast:
        new.update({k: old[k] for k in _FAST_ONLY if k in old})
    new[TARGET] = "herexp.algos.sac_fast.SacFast" if fast else "herexp.algos.sac.Sac"
    return new


def upgrade(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config (plain dict) in today's shape; a copy, the input is not changed."""
    out = copy.deepcopy(dict(config))
    if is_legacy(out):
        ent, algo = out.get("entropy"), out.get("algo")
        if isinstance(ent, Mapping) and "mode" in ent and TARGET not in ent:
            out["entropy"] = _entropy(ent)
        if isinstance(algo, Mapping) and TARGET not in algo:
            out["algo"] = _algo(algo)
    for block, added in ADDED_KEYS.items():
        if isinstance(out.get(block), dict):
            out[block] = {**out[block], **{k: v for k, v in added.items() if k not in out[block]}}
    return out
