"""herexp.fast: FastSAC's update equals SAC.train, checkpoints load with SAC.load, and the
overlapped vec env keeps SB3's update count (FastHerReplayBuffer: tests/test_fast_her_buffer.py).

Timing is never asserted here (``make bench`` measures speed).
"""

from __future__ import annotations

import copy
import os

import gymnasium as gym
import gymnasium_robotics
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from herexp.fast import FastHerReplayBuffer, FastSAC

gym.register_envs(gymnasium_robotics)

ENV_ID = "FetchReach-v4"
KEYS = ["achieved_goal", "desired_goal", "observation"]


def _train_on_same_batch(stock: SAC, fast: SAC, torch_seed: int, gradient_steps: int) -> None:
    """Both models train on one frozen batch from the same RNG state (stock SB3 vs FastSAC)."""
    batch = stock.replay_buffer.sample(64)
    stock.replay_buffer.sample = lambda *a, **k: batch  # type: ignore[method-assign]
    fast.replay_buffer = stock.replay_buffer
    for model in (stock, fast):
        th.manual_seed(torch_seed)
        model.train(gradient_steps=gradient_steps, batch_size=64)


def _model(cls: type[SAC], ent_coef: object = "auto", n_envs: int = 2, rb: type = HerReplayBuffer, **kw) -> SAC:
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=0)
    args = dict(replay_buffer_class=rb, replay_buffer_kwargs={"n_sampled_goal": 4}, learning_starts=100,
                batch_size=64, policy_kwargs={"net_arch": [64, 64]}, ent_coef=ent_coef, seed=0, device="cpu",
                learning_rate=1e-3, buffer_size=5_000)  # small: SB3's HER buffer allocates a dict per slot
    args.update(kw)
    model = cls("MultiInputPolicy", env, **args)
    model.set_logger(configure(None, []))
    return model


def _clone_state(src: SAC, dst: SAC) -> None:
    """Same weights and optimizer states (deep copies: Adam state tensors must not be shared)."""
    dst.policy.load_state_dict(src.policy.state_dict())
    dst.actor.optimizer.load_state_dict(copy.deepcopy(src.actor.optimizer.state_dict()))
    dst.critic.optimizer.load_state_dict(copy.deepcopy(src.critic.optimizer.state_dict()))
    if src.ent_coef_optimizer is not None:
        with th.no_grad():
            dst.log_ent_coef.copy_(src.log_ent_coef)
        dst.ent_coef_optimizer.load_state_dict(copy.deepcopy(src.ent_coef_optimizer.state_dict()))
    else:
        dst.ent_coef_tensor.copy_(src.ent_coef_tensor)


def _assert_same_update(stock: SAC, fast: SAC, ent_coef: object) -> None:
    ref, got = stock.policy.state_dict(), fast.policy.state_dict()
    for name in ref:
        assert th.allclose(ref[name], got[name], atol=1e-5, rtol=0), name
    if stock.log_ent_coef is not None:
        assert th.allclose(stock.log_ent_coef, fast.log_ent_coef, atol=1e-5)
    keys = ["train/ent_coef", "train/actor_loss", "train/critic_loss"]
    keys += ["train/ent_coef_loss"] if isinstance(ent_coef, str) else []
    for key in keys:
        assert fast.logger.name_to_value[key] == pytest.approx(stock.logger.name_to_value[key], abs=1e-5), key


@pytest.mark.parametrize("ent_coef,interval,parallel", [("auto", 1, False), ("auto_0.3", 2, True), (0.1, 1, True),
                                                        (0.05, 2, False)])
