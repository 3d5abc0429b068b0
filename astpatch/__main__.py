"""`python -m astpatch`: the command line."""

from .cli import main

raise SystemExit(main())
