"""Structured config schema, defaults and validation of a run (the options' own keys: their classes).

The YAML files under ``herexp/conf/`` select options; this schema types every key, so a typo
(``her.n_sampled_gaol=4``) or a wrong type (``seed=abc``) fails at start-up naming the full
key (Hydra/OmegaConf do that for us). Range checks that types cannot express live in
:func:`validate`, which runs before any SB3 object exists and raises ``ValueError`` naming
the key, the value, the allowed range and a fix.

Units: every step count in the config is in **environment steps** (``num_timesteps``), never
vector steps or callback calls; :func:`herexp.callbacks.every_n_env_steps` converts.

The ``algo`` and ``entropy`` groups are typed by their options: each option is a dataclass with
its own keys (:mod:`herexp.algos`, :mod:`herexp.entropy.options`), registered as
``schema/<group>/<name>`` and selected by the option's YAML file (:mod:`herexp.options`).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from herexp import algos, entropy, options

CONF_DIR = Path(__file__).resolve().parent / "conf"  # the YAML option files, shipped in the package
GOAL_STRATEGIES = ("future", "final", "episode")
# study and name become folders (multirun/<study>/, outputs/.../<time>_<name>): one safe folder name each
FOLDER_NAME = re.compile(r"[A-Za-z0-9._=,+-]+")
FOLDER_NAME_RULE = "a folder name: letters, digits and . _ - = , + only, not '.' and no '..'"


@dataclass
class EnvConfig:
    """Which Gymnasium-Robotics task to train on (``herexp/conf/env/``, ``herexp/envs.py``)."""

    id: str = MISSING  # Gymnasium id, e.g. FetchPush-v4
    name: str = MISSING  # short name used in run names and folder names, e.g. push
    sparse: bool = True  # documents the reward type; checked against the env at start-up


@dataclass
class HerConfig:
    """Hindsight Experience Replay (``herexp/conf/her/``): SB3's HerReplayBuffer when enabled."""

    enabled: bool = True
    n_sampled_goal: int = 4  # relabeled goals per real transition (k); 4 -> 80 % relabeled
    goal_selection_strategy: str = "future"  # future | final | episode


@dataclass
class WandbConfig:
    """Weights & Biases run settings. Offline by default: ``wandb sync`` later."""

    mode: str = "offline"  # offline | online | disabled
    project: str = "herexp"
    entity: Optional[str] = None
    group: Optional[str] = None  # default: the study (experiment preset or sweep) name
    job_type: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    init_timeout: float = 30.0  # online: seconds to reach the server before falling back
    fallback: bool = True  # online: no key / no network -> offline with a warning (false: fail fast)


@dataclass
class LoggerConfig:
    """Where training scalars go (``herexp/conf/logger/``, ``herexp/tracking.py``)."""

    wandb: WandbConfig = field(default_factory=WandbConfig)
    tensorboard: bool = True  # event files in <run>/tb/
    log_interval: int = 4  # episodes between SB3 logger dumps (TensorBoard / W&B rows)
    progress_every: int = 0  # env steps between progress lines; 0 = ~20 lines a run


@dataclass
class EvalConfig:
    """Final and periodic evaluation (``herexp/evaluation.py``)."""

    n_episodes: int = 100  # final evaluation episodes
    deterministic: bool = True
    seed_offset: int = 1_000_000  # episode i uses seed seed_offset + i: same goals for every
    # checkpoint (a paired comparison) and disjoint from training seeds (< seed_offset)
    freq: int = 50_000  # env steps between periodic evaluations (2 M steps -> 40 points)
    periodic_episodes: int = 20  # episodes per periodic evaluation
    video_every: int = 0  # env steps between training videos (0 = off; herexp.video)


@dataclass
class EarlyStopConfig:
    """Stop training once periodic evaluation success has stayed high (``herexp/callbacks.py``)."""

    success: Optional[float] = None  # stop when eval success >= this ... (None = train to total_steps)
    patience: int = 3  # ... in this many consecutive periodic evaluations