def test_fast_update_equals_sb3(ent_coef: object, interval: int, parallel: bool) -> None:
    """(a) Same weights + same batch + same RNG: parameters and losses agree within 1e-5
    (serial, and with the twin critics on two threads)."""
    stock = _model(SAC, ent_coef, target_update_interval=interval)
    stock.learn(160)  # past learning_starts: Adam states are non-trivial
    fast = _model(FastSAC, ent_coef, target_update_interval=interval, parallel_critics=parallel)
    _clone_state(stock, fast)
    np.random.seed(0)
    _train_on_same_batch(stock, fast, torch_seed=123, gradient_steps=3)
    _assert_same_update(stock, fast, ent_coef)


def test_fast_update_equals_sb3_chapter_sizes() -> None:
    """The chapter's sizes ([256, 256], batch 256) on two threads, and a critic-optimizer hook
    (which makes FastSAC fall back to one ``opt.step()``) on the serial path."""
    stock = _model(SAC, "auto", policy_kwargs={"net_arch": [256, 256]}, batch_size=256)
    stock.learn(400)
    for parallel, hooked in ((True, False), (False, True)):
        ref = _model(SAC, "auto", policy_kwargs={"net_arch": [256, 256]}, batch_size=256)
        _clone_state(stock, ref)
        fast = _model(FastSAC, "auto", policy_kwargs={"net_arch": [256, 256]}, batch_size=256,
                      parallel_critics=parallel)
        _clone_state(stock, fast)
        calls: list[int] = []
        if hooked:
            fast.critic.optimizer.register_step_post_hook(lambda *_, c=calls: c.append(1))
        batch = stock.replay_buffer.sample(256)
        for model in (ref, fast):
            model.replay_buffer = copy.copy(stock.replay_buffer)
            model.replay_buffer.sample = lambda *a, b=batch, **k: b  # type: ignore[method-assign]
            th.manual_seed(7)
            model.train(gradient_steps=2, batch_size=256)
        _assert_same_update(ref, fast, "auto")
        assert len(calls) == (2 if hooked else 0)


def test_fast_update_equals_sb3_on_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU form of the actor loss's critic gradient (all rows, zero where not the minimum)."""
    from herexp.fast import update

    monkeypatch.setattr(update, "row_subsets", lambda device: False)
    stock = _model(SAC, "auto")
    stock.learn(160)
    fast = _model(FastSAC, "auto", parallel_critics=True)
    _clone_state(stock, fast)
    _train_on_same_batch(stock, fast, torch_seed=11, gradient_steps=2)
    _assert_same_update(stock, fast, "auto")


def test_fast_update_equals_sb3_three_critics() -> None:
    """``n_critics=3``: the pool runs critics 1 and 2; the minimum is over all three."""
    kw = {"policy_kwargs": {"net_arch": [64, 64], "n_critics": 3}}
    stock = _model(SAC, "auto", **kw)
    stock.learn(160)
    fast = _model(FastSAC, "auto", parallel_critics=True, **kw)
    _clone_state(stock, fast)
    _train_on_same_batch(stock, fast, torch_seed=5, gradient_steps=2)
    _assert_same_update(stock, fast, "auto")


