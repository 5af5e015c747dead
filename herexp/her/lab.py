"""HER relabeling lab: Hindsight Experience Replay from scratch, numpy only.

Read top to bottom: data structures -> goal sampling -> relabeling -> episode processing.
The algorithm itself (``sample_her_goals`` + ``relabel_transition`` + ``process_episode_with_her``)
is ~40 lines. Below it are a self-check (``verify``), a parameter sweep (``demo``) and the
CLI (typed ``key=value`` arguments, :mod:`herexp.cli`); ``compare_sb3`` lives in
``herexp.her.compare_sb3``.

    python -m herexp.her.lab verify [seed=N]
    python -m herexp.her.lab demo [seed=N]
    python -m herexp.her.lab compare_sb3 [seed=N]

The idea (Andrychowicz et al. 2017, https://arxiv.org/abs/1707.01495): with a sparse reward a
failed episode teaches nothing about reaching *its* goal, but it is a perfect demonstration of
reaching the goals it *did* reach. So we store extra copies of each transition whose desired
goal is replaced by a goal achieved later in the episode, and recompute the reward for it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# compute_reward(achieved_goal, desired_goal) -> reward(s); vectorised over a leading batch axis.
# A Fetch env fits with ``lambda a, d: env.unwrapped.compute_reward(a, d, {})``.
RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray | float]


# --------------------------------------------------------------------------- data structures
@dataclass(frozen=True)
class Transition:
    """One goal-conditioned step (s_t, a_t, r_t, s_{t+1}) under goal g.

    ``achieved_goal`` is the goal reached at ``next_obs`` (the gripper position after the action),
    because the reward of a step is judged on where the action took us: r_t = R(ag_{t+1}, g).
    Frozen: relabeling makes a *new* transition, the original stays in the buffer untouched.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    done: bool
    achieved_goal: np.ndarray  # goal reached at next_obs
    desired_goal: np.ndarray  # goal the agent was asked to reach (replaced by relabeling)
    relabeled: bool = False  # bookkeeping only, so we can count HER copies; not an RL input


@dataclass(frozen=True)
class Episode:
    """The transitions of one episode, in time order."""

    transitions: list[Transition]

    def __len__(self) -> int:
        return len(self.transitions)

    @cached_property
    def achieved_goals(self) -> np.ndarray:
        """(T, goal_dim): row t is the goal reached after step t, the pool HER samples from."""
        return np.stack([tr.achieved_goal for tr in self.transitions])


class GoalStrategy(enum.Enum):
    """Where substitute goals come from (paper section 4.5)."""

    FUTURE = "future"  # achieved at a later step t' > t of the same episode (best in the paper)
    FINAL = "final"  # the episode's last achieved goal
    EPISODE = "episode"  # achieved at any step of the same episode, past ones included


# --------------------------------------------------------------------------- the algorithm
def sparse_reward(achieved: np.ndarray, desired: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Fetch's sparse reward: 0.0 within ``threshold`` metres of the goal, else -1.0 (vectorised)."""
    distance = np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)
    return np.where(distance > threshold, -1.0, 0.0)  # np.where, not -(bool): avoids printing -0.0


