"""Structured config schema, defaults and validation: the only module that knows them.

The YAML files under ``herexp/conf/`` select options; this schema types every key, so a typo
(``her.n_sampled_gaol=4``) or a wrong type (``seed=abc``) fails at start-up naming the full
key (Hydra/OmegaConf do that for us). Range checks that types cannot express live in
:func:`validate`, which runs before any SB3 object exists and raises ``ValueError`` naming
the key, the value, the allowed range and a fix.

Units: every step count in the config is in **environment steps** (``num_timesteps``), never
vector steps or callback calls; :func:`herexp.callbacks.every_n_env_steps` converts.
"""



import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent / "conf"  # the YAML option files, shipped in the package
GOAL_STRATEGIES = ("future", "final", "episode")
ENTROPY_MODES = ("fixed", "auto", "auto_floor", "schedule", "adaptive")


@dataclass
class EnvConfig:
    """Which Gymnasium-Robotics task to train on (``herexp/conf/env/``, ``herexp/envs.py``)."""

    id: str = MISSING  # Gymnasium id, e.g. FetchPush-v4
    name: str = MISSING  # short name used in run names and folder names, e.g. push
    sparse: bool = True  # documents the reward type; checked against the env at start-up


@dataclass
class AlgoConfig:
    """SAC hyperparameters (``herexp/conf/algo/``, ``herexp/agent.py``). Chapter defaults."""

    name: str = "sac"
    batch_size: int = 256
    buffer_size: int = 1_000_000  # transitions (env steps)
    learning_starts: int = 1000  # env steps of random actions before the first update
    learning_rate: float = 3e-4
    gamma: float = 0.95
    tau: float = 0.005
    train_freq: int = 1  # vector steps between updates (SB3 semantics)
    gradient_steps: int = 1  # gradient steps per update
    net_arch: List[int] = field(default_factory=lambda: [256, 256])
    normalize: bool = False  # VecNormalize on observations; stats saved next to model.zip
    fast: bool = False  # herexp's fast update path (herexp/fast/): same losses, same checkpoints
    overlap_envs: bool = False  # fast only: step envs in a worker process during the update
    # (uses a second core; the behaviour action comes from the policy one update older)
    parallel_critics: bool = False  # fast only: twin critics of each update on two threads (same maths)


@dataclass
class HerConfig:
    """Hindsight Experience Replay (``herexp/conf/her/``): SB3's HerReplayBuffer when enabled."""

    enabled: bool = True
    n_sampled_goal: int = 4  # relabeled goals per real transition (k); 4 -> 80 % relabeled
    goal_selection_strategy: str = "future"  # future | final | episode


@dataclass
class EntropyConfig:
    """SAC entropy coefficient control (``herexp/conf/entropy/``, ``herexp/entropy.py``)."""

    mode: str = "auto"  # fixed | auto | auto_floor | schedule | adaptive
    value: Optional[float] = None  # fixed: the coefficient; auto*: initial value (None = SB3's 1.0);
    # adaptive: start value (None = max)
    target_entropy: Any = "auto"  # auto*: "auto" (= -dim A) or a float
    min: float = 0.01  # auto_floor: hard floor; schedule: final value; adaptive: lower clamp
    max: float = 0.3  # schedule: initial value; adaptive: upper clamp and start value
    check_freq: int = 1000  # adaptive: env steps between adjustments
    warmup_frac: float = 0.1  # schedule/adaptive: fraction of total_steps held at start value
    target: float = 0.2  # adaptive: target rolling success rate
    tolerance: float = 0.05  # adaptive: dead band around target
    rate: float = 0.1  # adaptive: multiplicative step (x(1+rate) or x(1-rate))
    window: int = 200  # adaptive: episodes in the rolling success window
    key: str = "is_success"  # adaptive: info key counted as success


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


@dataclass
class Config:
    """The primary config (``herexp/conf/config.yaml``)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    her: HerConfig = field(default_factory=HerConfig)
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
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
    """Register the schema with Hydra's ConfigStore (herexp/conf/config.yaml extends it)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    from herexp import identity  # run names and sweep job folders, from the composed config

    OmegaConf.register_new_resolver("run_name", lambda *, _root_: identity.run_name(_root_), replace=True)
    OmegaConf.register_new_resolver(
        "job_dir", lambda overrides, *, _root_: identity.job_dir_name(_root_, list(overrides)), replace=True)


def _fail(key: str, value: Any, allowed: str, fix: str) -> None:
    raise ValueError(f"{key}={value!r} is invalid: must be {allowed}. Fix: {fix}")


def _check(ok: bool, key: str, value: Any, allowed: str, fix: str) -> None:
    if not ok:
        _fail(key, value, allowed, fix)


