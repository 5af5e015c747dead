"""What the benchmark runs: presets and variants as Hydra overrides of the training config.

A preset says *which* run (task, envs, network); a variant says *which implementation* (stock
SB3 or herexp's fast path, with or without the two-core options). Both are override lists of
``python -m herexp.train``, so a benchmarked model is the model that command trains:

    preset push8 + variant stock  ==  python -m herexp.train env=push her=on entropy=auto n_envs=8 algo=sac

:func:`compose` checks the overrides with :mod:`herexp.preflight` (the same one-line errors as
training) and composes them from ``herexp/conf/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from herexp import config, preflight


@dataclass(frozen=True)
class Preset:
    """A benchmarked run: its training overrides and the benchmark's own step counts."""

    overrides: list[str] = field(default_factory=list)  # python -m herexp.train overrides
    steps: int = 2000  # timed env steps per repeat and variant
    warmup: int = 1600  # env steps before timing (>= algo.learning_starts + a few updates)


PRESETS: dict[str, Preset] = {
    # the chapter config: FetchPush, 8 envs, [256, 256], one update per vector step
    "push8": Preset(["env=push", "her=on", "entropy=auto", "n_envs=8"], steps=2000, warmup=1600),
    # the same with 1 env: one update per env step, so the update dominates
    "push1": Preset(["env=push", "her=on", "entropy=auto", "n_envs=1"], steps=600, warmup=1300),
    # the quickstart: FetchReach, 1 env, [64, 64], lr 1e-3, VecNormalize
    "reach1": Preset(["experiment=reach_quickstart"], steps=1000, warmup=1300),
}

# Same config, different implementation; stock and fast use one core, the others two.
VARIANTS: dict[str, list[str]] = {
    "stock": ["algo=sac"],  # SB3 SAC + HerReplayBuffer + DummyVecEnv (the reference)
    "fast": ["algo=sac_fast"],  # FastSAC + FastHerReplayBuffer
    "fast_overlap": ["algo=sac_fast", "algo.overlap_envs=true"],  # env stepping in a worker process
    "fast_par": ["algo=sac_fast", "algo.parallel_critics=true"],  # twin critics on a second thread
    "fast_overlap_par": ["algo=sac_fast", "algo.overlap_envs=true", "algo.parallel_critics=true"],
}


def overrides(preset: Preset, variant: str, extra: Sequence[str] = (), device: str = "cpu") -> list[str]:
    """The training overrides of one benchmarked model: preset, variant, the user's, device."""
    return [*preset.overrides, *VARIANTS[variant], *extra, f"device={device}"]


def compose(job: Sequence[str]) -> DictConfig:
    """The composed training config of ``job`` (a :class:`~herexp.cli.UsageError` when invalid)."""
    preflight.check_train_command(list(job))
    config.register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config.CONF_DIR), version_base="1.3"):
            return hydra_compose("config", overrides=list(job))
    finally:
        GlobalHydra.instance().clear()