def test_fast_update_equals_sb3_without_her() -> None:
    """HER off, flat Box observations (MlpPolicy + plain ReplayBuffer): same update."""
    models = []
    for cls in (SAC, FastSAC):
        model = cls("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=1, seed=0), learning_starts=100, batch_size=64,
                    policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu", buffer_size=1000)
        model.set_logger(configure(None, []))
        models.append(model)
    stock, fast = models
    stock.learn(150)
    _clone_state(stock, fast)
    _train_on_same_batch(stock, fast, torch_seed=3, gradient_steps=2)
    for (name, a), b in zip(stock.policy.state_dict().items(), fast.policy.state_dict().values(), strict=True):
        assert th.allclose(a, b, atol=1e-5, rtol=0), name


@pytest.mark.parametrize("optimizer_impl,direct_adam", [("default", False), ("foreach", True), ("fused", False)])
def test_adam_levers_change_speed_not_the_update(optimizer_impl: str, direct_adam: bool) -> None:
    """FastSAC's Adam levers (the benchmark ablation's steps) give SB3's update; each is really
    used: the param-group flags name the kernel, and direct_adam=False calls opt.step() itself."""
    stock = _model(SAC, "auto")
    stock.learn(160)
    fast = _model(FastSAC, "auto", optimizer_impl=optimizer_impl, direct_adam=direct_adam)
    _clone_state(stock, fast)
    steps: list[int] = []
    step = fast.critic.optimizer.step
    fast.critic.optimizer.step = lambda *a, **k: (steps.append(1), step(*a, **k))[1]  # type: ignore[method-assign]
    _train_on_same_batch(stock, fast, torch_seed=9, gradient_steps=2)
    _assert_same_update(stock, fast, "auto")
    group = fast.critic.optimizer.param_groups[0]
    assert (group["fused"], group["foreach"]) == {"default": (None, None), "foreach": (None, True),
                                                  "fused": (True, None)}[optimizer_impl]
    assert len(steps) == (0 if direct_adam else 2)


def test_unknown_adam_implementation_is_refused() -> None:
    with pytest.raises(ValueError, match="optimizer_impl='fast'"):
        _model(FastSAC, "auto", optimizer_impl="fast")


def test_entropy_writes_and_hooks_are_honoured() -> None:
    """Fixed mode reads ent_coef_tensor each call; auto mode steps the same optimizer (hooks fire)."""
    fixed = _model(FastSAC, 0.1, n_envs=1, rb=FastHerReplayBuffer)
    fixed.learn(120)
    fixed.ent_coef_tensor.fill_(0.37)
    fixed.train(gradient_steps=2, batch_size=32)
    assert fixed.logger.name_to_value["train/ent_coef"] == pytest.approx(0.37)
    auto = _model(FastSAC, "auto", n_envs=1, rb=FastHerReplayBuffer)
    auto.learn(120)
    floor = float(np.log(0.9))
    calls = []

    def clamp(opt: th.optim.Optimizer, args: object, kwargs: object) -> None:
        calls.append(1)
        with th.no_grad():
            auto.log_ent_coef.clamp_(min=floor)

    auto.ent_coef_optimizer.register_step_post_hook(clamp)
    auto.log_ent_coef.data.fill_(floor)
    auto.train(gradient_steps=5, batch_size=32)
    assert len(calls) == 5 and auto.log_ent_coef.item() >= floor - 1e-7
    assert "train/ent_coef_loss" in auto.logger.name_to_value


def test_fast_checkpoint_loads_with_sac_load(tmp_path: object) -> None:
    """A FastSAC checkpoint is a SAC checkpoint: SAC.load restores identical weights."""
    model = _model(FastSAC, rb=FastHerReplayBuffer, n_envs=1)
    model.learn(130)
    assert model._n_updates > 0
    path = f"{tmp_path}/fast.zip"
    model.save(path)
    env = make_vec_env(ENV_ID, n_envs=1)
    loaded = SAC.load(path, env=env, device="cpu", custom_objects={"buffer_size": 1})
    assert type(loaded) is SAC
    for (name, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name
    assert all(g.get("foreach") is None for g in loaded.critic.optimizer.param_groups)
    obs = env.reset()
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0],
                               atol=1e-6)


