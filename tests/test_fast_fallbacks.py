"""Where the fast path cannot reproduce SB3 it must not run: image observations that SB3
normalises, feature extractors with their own forward. And it must not change what SB3 leaves
alone: critic_target's mode, a user's own Adam implementation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.sac.policies import SACPolicy

from herexp.fast import FastSAC, nets
from herexp.fast.sac import _set_adam_impl

BOX = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
IMAGE = spaces.Box(0, 255, (8, 8, 3), dtype=np.uint8)


def _policy(obs_space: spaces.Space, **kw: object) -> SACPolicy:
    return SACPolicy(obs_space, BOX, lambda _: 1e-3, net_arch=[8, 8], **kw)  # type: ignore[arg-type]


def test_image_observations_normalised_by_sb3_use_sb3s_update() -> None:
    assert nets.supported(_policy(IMAGE)) is None  # SB3 divides by 255; the functional path would not
    assert nets.supported(_policy(IMAGE, normalize_images=False)) is not None
    assert nets.supported(_policy(spaces.Dict({"img": IMAGE, "vec": BOX}))) is None
    assert nets.supported(_policy(BOX)) is not None


class DoublingExtractor(FlattenExtractor):
    """A subclass with its own forward: isinstance says FlattenExtractor, the maths differs."""

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return 2 * super().forward(observations)


def test_extractor_subclass_with_its_own_forward_uses_sb3s_update() -> None:
    assert nets.supported(_policy(BOX, features_extractor_class=DoublingExtractor)) is None
    assert nets.supported(_policy(BOX, features_extractor_class=FlattenExtractor)) is not None


class _Env(gym.Env):
    observation_space, action_space = BOX, BOX

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return np.zeros(4, np.float32), 0.0, False, False, {}


def test_training_mode_leaves_critic_target_in_eval_mode() -> None:
    model = FastSAC("MlpPolicy", _Env(), learning_starts=10, batch_size=8, policy_kwargs={"net_arch": [8]})
    model._fast_nets()  # installs the lazy set_training_mode
    model.policy.set_training_mode(True)
    assert model.policy.actor.training and model.policy.critic.training
    assert not model.policy.critic_target.training  # SB3 never puts the target in train mode
    model.policy.set_training_mode(False)
    assert not model.policy.actor.training and not model.policy.critic_target.training


def test_adam_implementation_chosen_by_the_user_is_kept() -> None:
    mine = th.optim.Adam([th.nn.Parameter(th.zeros(3))], foreach=False)
    default = th.optim.Adam([th.nn.Parameter(th.zeros(3))])
    _set_adam_impl([mine, default], "fused")
    assert mine.param_groups[0]["foreach"] is False and mine.param_groups[0]["fused"] is None
    assert default.param_groups[0]["fused"] is True or default.param_groups[0]["foreach"] is True
    _set_adam_impl([mine, default], "default")
    assert mine.param_groups[0]["foreach"] is False
    assert default.param_groups[0]["foreach"] is None and default.param_groups[0]["fused"] is None
