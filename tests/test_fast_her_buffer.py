"""FastHerReplayBuffer samples what SB3's HerReplayBuffer samples: valid slots only, relabelled
goals from the same episode's future, SB3's rewards, the same distribution.

Two fixtures: ``filled_buffer`` is a buffer filled by real FetchReach-v4 training (wrapped
around, but stopped on an episode boundary), for distribution checks; ``hard_buffer`` is
written transition by transition so that every hard case is present and every expected value
can be written literally: an unfinished episode at the write head of each env, a circular
buffer that wrapped around (an old episode partly overwritten, a valid episode that wraps from
the last row to the first), and episodes of different lengths per env.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from herexp.fast import FastHerReplayBuffer, FastSAC
from tests.test_fast import ENV_ID, KEYS, _model


@pytest.fixture(scope="module")
def filled_buffer() -> FastHerReplayBuffer:
    """A wrapped-around FastHerReplayBuffer (2 envs, 300 rows each, 900 vector steps: 18 whole
    50-step episodes per env, so it stops on an episode boundary; see hard_buffer)."""
    model = _model(FastSAC, rb=FastHerReplayBuffer, buffer_size=600, learning_starts=10**6)
    model.learn(1800)
    assert model.replay_buffer.full
    return model.replay_buffer


def _recorded_sample(rb: FastHerReplayBuffer, batch: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """sample() plus the (row, env) of each batch row in batch order (real first, then virtual)."""
    seen = {}
    orig = FastHerReplayBuffer.sample_indices

    def spy(self: FastHerReplayBuffer, n: int) -> tuple[np.ndarray, np.ndarray]:
        seen["idx"] = orig(self, n)
        return seen["idx"]

    rb.sample_indices = spy.__get__(rb)  # type: ignore[method-assign]
    try:
        data = rb.sample(batch)
    finally:
        del rb.sample_indices
    rows, envs = seen["idx"]
    nv = int(rb.her_ratio * batch)
    order = np.r_[np.arange(nv, batch), np.arange(nv)]
    return data, rows[order], envs[order], np.arange(batch) >= batch - nv


def test_her_samples_keep_sb3_invariants(filled_buffer: FastHerReplayBuffer) -> None:
    """(b) Valid slots only; k=4 -> int(0.8 B) relabeled; future goals from the same episode at
    the same or a later step; rewards = compute_reward(next achieved goal, desired goal)."""
    rb = filled_buffer
    compute_reward = rb.env.envs[0].get_wrapper_attr("compute_reward")
    for _ in range(20):
        data, rows, envs, virtual = _recorded_sample(rb, 256)
        assert (rb.ep_length[rows, envs] > 0).all()
        assert virtual.sum() == int(0.8 * 256)
        obs = {k: v.numpy() for k, v in data.observations.items()}
        nxt = {k: v.numpy() for k, v in data.next_observations.items()}
        np.testing.assert_array_equal(obs["desired_goal"], nxt["desired_goal"])
        expected = compute_reward(nxt["achieved_goal"], nxt["desired_goal"], {})
        np.testing.assert_allclose(data.rewards.numpy().ravel(), expected)
        np.testing.assert_array_equal(obs["desired_goal"][~virtual], rb.observations["desired_goal"][rows, envs][~virtual])
        for i in np.flatnonzero(virtual):
            start, length = rb.ep_start[rows[i], envs[i]], rb.ep_length[rows[i], envs[i]]
            t = (rows[i] - start) % rb.buffer_size
            later = (start + np.arange(t, length)) % rb.buffer_size
            cands = rb.next_observations["achieved_goal"][later, envs[i]]
            assert np.isclose(cands, obs["desired_goal"][i]).all(axis=1).any()


def test_her_sampler_matches_sb3_distribution(filled_buffer: FastHerReplayBuffer) -> None:
    """Same storage, SB3's sampler vs ours: slot frequencies and success rate agree."""
    rb = filled_buffer
    n = 40_000
    np.random.seed(1)
    rows, envs = rb.sample_indices(n)
    valid = np.flatnonzero(rb.ep_length > 0)
    np.random.seed(2)
    ref = np.random.choice(valid, size=n, replace=True)
    got = np.ravel_multi_index((rows, envs), rb.ep_length.shape)
    assert np.isin(got, valid).all()
    # uniform over the valid slots: the mean slot index and spread agree with SB3's draws
    assert abs(got.mean() - ref.mean()) < 0.02 * valid.max()
    assert abs(got.std() - ref.std()) < 0.02 * valid.max()
    np.random.seed(3)
    fast_success = np.mean([(rb.sample(256).rewards.numpy() == 0).mean() for _ in range(60)])
    np.random.seed(3)
    sb3_success = np.mean([(HerReplayBuffer.sample(rb, 256).rewards.numpy() == 0).mean() for _ in range(60)])
    assert fast_success == pytest.approx(sb3_success, abs=0.03)


