"""``python -m gfe_viz``: the same command line as ``gfe-viz``."""

from .cli import main

raise SystemExit(main())