class _Trace(BaseCallback):
    """Records, at every env step, how many updates the model has done."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[int] = []

    def _on_step(self) -> bool:
        self.updates.append(self.model._n_updates)
        return True


def _traced_run(overlap: bool) -> tuple[list[tuple[int, int]], list[int], int]:
    """(buffer pos, num_timesteps) seen by each update, updates seen by each callback, total."""
    from herexp.fast.vec_env import make_overlapped_vec_env

    env = make_overlapped_vec_env(ENV_ID, n_envs=2, seed=0) if overlap else make_vec_env(ENV_ID, n_envs=2, seed=0)
    try:
        model = FastSAC("MultiInputPolicy", env, replay_buffer_class=FastHerReplayBuffer, learning_starts=100,
                        batch_size=32, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu",
                        buffer_size=1000)
        seen: list[tuple[int, int]] = []
        train_now = model._train_now

        def spy(gradient_steps: int, batch_size: int) -> None:
            seen.append((model.replay_buffer.pos, model.num_timesteps))
            train_now(gradient_steps, batch_size)

        model._train_now = spy  # type: ignore[method-assign]
        trace = _Trace()
        model.learn(200, callback=trace)
        if overlap:
            assert env.step_hook is None and model.__dict__.get("_pending") is None
            assert env.get_attr("spec")[1].id == ENV_ID
            assert env.env_method("compute_reward", np.zeros(3), np.ones(3), {}, indices=[1])[0] == -1.0
            assert env.compute_reward(np.zeros((2, 3)), np.zeros((2, 3)), {}).tolist() == [0.0, 0.0]  # local copy
            assert env.reset()["observation"].shape == (2, 10)
        return seen, trace.updates, model._n_updates
    finally:
        env.close()


def test_overlapped_updates_see_sb3_data() -> None:
    """Overlapped stepping: every update samples the same buffer state (same stored transitions)
    as in SB3's order, callbacks see the same number of updates, and the update count matches."""
    ref_seen, ref_updates, ref_total = _traced_run(overlap=False)
    seen, updates, total = _traced_run(overlap=True)
    assert total == ref_total == (200 - 100) // 2
    assert seen == ref_seen
    assert updates == ref_updates


def test_fast_action_sampling_equals_sb3() -> None:
    """FastSAC._sample_action draws the same actions as SAC._sample_action (same weights and RNG)."""
    stock = _model(SAC, n_envs=2)
    fast = _model(FastSAC, n_envs=2)
    for model in (stock, fast):
        model.learn(120)  # past learning_starts, so actions come from the policy
    _clone_state(stock, fast)
    fast._last_obs = stock._last_obs
    th.manual_seed(7)
    ref = stock._sample_action(learning_starts=100, n_envs=2)
    th.manual_seed(7)
    got = fast._sample_action(learning_starts=100, n_envs=2)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("env_id", ["FetchReach-v4", "FetchPush-v4", "FetchPickAndPlace-v4", "FetchSlide-v4"])
def test_fetch_obs_patch_is_output_identical(env_id: str) -> None:
    """herexp.fast.fetch_obs returns exactly gymnasium-robotics' observations (values, shapes, dtypes)."""
    from herexp.fast import fetch_obs

    def rollout() -> list[dict[str, np.ndarray]]:
        env = gym.make(env_id)
        env.action_space.seed(0)
        out = [env.reset(seed=0)[0]]
        for _ in range(60):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            out.append(obs)
            if term or trunc:
                out.append(env.reset()[0])
        env.close()
        return out

    def fallback_used(*args: object) -> None:
        raise AssertionError("the vectorised path fell back to the original")

    fetch_obs.disable()
    ref = rollout()
    with fetch_obs.enabled():
        saved, fetch_obs._ORIGINAL = fetch_obs._ORIGINAL, fallback_used
        try:
            got = rollout()
        finally:
            fetch_obs._ORIGINAL = saved
    assert not fetch_obs.is_enabled()
    for a, b in zip(ref, got, strict=True):
        for key in a:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_critic_pool_is_recreated_in_a_forked_child() -> None:
    """A forked child gets a working pool of its own (the parent's thread does not exist there)."""
    from herexp.fast import sac

    parent_pool = sac._critic_pool()
    assert parent_pool.submit(lambda: 1).result(timeout=10) == 1
    pid = os.fork()
    if pid == 0:  # child: exit code says whether its own pool ran the task
        pool = sac._critic_pool()
        os._exit(0 if pool is not parent_pool and pool.submit(lambda: 42).result(timeout=10) == 42 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
