"""Config options that own their code: one class per option of a group, named by ``_target_``.

An option of the ``algo`` or ``entropy`` group (``algo=td3``, ``entropy=schedule``) is a
dataclass whose fields are the option's keys, with their defaults and one-line docs, and whose
methods are what the option means (SB3 arguments, callbacks, validation, run-name label). The
dataclass is its own schema: :func:`register` stores it in Hydra's ConfigStore as
``schema/<group>/<name>`` with a ``_target_`` naming the class, and the option's YAML file
(``herexp/conf/<group>/<name>.yaml``) selects that schema and holds only what differs from its
defaults. Unknown keys and wrong types fail at composition like any structured config
(``entropy=schedule entropy.value=1``: ``value`` is not a key of ``Schedule``).

:func:`build` turns the composed node back into the object (``hydra.utils.instantiate``), so
``entropy=adaptive`` -> ``herexp/conf/entropy/adaptive.yaml`` -> ``herexp.entropy.options.Adaptive``.

Option modules import nothing heavy at module level (SB3 and torch are imported where a model
or callback is built), so checking a command line and naming its runs stay fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore

TARGET = "_target_"
T = TypeVar("T")
SCHEMA_GROUP = "schema"  # ConfigStore group of the option schemas: schema/<group>/<name>


def target_of(cls: type) -> str:
    """The ``_target_`` string of an option class (its import path)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def schema(cls: type) -> type:
    """The structured config of an option class: the class's own fields plus ``_target_``."""
    return dataclasses.make_dataclass(
        f"{cls.__name__}Config", [(TARGET, str, dataclasses.field(default=target_of(cls)))], bases=(cls,))


def register(group: str, name: str, cls: type) -> None:
    """Store ``cls``'s schema as ``schema/<group>/<name>``, placed at the ``<group>`` package.

    The option's YAML selects it with ``- /schema/<group>/<name>@_here_`` in its defaults list."""
    ConfigStore.instance().store(group=f"{SCHEMA_GROUP}/{group}", name=name, node=schema(cls), package=group)


def build(node: Any, group: str) -> Any:
    """The option object of a composed (or saved, plain-dict) ``<group>`` node: its ``_target_``
    class called with the node's keys. A key the class does not have (``++algo.foo=1``) is a
    one-line ``ValueError``."""
    from hydra.utils import get_class, instantiate

    target = str(node[TARGET])
    cls = get_class(target)
    if dataclasses.is_dataclass(cls):
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = [k for k in node if k != TARGET and k not in fields]
        if extra:
            raise ValueError(f"unknown key {group}.{extra[0]}: {group}={name_of(target)} has no {extra[0]} "
                             f"(its keys: {', '.join(sorted(fields))})")
    return instantiate(node, _convert_="all")


def register_all(group: str, classes: Mapping[str, type]) -> None:
    """Store the schema of every option class of ``group`` (``schema/<group>/<name>``)."""
    for name, cls in classes.items():
        register(group, name, cls)


def build_as(node: Any, group: str, base: type[T], fix: str) -> T:
    """:func:`build`, checked to be an option of ``group`` (an instance of ``base``)."""
    built = build(node, group)
    if not isinstance(built, base):
        raise ValueError(f"{group}.{TARGET}={node[TARGET]!r} is not an {group} option. Fix: {fix}")
    return built


def name_of(node: Mapping[str, Any] | str) -> str:
    """The option name (``td3``, ``fixed``) of a ``_target_`` string or an option node."""
    from hydra.utils import get_class

    target = node if isinstance(node, str) else str(node[TARGET])
    try:
        return str(get_class(target).name)
    except (ImportError, AttributeError, ValueError):  # a class that no longer exists: its last word
        return target.rsplit(".", 1)[-1].lower()


def fail(key: str, value: Any, allowed: str, fix: str) -> None:
    """Raise the one-line ``ValueError`` of a bad value: key, value, what is allowed, the fix."""
    raise ValueError(f"{key}={value!r} is invalid: must be {allowed}. Fix: {fix}")


def check(ok: bool, key: str, value: Any, allowed: str, fix: str) -> None:
    """:func:`fail` unless ``ok``."""
    if not ok:
        fail(key, value, allowed, fix)
