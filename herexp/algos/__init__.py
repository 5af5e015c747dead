"""The ``algo=`` options: one class per algorithm, owning the model it builds.

=============  ==========================  =================================================
option         class                       model
=============  ==========================  =================================================
``sac_fast``   :class:`~.sac_fast.SacFast`  herexp's FastSAC + FastHerReplayBuffer (default;
                                           ``overlap_envs``, ``parallel_critics``)
``sac``        :class:`~.sac.Sac`          stock SB3 ``SAC``
=============  ==========================  =================================================

Shared keys live in :class:`~.base.Algo`. Every option trains with ``her=on|off``.
"""

from __future__ import annotations

from typing import Any

from herexp import options
from herexp.algos.base import Algo
from herexp.algos.sac import Sac
from herexp.algos.sac_fast import SacFast

GROUP = "algo"
OPTIONS: dict[str, type[Algo]] = {c.name: c for c in (SacFast, Sac)}

__all__ = ["OPTIONS", "Algo", "Sac", "SacFast", "option", "register"]


def register() -> None:
    """Store every option's schema (``schema/algo/<name>``) in Hydra's ConfigStore."""
    for name, cls in OPTIONS.items():
        options.register(GROUP, name, cls)


def option(node: Any) -> Algo:
    """The algo option of a composed ``cfg.algo`` node."""
    built = options.build(node, GROUP)
    if not isinstance(built, Algo):
        raise ValueError(f"algo._target_={node[options.TARGET]!r} is not an algo option. Fix: algo=sac_fast")
    return built
