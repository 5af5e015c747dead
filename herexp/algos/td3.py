"""``algo=td3``: Stable-Baselines3 TD3 (twin critics, delayed actor updates, target smoothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from herexp.algos.base import NoisyAlgo
from herexp.options import check

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from herexp.entropy import EntropyOption


@dataclass
class Td3(NoisyAlgo):
    """Twin delayed DDPG (Fujimoto et al. 2018; SB3's ``TD3`` and its defaults). No entropy term."""

    name: ClassVar[str] = "td3"
    policy_delay: int = 2  # critic updates per actor (and target) update
    target_policy_noise: float = 0.2  # std of the noise smoothing the target action
    target_noise_clip: float = 0.5  # clip of that noise

    def validate(self) -> None:
        super().validate()
        check(self.policy_delay >= 1, "algo.policy_delay", self.policy_delay, ">= 1", "algo.policy_delay=2")
        check(self.target_policy_noise >= 0, "algo.target_policy_noise", self.target_policy_noise, ">= 0",
              "algo.target_policy_noise=0.2")
        check(self.target_noise_clip >= 0, "algo.target_noise_clip", self.target_noise_clip, ">= 0",
              "algo.target_noise_clip=0.5")

    def model_class(self) -> type[OffPolicyAlgorithm]:
        from stable_baselines3 import TD3

        return TD3

    def model_kwargs(self, env: VecEnv, entropy: EntropyOption) -> dict[str, Any]:
        return {**super().model_kwargs(env, entropy), "policy_delay": self.policy_delay,
                "target_policy_noise": self.target_policy_noise, "target_noise_clip": self.target_noise_clip}
