"""A train job's composed config, exactly as Hydra will compose it, before Hydra runs it.

The command-line check (:mod:`herexp.preflight`) and the sweep's folder names and manifest
(:mod:`herexp.sweep`) both need every job of a ``--multirun`` grid composed. A
:class:`JobComposer` composes the config *files* once per combination of structural overrides
(options such as ``entropy=fixed_01``, ``+key=`` additions, ``hydra.*``) and applies each job's
plain values (``seed=3``, ``algo.gamma=0.98``) to a copy with Hydra's own override code, so a
120-job grid over 3 entropy options costs 3 compositions; each job is composed once. :func:`composer` keeps one
composer per config dir and primary config in the process: the check and the sweep share it.

Composing never touches the caller's Hydra state: each composition initializes Hydra on its
own and puts the previous global state back, so a callback running inside Hydra may compose.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from herexp import config

#: Option groups of the primary config (``algo=td3``): choosing one changes which files are composed.
GROUPS = ("env", "algo", "her", "entropy", "logger", "sweep", "experiment", "arm")


def parse(overrides: Sequence[str]) -> list[Override]:
    """Hydra's parse of command-line overrides (raises Hydra's ``OverrideParseException``)."""
    return OverridesParser.create().parse_overrides(list(overrides))


def is_structural(o: Override) -> bool:
    """Overrides that change which files are composed (groups, hydra, additions, deletions)."""
    key = o.key_or_group
    return key in GROUPS or key.startswith("hydra") or "/" in key or o.is_add() or o.is_delete() \
        or o.is_force_add() or o.package is not None


@contextmanager
def _own_hydra(conf_dir: str) -> Iterator[GlobalHydra]:
    """Hydra initialized on ``conf_dir`` for the block; the caller's global Hydra state after it."""
    from hydra import initialize_config_dir
    from hydra.core.singleton import Singleton

    saved = copy.deepcopy(Singleton._instances.get(GlobalHydra))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            yield GlobalHydra.instance()
    finally:
        if saved is None:
            Singleton._instances.pop(GlobalHydra, None)
        else:
            Singleton._instances[GlobalHydra] = saved


class JobComposer:
    """Composes train jobs of one primary config; jobs that differ only in plain values share
    one composition of the files."""

    def __init__(self, config_name: str = "config", conf_dir: str = str(config.CONF_DIR)) -> None:
        self.config_name, self.conf_dir = config_name, conf_dir
        self._files: dict[tuple[str, ...], DictConfig] = {}
        self._bare: dict[tuple[str, ...], DictConfig] = {}  # files without the Hydra config
        self._jobs: dict[tuple[str, ...], DictConfig] = {}
        self._group_options: dict[str, list[str]] = {}

    def files(self, structural: Sequence[str]) -> DictConfig:
        """The config files composed with only ``structural`` overrides (Hydra config included).
        Cached: do not modify the result."""
        key = tuple(structural)
        if key not in self._files:
            from hydra import compose

            config.register_configs()
            with _own_hydra(self.conf_dir):
                self._files[key] = compose(self.config_name, overrides=list(key), return_hydra_config=True)
        return self._files[key]

    def job(self, overrides: Sequence[str]) -> DictConfig:
        """One job's composed config, as ``python -m herexp.train`` would compose it, without the
        Hydra config (which only the launcher reads). Read-only and cached: the check and the
        folder names read the same object. Hydra's and OmegaConf's errors pass through unchanged."""
        key = tuple(overrides)
        if key not in self._jobs:
            parsed = parse(overrides)
            structural = tuple(o.input_line for o in parsed if is_structural(o))
            if structural not in self._bare:
                bare = copy.deepcopy(self.files(structural))
                with open_dict(bare):
                    del bare["hydra"]
                self._bare[structural] = bare
            cfg = self._apply(self._bare[structural], parsed)
            OmegaConf.set_readonly(cfg, True)
            self._jobs[key] = cfg
        return self._jobs[key]

    def with_hydra(self, overrides: Sequence[str]) -> DictConfig:
        """One job's composed config with the Hydra config (``hydra.sweep.dir`` as the launcher
        will resolve it for this job). Not cached: a new copy each call."""
        parsed = parse(overrides)
        return self._apply(self.files([o.input_line for o in parsed if is_structural(o)]), parsed)

    def expand(self, overrides: Sequence[str]) -> tuple[DictConfig, list[list[str]]]:
        """A ``--multirun`` command's base config (its fixed overrides composed, Hydra config
        included) and its jobs, expanded as Hydra's BasicSweeper does: a sweep preset's params
        first, then the command's."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        parsed = parse(overrides)
        base = self.base(overrides)
        params = base.hydra.sweeper.get("params") or {}
        lines = [f"{k}={v}" for k, v in params.items()] + [o.input_line for o in parsed]
        return base, [job for batch in BasicSweeper.split_arguments(parse(lines), None) for job in batch]

    def base(self, overrides: Sequence[str]) -> DictConfig:
        """A ``--multirun`` command's base config: its fixed (non-sweep) overrides composed, Hydra
        config included, as Hydra composes it before the sweeper runs."""
        fixed = [o for o in parse(overrides) if not o.is_sweep_override()]
        return self._apply(self.files([o.input_line for o in fixed if is_structural(o)]), fixed)

    @staticmethod
    def _apply(cfg: DictConfig, parsed: list[Override]) -> DictConfig:
        """A copy of ``cfg`` with the plain-value overrides applied by Hydra's own code."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        cfg = copy.deepcopy(cfg)
        ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if not is_structural(o)], cfg)
        return cfg

    def options(self, group: str) -> list[str]:
        """The options of a config group (``entropy``: adaptive, auto, ..., fixed_02, ...)."""
        if group not in self._group_options:
            with _own_hydra(self.conf_dir) as gh:
                self._group_options[group] = list(gh.config_loader().get_group_options(group))
        return self._group_options[group]


def composer(config_name: str = "config", conf_dir: str = str(config.CONF_DIR)) -> JobComposer:
    """The process's composer for a config dir and primary config."""
    return _shared(config_name, str(conf_dir))


@functools.cache
def _shared(config_name: str, conf_dir: str) -> JobComposer:
    return JobComposer(config_name, conf_dir)