def validate(cfg: DictConfig) -> None:
    """Check ranges that types cannot express; raise ``ValueError`` naming key, range and fix.

    Runs before any environment or SB3 object is created. Environment-dependent checks
    (HER needs dict goals) are in :func:`herexp.envs.check_env_compatible`.
    """
    a, h, e, ev = cfg.algo, cfg.her, cfg.entropy, cfg.eval
    _check(cfg.total_steps > 0, "total_steps", cfg.total_steps, "> 0", "total_steps=100000")
    _check(cfg.n_envs >= 1, "n_envs", cfg.n_envs, ">= 1", "n_envs=1")
    _check(cfg.seed >= 0, "seed", cfg.seed, ">= 0", "seed=0")
    _check(cfg.seed + cfg.n_envs <= ev.seed_offset, "seed", cfg.seed, f"< eval.seed_offset - n_envs "
           f"({ev.seed_offset - cfg.n_envs}) so training and evaluation seeds are disjoint", "a smaller seed")
    _check(cfg.torch_threads >= 1, "torch_threads", cfg.torch_threads, ">= 1", "torch_threads=1")
    _check(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"), "device",
           cfg.device, "auto, cpu, cuda or cuda:N", "device=auto")
    _check(0.0 < a.gamma <= 1.0, "algo.gamma", a.gamma, "in (0, 1]", "algo.gamma=0.95")
    _check(0.0 < a.tau <= 1.0, "algo.tau", a.tau, "in (0, 1]", "algo.tau=0.005")
    _check(a.learning_rate > 0, "algo.learning_rate", a.learning_rate, "> 0", "algo.learning_rate=3e-4")
    _check(a.batch_size >= 1, "algo.batch_size", a.batch_size, ">= 1", "algo.batch_size=256")
    _check(a.buffer_size >= a.batch_size, "algo.buffer_size", a.buffer_size, ">= algo.batch_size",
           "algo.buffer_size=1000000")
    _check(a.learning_starts >= 0, "algo.learning_starts", a.learning_starts, ">= 0", "algo.learning_starts=1000")
    _check(a.train_freq >= 1, "algo.train_freq", a.train_freq, ">= 1", "algo.train_freq=1")
    _check(a.gradient_steps >= 1, "algo.gradient_steps", a.gradient_steps, ">= 1", "algo.gradient_steps=1")
    _check(len(a.net_arch) > 0 and all(n > 0 for n in a.net_arch), "algo.net_arch", list(a.net_arch),
           "a non-empty list of positive layer widths", "algo.net_arch=[256,256]")
    _check(a.fast or not a.overlap_envs, "algo.overlap_envs", a.overlap_envs, "false unless algo.fast=true",
           "algo=sac_fast algo.overlap_envs=true")
    _check(a.fast or not a.parallel_critics, "algo.parallel_critics", a.parallel_critics,
           "false unless algo.fast=true", "algo=sac_fast algo.parallel_critics=true")
    if h.enabled:
        _check(h.n_sampled_goal >= 1, "her.n_sampled_goal", h.n_sampled_goal, ">= 1", "her.n_sampled_goal=4")
        _check(h.goal_selection_strategy in GOAL_STRATEGIES, "her.goal_selection_strategy",
               h.goal_selection_strategy, f"one of {GOAL_STRATEGIES}", "her.goal_selection_strategy=future")
    _validate_entropy(e, cfg.total_steps)
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
    _check(cfg.logger.wandb.mode in ("offline", "online", "disabled"), "logger.wandb.mode",
           cfg.logger.wandb.mode, "offline, online or disabled", "logger.wandb.mode=offline")
    _check(cfg.logger.wandb.init_timeout > 0, "logger.wandb.init_timeout", cfg.logger.wandb.init_timeout, "> 0",
           "logger.wandb.init_timeout=30")


def _validate_entropy(e: DictConfig, total_steps: int) -> None:
    _check(e.mode in ENTROPY_MODES, "entropy.mode", e.mode, f"one of {ENTROPY_MODES}", "entropy=fixed_005")
    if e.mode == "fixed":
        _check(e.value is not None and e.value > 0, "entropy.value", e.value, "> 0 for mode=fixed",
               "entropy.value=0.05")
    if e.mode in ("auto", "auto_floor"):
        te = e.target_entropy
        ok = te == "auto" or (isinstance(te, (int, float)) and not isinstance(te, bool) and math.isfinite(te))
        _check(ok, "entropy.target_entropy", te, '"auto" or a finite number', "entropy.target_entropy=auto")
        _check(e.value is None or e.value > 0, "entropy.value", e.value, "> 0 (initial coefficient) or null",
               "entropy.value=null")
    if e.mode == "adaptive" and e.value is not None:
        _check(e.min <= e.value <= e.max, "entropy.value", e.value, f"in [entropy.min, entropy.max] = "
               f"[{e.min}, {e.max}] (adaptive start value)", "entropy.value=null")
    if e.mode == "auto_floor":
        _check(e.min > 0, "entropy.min", e.min, "> 0 (the floor)", "entropy.min=0.01")
    if e.mode in ("schedule", "adaptive"):
        _check(0 < e.min <= e.max, "entropy.min", e.min, f"in (0, entropy.max={e.max}]", "entropy.min=0.01")
    if e.mode in ("schedule", "adaptive"):
        _check(0.0 <= e.warmup_frac < 1.0, "entropy.warmup_frac", e.warmup_frac, "in [0, 1)",
               "entropy.warmup_frac=0.1")
    if e.mode == "adaptive":
        _check(0 < e.check_freq <= total_steps, "entropy.check_freq", e.check_freq,
               f"in (0, total_steps={total_steps}]", "entropy.check_freq=1000")
        _check(0 < e.rate < 1, "entropy.rate", e.rate, "in (0, 1)", "entropy.rate=0.1")
        _check(e.window >= 1, "entropy.window", e.window, ">= 1", "entropy.window=200")
        _check(0 <= e.target <= 1, "entropy.target", e.target, "in [0, 1]", "entropy.target=0.2")
        _check(e.tolerance >= 0, "entropy.tolerance", e.tolerance, ">= 0", "entropy.tolerance=0.05")


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for JSON, W&B and summaries)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]
