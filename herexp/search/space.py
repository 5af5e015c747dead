"""The search space, in Hydra's override grammar, as Optuna distributions.

A parameter is one override whose value is a sweep: ``choice(a,b,...)`` (or ``a,b``),
``range(start,stop[,step])`` (``stop`` excluded, as in Hydra's basic sweeper),
``interval(lo,hi)`` and ``tag(log, interval(lo,hi))``. Everything else is a fixed override that
every trial gets. The space comes from ``hydra.sweeper.params`` (a sweep file) followed by the
command line, which wins for a key given in both. Hydra's own ``OverridesParser`` reads it.

An interval over an integer key (``algo.learning_starts``) samples integers; over any other key,
floats. A trial's overrides are the fixed ones plus ``key=value`` for each sampled value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException

from herexp.cli import UsageError, did_you_mean

FUNCTIONS = ("choice", "range", "interval", "tag")
GRAMMAR = "choice(a,b,...), range(start,stop[,step]), interval(lo,hi) or tag(log, interval(lo,hi))"
SEED = "seed"
_PLAIN = re.compile(r"^[\w.\-/:+]*$")


def describe_parse_error(exc: Exception, line: str | None = None) -> str:
    """One line for Hydra's parse error of an override (``line``, when Hydra does not name it):
    the override and what is wrong with it."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    m = re.match(r"Error parsing override '(.*)'$", lines[0])
    if m is None:  # a syntax error: Hydra names the input, not the override
        where = f"{line}: " if line else ""
        return f"{where}{lines[0]} (override grammar; a search space takes {GRAMMAR})"
    line = m.group(1)
    reason = lines[1] if len(lines) > 1 else ""
    reason = re.sub(r"^\w+ while evaluating '.*?': ", "", reason.strip())
    unknown = re.match(r"Unknown function '(\w+)'", reason)
    if unknown:
        name = unknown.group(1)
        return f"{line}: unknown function {name}(){did_you_mean(name, FUNCTIONS)}; a search space takes {GRAMMAR}"
    if "empty choice" in reason:
        key = line.split("=", 1)[0]
        return f"{line}: an empty choice. Fix: list the values, e.g. {key}=choice(a,b)"
    return f"{line}: {reason}" if reason else line


def encode(value: Any) -> str:
    """A value as an override writes it (``0.95``, ``fixed_005``, ``[64,64]``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text if _PLAIN.match(text) or text.startswith("[") else "'" + text.replace("'", "\\'") + "'"


def _scalar(value: Any) -> Any:
    """A choice value Optuna can store: scalars as they are, lists and dicts as override text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    from hydra.core.override_parser.types import Transformer

    return Transformer.encode(value)


@dataclass
class Space:
    """The parameters (key -> Optuna distribution) and the fixed overrides of a search."""

    params: dict[str, Any] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)  # key -> the distribution as written
    keys: dict[str, str] = field(default_factory=dict)  # key -> its override key element (+key, ~key)

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then ``key=value`` per parameter."""
        return [*self.fixed, *(f"{self.keys[k]}={encode(values[k])}" for k in self.params)]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each parameter, for ``sampler=grid``; a continuous one is a UsageError."""
        from optuna.distributions import CategoricalDistribution

        out: dict[str, list[Any]] = {}
        for key, d in self.params.items():
            if isinstance(d, CategoricalDistribution):
                out[key] = list(d.choices)
            elif d.step is not None and not getattr(d, "log", False):
                n = int(round((d.high - d.low) / d.step)) + 1
                out[key] = [type(d.low)(d.low + i * d.step) for i in range(n)]
            else:
                raise UsageError(f"{key}={self.text[key]} is continuous: hydra.sweeper.sampler=grid needs a "
                                 f"discrete space. Fix: {key}=choice(...), or hydra.sweeper.sampler=tpe")
        return out

    def grid_size(self) -> int:
        """Points of the grid (``sampler=grid``)."""
        return math.prod(len(v) for v in self.grid().values())

    def probes(self) -> list[dict[str, Any]]:
        """Parameter values to compose before any trial: each parameter's extremes (every value of
        a choice), the others at their first value."""
        ends = {k: _ends(d) for k, d in self.params.items()}
        first = {k: v[0] for k, v in ends.items()}
        out = [dict(first)]
        for key, values in ends.items():
            out += [{**first, key: v} for v in values[1:]]
        return out

    def to_json(self) -> dict[str, Any]:
        """The space as the study records it: each parameter's text and Optuna distribution."""
        from optuna.distributions import distribution_to_json

        return {"params": {k: {"text": self.text[k], "distribution": distribution_to_json(d)}
                           for k, d in self.params.items()}, "fixed": list(self.fixed)}


def _ends(d: Any) -> list[Any]:
    from optuna.distributions import CategoricalDistribution

    if isinstance(d, CategoricalDistribution):
        return list(d.choices)
    return [d.low, d.high]


