"""``python -m herexp.bench``."""

from herexp.bench.cli import main
from herexp.cli import run

raise SystemExit(run(main))
