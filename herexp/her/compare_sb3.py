"""Check Stable-Baselines3's ``HerReplayBuffer`` against the lab, on real FetchReach-v4 episodes.

We fill SB3's buffer with random-action episodes (as SB3's own off-policy loop would), sample one
large batch, recover which stored transition each sample came from, and check:

1. every sampled reward equals ``env.compute_reward(achieved, desired, info)`` (max |diff| = 0),
   and the lab's ``relabel_transition`` gives the same reward for the same goal;
2. the relabeled share matches ``n_sampled_goal``: SB3 relabels k/(k+1) of a batch (k=4 -> 0.8);
   a sample is "relabeled" when its desired goal differs from the one stored for its transition;
3. every relabeled goal is an achieved goal of the *same* episode at the same or a later step
   (SB3's "future" is inclusive: t' >= t; the lab's FUTURE uses t' > t).

SB3 samples with the global ``np.random``; we seed it, so the batch is reproducible.
Run with ``python -m herexp.her.lab compare_sb3 [seed=N]``.
"""

from __future__ import annotations

import gymnasium as gym
import gymnasium_robotics
import numpy as np
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv

from herexp.her.lab import Check, Episode, Transition, binomial_band, relabel_transition, sparse_reward

gym.register_envs(gymnasium_robotics)

ENV_ID = "FetchReach-v4"
EPISODE_STEPS = 50  # FetchReach never terminates early; TimeLimit truncates at 50


def fill_buffer(n_episodes: int, n_envs: int, seed: int, n_sampled_goal: int = 4,
                strategy: str = "future") -> tuple[HerReplayBuffer, DummyVecEnv]:
    """Random-action FetchReach episodes in an SB3 ``HerReplayBuffer`` (n_episodes in total)."""
    vec_env = DummyVecEnv([lambda: gym.make(ENV_ID) for _ in range(n_envs)])
    vec_env.seed(seed)
    steps = EPISODE_STEPS * (n_episodes // n_envs)
    buffer = HerReplayBuffer(steps * n_envs + 100 * n_envs, vec_env.observation_space, vec_env.action_space,
                             env=vec_env, device="cpu", n_envs=n_envs, n_sampled_goal=n_sampled_goal,
                             goal_selection_strategy=strategy)
    rng = np.random.default_rng(seed)
    obs = vec_env.reset()
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, size=(n_envs, *vec_env.action_space.shape)).astype(np.float32)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        # A VecEnv auto-resets: for a finished env new_obs is already the next episode's first
        # obs, the real last obs is in info["terminal_observation"] (SB3's _store_transition does this).
        next_obs = {key: value.copy() for key, value in new_obs.items()}
        for i in np.flatnonzero(dones):
            for key in next_obs:
                next_obs[key][i] = infos[i]["terminal_observation"][key]
        buffer.add(obs, next_obs, actions, rewards, dones, infos)
        obs = new_obs
    return buffer, vec_env


def sample_with_indices(buffer: HerReplayBuffer, batch_size: int,
                        seed: int) -> tuple[DictReplayBufferSamples, np.ndarray, np.ndarray, np.ndarray]:
    """``buffer.sample`` plus the (row, env) index of every sample, by replaying its np.random draws.

    SB3 2.9.2 ``sample``: one ``np.random.choice`` over valid flat indices, the first
    ``int(her_ratio * batch)`` become virtual (relabeled), and the result is returned as
    ``cat(real, virtual)``. Replaying that with the same seed gives the indices in output order.
    """
    np.random.seed(seed)
    samples = buffer.sample(batch_size)
    np.random.seed(seed)
    valid = np.flatnonzero(buffer.ep_length > 0)
    rows, envs = np.unravel_index(np.random.choice(valid, size=batch_size, replace=True), buffer.ep_length.shape)
    n_virtual = int(buffer.her_ratio * batch_size)
    order = np.r_[np.arange(n_virtual, batch_size), np.arange(n_virtual)]  # real part first
    return samples, rows[order], envs[order], order < n_virtual


def lab_episode(buffer: HerReplayBuffer, row: int, env: int) -> tuple[int, Episode]:
    """The stored episode containing (row, env), as a lab ``Episode``; also its start row."""
    start, length = int(buffer.ep_start[row, env]), int(buffer.ep_length[row, env])
    obs, nxt = buffer.observations, buffer.next_observations
    return start, Episode([
        Transition(obs=obs["observation"][r, env], action=buffer.actions[r, env], reward=float(buffer.rewards[r, env]),
                   next_obs=nxt["observation"][r, env], done=bool(buffer.dones[r, env]),
                   achieved_goal=nxt["achieved_goal"][r, env], desired_goal=obs["desired_goal"][r, env])
        for r in range(start, start + length)  # buffer is never full here, so no wrap-around
    ])


