"""Run identity: what a run is called and which settings make it what it is.

Computed once, from the **composed** config (never from override strings or YAML files), and
used everywhere: the ``name`` and ``hydra.sweep.subdir`` resolvers of ``herexp/conf/config.yaml``,
``herexp.sweep`` (``list``, manifest), ``herexp.tracking`` (W&B name, id, group, tags,
config), ``herexp.aggregate`` (factor names, bookkeeping keys) and ``herexp.video``.

* A **factor** is a setting that changes what a run learns. Settings are grouped in *slots*:
  the env, algo, HER and entropy options each give one label (``push``, ``sac_fast``,
  ``noher``, ``ent0.05``) whichever of their keys was set; the algo and entropy labels are
  their option classes' (:mod:`herexp.algos`, :mod:`herexp.entropy.options`; ``entropy: none``
  of TD3/DDPG has none). Every other learning key gives ``<short><value>`` (``nsg4``,
  ``ls1000``, ``g0.95``, ``net_arch-64-64``, ``overlap``).
* **Bookkeeping** keys (evaluation schedule, logging, device, threads, study, name,
  diagnosis thresholds, ...) never are factors.
* A **job folder** (``multirun/<study>/<job>``) is named by the labels of the slots its task
  overrides touch, from their composed values, seed last: ``entropy=fixed_01
  entropy.value=0.05 seed=0`` -> ``ent0.05_seed0``. A single run is named
  ``<env>_<algo>_<her|noher>_<entropy>_seed<seed>`` (``push_td3_her_seed0``: no entropy part for
  algorithms without one); a sweep job by its folder name.
* A **screening arm** (``arm=rand0.3``, ``herexp/conf/arm/``) is labelled by its name, which is
  the label of what it changes: ``arm=rand0.3 seed=11`` -> ``rand0.3_seed11``, the folder of
  ``algo.random_action_prob=0.3 seed=11``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from herexp import algos, entropy, labels
from herexp.options import TARGET

# Keys (and key prefixes) that never change what a run learns.
BOOKKEEPING_KEYS = frozenset({"study", "name", "device", "torch_threads", "skip_completed", "resume", "sweep",
                              "experiment"})
BOOKKEEPING_PREFIXES = ("eval.", "logger.", "diagnostics.", "checkpoint.", "hydra.", "hydra/", "trial.")
BOOKKEEPING_GROUPS = frozenset({"eval", "logger", "diagnostics", "checkpoint", "hydra", "trial"})
SEED = "seed"  # a replicate, not a factor: last in names, never a tag
# A screening arm (herexp/conf/arm/) is a named change to a sweep's base; its name is the label of
# what it changes (arm=rand0.3 sets algo.random_action_prob=0.3) and labels the run after the slots.
ARM = "arm"
TRIAL = "trial.number"  # a search trial: first in its runs' names (trial007), never a factor

# Option slots: every key of an option gives the option's one label.
SLOTS = {
    "env": ("env", "env.name", "env.id", "env.sparse"),
    "algo": ("algo", f"algo.{TARGET}"),
    "her": ("her", "her.enabled"),
    "entropy": ("entropy", f"entropy.{TARGET}", "entropy.value", "entropy.init"),
}
_SLOT_OF = {key: slot for slot, keys in SLOTS.items() for key in keys}
# Short label prefixes, in name order after the slots; other keys follow sorted by key.
SHORT = {"her.n_sampled_goal": "nsg", "algo.learning_starts": "ls", "algo.gamma": "g",
         "algo.random_action_prob": "rand", "algo.clip_obs": "clip"}
# Boolean switches shown by name when on (``overlap``), with ``no`` when off.
FLAGS = {"algo.overlap_envs": "overlap", "algo.parallel_critics": "parcritics", "algo.normalize": "norm"}
# Readable factor names (aggregate columns, W&B ``factor/<name>`` keys); others: last key component.
FACTOR_NAMES = {
    "env.name": "env",
    f"algo.{TARGET}": "algo",  # values: option names (sac_fast, td3), see herexp.aggregate.load
    "her.enabled": "her",
    f"entropy.{TARGET}": "entropy_mode",
    "entropy.value": "ent_coef",
    "entropy.init": "ent_init",
    "her.n_sampled_goal": "n_sampled_goal",
    "algo.learning_starts": "learning_starts",
    "algo.gamma": "gamma",
}
# The chosen options recorded with each run (``options`` in the W&B config).
OPTION_GROUPS = ("env", "algo", "her", "entropy", "sweep", "experiment", ARM)


def is_bookkeeping(key: str) -> bool:
    """True for a (dotted) config key or option group that never changes what a run learns."""
    key = key.lstrip("+~")
    return key in BOOKKEEPING_KEYS or key in BOOKKEEPING_GROUPS or key.startswith(BOOKKEEPING_PREFIXES)


def factor_name(key: str) -> str:
    """Readable name of a factor key: ``entropy.value`` -> ``ent_coef``, ``algo.tau`` -> ``tau``."""
    return FACTOR_NAMES.get(key) or key.rsplit(".", 1)[-1]


def _fmt(value: Any) -> str:
    return labels.value(value)  # injective: 0.9 and 0.90000001 get two labels


def slot_label(cfg: DictConfig, slot: str) -> str:
    """The one label of an option slot from the composed values (``noher``, ``ent0.05``; ``""``
    for ``entropy: none``)."""
    if slot == "env":
        return str(cfg.env.name)
    if slot == "algo":
        return algos.option(cfg.algo).name
    if slot == "her":
        return "her" if cfg.her.enabled else "noher"
    if slot == "entropy":
        return entropy.option(cfg.entropy).label
    raise KeyError(slot)


def _labels(cfg: DictConfig, slots: Sequence[str]) -> list[str]:
    return [label for s in slots if (label := slot_label(cfg, s))]


def key_label(cfg: DictConfig, key: str) -> str:
    """Short label of one learning key from its composed value (``nsg4``, ``g0.95``, ``overlap``)."""
    value = OmegaConf.select(cfg, key)
    if key in FLAGS:
        return ("" if value else "no") + FLAGS[key]
    prefix = SHORT.get(key, key.rsplit(".", 1)[-1])
    sep = "-" if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else ""  # net_arch-64-64
    return _clean(f"{prefix}{sep}{_fmt(value)}")


def _clean(label: str) -> str:
    return labels.clean(label)


def override_keys(overrides: Sequence[str]) -> list[str]:
    """The config keys / option groups set by Hydra override strings, bookkeeping removed."""
    keys = []
    for line in overrides:
        key = str(line).split("=", 1)[0].lstrip("+~")
        if key and not is_bookkeeping(key) and key not in keys:
            keys.append(key)
    return keys


def _units(keys: Sequence[str]) -> tuple[list[str], list[str], bool]:
    """Split keys into touched slots (in slot order), other keys (short ones first, then
    sorted) and whether the seed is among them."""
    slots = [s for s in SLOTS if any(_SLOT_OF.get(k) == s for k in keys)]
    rest = {k for k in keys if k not in _SLOT_OF and k not in (SEED, ARM)}
    ordered = [k for k in SHORT if k in rest] + sorted(rest - set(SHORT))
    return slots, ordered, SEED in keys


def arm(overrides: Sequence[str]) -> str | None:
    """The screening arm an override list chooses (``arm=rand0.3`` -> ``rand0.3``), or None."""
    chosen = [str(line).split("=", 1)[1] for line in overrides if str(line).split("=", 1)[0].lstrip("+") == ARM]
    return chosen[-1] if chosen and chosen[-1] not in ("", "null") else None


def _arm_labels(overrides: Sequence[str]) -> list[str]:
    name = arm(overrides)
    return [] if name is None else [_clean(name)]


def trial_label(cfg: DictConfig) -> str:
    """``trial007`` for a run of search trial 7, ``""`` for any other run."""
    number = OmegaConf.select(cfg, TRIAL, default=None)
    return "" if number is None else f"trial{int(number):03d}"


def job_parts(cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """Labels of what a job's overrides change, from the composed ``cfg``: a search trial's
    number first, then the option slots, a screening arm by its name, the other keys, seed last."""
    slots, keys, seed = _units(override_keys(overrides))
    parts = _labels(cfg, slots) + _arm_labels(overrides) + [key_label(cfg, k) for k in keys]
    trial = trial_label(cfg)
    return ([trial] if trial else []) + parts + ([f"seed{cfg.seed}"] if seed else [])


def job_dir_name(cfg: DictConfig, overrides: Sequence[str]) -> str:
    """Folder name of a sweep job (``ent0.05_nsg4_ls1000_g0.95_seed0``); the run name when
    no override changes what it learns."""
    return "_".join(job_parts(cfg, overrides)) or base_name(cfg)


def base_name(cfg: DictConfig) -> str:
    """Name of a single run: ``<env>_<algo>_<her|noher>_<entropy>_seed<seed>``."""
    return "_".join([*_labels(cfg, list(SLOTS)), f"seed{cfg.seed}"])


def run_name(cfg: DictConfig) -> str:
    """The run's name: its job folder name in a multirun, else :func:`base_name`.

    In a multirun the job's overrides come from Hydra's config of the running job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return job_dir_name(cfg, list(HydraConfig.get().overrides.task))
    return base_name(cfg)


