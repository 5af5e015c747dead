"""Values written into run names and folder names, so that different values give different labels.

* **Numbers**: an int as is (``1000``); a float in the short ``%g`` form when that reads back
  as the same float (``0.95``, ``0.0003``, ``1e-05``), otherwise its shortest round-tripping
  ``repr`` (``0.90000001``, ``123456789.0``). Either way the label reads back as the value, so
  two floats share a label only when they are equal (``3e-4`` and ``0.0003`` are one value).
* **Strings** are shown as they are when they are *plain*: letters, digits, ``.``, ``=`` and
  ``-`` only, not empty, and not something Hydra would read as another type (``1.5``, ``true``,
  ``null``). Any other string shows its cleaned form plus ``+`` and the first six hex digits of
  the SHA-1 of the raw string (``a b`` -> ``a-b+7dbde9``, ``a/b`` -> ``a-b+3ec69c``): the cleaned
  forms are equal, the hashes are not. ``_`` (the separator between a name's parts) is never
  shown inside a value. Only a float's exponent (``1e+16``, at most 3 digits) has a ``+``
  not followed by six hex digits, so a hashed label never equals a plain one.
* **Lists** join their items with ``-`` (``64-64``); an item that contains ``-`` itself
  (a string, a negative number inside a list of several) makes the whole list hashed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

HASH_SEP = "+"  # never in a plain string; cleaning keeps it (it comes from a hash or a float exponent)
HASH_LEN = 6
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")  # + only ever comes from a hash
_PLAIN = re.compile(r"[A-Za-z0-9.=-]+")
_OTHER_TYPES = {"true", "false", "null", "none", "nan", "inf", "-inf", "+inf"}


def digest(raw: str) -> str:
    """The short stable hash of a raw string (first six hex digits of its SHA-1)."""
    return hashlib.sha1(raw.encode()).hexdigest()[:HASH_LEN]


def number(value: float) -> str:
    """A float's label: ``%g`` when it reads back as the same float, else the shortest repr."""
    short = f"{value:g}"
    try:
        if float(short) == value:
            return short
    except ValueError:  # pragma: no cover - %g always gives a float literal
        pass
    return repr(float(value))


def _reads_as_other_type(text: str) -> bool:
    if text.lower() in _OTHER_TYPES:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_plain(text: str) -> bool:
    """True for a string shown as it is (letters, digits, ``.=-``; not a number or bool look-alike)."""
    return bool(_PLAIN.fullmatch(text)) and not _reads_as_other_type(text)


def clean(text: str) -> str:
    """``text`` with unsafe characters replaced by ``-``, plus ``+<hash>`` when that changed it."""
    cleaned = _UNSAFE.sub("-", text).strip("-")
    return cleaned if cleaned == text else f"{cleaned}{HASH_SEP}{digest(text)}"


def _hashed(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9.=-]+", "-", text).strip("-")
    return f"{cleaned}{HASH_SEP}{digest(text)}"


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or OmegaConf.is_list(value)


def value(value: Any) -> str:
    """The label of one composed config value (see the module docstring)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, int):
        return str(value)
    if _is_list(value):
        return _items(list(value))
    text = str(value)
    return text if is_plain(text) else _hashed(text)


def _items(items: Sequence[Any]) -> str:
    parts = [value(v) for v in items]
    if len(parts) > 1 and any("-" in p or HASH_SEP in p for p in parts) or any(_is_list(v) for v in items):
        return _hashed(repr([OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for v in items]))
    return "-".join(parts)
