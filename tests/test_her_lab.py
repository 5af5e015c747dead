"""HER relabeling lab (herexp.her.lab): unit tests, the 200-seed verify sweep, determinism,
and the comparison with SB3's HerReplayBuffer on real FetchReach-v4 episodes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from herexp import cli
from herexp.her import lab
from herexp.her.lab import (
    Episode,
    GoalStrategy,
    compute_success_fraction,
    create_synthetic_episode,
    process_episode_with_her,
    relabel_transition,
    run_verify,
    sample_her_goals,
    sparse_reward,
)


@pytest.fixture
def episode() -> Episode:
    return create_synthetic_episode(50, np.random.default_rng(0))


def step_of(episode: Episode, goals: np.ndarray) -> np.ndarray:
    """Index of each goal among the episode's achieved goals (asserts every goal is one of them)."""
    match = np.all(goals[:, None, :] == episode.achieved_goals[None], axis=-1)
    assert match.any(axis=1).all(), "goal not from this episode"
    return match.argmax(axis=1)


# ----------------------------------------------------------------------------- rewards, data
def test_sparse_reward_threshold_and_vectorised() -> None:
    a = np.zeros((4, 3))
    d = np.array([[0.0, 0, 0], [0.049, 0, 0], [0.051, 0, 0], [1.0, 0, 0]])
    np.testing.assert_array_equal(sparse_reward(a, d), [0.0, 0.0, -1.0, -1.0])
    assert sparse_reward(a[0], d[3]) == -1.0 and sparse_reward(a[0], d[1]) == 0.0
    np.testing.assert_array_equal(sparse_reward(a, d, threshold=0.01), [0.0, -1.0, -1.0, -1.0])
    assert not np.signbit(sparse_reward(a[0], a[0]))  # 0.0, not -0.0


def test_synthetic_episode_shapes_and_zero_original_success(episode: Episode) -> None:
    assert len(episode) == 50 and episode.achieved_goals.shape == (50, 3)
    trs = episode.transitions
    assert [tr.done for tr in trs] == [False] * 49 + [True]
    assert all(np.array_equal(a.next_obs, b.obs) for a, b in zip(trs, trs[1:], strict=False))  # one trajectory
    assert all(np.array_equal(tr.achieved_goal, tr.next_obs[:3]) for tr in trs)  # goal reached at next_obs
    assert all(np.array_equal(tr.desired_goal, trs[0].desired_goal) for tr in trs)
    assert compute_success_fraction(episode) == 0.0
    dist = np.linalg.norm(episode.achieved_goals - trs[0].desired_goal, axis=1)
    assert dist.min() > 0.25  # out of reach by construction (goal_margin 0.3 beyond the farthest point)


def test_compute_success_fraction() -> None:
    tr = create_synthetic_episode(4, np.random.default_rng(1)).transitions[0]
    items = [dataclasses.replace(tr, reward=r) for r in (0.0, -1.0, -1.0, 0.0)]
    assert compute_success_fraction(items) == 0.5
    assert compute_success_fraction(items[1:3]) == 0.0 and compute_success_fraction([]) == 0.0


# ----------------------------------------------------------------------------- goal sampling
@pytest.mark.parametrize("strategy", list(GoalStrategy))
@pytest.mark.parametrize("k", [1, 4, 8])
def test_goal_shapes(episode: Episode, strategy: GoalStrategy, k: int) -> None:
    goals = sample_her_goals(episode, 10, strategy, k, np.random.default_rng(0))
    assert goals.shape == (k, 3)
    step_of(episode, goals)  # every strategy samples from this episode's achieved goals


def test_future_only_later_steps_and_last_step_gets_final(episode: Episode) -> None:
    rng = np.random.default_rng(0)
    for t in range(49):
        steps = step_of(episode, sample_her_goals(episode, t, GoalStrategy.FUTURE, 16, rng))
        assert (steps > t).all()
    np.testing.assert_array_equal(step_of(episode, sample_her_goals(episode, 49, GoalStrategy.FUTURE, 4, rng)), [49] * 4)
    # ...and it does reach every later step (uniform over t+1..T-1), not just the next one.
    steps = step_of(episode, sample_her_goals(episode, 45, GoalStrategy.FUTURE, 400, rng))
    assert set(steps) == {46, 47, 48, 49}


def test_final_identical_and_episode_covers_past(episode: Episode) -> None:
    rng = np.random.default_rng(0)
    final = sample_her_goals(episode, 3, GoalStrategy.FINAL, 5, rng)
    assert (final == episode.achieved_goals[-1]).all()
    steps = step_of(episode, sample_her_goals(episode, 25, GoalStrategy.EPISODE, 2000, rng))
    assert steps.min() < 25 < steps.max()  # EPISODE, unlike FUTURE, also uses past goals


# ----------------------------------------------------------------------------- relabeling
def test_relabel_own_goal_is_success_and_far_goal_is_failure(episode: Episode) -> None:
    tr = episode.transitions[20]
    own = relabel_transition(tr, tr.achieved_goal, sparse_reward)
    assert own.reward == 0.0 and own.relabeled
    np.testing.assert_array_equal(own.achieved_goal, tr.achieved_goal)
    np.testing.assert_array_equal(own.desired_goal, tr.achieved_goal)
    assert own.obs is tr.obs and own.action is tr.action and own.next_obs is tr.next_obs
    far = relabel_transition(tr, tr.achieved_goal + 1.0, sparse_reward)
    assert far.reward == -1.0
    assert tr.reward == -1.0 and not tr.relabeled  # the original is untouched (frozen dataclass)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.reward = 0.0  # type: ignore[misc]