def sample_her_goals(episode: Episode, t: int, strategy: GoalStrategy, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Return ``k`` substitute goals, shape (k, goal_dim), for transition ``t`` of ``episode``."""
    last = len(episode) - 1
    if strategy is GoalStrategy.FUTURE:
        # Strictly later steps: those goals were reached *because of* what happened after s_t.
        # The last step has no future, so it falls back to the final goal (= its own goal).
        idx = np.full(k, last) if t == last else rng.integers(t + 1, last + 1, size=k)
    elif strategy is GoalStrategy.FINAL:
        idx = np.full(k, last)  # deterministic: k identical copies
    elif strategy is GoalStrategy.EPISODE:
        idx = rng.integers(0, last + 1, size=k)
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    return episode.achieved_goals[idx]


def relabel_transition(transition: Transition, new_goal: np.ndarray, compute_reward: RewardFn) -> Transition:
    """Pretend ``new_goal`` was the goal all along: swap the desired goal, recompute the reward.

    Everything the environment did (obs, action, next_obs, achieved_goal) is unchanged: those are
    facts. Only the question we ask of them changes, hence only desired_goal and reward change.
    """
    reward = float(np.asarray(compute_reward(transition.achieved_goal, new_goal)))
    return dataclasses.replace(transition, desired_goal=np.asarray(new_goal), reward=reward, relabeled=True)


def process_episode_with_her(episode: Episode, compute_reward: RewardFn, strategy: GoalStrategy,
                             k: int, her_ratio: float, rng: np.random.Generator) -> list[Transition]:
    """Originals plus HER copies: each transition is kept; with probability ``her_ratio`` it
    also gets ``k`` relabeled copies. Expected size: T * (1 + her_ratio * k), e.g. 50 -> 210."""
    out: list[Transition] = []
    for t, transition in enumerate(episode.transitions):
        out.append(transition)  # never drop the real goal: the agent must still learn the task
        if rng.random() < her_ratio:
            out.extend(relabel_transition(transition, goal, compute_reward)
                       for goal in sample_her_goals(episode, t, strategy, k, rng))
    return out


def compute_success_fraction(transitions: Sequence[Transition] | Episode) -> float:
    """Share of transitions with reward 0 (sparse convention: 0 = goal reached, -1 = not)."""
    items = transitions.transitions if isinstance(transitions, Episode) else transitions
    return float(np.mean([tr.reward == 0.0 for tr in items])) if len(items) else 0.0


def create_synthetic_episode(n_steps: int, rng: np.random.Generator, step_size: float = 0.03,
                             goal_margin: float = 0.3) -> Episode:
    """A random-walk "gripper" in 3-D whose desired goal is out of reach by construction.

    The goal sits ``goal_margin`` metres beyond the farthest point the walk reached, so every
    original reward is -1 (success exactly 0 %): the situation where plain replay learns nothing.
    obs = [position, velocity] (6,), action in [-1, 1]^3 moves at most ``step_size`` per axis.
    """
    start = rng.uniform(-0.15, 0.15, size=3)
    actions = rng.uniform(-1.0, 1.0, size=(n_steps, 3))
    positions = np.vstack([start, start + np.cumsum(actions * step_size, axis=0)])  # (T+1, 3)
    reach = np.linalg.norm(positions - start, axis=1).max()
    direction = rng.normal(size=3)
    desired = start + direction / np.linalg.norm(direction) * (reach + goal_margin)
    obs = np.hstack([positions, np.diff(positions, axis=0, prepend=positions[:1])])
    return Episode([
        Transition(obs=obs[t], action=actions[t], reward=float(sparse_reward(positions[t + 1], desired)),
                   next_obs=obs[t + 1], done=t == n_steps - 1, achieved_goal=positions[t + 1],
                   desired_goal=desired)
        for t in range(n_steps)
    ])


# --------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class Check:
    """One verification result; ``value`` is the measured number (used for determinism tests)."""

    name: str
    passed: bool
    detail: str
    value: float = math.nan


def binomial_band(n: int, p: float, z: float = 5.0) -> tuple[float, float]:
    """mean +- z standard deviations of Binomial(n, p).

    With z = 5 a correct implementation lands outside the band with probability ~1e-6 per seed
    (exact binomial tail for n=500, p=0.8), so all 200 seeds of the test sweep pass by design,
    not by luck, while a real bug (her_ratio ignored, k copies miscounted) lands far outside."""
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    return mean - z * sd, mean + z * sd


def _goal_indices(episode: Episode, goals: np.ndarray) -> np.ndarray:
    """Step index of each goal in the episode's achieved goals (-1 if it is not one of them)."""
    match = np.all(goals[:, None, :] == episode.achieved_goals[None, :, :], axis=-1)  # (k, T)
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)


def _check_goal_sampling(episode: Episode, rng: np.random.Generator) -> list[Check]:
    T, k = len(episode), 4
    shapes = [sample_her_goals(episode, 0, s, kk, rng).shape for s in GoalStrategy for kk in (1, 4, 8)]
    future = [_goal_indices(episode, sample_her_goals(episode, t, GoalStrategy.FUTURE, k, rng)) for t in range(T)]
    future_ok = all((idx > t).all() or (t == T - 1 and (idx == T - 1).all()) for t, idx in enumerate(future))
    final = np.stack([sample_her_goals(episode, t, GoalStrategy.FINAL, k, rng) for t in range(T)])
    ep_idx = np.concatenate([_goal_indices(episode, sample_her_goals(episode, t, GoalStrategy.EPISODE, k, rng))
                             for t in range(T)])
    return [
        Check("goal shapes", shapes == [(kk, 3) for _ in GoalStrategy for kk in (1, 4, 8)],
              f"every strategy returns (k, 3) for k in 1, 4, 8: {sorted(set(shapes))}"),
        Check("FUTURE only later steps", future_ok,
              f"{T * k} goals, min offset t'-t over t<T-1: {min(int((i - t).min()) for t, i in enumerate(future[:-1]))}"),
        Check("FINAL all identical", bool((final == episode.achieved_goals[-1]).all()),
              f"{final.shape[0] * k} goals all equal the last achieved goal"),
        Check("EPISODE from this episode", bool((ep_idx >= 0).all()),
              f"{ep_idx.size} goals, steps {ep_idx.min()}..{ep_idx.max()}"),
    ]


