"""``algo=tqc``: sb3-contrib's TQC, SAC with truncated quantile critics (Kuznetsov et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from herexp.algos.base import Algo
from herexp.options import check

if TYPE_CHECKING:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

    from herexp.entropy import EntropyOption


@dataclass
class Tqc(Algo):
    """SAC's actor and entropy coefficient (the ``entropy=`` option applies) with ``n_critics``
    distributional critics of ``n_quantiles`` quantiles each; the target drops the
    ``top_quantiles_to_drop_per_net`` x ``n_critics`` largest (overestimation control)."""

    name: ClassVar[str] = "tqc"
    uses_entropy: ClassVar[bool] = True
    n_quantiles: int = 25  # quantiles per critic
    top_quantiles_to_drop_per_net: int = 2  # per critic, dropped from the pooled target quantiles
    n_critics: int = 2

    def validate(self) -> None:
        super().validate()
        check(self.n_quantiles >= 1, "algo.n_quantiles", self.n_quantiles, ">= 1", "algo.n_quantiles=25")
        check(self.n_critics >= 1, "algo.n_critics", self.n_critics, ">= 1", "algo.n_critics=2")
        check(0 <= self.top_quantiles_to_drop_per_net < self.n_quantiles, "algo.top_quantiles_to_drop_per_net",
              self.top_quantiles_to_drop_per_net, f"in [0, algo.n_quantiles={self.n_quantiles})",
              "algo.top_quantiles_to_drop_per_net=2")

    def model_class(self) -> type[OffPolicyAlgorithm]:
        from sb3_contrib import TQC

        return TQC

    def policy_kwargs(self) -> dict[str, Any]:
        return {**super().policy_kwargs(), "n_quantiles": self.n_quantiles, "n_critics": self.n_critics}

    def model_kwargs(self, env: VecEnv, entropy: EntropyOption) -> dict[str, Any]:
        return {**super().model_kwargs(env, entropy), "top_quantiles_to_drop_per_net": self.top_quantiles_to_drop_per_net}
