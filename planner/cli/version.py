"""`planner --version`: the installed distribution's version, looked up only when asked."""

from __future__ import annotations

import argparse
import importlib.metadata
import tomllib
from collections.abc import Sequence
from pathlib import Path

DISTRIBUTION = "ai-infra-planner"


def version() -> str:
    """The installed distribution's version; run from a source checkout that is not installed,
    the version its pyproject.toml declares."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        if project.get("name") == DISTRIBUTION:
            return f"{project['version']} (source checkout, not installed)"
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        pass
    return "unknown (not installed)"


class VersionAction(argparse.Action):
    """argparse's version action, with the version looked up only when asked: reading the
    installed distributions' metadata costs a fifth of a second, too much for every run."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()