@dataclass
class CheckpointConfig:
    """Resumable runs (``herexp/checkpoint.py``): ``<run>/checkpoint/``, latest only."""

    every: int = 100_000  # env steps between checkpoints (0 = only when a stop signal arrives)
    keep: bool = False  # keep the checkpoint after the run completes


@dataclass
class DiagnosticsConfig:
    """Thresholds of the failure diagnoses (``herexp/diagnostics.py``)."""

    collapse_ent_coef: float = 0.01  # entropy collapse: ent_coef below this ...
    collapse_success: float = 0.5  # ... while success is below this
    flat_delta: float = 0.05  # no learning: max success never exceeds start by more than this
    forgetting_drop: float = 0.2  # forgetting: peak - final success above this
    divergence_factor: float = 1000.0  # critic divergence: late loss / early loss above this
    rising_slope: float = 0.05  # slow but learning: success gain over the last quarter above this
    noher_success: float = 0.1  # suspicious no-HER success on sparse Push-like tasks above this
    min_rows: int = 5  # trend rules need this many smoothed success points (no learning, forgetting,
    # slow: smooth_window + min_rows - 1 rows) or critic-loss rows (loss ratio)
    smooth_window: int = 5  # success = trailing mean of this many rows (20-episode evals are noisy)
    flat_max_success: float = 0.2  # no learning: ... and smoothed success never above this
    solved_success: float = 0.95  # no learning / slow but learning: silent once the final eval reaches this
    rising_t: float = 2.0  # slow but learning: last-quarter slope this many standard errors above 0
    still_object_m: float = 0.01  # object never moved: mean object displacement per evaluation below this (m)


@dataclass
class TrialConfig:
    """The search trial a run belongs to; herexp's Optuna sweeper sets these (``herexp/search/``)."""

    number: Optional[int] = None  # Optuna trial number (null: not a search trial); the folder's trialNNN
    storage: Optional[str] = None  # the study's storage (journal file or RDB URL): periodic evals -> pruning
    params: List[str] = field(default_factory=list)  # the keys the sampler chose (W&B trial/<key>)


@dataclass
class Config:
    """The primary config (``herexp/conf/config.yaml``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    # An algo / entropy option brings its own structured config (herexp.algos, herexp.entropy).
    algo: Any = MISSING
    her: HerConfig = field(default_factory=HerConfig)
    entropy: Any = MISSING
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)
    seed: int = 0  # seeds SAC, the action space and train envs (env i gets seed + i)
    total_steps: int = 1_000_000  # environment steps
    n_envs: int = 8  # parallel training envs (DummyVecEnv)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    torch_threads: int = 1  # torch intra-op threads per run (one per job in sweeps)
    study: str = "default"  # name of the experiment preset or sweep: W&B group, multirun/<study>/
    name: str = MISSING  # run name, resolved by herexp.identity (herexp/conf/config.yaml)
    skip_completed: bool = True  # a run folder whose summary says completed is not redone
    resume: bool = True  # a run folder with a checkpoint (and no completed summary) continues from it


def register_configs() -> None:
    """Register the schema and every algo / entropy option's schema with Hydra's ConfigStore
    (herexp/conf/config.yaml and the option files extend them)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    algos.register()
    entropy.options.register()
    from herexp import identity  # run names and sweep job folders, from the composed config

    OmegaConf.register_new_resolver("run_name", lambda *, _root_: identity.run_name(_root_), replace=True)
    OmegaConf.register_new_resolver(
        "job_dir", lambda overrides, *, _root_: identity.job_dir_name(_root_, list(overrides)), replace=True)


_check = options.check


def is_folder_name(value: str) -> bool:
    """True for a name that is one folder inside its parent: safe characters, no ``..``."""
    return bool(FOLDER_NAME.fullmatch(value)) and ".." not in value and value != "."


