"""Command-line conventions shared by every entrypoint: typed ``key=value`` arguments and
one-line errors.

A mistake in what the user typed is a :class:`UsageError`: the entrypoint prints
``error: <message>`` on stderr and exits with status 2, with no traceback (set
``HYDRA_FULL_ERROR=1`` to see one). A run stopped by Ctrl-C exits with status 130.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """An input error the user can fix: printed as one ``error:`` line, exit status 2."""


def full_errors() -> bool:
    """``HYDRA_FULL_ERROR=1``: show the traceback behind a usage error (for bug reports)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean algo.gamma?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config (``algo.gamma``, ``logger.wandb.mode``), leaves and nodes."""
    out: list[str] = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            full = f"{prefix}{key}"
            out.append(full)
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                out += flat_keys(child, full + ".")
    return out


def describe_config_error(exc: OmegaConfBaseException, known: Iterable[str] = ()) -> str:
    """One line for an OmegaConf error: the full key, what is wrong, and a suggestion."""
    key = getattr(exc, "full_key", None) or ""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not in struct" in text or "not in '" in text or type(exc).__name__ == "ConfigAttributeError":
        return f"unknown key {key}{did_you_mean(key, known)}"
    return f"{key}: {text}" if key else text


def parse_typed(schema: type, argv: Sequence[str], usage: str) -> DictConfig:
    """``key=value`` arguments merged onto a struct-mode dataclass schema: unknown keys and
    wrong types are :class:`UsageError` naming the key (with a did-you-mean)."""
    base = OmegaConf.structured(schema)
    OmegaConf.set_struct(base, True)
    bad = [a for a in argv if "=" not in a or a.startswith("-")]
    if bad:
        raise UsageError(f"unexpected argument {bad[0]!r}: arguments are key=value. {usage}")
    try:
        given = OmegaConf.from_dotlist(list(argv))
    except OmegaConfBaseException as exc:
        raise UsageError(f"{describe_config_error(exc)}. {usage}") from exc
    known = flat_keys(base)
    for key in flat_keys(given):
        if key not in known and not any(key.startswith(k + ".") for k in known if _is_free(base, k)):
            raise UsageError(f"unknown key {key}{did_you_mean(key, known)}")
    try:
        return OmegaConf.merge(base, given)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise UsageError(describe_config_error(exc, known)) from exc


def _is_free(base: DictConfig, key: str) -> bool:
    """A key whose value may be any mapping or list (``seeds=[...]``): its children are not checked."""
    node = OmegaConf.select(base, key, throw_on_missing=False)
    return isinstance(node, ListConfig) or node is None


def run(main: Callable[[Sequence[str]], Any], argv: Sequence[str] | None = None) -> int:
    """Call an entrypoint's ``main(argv)``; turn :class:`UsageError` and Ctrl-C into one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        main(args)
    except UsageError as exc:
        if full_errors():
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
