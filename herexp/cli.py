"""Command-line conventions shared by every entrypoint: typed ``key=value`` arguments and
one-line errors.

Each tool (evaluate, video, aggregate, bench, the HER lab) declares its arguments as a
dataclass and parses them with :func:`parse_typed`: ``key=value`` pairs (unknown keys and
wrong types fail, naming the key), optionally positional arguments collected into one field
(the aggregator's folders, the lab's mode), and ``--help`` / ``-h``, which prints the usage
and every key with its default and one-line doc.

A mistake in what the user typed is a :class:`UsageError`: the entrypoint prints
``error: <message>`` on stderr and exits with status 2, with no traceback (set
``HYDRA_FULL_ERROR=1`` to see one). A run stopped by Ctrl-C exits with status 130.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
HELP_FLAGS = ("-h", "--help")
# ``key=value`` when the text before the first "=" is a dotted name; anything else (a folder such
# as multirun/x/her=True,seed=0, or ./her=True for one in the current folder) is positional
_PAIR = re.compile(r"[A-Za-z_][\w.]*=")


class UsageError(Exception):
    """An input error the user can fix: printed as one ``error:`` line, exit status 2."""


class HelpRequested(Exception):  # noqa: N818 - a request, not an error
    """``--help`` was given: :func:`run` prints the text on stdout and exits with status 0."""


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


def choice(key: str, value: str, options: Sequence[str]) -> str:
    """``value`` when it is one of ``options``; else a :class:`UsageError` listing them."""
    if value not in options:
        raise UsageError(f"{key}={value} is not one of {', '.join(options)}{did_you_mean(value, options)}")
    return value


def comma_list(key: str, value: Any, options: Sequence[str]) -> list[str]:
    """``a,b`` (or a list) as a list of names, each one of ``options``; empty/None -> ``[]``."""
    items = value if isinstance(value, (list, tuple, ListConfig)) else str(value or "").split(",")
    return [choice(key, str(v).strip(), options) for v in items if str(v).strip()]


def parse_typed(schema: type, argv: Sequence[str], usage: str, positional: str | None = None) -> DictConfig:
    """``key=value`` arguments merged onto a struct-mode dataclass schema: unknown keys and
    wrong types are :class:`UsageError` naming the key (with a did-you-mean).

    ``positional`` names the field that takes the arguments that are not ``key=value``: all
    of them when it is a list field (folders), at most one otherwise (a mode). ``-h`` /
    ``--help`` raises :class:`HelpRequested` with :func:`help_text`.
    """
    if any(a in HELP_FLAGS for a in argv):
        raise HelpRequested(help_text(schema, usage))
    base = OmegaConf.structured(schema)
    OmegaConf.set_struct(base, True)
    pairs = [a for a in argv if _PAIR.match(a)]
    loose = [a for a in argv if not _PAIR.match(a)]
    bad = [a for a in loose if a.startswith("-") or positional is None]
    if bad:
        raise UsageError(f"unexpected argument {bad[0]!r}: arguments are key=value. {usage}")
    try:
        given = OmegaConf.from_dotlist(pairs)
    except OmegaConfBaseException as exc:
        raise UsageError(f"{describe_config_error(exc)}. {usage}") from exc
    if loose:
        _set_positional(base, given, positional, loose, usage)  # type: ignore[arg-type]
    known = flat_keys(base)
    for key in flat_keys(given):
        if key not in known and not any(key.startswith(k + ".") for k in known if _is_free(base, k)):
            raise UsageError(f"unknown key {key}{did_you_mean(key, known)}")
    try:
        return OmegaConf.merge(base, given)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise UsageError(describe_config_error(exc, known)) from exc


def _set_positional(base: DictConfig, given: DictConfig, field: str, loose: list[str], usage: str) -> None:
    """Positional arguments into ``field`` (a list field takes all, any other field one)."""
    if field in given:
        raise UsageError(f"{field} given twice: by position ({loose[0]}) and as {field}=. {usage}")
    if isinstance(base._get_node(field), ListConfig):
        given[field] = loose
    elif len(loose) == 1:
        given[field] = loose[0]
    else:
        raise UsageError(f"unexpected argument {loose[1]!r}: give one {field}. {usage}")


def field_docs(schema: type) -> dict[str, str]:
    """Each field's one-line doc: the comment after it in the dataclass source (``{}`` without source)."""
    try:
        source = inspect.getsource(schema)
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    for name, doc in re.findall(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, flags=re.MULTILINE):
        docs[name] = doc.strip()
    return docs


def help_text(schema: type, usage: str) -> str:
    """The ``--help`` text: usage, the schema's docstring, then ``key=default  doc`` per field."""
    docs = field_docs(schema)
    lines = [usage, "", (inspect.getdoc(schema) or "").replace("``", "").strip(), "", "arguments (key=value; unknown keys are errors):"]
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "<required>"
        shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else default
        lines.append(f"  {f.name}={shown}".ljust(34) + f"  {docs.get(f.name, '')}".rstrip())
    return "\n".join(lines)


def _is_free(base: DictConfig, key: str) -> bool:
    """A key whose value may be any mapping or list (``seeds=[...]``): its children are not checked."""
    node = OmegaConf.select(base, key, throw_on_missing=False)
    return isinstance(node, ListConfig) or node is None


def run(main: Callable[[Sequence[str]], Any], argv: Sequence[str] | None = None) -> int:
    """Call an entrypoint's ``main(argv)`` and return the exit status: the int ``main`` returns
    (e.g. 1 when a self-check failed), else 0. :class:`UsageError` and Ctrl-C become one line,
    ``--help`` prints the help on stdout (status 0)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = main(args)
    except HelpRequested as exc:
        print(exc)
        return 0
    except UsageError as exc:
        if full_errors():
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
