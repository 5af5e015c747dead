"""algo= options: each builds its own model with HER, loads back from its model.zip, and resumes
bit-exactly from a herexp checkpoint (tiny FetchReach runs, in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import DDPG, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.logger import configure

from herexp import agent, checkpoint, envs
from herexp.fast import FastHerReplayBuffer, FastSAC
from tests.conftest import compose_cfg

TINY_REACH = ["env=reach", "n_envs=1", "algo.learning_starts=50", "algo.batch_size=16", "algo.buffer_size=2000",
              "algo.net_arch=[8,8]", "device=cpu"]


def _build(*overrides: str):  # type: ignore[no-untyped-def]
    cfg = compose_cfg([*TINY_REACH, *overrides])
    model = agent.build_model(cfg, envs.make_train_env(cfg))
    model.set_logger(configure(None, []))
    return model


@pytest.mark.parametrize("overrides,cls,buffer", [
    (["algo=sac_fast"], FastSAC, FastHerReplayBuffer),
    (["algo=sac"], SAC, HerReplayBuffer),
    (["algo=td3"], TD3, HerReplayBuffer),
    (["algo=ddpg"], DDPG, HerReplayBuffer),
    (["algo=tqc"], TQC, HerReplayBuffer),
    (["algo=td3", "her=off"], TD3, DictReplayBuffer),
])
def test_each_option_builds_its_model(overrides: list[str], cls: type, buffer: type) -> None:
    model = _build(*overrides)
    assert type(model) is cls and type(model.replay_buffer) is buffer
    assert (model.gamma, model.tau, model.batch_size, model.learning_starts) == (0.95, 0.005, 16, 50)
    if buffer is not DictReplayBuffer:
        assert model.replay_buffer.n_sampled_goal == 4


def test_td3_and_ddpg_explore_with_their_gaussian_noise() -> None:
    td3 = _build("algo=td3", "algo.action_noise_std=0.3", "algo.policy_delay=3")
    assert td3.action_noise._sigma.tolist() == [0.3, 0.3, 0.3, 0.3] and td3.action_noise._mu.tolist() == [0, 0, 0, 0]
    assert (td3.policy_delay, td3.target_policy_noise, td3.target_noise_clip) == (3, 0.2, 0.5)
    ddpg = _build("algo=ddpg")
    assert ddpg.action_noise._sigma.tolist() == [0.2, 0.2, 0.2, 0.2] and ddpg.policy_delay == 1
    assert ddpg.critic.n_critics == 1 and not hasattr(ddpg, "ent_coef")
    assert _build("algo=ddpg", "algo.action_noise_std=0").action_noise is None


def test_tqc_takes_its_quantiles_and_the_entropy_option() -> None:
    tqc = _build("algo=tqc", "algo.n_quantiles=10", "algo.top_quantiles_to_drop_per_net=3", "entropy=fixed_005")
    assert (tqc.critic.n_quantiles, tqc.critic.n_critics, tqc.top_quantiles_to_drop_per_net) == (10, 2, 3)
    assert tqc.ent_coef_tensor.item() == pytest.approx(0.05) and tqc.log_ent_coef is None
    auto = _build("algo=tqc", "entropy=auto", "entropy.init=0.5")
    assert torch.exp(auto.log_ent_coef).item() == pytest.approx(0.5)


@pytest.mark.parametrize("algo,cls", [("td3", TD3), ("ddpg", DDPG), ("tqc", TQC)])  # SAC's: tests/e2e
def test_saved_model_loads_as_its_class(algo: str, cls: type, tmp_path: Path) -> None:
    model = _build(f"algo={algo}")
    model.save(tmp_path / "model.zip")
    loaded = agent.load_model(tmp_path / "model.zip", "FetchReach-v4", device="cpu")
    assert type(loaded) is cls  # FastSAC checkpoints are SAC checkpoints
    obs = model.get_env().reset()
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def _weights(model) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.parametrize("algo", ["td3", "ddpg", "tqc"])
def test_checkpoint_resumes_bit_exactly(algo: str, tmp_path: Path) -> None:
    """Checkpoint after 70 env steps (past learning_starts 50), continue 20: a fresh model loaded
    from the checkpoint continues to the same weights, noise draws and step counts included."""
    small = ["algo.n_quantiles=5"] if algo == "tqc" else []
    straight = _build(f"algo={algo}", *small)
    straight.learn(70)
    checkpoint.save(tmp_path, straight, [], {})
    straight.learn(20, reset_num_timesteps=False)
    resumed = _build(f"algo={algo}", *small, "seed=7")  # other seed: everything must come from the checkpoint
    checkpoint.load(tmp_path, resumed, [])
    resumed.learn(20, reset_num_timesteps=False)
    assert resumed.num_timesteps == straight.num_timesteps == 90 and resumed._n_updates == straight._n_updates == 40
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight), _weights(resumed)))
