"""The `sombench` command line: Typer options and one short function per command (sombench/cli/main.py)."""

from sombench.cli.main import main

__all__ = ["main"]