def _check_relabeling(episode: Episode) -> list[Check]:
    tr = episode.transitions[len(episode) // 2]
    own = relabel_transition(tr, tr.achieved_goal, sparse_reward)
    far = relabel_transition(tr, tr.achieved_goal + np.array([1.0, 0.0, 0.0]), sparse_reward)
    return [
        Check("relabel own goal -> 0", own.reward == 0.0 and np.array_equal(own.achieved_goal, tr.achieved_goal)
              and np.array_equal(own.desired_goal, tr.achieved_goal), f"reward {own.reward:+.1f}, achieved unchanged",
              own.reward),
        Check("relabel distant goal -> -1", far.reward == -1.0 and tr.reward == -1.0,
              f"reward {far.reward:+.1f} for a goal 1 m away", far.reward),
    ]


def run_verify(seed: int, n_episodes: int = 10, n_steps: int = 50, k: int = 4,
               her_ratio: float = 0.8) -> list[Check]:
    """All verify checks for one seed (deterministic: one Generator drives every draw)."""
    rng = np.random.default_rng(seed)
    episodes = [create_synthetic_episode(n_steps, rng) for _ in range(n_episodes)]
    checks = _check_goal_sampling(episodes[0], rng) + _check_relabeling(episodes[0])

    processed = [process_episode_with_her(ep, sparse_reward, GoalStrategy.FUTURE, k, her_ratio, rng)
                 for ep in episodes]
    flat = [tr for batch in processed for tr in batch]
    n_orig, n_relabeled = n_episodes * n_steps, sum(tr.relabeled for tr in flat)
    originals = [tr for tr in flat if not tr.relabeled]
    orig_success, her_success = compute_success_fraction(originals), compute_success_fraction(flat)
    # The number of transitions that got copies is exactly Binomial(n_orig, her_ratio): test
    # count and ratio against its 5-sigma band, mapped through the (monotone) formulas.
    lo, hi = binomial_band(n_orig, her_ratio)
    per_ep = len(flat) / n_episodes  # = (n_orig + k * B) / n_episodes
    count_band = ((n_orig + k * lo) / n_episodes, (n_orig + k * hi) / n_episodes)
    ratio = n_relabeled / len(flat)
    ratio_band = (k * lo / (n_orig + k * lo), k * hi / (n_orig + k * hi))
    expected_ratio = k * her_ratio / (1 + k * her_ratio)
    # "HER success > original" cannot fail by chance: originals are 0 % by construction and a
    # relabeled last step (goal = its own achieved goal) always succeeds; P(none of the 10 last
    # steps gets copies) = 0.2**10 ~ 1e-7, before counting the many other successes.
    checks += [
        Check("original success ~0%", orig_success <= 0.01, f"{orig_success:.1%} of {len(originals)} originals",
              orig_success),
        Check("HER success > original", her_success > orig_success,
              f"{her_success:.1%} vs {orig_success:.1%} (FUTURE, k={k}, her_ratio={her_ratio})", her_success),
        Check("transition count", len(originals) == n_orig and n_relabeled % k == 0
              and count_band[0] <= per_ep <= count_band[1],
              f"{n_steps} -> {per_ep:.1f} per episode (expected {n_steps * (1 + k * her_ratio):.0f}, "
              f"5-sigma band [{count_band[0]:.1f}, {count_band[1]:.1f}])", per_ep),
        Check("HER ratio", ratio_band[0] <= ratio <= ratio_band[1],
              f"{ratio:.3f} relabeled (expected {expected_ratio:.3f}, band [{ratio_band[0]:.3f}, {ratio_band[1]:.3f}])",
              ratio),
    ]
    return checks


def print_checks(title: str, checks: Sequence[Check]) -> bool:
    """Print one PASS/FAIL line per check; return True when all passed."""
    print(title)
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"  [{'PASS' if c.passed else 'FAIL'}] {c.name:<{width}}  {c.detail}")
    ok = all(c.passed for c in checks)
    print(f"{sum(c.passed for c in checks)}/{len(checks)} checks passed" + ("" if ok else " -- FAILURES above"))
    return ok


