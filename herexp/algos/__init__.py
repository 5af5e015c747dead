"""The ``algo=`` options: one class per algorithm, owning the model it builds.

=============  ==========================  =================================================
option         class                       model
=============  ==========================  =================================================
``sac_fast``   :class:`~.sac_fast.SacFast`  herexp's FastSAC + FastHerReplayBuffer (default;
                                           ``overlap_envs``, ``parallel_critics``)
``sac``        :class:`~.sac.Sac`          stock SB3 ``SAC``
``td3``        :class:`~.td3.Td3`          SB3 ``TD3`` (``action_noise_std``, ``policy_delay``, ...)
``ddpg``       :class:`~.ddpg.Ddpg`        SB3 ``DDPG``, the HER paper's algorithm (``action_noise_std``)
``tqc``        :class:`~.tqc.Tqc`          sb3-contrib ``TQC`` (``n_quantiles``, ``top_quantiles_to_drop_per_net``)
=============  ==========================  =================================================

Shared keys live in :class:`~.base.Algo`. Every option trains with ``her=on|off``; the
``entropy=`` options apply to SAC, fast SAC and TQC, and ``algo=td3`` / ``algo=ddpg`` select
``entropy: none`` in their defaults list. :func:`saved_model_class` tells which class a
``model.zip`` belongs to, so any run's checkpoint loads.
"""

from __future__ import annotations

from typing import Any

from herexp import options
from herexp.algos.base import Algo, NoisyAlgo
from herexp.algos.ddpg import Ddpg
from herexp.algos.sac import Sac
from herexp.algos.sac_fast import SacFast
from herexp.algos.saved import saved_model_class
from herexp.algos.td3 import Td3
from herexp.algos.tqc import Tqc
from herexp.entropy import EntropyOption

GROUP = "algo"
OPTIONS: dict[str, type[Algo]] = {c.name: c for c in (SacFast, Sac, Td3, Ddpg, Tqc)}

__all__ = ["OPTIONS", "Algo", "Ddpg", "NoisyAlgo", "Sac", "SacFast", "Td3", "Tqc", "check_entropy", "option",
           "register", "saved_model_class"]


def register() -> None:
    """Store every option's schema (``schema/algo/<name>``) in Hydra's ConfigStore."""
    options.register_all(GROUP, OPTIONS)


def option(node: Any) -> Algo:
    """The algo option of a composed ``cfg.algo`` node."""
    return options.build_as(node, GROUP, Algo, "algo=sac_fast")


def check_entropy(algo: Algo, entropy: EntropyOption) -> None:
    """Entropy options mean something only for SAC-like algorithms; TD3/DDPG take ``entropy: none``."""
    with_entropy = ", ".join(n for n, c in OPTIONS.items() if c.uses_entropy)
    if algo.uses_entropy:
        options.check(entropy.name != "none", "entropy", entropy.name, f"an entropy option with algo={algo.name} "
                      "(it learns with an entropy coefficient)", "entropy=auto")
    else:
        options.check(entropy.name == "none", "entropy", entropy.name, f"none with algo={algo.name} ({algo.name} "
                      f"has no entropy coefficient; entropy options apply to algo={with_entropy})",
                      f"leave out entropy= (algo={algo.name} selects entropy=none)")
