"""Check a ``python -m herexp.train`` command line before anything trains.

Every job the command would run is composed exactly as Hydra will compose it and validated
(:func:`herexp.config.validate`, then the environment-dependent checks of
:func:`herexp.envs.check_env_compatible`). The first problem becomes a :class:`UsageError`
naming the key, the value, what is allowed and the fix; in a multirun, the invalid grid cells
are named and no job starts. Nothing here creates a run folder, a training env or a model
(the env checks use one throwaway instance per env id).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from herexp import config, jobs
from herexp.cli import UsageError, describe_config_error, did_you_mean, flat_keys

CONF = config.CONF_DIR
GROUPS = jobs.GROUPS
_MAX_CELLS_SHOWN = 3


def parse_command(argv: Sequence[str]) -> argparse.Namespace | None:
    """Hydra's own argument parser; None when Hydra should handle the command itself
    (help, info, shell completion, or arguments it will reject with its usage text)."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.exit_on_error = False
    try:
        args, unknown = parser.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit):
        return None
    if unknown or args.help or args.hydra_help or args.info or args.shell_completion or args.cfg == "hydra":
        return None
    return args


def check_train_command(argv: Sequence[str]) -> int:
    """Validate every job of a train command line; return the number of jobs. Raises UsageError."""
    args = parse_command(argv)
    if args is None:
        return 0
    overrides = list(args.overrides)
    parsed = _parse(overrides)
    conf_dir = str(Path(args.config_dir).resolve()) if args.config_dir else str(CONF)
    composer = _Composer(args.config_name or "config", conf_dir)
    if args.multirun:
        base = _search_base(composer, parsed)
        if base is not None:  # herexp's Optuna sweeper: a search space instead of a grid
            from herexp.search import check as search_check

            return search_check.check(composer, overrides, base, check_job)
    _check_group_options(composer, parsed)
    if not args.multirun:
        _check_single(parsed)
        check_job(composer.compose(overrides), composer.known)
        return 1
    grid = _expand(composer, parsed)
    _check_grid(composer, grid)
    _check_completed(composer, overrides, grid)
    return len(grid)


def _parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        from herexp.search.space import describe_parse_error

        bad = next((line for line in overrides if not _parses(line)), None)
        raise UsageError(describe_parse_error(exc, bad)) from exc


def _parses(line: str) -> bool:
    try:
        OverridesParser.create().parse_overrides([line])
    except HydraException:
        return False
    return True


def _search_base(composer: _Composer, parsed: list[Override]) -> DictConfig | None:
    """The composed base of a multirun that selects herexp's Optuna sweeper, else None."""
    from herexp import search

    fixed = [o for o in parsed if not o.is_sweep_override()]
    _check_group_options(composer, fixed)
    structural = [o.input_line for o in fixed if jobs.is_structural(o)]
    composer.compose(structural)  # the option choices' own errors first
    base = composer.jobs.files(structural)
    return base if search.is_search(base) else None


def _check_single(parsed: list[Override]) -> None:
    """Without --multirun: a sweep preset or a comma list would silently run one job."""
    for o in parsed:
        if o.key_or_group == "sweep" and not o.is_delete():
            raise UsageError(f"{o.input_line} is a grid of runs: add --multirun "
                             f"(python -m herexp.train --multirun {o.input_line})")
        if o.is_sweep_override():
            raise UsageError(f"{o.input_line} lists several values: add --multirun to sweep over them, "
                             f"or write a list as {o.key_or_group}=[...]")


def _check_group_options(composer: _Composer, parsed: list[Override]) -> None:
    """Unknown options fail also in optional groups (``sweep=ch04``), with the valid ones."""
    for o in parsed:
        group = o.key_or_group
        if group not in GROUPS or o.is_delete():
            continue
        options = composer.jobs.options(group)
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        for value in values:
            if value not in options:
                raise UsageError(f"{group}={value} is not an option{did_you_mean(value, options)}: "
                                 f"choose one of {', '.join(options)} (herexp/conf/{group}/)")