def test_sample_flat_is_sample_flattened(filled_buffer: FastHerReplayBuffer) -> None:
    rb = filled_buffer
    np.random.seed(5)
    data = rb.sample(64)
    np.random.seed(5)
    flat = rb.sample_flat(64, keys=KEYS)
    expected = th.cat([data.observations[k].float() for k in KEYS], dim=1)
    assert th.equal(flat.observations, expected)
    assert th.equal(flat.rewards, data.rewards.float()) and th.equal(flat.actions, data.actions)


# ------------------------------------------------------------------ the hard cases, literally
# 2 envs x 10 rows, 19 vector steps written (step s -> row s % 10; write head at row 9).
# env 0 ends episodes at steps 3, 7, 11, 15: steps 16-18 are unfinished; the episode of steps
#   8-11 (rows 8, 9, 0, 1) lost row 8 to step 18, so SB3 invalidated all of it; 12-15 is valid.
# env 1 ends episodes at steps 8, 12, 16: 9-12 wraps (rows 9, 0, 1, 2) and 13-16 (rows 3-6) are
#   valid; steps 17-18 are unfinished; 0-8 was overwritten.
STEPS, ROWS = 19, 10
DONE_AT = {0: (3, 7, 11, 15), 1: (8, 12, 16)}
VALID_EPISODES = {0: [(12, 15)], 1: [(9, 12), (13, 16)]}  # (first step, last step) per env
VALID_SLOTS = [[0, 1], [1, 1], [2, 0], [2, 1], [3, 0], [3, 1], [4, 0], [4, 1], [5, 0], [5, 1], [6, 1], [9, 1]]
REAL = {(0, 12), (0, 13), (0, 14), (0, 15), *((1, s) for s in range(9, 17))}  # (env, step) of valid slots
# SB3's "future" is inclusive: step s of episode (a, b) may be relabelled with the goal reached at g, s <= g <= b
FUTURE = {(0, 12, 12), (0, 12, 13), (0, 12, 14), (0, 12, 15), (0, 13, 13), (0, 13, 14), (0, 13, 15),
          (0, 14, 14), (0, 14, 15), (0, 15, 15),
          (1, 9, 9), (1, 9, 10), (1, 9, 11), (1, 9, 12), (1, 10, 10), (1, 10, 11), (1, 10, 12), (1, 11, 11),
          (1, 11, 12), (1, 12, 12),
          (1, 13, 13), (1, 13, 14), (1, 13, 15), (1, 13, 16), (1, 14, 14), (1, 14, 15), (1, 14, 16), (1, 15, 15),
          (1, 15, 16), (1, 16, 16)}  # (env, step, goal's step)
NOWHERE = -1.0  # the stored desired goal (-1, -1, -1): no achieved goal is near it


def _write(rb: HerReplayBuffer, steps: int, done_at: dict[int, tuple[int, ...]]) -> HerReplayBuffer:
    """Transition ``s`` of env ``e``: action (s, e, 0, 0); goal reached after it (s, e, 0)."""
    for s in range(steps):
        def obs(t: int) -> dict[str, np.ndarray]:
            return {"observation": np.array([[t, e] + [0] * 8 for e in (0, 1)], dtype=float),
                    "achieved_goal": np.array([[t, e, 0] for e in (0, 1)], dtype=float),
                    "desired_goal": np.full((2, 3), NOWHERE)}

        done = np.array([s in done_at[e] for e in (0, 1)])
        rb.add(obs(s - 1), obs(s), np.array([[s, e, 0, 0] for e in (0, 1)], dtype=np.float32),
               np.full(2, -1.0), done, [{}, {}])
    return rb


def _buffer(cls: type[HerReplayBuffer], steps: int = STEPS,
            done_at: dict[int, tuple[int, ...]] = DONE_AT) -> HerReplayBuffer:
    env = make_vec_env(ENV_ID, n_envs=2, seed=0)
    rb = cls(2 * ROWS, env.observation_space, env.action_space, env, device="cpu", n_envs=2, n_sampled_goal=4)
    return _write(rb, steps, done_at)


@pytest.fixture(scope="module")
def hard_buffer() -> FastHerReplayBuffer:
    return _buffer(FastHerReplayBuffer)  # type: ignore[return-value]