def run_compare_sb3(seed: int = 0, n_episodes: int = 20, n_envs: int = 2, batch_size: int = 4096,
                    n_sampled_goal: int = 4) -> list[Check]:
    """Fill, sample, and return the three checks (plus the index-recovery sanity check)."""
    buffer, vec_env = fill_buffer(n_episodes, n_envs, seed, n_sampled_goal)
    try:
        samples, rows, envs, virtual = sample_with_indices(buffer, batch_size, seed)
        ob = {key: value.numpy() for key, value in samples.observations.items()}
        next_ob = {key: value.numpy() for key, value in samples.next_observations.items()}
        rewards = samples.rewards.numpy().ravel()
        # 0. Our index recovery must be right, or nothing below means anything.
        same_rows = (np.array_equal(ob["observation"], buffer.observations["observation"][rows, envs])
                     and np.array_equal(samples.actions.numpy(), buffer.actions[rows, envs])
                     and np.array_equal(next_ob["achieved_goal"], buffer.next_observations["achieved_goal"][rows, envs]))

        # 1. Rewards: recompute with the env's own compute_reward, exactly as SB3 calls it.
        env_rewards = vec_env.env_method("compute_reward", next_ob["achieved_goal"], ob["desired_goal"],
                                         [{} for _ in rewards], indices=[0])[0]
        env_diff = float(np.abs(rewards - env_rewards).max())
        lab_diff = float(np.abs(rewards - sparse_reward(next_ob["achieved_goal"], ob["desired_goal"])).max())

        # 2. Relabeled share: a sample is relabeled iff its goal is not the stored one.
        relabeled = np.any(ob["desired_goal"] != buffer.observations["desired_goal"][rows, envs], axis=1)
        share, expected = float(relabeled.mean()), buffer.her_ratio
        lo, hi = binomial_band(batch_size, expected)  # 5 sigma, in case SB3 ever flips coins

        # 3. FUTURE: match each relabeled goal to the achieved goals of its own episode.
        unwrapped = vec_env.envs[0].unwrapped

        def fetch_reward(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
            return unwrapped.compute_reward(achieved, desired, {})

        episodes: dict[tuple[int, int], tuple[int, Episode]] = {}  # (episode start row, env) -> episode
        offsets, lab_reward_diff = [], 0.0
        for i in np.flatnonzero(relabeled):
            key = (int(buffer.ep_start[rows[i], envs[i]]), int(envs[i]))
            if key not in episodes:  # build each lab Episode once, not once per sample
                episodes[key] = lab_episode(buffer, rows[i], envs[i])
            start, episode = episodes[key]
            t = int(rows[i]) - start
            hits = np.flatnonzero(np.all(episode.achieved_goals == ob["desired_goal"][i], axis=1))
            offsets.append(int(hits[hits >= t][0]) - t if (hits >= t).any() else -1)
            lab = relabel_transition(episode.transitions[t], ob["desired_goal"][i], fetch_reward)
            lab_reward_diff = max(lab_reward_diff, abs(lab.reward - float(rewards[i])))
        off = np.array(offsets)
        real_success, virtual_success = float((rewards[~relabeled] == 0).mean()), float((rewards[relabeled] == 0).mean())
    finally:
        vec_env.close()

    n_eps = int((buffer.ep_length[:buffer.pos] > 0).sum() // EPISODE_STEPS)
    return [
        Check("index recovery", same_rows, f"{batch_size} samples from {n_eps} real {ENV_ID} episodes "
              f"({n_envs} envs); obs/action rows match the buffer"),
        Check("reward == env.compute_reward", env_diff == 0.0 and lab_diff == 0.0 and lab_reward_diff == 0.0,
              f"max |diff| {env_diff:g} (env), {lab_diff:g} (lab sparse_reward), {lab_reward_diff:g} "
              f"(lab relabel_transition); success real {real_success:.1%}, relabeled {virtual_success:.1%}",
              env_diff),
        Check("relabeled share", bool(relabeled[virtual].all() and not relabeled[~virtual].any()
                                      and lo / batch_size <= share <= hi / batch_size),
              f"{share:.4f} (n_sampled_goal={n_sampled_goal} -> expected {expected:.4f}, "
              f"band [{lo / batch_size:.4f}, {hi / batch_size:.4f}])", share),
        Check("FUTURE goals same episode, t' >= t", bool(off.size and (off >= 0).all()),
              f"{off.size} relabeled goals matched, offset t'-t in [{off.min()}, {off.max()}], mean {off.mean():.1f}, "
              f"{(off == 0).mean():.1%} at t'=t (SB3 is inclusive)", float(off.mean())),
    ]