class _Composer:
    """Jobs composed as Hydra composes them (:mod:`herexp.jobs`), each problem a UsageError.

    Known keys are those of the job's own options: ``algo=td3`` has ``algo.policy_delay``,
    ``algo=sac`` has no ``algo.overlap_envs`` (an unknown key, naming the options that have it)."""

    def __init__(self, config_name: str, conf_dir: str = str(CONF)) -> None:
        self.jobs = jobs.composer(config_name, conf_dir)
        self.known = self._known(self.jobs.files([]))

    @staticmethod
    def _known(cfg: DictConfig) -> list[str]:
        return [k for k in flat_keys(cfg) if not k.startswith("hydra")]

    @functools.cache  # noqa: B019 (one composer per command)
    def _option_keys(self, structural: tuple[str, ...]) -> list[str]:
        """Keys of the job's options, before any ``+key=`` addition."""
        return self._known(self.jobs.files(list(structural)))

    def compose(self, overrides: list[str]) -> DictConfig:
        known = self.known
        try:
            parsed = _parse(overrides)
            files = self.jobs.files([o.input_line for o in parsed if jobs.is_structural(o)])
            known = self._option_keys(tuple(o.input_line for o in parsed if jobs.is_structural(o) and not o.is_add()))
            for o in parsed:
                if not jobs.is_structural(o) or o.is_add():
                    self._check_known(o.key_or_group, known, files)
            return self.jobs.job(overrides)
        except MissingConfigException as exc:
            raise UsageError(str(exc).splitlines()[0]) from exc
        except HydraException as exc:
            cause = exc.__cause__
            if isinstance(cause, OmegaConfBaseException):
                raise UsageError(describe_config_error(cause, known)) from exc
            raise UsageError(_first_line(exc, known)) from exc
        except OmegaConfBaseException as exc:
            raise UsageError(describe_config_error(exc, known)) from exc

    def _check_known(self, key: str, known: list[str], cfg: DictConfig) -> None:
        if key.startswith("hydra") or key in known:
            return
        group, _, rest = key.partition(".")
        choice = cfg.hydra.runtime.choices.get(group) if rest else None
        others = [o for o in self.options_with(key) if o != choice] if choice is not None else []
        if others:  # a key of another option of the group (entropy.value of entropy=fixed)
            raise UsageError(f"unknown key {key} ({group}={choice} has no {rest}; it is a key of "
                             f"{group}={', '.join(others)})")
        raise UsageError(f"unknown key {key}{did_you_mean(key, known)}")

    def options_with(self, key: str) -> list[str]:
        """The options of ``key``'s group that have the key (``algo.policy_delay``: td3)."""
        group = key.partition(".")[0]
        if group not in GROUPS:
            return []
        cache_key = (self.jobs.conf_dir, self.jobs.config_name, group)
        if cache_key not in _OPTION_KEYS:  # composed once per process: only asked when a key is unknown
            _OPTION_KEYS[cache_key] = {o: set(self._known(self.jobs.files([f"{group}={o}"])))
                                       for o in self.jobs.options(group)}
        return [o for o, keys in _OPTION_KEYS[cache_key].items() if key in keys]


# (config dir, config name, group) -> {option: its keys}
_OPTION_KEYS: dict[tuple[str, str, str], dict[str, set[str]]] = {}


def _first_line(exc: Exception, known: list[str]) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if text.startswith("Could not override '"):
        key = text.split("'")[1]
        return f"unknown key {key}{did_you_mean(key, known)}"
    return text


def _expand(composer: _Composer, parsed: list[Override]) -> list[list[str]]:
    """The multirun's jobs, expanded as Hydra's BasicSweeper does (sweep preset params first)."""
    fixed = [o for o in parsed if not o.is_sweep_override()]
    structural = [o.input_line for o in fixed if jobs.is_structural(o)]
    composer.compose(structural)  # the option choices' own errors first
    base = composer.jobs.files(structural)
    params = base.hydra.sweeper.get("params") or {}
    swept = {str(k) for k in params} | {o.key_or_group for o in parsed if o.is_sweep_override()}
    _check_base_keys(composer, base, [o for o in fixed if not jobs.is_structural(o)], swept & set(GROUPS))
    composer.compose([o.input_line for o in fixed])  # Hydra composes this base before any job
    return composer.jobs.expand([o.input_line for o in parsed])[1]


