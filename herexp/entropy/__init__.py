"""SAC's entropy coefficient: the ``entropy=`` options and how they act on a running model.

* :mod:`herexp.entropy.options` — one class per option (``Fixed``, ``Auto``, ``AutoFloor``,
  ``Schedule``, ``Adaptive``, ``NoEntropy``): keys, SB3 arguments, callbacks, checks, run-name label.
* :mod:`herexp.entropy.control` — the coefficient the loss reads, the linear schedule, the
  adaptive controller, the hard floor and the callback that writes the coefficient.
"""

from herexp.entropy.options import (
    OPTIONS,
    Adaptive,
    Auto,
    AutoFloor,
    EntropyOption,
    Fixed,
    NoEntropy,
    Schedule,
    option,
)

__all__ = ["OPTIONS", "Adaptive", "Auto", "AutoFloor", "EntropyOption", "Fixed", "NoEntropy", "Schedule", "option"]
