"""Research labs (docs/som-notes.md): scripts run as `python -m labs.NAME`, outside the CLI's layers."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_lab(main: Callable[[], None]) -> None:
    """Run a lab's `main` as the CLI runs a command: bad input (an unknown or invalid `--set`, a config that
    fails its checks) prints one line on stderr and exits 2, with no traceback."""
    from algorithms.common.config import ConfigError
    from sombench.errors import UserError

    try:
        main()
    except (UserError, ConfigError) as exc:
        from sombench.cli.main import error_line

        print(error_line(exc) if isinstance(exc, UserError) else f"error: {exc}", file=sys.stderr)
        sys.exit(2)