def _triples(data: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(env, step) of every sampled transition, the goal's (env, step), rewards; real rows first."""
    actions = data.actions.numpy()  # type: ignore[attr-defined]
    goal = data.observations["desired_goal"].numpy()  # type: ignore[attr-defined]
    return actions[:, 1].astype(int), actions[:, 0].astype(int), goal, data.rewards.numpy().ravel()  # type: ignore[attr-defined]


def test_hard_fixture_has_sb3s_bookkeeping(hard_buffer: FastHerReplayBuffer) -> None:
    rb = hard_buffer
    assert (rb.pos, rb.full) == (9, True)
    assert np.argwhere(rb.ep_length > 0).tolist() == VALID_SLOTS
    assert rb.ep_length[[9, 0, 1, 2], 1].tolist() == [4, 4, 4, 4] and rb.ep_start[0, 1] == 9  # the wrapped episode


@pytest.mark.parametrize("cls", [FastHerReplayBuffer, HerReplayBuffer])
def test_samples_come_from_valid_slots_and_goals_from_the_same_episodes_future(cls: type) -> None:
    """Real rows only from the 12 valid slots (never the unfinished or overwritten episodes);
    relabelled goals exactly SB3's inclusive future of the same episode; reward 0 only for the
    transition's own goal. Stock SB3 on the same storage gives the same sets."""
    rb = _buffer(cls)
    np.random.seed(0)
    slots, pairs, n_virtual = set(), set(), int(0.8 * 256)
    for _ in range(60):
        env, step, goal, rewards = _triples(rb.sample(256))
        real = slice(0, 256 - n_virtual)
        slots |= set(zip(env.tolist(), step.tolist()))
        assert (goal[real] == NOWHERE).all() and (rewards[real] == -1.0).all()
        v_env, v_step, v_goal, v_rew = env[real.stop:], step[real.stop:], goal[real.stop:], rewards[real.stop:]
        assert (v_goal[:, 1] == v_env).all() and (v_goal[:, 2] == 0).all()  # a goal this env reached
        pairs |= set(zip(v_env.tolist(), v_step.tolist(), v_goal[:, 0].astype(int).tolist()))
        np.testing.assert_array_equal(v_rew, np.where(v_goal[:, 0] == v_step, 0.0, -1.0))
    assert slots == REAL
    assert pairs == FUTURE


def test_rejection_sampling_draws_uniformly_over_the_valid_slots(hard_buffer: FastHerReplayBuffer) -> None:
    """Uniform draws over 20 slots, 8 of them invalid, redrawn: each valid slot gets ~1/12."""
    np.random.seed(1)
    rows, envs = hard_buffer.sample_indices(24_000)
    flat = rows * 2 + envs
    counts = np.bincount(flat, minlength=2 * ROWS)
    valid = [r * 2 + e for r, e in VALID_SLOTS]
    assert counts[np.setdiff1d(np.arange(2 * ROWS), valid)].tolist() == [0] * 8
    assert np.abs(counts[valid] - 2000).max() < 5 * np.sqrt(2000 * 11 / 12)  # 5 sigma of a binomial


def test_unfinished_first_episodes_before_the_buffer_wraps() -> None:
    """Not wrapped yet (6 steps written): env 0 finished steps 0-3, env 1 finished nothing.
    Only env 0's rows 0-3 are valid; draws range over the 12 written slots only."""
    rb = _buffer(FastHerReplayBuffer, steps=6, done_at={0: (3,), 1: ()})
    assert (rb.pos, rb.full) == (6, False)
    assert np.argwhere(rb.ep_length > 0).tolist() == [[0, 0], [1, 0], [2, 0], [3, 0]]
    np.random.seed(2)
    env, step, goal, _ = _triples(rb.sample(512))
    assert set(zip(env.tolist(), step.tolist())) == {(0, 0), (0, 1), (0, 2), (0, 3)}
    assert set(goal[512 - int(0.8 * 512):, 0].astype(int).tolist()) == {0, 1, 2, 3}  # relabelled rows


def test_few_valid_slots_fall_back_to_sb3s_scan() -> None:
    """One valid slot of 20: rejection gives up after its rounds and SB3's scan draws it."""
    rb = _buffer(FastHerReplayBuffer, steps=10, done_at={0: (0,), 1: ()})
    assert np.argwhere(rb.ep_length > 0).tolist() == [[0, 0]]
    np.random.seed(3)
    rows, envs = rb.sample_indices(256)
    assert set(zip(rows.tolist(), envs.tolist())) == {(0, 0)}
    empty = _buffer(FastHerReplayBuffer, steps=3, done_at={0: (), 1: ()})
    with pytest.raises(RuntimeError, match="Unable to sample before the end of the first episode"):
        empty.sample_indices(8)