# --------------------------------------------------------------------------- demo
DEMO_KS = (1, 4, 8, 16)
DEMO_RATIOS = (0.0, 0.5, 0.8, 1.0)


def run_demo(seed: int, n_episodes: int = 20, n_steps: int = 50) -> list[dict[str, float | str]]:
    """Transition counts and success fractions for every strategy x k x her_ratio (same episodes)."""
    episodes = [create_synthetic_episode(n_steps, np.random.default_rng([seed, i])) for i in range(n_episodes)]
    rows: list[dict[str, float | str]] = []
    for strategy in GoalStrategy:
        for k in DEMO_KS:
            for ratio in DEMO_RATIOS:
                rng = np.random.default_rng([seed, k, int(ratio * 100), list(GoalStrategy).index(strategy)])
                flat = [tr for ep in episodes
                        for tr in process_episode_with_her(ep, sparse_reward, strategy, k, ratio, rng)]
                relabeled = [tr for tr in flat if tr.relabeled]
                rows.append({"strategy": strategy.value, "k": k, "her_ratio": ratio,
                             "per_episode": len(flat) / n_episodes, "relabeled_share": len(relabeled) / len(flat),
                             "success": compute_success_fraction(flat),
                             "relabeled_success": compute_success_fraction(relabeled)})
    return rows


def print_demo(rows: Sequence[dict[str, float | str]], n_steps: int = 50) -> None:
    """Aligned text table (plain print keeps it copy-pasteable into notes and READMEs)."""
    print(f"HER on random-walk episodes ({n_steps} steps, desired goal out of reach: original success 0.0%)")
    head = f"{'strategy':<8} {'k':>3} {'ratio':>5} {'transitions/ep':>14} {'relabeled':>9} {'success':>8} {'succ|relab':>10}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['strategy']:<8} {r['k']:>3} {r['her_ratio']:>5.1f} {r['per_episode']:>14.1f} "
              f"{r['relabeled_share']:>9.1%} {r['success']:>8.1%} "
              + (f"{r['relabeled_success']:>10.1%}" if r["relabeled_share"] else f"{'-':>10}"))
    print("Why low? HER amplifies competence: a relabeled step succeeds only if it ended within 5 cm of the new goal,\n"
          "and a random walk drifts away, so only goals from the next few steps pay off (FUTURE > EPISODE > FINAL).")


# --------------------------------------------------------------------------- CLI
MODES = ("verify", "demo", "compare_sb3")
USAGE = "usage: python -m herexp.her.lab verify | demo | compare_sb3  [seed=0]"


@dataclass
class LabArgs:
    """Arguments of ``python -m herexp.her.lab`` (the mode by position or as mode=)."""

    mode: str = ""  # verify (self-check, exit 1 on a FAIL) | demo (strategy x k x her_ratio) | compare_sb3
    seed: int = 0  # seed of every random draw


def main(argv: Sequence[str]) -> int:
    """Entry point of ``python -m herexp.her.lab``; returns the exit status (1 when a check failed)."""
    from omegaconf import OmegaConf  # the lab itself is numpy only; the CLI parser is herexp's

    from herexp import cli

    args = OmegaConf.to_object(cli.parse_typed(LabArgs, argv, USAGE, positional="mode"))
    if not args.mode:  # type: ignore[union-attr]
        raise cli.UsageError(f"give a mode. {USAGE}")
    mode, seed = cli.choice("mode", args.mode, MODES), args.seed  # type: ignore[union-attr]
    if mode == "verify":
        return 0 if print_checks(f"HER lab verify (seed {seed})", run_verify(seed)) else 1
    if mode == "demo":
        print_demo(run_demo(seed))
        return 0
    from herexp.her.compare_sb3 import run_compare_sb3  # lazy: torch/SB3/mujoco only for this mode

    return 0 if print_checks(f"HER lab compare_sb3 (seed {seed})", run_compare_sb3(seed)) else 1


if __name__ == "__main__":
    from herexp.cli import run

    raise SystemExit(run(main))