# ----------------------------------------------------------------------------- processing
def test_process_counts_and_originals_kept(episode: Episode) -> None:
    rng = np.random.default_rng(0)
    for ratio, expected in ((0.0, 50), (1.0, 250)):
        out = process_episode_with_her(episode, sparse_reward, GoalStrategy.FUTURE, 4, ratio, rng)
        assert len(out) == expected
    out = process_episode_with_her(episode, sparse_reward, GoalStrategy.FUTURE, 4, 0.8, rng)
    originals = [tr for tr in out if not tr.relabeled]
    assert originals == episode.transitions  # same objects, same order
    n_relabeled = len(out) - 50
    assert n_relabeled % 4 == 0 and 154 <= len(out) <= 266  # 50 + 4 * B, B ~ Bin(50, 0.8), 5 sigma
    assert compute_success_fraction(out) > compute_success_fraction(episode) == 0.0
    for tr in out[50:]:
        assert tr.reward == float(sparse_reward(tr.achieved_goal, tr.desired_goal))


def test_process_mean_count_over_many_episodes() -> None:
    rng = np.random.default_rng(7)
    counts = [len(process_episode_with_her(create_synthetic_episode(50, rng), sparse_reward,
                                           GoalStrategy.FUTURE, 4, 0.8, rng)) for _ in range(40)]
    assert abs(np.mean(counts) - 210) < 5 * 4 * np.sqrt(50 * 0.16 / 40)  # 5 sigma of the mean


# ----------------------------------------------------------------------------- verify
def test_verify_passes_for_seeds_0_to_199() -> None:
    failures = {seed: [c.name for c in run_verify(seed) if not c.passed] for seed in range(200)}
    assert {s: f for s, f in failures.items() if f} == {}


def test_verify_detects_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks are not vacuous: typical HER bugs make them fail."""
    real_process, real_sample = lab.process_episode_with_her, lab.sample_her_goals

    def ignores_ratio(ep, fn, strategy, k, her_ratio, rng):  # type: ignore[no-untyped-def]
        return real_process(ep, fn, strategy, k, 1.0, rng)

    monkeypatch.setattr(lab, "process_episode_with_her", ignores_ratio)
    failed = {c.name for c in run_verify(0) if not c.passed}
    assert {"transition count", "HER ratio"} <= failed
    monkeypatch.setattr(lab, "process_episode_with_her", real_process)

    def inclusive_future(ep, t, strategy, k, rng):  # type: ignore[no-untyped-def]
        if strategy is GoalStrategy.FUTURE:
            return ep.achieved_goals[rng.integers(t, len(ep), size=k)]
        return real_sample(ep, t, strategy, k, rng)

    monkeypatch.setattr(lab, "sample_her_goals", inclusive_future)
    assert {c.name for c in run_verify(0) if not c.passed} == {"FUTURE only later steps"}
    assert cli.run(lab.main, ["verify"]) == 1  # the CLI exits non-zero on any FAIL


def test_verify_is_deterministic() -> None:
    assert run_verify(3) == run_verify(3)
    assert [c.value for c in run_verify(3)] != [c.value for c in run_verify(4)]


def test_same_seed_same_numbers_everywhere() -> None:
    def numbers(seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        ep = create_synthetic_episode(50, rng)
        out = process_episode_with_her(ep, sparse_reward, GoalStrategy.EPISODE, 4, 0.5, rng)
        return [len(out), *np.concatenate([tr.desired_goal for tr in out]).tolist()]

    assert numbers(11) == numbers(11) and numbers(11) != numbers(12)


def test_cli_verify_and_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(lab.main, ["verify", "seed=5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HER lab verify (seed 5)\n")
    assert out.count("[PASS]") == 10 and "[FAIL]" not in out
    assert cli.run(lab.main, ["mode=verify", "seed=5"]) == 0  # the mode by name, too
    assert capsys.readouterr().out == out
    rows = lab.run_demo(0, n_episodes=4)
    assert len(rows) == 3 * 4 * 4
    for r in rows:
        assert r["per_episode"] == 50 if r["her_ratio"] == 0 else r["per_episode"] > 50
        assert (r["relabeled_share"] == 0) == (r["her_ratio"] == 0)
    full = {(r["strategy"], r["k"]): r for r in rows if r["her_ratio"] == 1.0}
    assert all(full[s, k]["per_episode"] == 50 * (1 + k) for s, k in full)
    assert cli.run(lab.main, []) == 2  # a mode is required
    assert capsys.readouterr().err == f"error: give a mode. {lab.USAGE}\n"


# ----------------------------------------------------------------------------- SB3
def test_compare_with_sb3_on_real_fetchreach() -> None:
    pytest.importorskip("gymnasium_robotics")
    from herexp.her.compare_sb3 import run_compare_sb3

    checks = run_compare_sb3(seed=1, n_episodes=10, n_envs=2, batch_size=2048)
    assert [c.name for c in checks if not c.passed] == [], [c.detail for c in checks]
    by_name = {c.name: c for c in checks}
    assert by_name["reward == env.compute_reward"].value == 0.0
    assert abs(by_name["relabeled share"].value - 0.8) < 0.01
    assert 0 < by_name["FUTURE goals same episode, t' >= t"].value < 49
