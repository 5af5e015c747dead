"""Every command the README, docs/ and the config files print parses: its tool accepts the
arguments, and a train command's every job composes and validates (herexp.preflight)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from herexp import cli, preflight

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "herexp" / "conf").rglob("*.yaml"))]
COMMAND = re.compile(r"python -m (herexp\.[\w.]+)([^`|#;&\\\n]*)")
PLACEHOLDER = re.compile(r"<|…|\.\.\.|\bN\b|\bDIR\b|(^|\s)\[")  # <folder>, [optional]


def _documented() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in SOURCES:
        text = re.sub(r"\\[ \t]*\n\s*", " ", path.read_text())  # shell line continuations
        for module, rest in COMMAND.findall(text):
            rest = _balanced(rest)
            if PLACEHOLDER.search(rest) or rest.rstrip().endswith(("[", ",")):
                continue  # a template (python -m herexp.aggregate <folder>...), not a command
            found.append((path.relative_to(ROOT).as_posix(), module, shlex.split(rest)))
    return found


def _balanced(rest: str) -> str:
    """Up to a ``)`` that closes the prose around an inline command (``(python -m … seed=0)``)."""
    depth = 0
    for i, ch in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return rest[:i]
    return rest


COMMANDS = _documented()


def _parse(module: str, args: list[str]) -> None:
    if module == "herexp.train":
        preflight.check_train_command(args)
    elif module == "herexp.sweep":
        assert args[:1] == ["list"]
        preflight.check_train_command(["--multirun", *args[1:]])
    elif module == "herexp.aggregate":
        from herexp.aggregate.__main__ import USAGE, AggregateArgs

        cli.parse_typed(AggregateArgs, args, USAGE, positional="inputs")
    elif module == "herexp.bench":
        from herexp.bench.cli import USAGE, BenchArgs

        cli.parse_typed(BenchArgs, args, USAGE)
    elif module == "herexp.evaluate":
        from herexp.evaluate import USAGE, EvaluateArgs

        cli.parse_typed(EvaluateArgs, args, USAGE)
    elif module == "herexp.video":
        from herexp.video.cli import USAGE, VideoArgs

        cli.parse_typed(VideoArgs, args, USAGE)
    elif module == "herexp.her.lab":
        from herexp.her.lab import USAGE, LabArgs

        cli.parse_typed(LabArgs, args, USAGE, positional="mode")
    elif module != "herexp.wandb_records":  # takes a run folder only
        raise AssertionError(f"no parser known for python -m {module}")


def test_the_documents_print_commands_of_the_tools() -> None:
    modules = {m for _, m, _ in COMMANDS}
    assert {"herexp.train", "herexp.aggregate", "herexp.sweep", "herexp.bench", "herexp.video",
            "herexp.her.lab"} <= modules
    assert len(COMMANDS) >= 50


@pytest.mark.parametrize(("where", "module", "args"), COMMANDS, ids=[f"{w}:{m}" for w, m, _ in COMMANDS])
def test_documented_command_parses(where: str, module: str, args: list[str]) -> None:
    try:
        _parse(module, args)
    except cli.HelpRequested:
        pass
    except cli.UsageError as exc:
        pytest.fail(f"{where}: python -m {module} {shlex.join(args)}\n  error: {exc}")