def sweeper_lines(params: Mapping[str, Any] | None) -> list[str]:
    """``hydra.sweeper.params`` of a sweep file as override lines."""
    return [f"{k}={v}" for k, v in (params or {}).items()]


def parse_space(lines: Sequence[str], value_of: Callable[[str], Any] = lambda key: None,
                seeds_per_trial: int = 1) -> Space:
    """The space of override ``lines`` (sweep-file params first, then the command line).

    ``value_of(key)`` is the key's value in the composed base config (its type decides whether
    an interval samples integers). Every problem is one :class:`UsageError`."""
    parsed: dict[str, Override] = {}
    for line in lines:
        try:
            (o,) = OverridesParser.create().parse_overrides([line])
        except HydraException as exc:
            raise UsageError(describe_parse_error(exc, line)) from exc
        parsed.pop(o.key_or_group, None)
        parsed[o.key_or_group] = o  # a later line wins, in its own place
    space = Space()
    for key, o in parsed.items():
        if o.is_delete() or not o.is_sweep_override():
            space.fixed.append(str(o.input_line))
            continue
        if key == SEED and seeds_per_trial > 1:
            raise UsageError(f"{o.input_line}: seed is in the search space and hydra.sweeper.seeds_per_trial="
                             f"{seeds_per_trial} runs seeds seed..seed+{seeds_per_trial - 1} per trial. Fix: drop "
                             f"{key}= from the space (seed=N sets the first seed), or hydra.sweeper.seeds_per_trial=1")
        space.params[key] = distribution(o, value_of(key))
        space.keys[key] = o.get_key_element()
        space.text[key] = str(o.input_line).split("=", 1)[1]
    return space


def distribution(o: Override, base_value: Any = None) -> Any:
    """The Optuna distribution of one sweep override (``base_value``: the key's composed value)."""
    from optuna.distributions import CategoricalDistribution

    value, line = o.value(), o.input_line
    tags = set(getattr(value, "tags", None) or ())
    if isinstance(value, IntervalSweep):
        return _interval(line, value, tags, base_value)
    if tags:
        raise UsageError(f"{line}: tag({', '.join(sorted(tags))}, ...) applies to interval(lo,hi) only. "
                         f"Fix: {o.key_or_group}=tag(log, interval(lo,hi))")
    if isinstance(value, ChoiceSweep):
        choices = list(dict.fromkeys(_scalar(v) for v in value.list))
        if not choices:
            raise UsageError(f"{line}: an empty choice. Fix: list the values, e.g. {o.key_or_group}=choice(a,b)")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        return _range(line, value)
    raise UsageError(f"{line}: {type(value).__name__.lower()} is not a search distribution; a search space "
                     f"takes {GRAMMAR}")


def _range(line: str, value: RangeSweep) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    start, stop, step = value.start, value.stop, value.step
    if step == 0 or (stop - start) * step <= 0:
        raise UsageError(f"{line}: an empty range (start {start}, stop {stop} excluded, step {step}). "
                         f"Fix: range(start,stop) with start < stop")
    n = math.ceil((stop - start) / step - 1e-9)
    last = start + (n - 1) * step
    low, high = (start, last) if step > 0 else (last, start)
    if all(isinstance(x, int) for x in (start, stop, step)):
        return IntDistribution(int(low), int(high), step=abs(int(step)))
    if n == 1:
        return FloatDistribution(float(low), float(low))
    return FloatDistribution(float(low), float(high), step=abs(float(step)))


def _interval(line: str, value: IntervalSweep, tags: set[str], base_value: Any) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    unknown = sorted(tags - {"log"})
    if unknown:
        raise UsageError(f"{line}: unknown tag {unknown[0]}{did_you_mean(unknown[0], ['log'])}; "
                         f"an interval takes tag(log, interval(lo,hi))")
    lo, hi, log = float(value.start), float(value.end), "log" in tags
    key = line.split("=", 1)[0]
    if lo >= hi:
        raise UsageError(f"{line}: interval lo {value.start:g} must be below hi {value.end:g}. "
                         f"Fix: {key}=interval({min(lo, hi):g},{max(lo, hi) if lo != hi else 2 * hi or 1:g})")
    if log and lo <= 0:
        raise UsageError(f"{line}: tag(log, ...) needs lo > 0 (got {value.start:g}). "
                         f"Fix: {key}=tag(log, interval({hi / 100:g},{hi:g}))")
    if isinstance(base_value, int) and not isinstance(base_value, bool):
        low, high = math.ceil(lo), math.floor(hi)
        if low >= high:
            raise UsageError(f"{line}: {key} is an integer and the interval holds fewer than two integers. "
                             f"Fix: {key}=choice({low},{low + 1})")
        return IntDistribution(low, high, log=log)
    return FloatDistribution(lo, hi, log=log)
