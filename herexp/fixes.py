"""The fixes a diagnosis suggests, from the run's own options: one place that knows what is in effect.

:class:`RunContext` is what the diagnoses know about a run besides its metrics (task, HER,
the entropy option, the exploration keys, ...); the functions below turn it into CLI overrides.
A fix never names a setting the run already uses (no ``entropy=fixed_005`` for a run with
``entropy=fixed_005``), never a smaller entropy coefficient than the run's as exploration, and
mentions entropy collapse only where the coefficient can collapse (SB3's automatic tuning,
unfloored or floored below the collapse threshold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from herexp import entropy, legacy
from herexp.config import DiagnosticsConfig

FLOAT_TOL = 1e-6  # relative: a value set exactly at a threshold (auto_floor's floor) is not below it
RANDOM_ACTIONS = 0.3  # the HER paper's DDPG: 30 % uniformly random actions while collecting
SCHEDULE_MAX = 0.3  # entropy=schedule's default starting coefficient (herexp.entropy.options.Schedule)
MANY_ENVS = 8  # parallel envs suggested to a run with fewer
LONG_WARMUP = 20_000  # env steps of uniform random actions before the first update


@dataclass(frozen=True)
class RunContext:
    """What the rules and their fixes need to know about the run besides its metrics."""

    env_id: str  # e.g. "FetchPush-v4"
    her_enabled: bool
    sparse: bool
    total_steps: int
    entropy_mode: str = "auto"  # the entropy= option: fixed | auto | auto_floor | schedule | adaptive | none
    entropy_value: float | None = None  # fixed: the coefficient
    entropy_min: float = 0.01  # auto_floor: the floor
    learning_rate: float = 3e-4
    normalize: bool = False  # VecNormalize on observations
    n_envs: int = 8
    learning_starts: int = 1000
    random_action_prob: float = 0.0  # algo.random_action_prob
    seed: int | None = None
    # mean final distance of a policy that never moves the object, on the final evaluation's
    # seeds (None: not measured, or no object); object_never_moved's evidence without displacements
    resting_distance: float | None = None

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any]) -> RunContext:
        """The context of a run from its composed config, or from a saved one (``summary.json``'s
        ``config``; configs saved with ``entropy.mode`` / ``algo.fast`` too, see :mod:`herexp.legacy`)."""
        if OmegaConf.is_config(cfg):
            cfg = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                   for k in ("env", "her", "algo", "entropy", "total_steps", "n_envs", "seed")}
        c = legacy.upgrade(cfg)  # type: ignore[arg-type]
        ent, algo = entropy.option(c["entropy"]), c["algo"]
        return cls(env_id=str(c["env"]["id"]), her_enabled=bool(c["her"]["enabled"]), sparse=bool(c["env"]["sparse"]),
                   total_steps=int(c["total_steps"]), entropy_mode=ent.name, entropy_value=ent.ent_coef,
                   entropy_min=float(getattr(ent, "min", 0.01)), learning_rate=float(algo.get("learning_rate", 3e-4)),
                   normalize=bool(algo.get("normalize", False)), n_envs=int(c.get("n_envs", 8)),
                   learning_starts=int(algo.get("learning_starts", 1000)),
                   random_action_prob=float(algo.get("random_action_prob", 0.0)),
                   seed=None if c.get("seed") is None else int(c["seed"]))

    @property
    def has_entropy(self) -> bool:
        """Whether the algorithm learns with an entropy coefficient (not TD3/DDPG's ``entropy: none``)."""
        return self.entropy_mode != "none"

    @property
    def fixed_005(self) -> bool:
        """The chapter's best entropy setting (``entropy=fixed_005``) is already in use."""
        return self.entropy_mode == "fixed" and self.entropy_value is not None and \
            math.isclose(self.entropy_value, 0.05, rel_tol=FLOAT_TOL)

    def can_collapse(self, cfg: DiagnosticsConfig) -> bool:
        """Whether the entropy coefficient can fall below ``collapse_ent_coef``: SB3's automatic
        tuning, unfloored or floored lower (a fixed, scheduled or clamped one cannot)."""
        return self.entropy_mode == "auto" or (self.entropy_mode == "auto_floor" and
                                               self.entropy_min < cfg.collapse_ent_coef * (1 - FLOAT_TOL))


def learning_rate(ctx: RunContext) -> str:
    """``algo.learning_rate=1e-4``, or a third of the current rate when it is already that low."""
    if ctx.learning_rate > 1e-4 * (1 + FLOAT_TOL):
        return "algo.learning_rate=1e-4"
    return f"algo.learning_rate={ctx.learning_rate / 3:.2g}"


def divergence(ctx: RunContext) -> str:
    """Smaller steps, and normalised observations when they are not."""
    return f"{learning_rate(ctx)} (smaller steps)" if ctx.normalize else \
        f"{learning_rate(ctx)} algo.normalize=true (smaller steps, normalised observations)"


def entropy_floor(ctx: RunContext, cfg: DiagnosticsConfig) -> list[str]:
    """Entropy settings against a collapse that the run does not already use."""
    fixes = [] if ctx.fixed_005 else ["entropy=fixed_005 (constant 0.05, the chapter's best on Push)"]
    if ctx.entropy_mode != "auto_floor":
        fixes.append("entropy=auto_floor (SB3 auto tuning floored at entropy.min=0.01)")
    elif ctx.entropy_min < cfg.collapse_ent_coef:
        fixes.append(f"entropy.min={cfg.collapse_ent_coef:g} (a higher floor)")
    return fixes or ["entropy=fixed_01 (a larger constant coefficient)"]


def entropy_collapse(ctx: RunContext, cfg: DiagnosticsConfig) -> str:
    """The fix of ``entropy_collapse``: a floor or a constant the run does not use yet."""
    return " or ".join(entropy_floor(ctx, cfg))


def more_steps(ctx: RunContext, last_step: int) -> int:
    """Twice the run's budget (twice its last step when the budget is unknown)."""
    return 2 * (ctx.total_steps if ctx.total_steps > 0 else last_step)


def train_longer(ctx: RunContext, last_step: int) -> str:
    """``total_steps=<2x>``."""
    return f"total_steps={more_steps(ctx, last_step)}"


def exploration(ctx: RunContext) -> list[str]:
    """Exploration levers the run does not use yet, strongest record first: uniformly random
    actions, an entropy coefficient that starts at least as high as the run's and decays, more
    parallel envs, a longer random warm-up."""
    levers = []
    if ctx.random_action_prob < RANDOM_ACTIONS * (1 - FLOAT_TOL):
        levers.append(f"algo.random_action_prob={RANDOM_ACTIONS:g} ({100 * RANDOM_ACTIONS:.0f} % uniformly random "
                      "actions, as the HER paper's DDPG)")
    if ctx.has_entropy and ctx.entropy_mode != "schedule":
        start = max(SCHEDULE_MAX, ctx.entropy_value or 0.0)
        extra = "" if start == SCHEDULE_MAX else f" entropy.max={start:g}"
        levers.append(f"entropy=schedule{extra} (start at {start:g}, then decay)")
    if ctx.n_envs < MANY_ENVS:
        levers.append(f"n_envs={MANY_ENVS} (more episodes per update)")
    if ctx.learning_starts < LONG_WARMUP:
        levers.append(f"algo.learning_starts={LONG_WARMUP} (a longer random warm-up)")
    return levers


def object_never_moved(ctx: RunContext) -> str:
    """The fix of ``object_never_moved``: the exploration levers not in effect, and the screen."""
    levers = exploration(ctx)
    seed = "" if ctx.seed is None else f" seed={ctx.seed}"
    screen = f"; screen them: --multirun sweep=push_takeoff{seed}" if ctx.env_id.startswith("FetchPush-") else ""
    if not levers:
        return "explore differently: every exploration lever is already on; compare seeds (take-off varies by seed)"
    return "explore more, so the gripper reaches the object: " + " or ".join(levers) + screen


def no_learning(ctx: RunContext, cfg: DiagnosticsConfig, last_step: int) -> str:
    """The fix of ``no_learning``: HER when off; ruling out collapse where the coefficient can
    collapse; then more steps."""
    longer = f"train longer ({train_longer(ctx, last_step)})"
    if not ctx.her_enabled:
        return "her=on (sparse goal tasks rarely learn without HER)"
    if ctx.can_collapse(cfg):
        options = " or ".join(f.split(" (", 1)[0] for f in entropy_floor(ctx, cfg))
        return f"check for entropy_collapse ({options}), then {longer}"
    return longer


def forgetting(ctx: RunContext, cfg: DiagnosticsConfig) -> str:
    """The fix of ``forgetting``: smaller late updates (and a floor where the coefficient can collapse)."""
    floor = " (and entropy=auto_floor if ent_coef collapsed)" if ctx.entropy_mode == "auto" else ""
    return f"stabilise late updates: {learning_rate(ctx)}{floor}; compare a few seeds, one seed's drop can be noise"
