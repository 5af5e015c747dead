"""Exploration knobs: uniformly random actions (``algo.random_action_prob``) on the fast and the
stock SAC path, observation clipping (``algo.clip_obs``), both off by default with exactly the
algorithm's own classes; the ``sweep=push_takeoff`` screen and its arms."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.logger import configure

from herexp import agent, checkpoint, config, envs, identity, jobs, sweep
from herexp.algos.explore import RandomActions, replace_with_random
from herexp.fast import FastSAC
from tests.conftest import compose_cfg

TINY_REACH = ["env=reach", "n_envs=2", "algo.learning_starts=100", "algo.batch_size=16", "algo.buffer_size=2000",
              "algo.net_arch=[8,8]", "device=cpu"]


def _build(*overrides: str):  # type: ignore[no-untyped-def]
    cfg = compose_cfg([*TINY_REACH, *overrides])
    model = agent.build_model(cfg, envs.make_train_env(cfg))
    model.set_logger(configure(None, []))
    return model


# --- replace_with_random -------------------------------------------------------------------------

def test_replacement_rate_and_values_with_a_fixed_seed() -> None:
    space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    space.seed(0)
    policy = np.full((10_000, 4), 2.0, np.float32)  # outside the box: a replaced row is easy to tell
    action, buffer_action, pick = replace_with_random(policy, policy * 10, 0.3, space, lambda a: a / 2)
    replaced = (action != 2.0).all(axis=1)
    assert 0.28 < pick.mean() < 0.32 and np.array_equal(replaced, pick)
    assert (np.abs(action[pick]) <= 1).all() and (action[~pick] == 2.0).all()
    assert np.array_equal(buffer_action[pick], action[pick] / 2) and (buffer_action[~pick] == 20.0).all()
    assert (policy == 2.0).all()  # the inputs are not changed in place


def test_probability_zero_replaces_nothing() -> None:
    space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    space.seed(0)
    policy = np.zeros((1000, 2), np.float32)
    action, buffer_action, pick = replace_with_random(policy, policy, 0.0, space, lambda a: a)
    assert not pick.any() and action is policy and buffer_action is policy


# --- the knob on the models ----------------------------------------------------------------------

@pytest.mark.parametrize("algo,cls", [("sac_fast", FastSAC), ("sac", SAC)])
def test_off_by_default_is_the_algorithms_own_class(algo: str, cls: type) -> None:
    """Default 0: the model is the option's class itself (SB3's _sample_action, no extra draw)."""
    model = _build(f"algo={algo}")
    assert type(model) is cls and not isinstance(model, RandomActions)
    assert compose_cfg([]).algo.random_action_prob == 0.0


@pytest.mark.parametrize("algo,cls", [("sac_fast", FastSAC), ("sac", SAC), ("td3", TD3)])
def test_random_actions_at_the_given_rate_after_learning_starts(algo: str, cls: type) -> None:
    model = _build(f"algo={algo}", "algo.random_action_prob=0.3")
    assert isinstance(model, cls) and isinstance(model, RandomActions) and model.random_action_prob == 0.3
    model._last_obs = model.env.reset()
    zeros = (np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32))
    with mock.patch.object(cls, "_sample_action", return_value=zeros):  # the policy's action: all zeros
        model.num_timesteps = 100
        rows = np.concatenate([model._sample_action(100, None, 2)[0] for _ in range(1000)])
        model.num_timesteps = 99  # warm-up: SB3's own uniform actions, nothing replaced
        warmup = np.concatenate([model._sample_action(100, None, 2)[0] for _ in range(50)])
    share = (rows != 0).any(axis=1).mean()
    assert 0.26 < share < 0.34 and (warmup == 0).all()


@pytest.mark.parametrize("algo", ["sac_fast", "sac"])
def test_checkpoint_with_random_actions_resumes_bit_exactly(algo: str, tmp_path: Path) -> None:
    """Checkpoint after 150 env steps (past learning_starts 100), continue 40: the resumed model
    draws the same random actions and ends with the same weights."""
    straight = _build(f"algo={algo}", "algo.random_action_prob=0.5")
    straight.learn(150)
    checkpoint.save(tmp_path, straight, [], {})
    straight.learn(40, reset_num_timesteps=False)
    resumed = _build(f"algo={algo}", "algo.random_action_prob=0.5", "seed=7")
    checkpoint.load(tmp_path, resumed, [])
    resumed.learn(40, reset_num_timesteps=False)
    assert resumed.num_timesteps == straight.num_timesteps == 190 and resumed._n_updates == straight._n_updates
    assert all(torch.equal(a.detach(), b.detach())
               for a, b in zip(straight.policy.parameters(), resumed.policy.parameters()))


def test_model_zip_of_a_random_action_run_loads_as_sac(tmp_path: Path) -> None:
    model = _build("algo.random_action_prob=0.3")
    model.save(tmp_path / "model.zip")
    assert type(agent.load_model(tmp_path / "model.zip", "FetchReach-v4", device="cpu")) is SAC


# --- clip_obs --------------------------------------------------------------------------------------

def test_clip_obs_sets_vecnormalize_and_null_keeps_its_default() -> None:
    assert envs.make_train_env(compose_cfg([*TINY_REACH, "algo.normalize=true"])).clip_obs == 10.0
    assert envs.make_train_env(compose_cfg([*TINY_REACH, "algo.normalize=true", "algo.clip_obs=5"])).clip_obs == 5.0


@pytest.mark.parametrize("overrides,message", [
    (["algo.random_action_prob=1.0"], r"algo.random_action_prob=1.0 is invalid: must be in \[0, 1\)"),
    (["algo.random_action_prob=-0.1"], r"algo.random_action_prob=-0.1 is invalid"),
    (["algo.clip_obs=5"], r"algo.clip_obs=5.0 is invalid: must be null unless algo.normalize=true.*"
                          r"Fix: algo.normalize=true"),
    (["algo.normalize=true", "algo.clip_obs=0"], r"algo.clip_obs=0.0 is invalid: must be > 0"),
])
def test_bad_knob_values_fail_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.validate(compose_cfg(overrides))


def test_knobs_label_a_job_folder() -> None:
    cfg = compose_cfg(["algo.random_action_prob=0.3", "algo.normalize=true", "algo.clip_obs=5", "seed=11"])
    assert identity.job_dir_name(cfg, ["algo.random_action_prob=0.3", "algo.clip_obs=5", "seed=11"]) == \
        "rand0.3_clip5_seed11"


# --- sweep=push_takeoff ----------------------------------------------------------------------------

TAKEOFF = ["baseline_seed11", "rand0.3_seed11", "ls20000_seed11", "n_envs8_seed11", "entschedule_seed11",
           "clip5_seed11"]


def test_push_takeoff_lists_one_job_per_lever(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m herexp.sweep list sweep=push_takeoff`` (in-process): 6 jobs, these folders."""
    monkeypatch.chdir(tmp_path)
    assert sweep.main(["list", "sweep=push_takeoff"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "6 jobs in multirun/push_takeoff"
    assert [line.split()[2] for line in lines[:-1]] == [f"multirun/push_takeoff/{j}" for j in TAKEOFF]


# arm -> the plain overrides it stands for: an arm composes to exactly that run, and its name is
# the folder those overrides would get
ARMS = {"baseline": [], "rand0.3": ["algo.random_action_prob=0.3"], "ls20000": ["algo.learning_starts=20000"],
        "n_envs8": ["n_envs=8"], "entschedule": ["entropy=schedule"], "clip5": ["algo.clip_obs=5"]}


def test_each_arm_is_its_lever_over_push_fast_at_300k() -> None:
    composer = jobs.composer()
    listed = dict((job[0], folder) for job, folder in sweep.job_dirs(["sweep=push_takeoff"])[1])
    for arm, plain_overrides in ARMS.items():
        cfg = composer.job(["sweep=push_takeoff", f"arm={arm}", "seed=11"])
        plain = composer.job(["sweep=push_takeoff", *plain_overrides, "seed=11"])
        assert config.to_container(cfg) == config.to_container(plain), arm
        assert (cfg.study, cfg.total_steps, cfg.seed, cfg.n_envs) == \
            ("push_takeoff", 300_000, 11, 8 if arm == "n_envs8" else 4), arm
        assert (cfg.early_stop.success, cfg.early_stop.patience, cfg.algo.learning_rate, cfg.algo.normalize) == \
            (0.95, 2, 1e-3, True)  # the push_fast preset underneath
        assert listed[f"arm={arm}"] == f"{arm}_seed11"
        if plain_overrides:
            assert identity.job_dir_name(plain, [*plain_overrides, "seed=11"]) == f"{arm}_seed11"