def _check_base_keys(composer: _Composer, base: DictConfig, plain: list[Override], swept: set[str]) -> None:
    """Hydra checks a multirun's plain overrides against the *default* option of a swept group,
    before it sweeps (``--multirun algo=td3,ddpg algo.action_noise_std=0.1`` fails on
    ``algo=sac_fast``); ``++key=value`` is checked per job instead."""
    known = composer._known(base)
    for o in plain:
        group = o.key_or_group.partition(".")[0]
        if group in swept and o.key_or_group not in known and composer.options_with(o.key_or_group):
            choice = base.hydra.runtime.choices.get(group)
            raise UsageError(f"{o.input_line}: {o.key_or_group} is not a key of the default {group}={choice}, and "
                             f"a --multirun checks plain overrides against the defaults before it sweeps {group}. "
                             f"Fix: ++{o.input_line}")


def _check_grid(composer: _Composer, jobs: list[list[str]]) -> None:
    """Validate every cell; name the invalid ones. Nothing has started yet."""
    from herexp import identity

    bad: dict[str, list[str]] = {}  # message -> cells
    for job in jobs:
        cell = " ".join(job)
        try:
            cfg = composer.compose(job)
            with contextlib.suppress(ValueError):  # a cell whose options cannot be built has no folder name
                cell = identity.job_dir_name(cfg, job)
            check_job(cfg, composer.known)
        except UsageError as exc:
            bad.setdefault(str(exc), []).append(cell)
    if not bad:
        return
    n_bad = sum(len(cells) for cells in bad.values())
    head = f"{n_bad} of {len(jobs)} sweep jobs are invalid; no job was started"
    if len(bad) == 1:
        (message, cells), = bad.items()
        raise UsageError(f"{message} ({head}; e.g. {cells[0]})")
    lines = [f"{cells[0]}{f' (+{len(cells) - 1} more)' if len(cells) > 1 else ''}: {message}"
             for message, cells in bad.items()]
    more = [f"... and {len(lines) - _MAX_CELLS_SHOWN} more problems"] if len(lines) > _MAX_CELLS_SHOWN else []
    raise UsageError(f"{head}:\n  " + "\n  ".join(lines[:_MAX_CELLS_SHOWN] + more))


def _check_completed(composer: _Composer, overrides: list[str], grid: list[list[str]]) -> None:
    """A job whose folder holds a completed run is skipped; that run must be this job's, value
    for value (bookkeeping aside), or the sweep would report another config's result as this one's."""
    from herexp import identity, resume

    base = composer.jobs.expand(overrides)[0]
    problems = []
    for job in grid:
        cfg = composer.jobs.job(job)
        if not cfg.skip_completed:
            continue  # redone, not skipped
        hydra_cfg = base if cfg.study == base.study else composer.jobs.with_hydra(job)
        folder = Path(str(hydra_cfg.hydra.sweep.dir)) / identity.job_dir_name(cfg, job)
        problem = resume.completed_mismatch(folder, config.to_container(cfg), resume.FIX_SWEEP)
        if problem:
            problems.append(problem)
    if problems:
        more = f"; {len(problems) - 1} more completed folders differ too" if len(problems) > 1 else ""
        raise UsageError(f"{problems[0]} (no job was started{more})")


def check_job(cfg: DictConfig, known: Sequence[str] = ()) -> None:
    """Range and environment checks of one composed job (UsageError with the fix)."""
    w = cfg.logger.wandb
    if w.mode == "online" and not w.fallback:
        from herexp.tracking import has_api_key

        if not has_api_key():
            raise UsageError("logger.wandb.mode=online with logger.wandb.fallback=false needs a W&B API key. "
                             "Fix: wandb login (or WANDB_API_KEY=...), or logger.wandb.mode=offline")
    try:
        config.validate(cfg)
        _check_env(cfg.env.id, bool(cfg.her.enabled), bool(cfg.env.sparse), int(cfg.n_envs),
                   int(cfg.algo.learning_starts))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _check_env(env_id: str, her: bool, sparse: bool, n_envs: int, learning_starts: int) -> None:
    from herexp import envs

    envs.check_env_facts(_env_info(env_id), her, sparse, n_envs, learning_starts)


@functools.cache
def _env_info(env_id: str) -> Any:
    from herexp import envs

    return envs.env_info(env_id)
