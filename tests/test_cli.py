"""herexp.cli: typed ``key=value`` arguments, positional arguments, ``--help`` and exit statuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import List, Optional

import pytest

from herexp import cli

USAGE = "usage: python -m tool <folder>... [n=1]"


@dataclass
class Folders:
    """Arguments of a tool that takes folders."""

    inputs: List[str] = field(default_factory=list)  # folders, by position
    n: int = 1  # how many
    out: Optional[str] = None  # where to write


@dataclass
class Mode:
    """Arguments of a tool with one mode."""

    mode: str = ""  # what to do
    seed: int = 0


def test_positional_arguments_fill_the_list_field() -> None:
    args = cli.parse_typed(Folders, ["multirun/a", "n=3", "multirun/x/her=True,seed=0", "./her=True"], USAGE,
                           positional="inputs")
    assert list(args.inputs) == ["multirun/a", "multirun/x/her=True,seed=0", "./her=True"]
    assert (args.n, args.out) == (3, None)
    assert list(cli.parse_typed(Folders, ["inputs=[a,b]"], USAGE, positional="inputs").inputs) == ["a", "b"]


@pytest.mark.parametrize(("schema", "argv", "message"), [
    (Folders, ["her=True,seed=0"], "unknown key her"),  # a key=value, not a folder: write ./her=True,seed=0
    (Folders, ["a", "inputs=[b]"], "inputs given twice: by position (a) and as inputs=. " + USAGE),
    (Folders, ["a", "-q"], "unexpected argument '-q': arguments are key=value. " + USAGE),
    (Folders, ["a", "outt=x"], "unknown key outt (did you mean out?)"),
    (Mode, ["verify", "demo"], "unexpected argument 'demo': give one mode. " + USAGE),
])
def test_bad_arguments_are_one_usage_error(schema: type, argv: list[str], message: str) -> None:
    positional = "inputs" if schema is Folders else "mode"
    with pytest.raises(cli.UsageError) as exc:
        cli.parse_typed(schema, argv, USAGE, positional=positional)
    assert str(exc.value) == message


def test_without_a_positional_field_every_argument_is_key_value() -> None:
    with pytest.raises(cli.UsageError, match="unexpected argument 'verify': arguments are key=value"):
        cli.parse_typed(Mode, ["verify"], USAGE)
    assert cli.parse_typed(Mode, ["verify"], USAGE, positional="mode").mode == "verify"


def test_help_lists_every_key_with_default_and_doc() -> None:
    with pytest.raises(cli.HelpRequested) as exc:
        cli.parse_typed(Folders, ["a", "--help"], USAGE, positional="inputs")
    assert str(exc.value).splitlines() == [
        USAGE, "", "Arguments of a tool that takes folders.", "", "arguments (key=value; unknown keys are errors):",
        f"{'  inputs=[]':34}  folders, by position",
        f"{'  n=1':34}  how many",
        f"{'  out=null':34}  where to write",
    ]


def test_choice_and_comma_list() -> None:
    assert cli.comma_list("presets", "push8, reach1", ["push8", "push1", "reach1"]) == ["push8", "reach1"]
    assert cli.comma_list("presets", None, ["push8"]) == [] and cli.comma_list("p", ["a"], ["a"]) == ["a"]
    with pytest.raises(cli.UsageError) as exc:
        cli.choice("metric", "succes_rate", ["success_rate", "return_mean"])
    assert str(exc.value) == "metric=succes_rate is not one of success_rate, return_mean (did you mean success_rate?)"


def test_run_returns_mains_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    def main(argv: Sequence[str]) -> object:
        if argv == ["fail"]:
            return 1
        if argv == ["bad"]:
            raise cli.UsageError("bad input")
        if argv == ["help"]:
            raise cli.HelpRequested("usage: tool")
        return {"a result": True}

    assert [cli.run(main, [a]) for a in ("fail", "ok", "bad", "help")] == [1, 0, 2, 0]
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("usage: tool\n", "error: bad input\n")
