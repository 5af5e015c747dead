"""herexp is an installable package: the config groups ship inside the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_every_config_file(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT / "herexp", src / "herexp", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("herexp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"herexp/{p.relative_to(ROOT / 'herexp').as_posix()}" for p in (ROOT / "herexp" / "conf").rglob("*.yaml")}
    assert "herexp/conf/config.yaml" in expected and "herexp/conf/sweep/ch04_push.yaml" in expected
    assert expected <= names, sorted(expected - names)
