"""``python -m gdxp``: see :mod:`gdxp.cli`."""

from .cli import main

raise SystemExit(main())
