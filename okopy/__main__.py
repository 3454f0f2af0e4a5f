"""Allow `python -m okopy`."""

from okopy.cli import main

raise SystemExit(main())
