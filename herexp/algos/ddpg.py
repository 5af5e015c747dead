"""``algo=ddpg``: Stable-Baselines3 DDPG, the algorithm of the HER paper (Andrychowicz et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from herexp.algos.base import NoisyAlgo

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


@dataclass
class Ddpg(NoisyAlgo):
    """Deep deterministic policy gradient (SB3's ``DDPG``: one critic, actor updated every step,
    no target smoothing). Explores with Gaussian action noise; no entropy term."""

    name: ClassVar[str] = "ddpg"

    def model_class(self) -> type[OffPolicyAlgorithm]:
        from stable_baselines3 import DDPG

        return DDPG
