"""The command line: `planner` and its subcommands."""

from planner.cli.app import main

__all__ = ["main"]