def safe_folder_name(value: str) -> str:
    """A folder name close to ``value`` (``../../escaped`` -> ``escaped``, ``a b`` -> ``a-b``)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9._=,+-]+", value) if p.strip(".")]
    return re.sub(r"\.{2,}", ".", "-".join(parts)) or "default"


def validate(cfg: DictConfig) -> None:
    """Check ranges that types cannot express; raise ``ValueError`` naming key, range and fix.

    Runs before any environment or SB3 object is created. Environment-dependent checks
    (HER needs dict goals) are in :func:`herexp.envs.check_env_compatible`.
    """
    h, ev = cfg.her, cfg.eval
    for key in ("study", "name"):
        value = str(cfg[key])
        _check(is_folder_name(value), key, value, FOLDER_NAME_RULE, f"{key}={safe_folder_name(value)}")
    _check(cfg.total_steps > 0, "total_steps", cfg.total_steps, "> 0", "total_steps=100000")
    _check(cfg.n_envs >= 1, "n_envs", cfg.n_envs, ">= 1", "n_envs=1")
    _check(cfg.seed >= 0, "seed", cfg.seed, ">= 0", "seed=0")
    _check(cfg.seed + cfg.n_envs <= ev.seed_offset, "seed", cfg.seed, f"< eval.seed_offset - n_envs "
           f"({ev.seed_offset - cfg.n_envs}) so training and evaluation seeds are disjoint", "a smaller seed")
    _check(cfg.torch_threads >= 1, "torch_threads", cfg.torch_threads, ">= 1", "torch_threads=1")
    _check(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"), "device",
           cfg.device, "auto, cpu, cuda or cuda:N", "device=auto")
    algo, ent = algos.option(cfg.algo), entropy.option(cfg.entropy)
    algo.validate()
    if h.enabled:
        _check(h.n_sampled_goal >= 1, "her.n_sampled_goal", h.n_sampled_goal, ">= 1", "her.n_sampled_goal=4")
        _check(h.goal_selection_strategy in GOAL_STRATEGIES, "her.goal_selection_strategy",
               h.goal_selection_strategy, f"one of {GOAL_STRATEGIES}", "her.goal_selection_strategy=future")
    ent.validate(cfg.total_steps)
    algos.check_entropy(algo, ent)
    _check(ev.n_episodes >= 1, "eval.n_episodes", ev.n_episodes, ">= 1", "eval.n_episodes=100")
    _check(ev.freq >= 0, "eval.freq", ev.freq, ">= 0 (0 = no periodic evaluation)", "eval.freq=50000")
    _check(ev.periodic_episodes >= 1, "eval.periodic_episodes", ev.periodic_episodes, ">= 1",
           "eval.periodic_episodes=20")
    _check(cfg.checkpoint.every >= 0, "checkpoint.every", cfg.checkpoint.every, ">= 0 (0 = only on a stop "
           "signal)", "checkpoint.every=100000")
    es = cfg.early_stop
    if es.success is not None:
        _check(0.0 < es.success <= 1.0, "early_stop.success", es.success, "in (0, 1] or null (off)",
               "early_stop.success=0.95")
        _check(es.patience >= 1, "early_stop.patience", es.patience, ">= 1", "early_stop.patience=3")
        _check(ev.freq > 0, "early_stop.success", es.success, "null unless eval.freq > 0 (it watches the "
               "periodic evaluations)", "eval.freq=25000")
    _check(cfg.diagnostics.still_object_m > 0, "diagnostics.still_object_m", cfg.diagnostics.still_object_m, "> 0",
           "diagnostics.still_object_m=0.01")
    _check(cfg.logger.wandb.mode in ("offline", "online", "disabled"), "logger.wandb.mode",
           cfg.logger.wandb.mode, "offline, online or disabled", "logger.wandb.mode=offline")
    _check(cfg.logger.wandb.init_timeout > 0, "logger.wandb.init_timeout", cfg.logger.wandb.init_timeout, "> 0",
           "logger.wandb.init_timeout=30")


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for JSON, W&B and summaries)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]
