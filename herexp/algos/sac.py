"""``algo=sac``: stock Stable-Baselines3 SAC, the reference implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from herexp.algos.base import Algo

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


@dataclass
class Sac(Algo):
    """Soft actor-critic (SB3's ``SAC``); the ``entropy=`` option sets its entropy coefficient."""

    name: ClassVar[str] = "sac"
    uses_entropy: ClassVar[bool] = True

    def model_class(self) -> type[OffPolicyAlgorithm]:
        from stable_baselines3 import SAC

        return SAC
