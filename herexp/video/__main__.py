"""``python -m herexp.video``."""

from herexp.cli import run
from herexp.video.cli import main

raise SystemExit(run(main))
