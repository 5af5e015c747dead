"""Start-up output: herexp commands do not print gymnasium-robotics' Adroit reward notice."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

NOTICE = "reward functions were updated in v1.2.1"


def _stderr(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_plain_gymnasium_robotics_import_prints_the_notice() -> None:
    """The control: the installed gymnasium-robotics really prints it (else the next test proves nothing)."""
    out = _stderr("import gymnasium_robotics")
    if NOTICE not in out:
        pytest.skip("this gymnasium-robotics version prints no Adroit notice")
    assert "AdroitHandRelocateDense-v1" in out


@pytest.mark.parametrize("code", ["import herexp.envs", "import herexp, gymnasium_robotics"])
def test_herexp_import_drops_exactly_the_adroit_notice(code: str) -> None:
    assert NOTICE not in _stderr(code)


def test_other_notices_are_kept() -> None:
    out = _stderr("from farama_notifications import notifications as n\n"
                  "import importlib.metadata as md\n"
                  "v = md.version('gymnasium_robotics')\n"
                  "n.setdefault('gymnasium_robotics', {})[v] = 'another notice'\n"
                  "import herexp.envs")
    assert "another notice" in out
