"""Where a command runs: the Pulumi project around the working directory, paths shown relative
to it, and output directories checked before any work is done."""

from __future__ import annotations

from pathlib import Path

from planner.errors import PlannerError
from planner.render.plan_files import find_project_dir, unwritable


def relative_to(path: Path, base: Path) -> str:
    """PATH as shown relative to BASE (resolved), or absolute where it is outside BASE."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(base.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def project_dir() -> Path:
    cwd = Path.cwd()
    project = find_project_dir(cwd)
    if project is None:
        raise PlannerError.single(
            str(cwd), "", "no Pulumi.yaml here or above: run the planner inside the Pulumi project"
        )
    return project


def check_working_directory() -> None:
    """Every command reads or writes relative to it: a directory removed under the shell
    (Path.cwd() raises) is one error, not a traceback from wherever it is first used."""
    try:
        Path.cwd()
    except FileNotFoundError:
        raise PlannerError.single(
            ".", "", "the working directory no longer exists: cd into the project and run again"
        ) from None


def check_writable(flag: str, directory: Path) -> None:
    """An output directory that cannot be written is a clear error before any work is done."""
    if reason := unwritable(directory):
        raise PlannerError.single(flag, "", f"cannot write in {directory}: {reason}")