def factors(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The run's factors ``{readable name: value}``: the env, algo, HER and entropy options
    plus every learning key its overrides set (``her`` is ``on``/``off``); no seed."""
    _, keys, _ = _units(override_keys(overrides))
    ent = entropy.option(cfg.entropy)
    out: dict[str, Any] = {"env": str(cfg.env.name), "algo": algos.option(cfg.algo).name,
                           "her": "on" if cfg.her.enabled else "off", "entropy_mode": ent.name, "ent_coef": ent.ent_coef}
    if getattr(ent, "init", None) is not None:  # auto, auto_floor, adaptive started from a given value
        out["ent_init"] = ent.init
    if (name := arm(overrides)) is not None:
        out[ARM] = name
    for key in keys:
        value = OmegaConf.select(cfg, key)
        out[factor_name(key)] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return out


def tags(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[str]:
    """Factor labels only (``push``, ``sac_fast``, ``her``, ``ent0.05``, ``nsg4``): no seed,
    no bookkeeping."""
    _, keys, _ = _units(override_keys(overrides))
    return [*_labels(cfg, list(SLOTS)), *_arm_labels(overrides), *(key_label(cfg, k) for k in keys)]


def options(choices: Mapping[str, Any]) -> dict[str, str]:
    """The chosen options of the run's own groups (``{env: push, algo: sac_fast, ...}``)."""
    return {g: str(choices[g]) for g in OPTION_GROUPS if choices.get(g) is not None}


def wandb_id(study: str, run_dir: str | Path) -> str:
    """Deterministic W&B run id of a run folder: every attempt of a job (rerun after a failure,
    a kill, a requeue) logs to the same W&B run; another folder or study gets another id."""
    key = f"{study}\n{Path(run_dir).resolve()}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def wandb_config(resolved: Mapping[str, Any], cfg: DictConfig, overrides: Sequence[str],
                 choices: Mapping[str, Any]) -> dict[str, Any]:
    """The W&B run config: the resolved config, ``options`` (chosen group options),
    ``overrides`` (the job's own), each factor as a top-level ``factor/<name>`` key and, for a
    search trial's run, ``trial/number`` and the sampled values as ``trial/<key>``."""
    return {**resolved, "options": options(choices), "overrides": list(overrides),
            **{f"factor/{k}": v for k, v in factors(cfg, overrides).items()}, **trial_config(cfg, choices)}


def trial_config(cfg: DictConfig, choices: Mapping[str, Any] = {}) -> dict[str, Any]:  # noqa: B006 - read only
    """``{trial/number: 7, trial/algo.gamma: 0.95, trial/entropy: fixed_01}`` for a search trial's
    run (a sampled option group gives its chosen option), ``{}`` for any other run."""
    number = OmegaConf.select(cfg, TRIAL, default=None)
    if number is None:
        return {}
    out: dict[str, Any] = {"trial/number": int(number)}
    for key in cfg.trial.params:
        value = choices.get(key) if key in choices else OmegaConf.select(cfg, key, default=None)
        out[f"trial/{key}"] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return out
