"""What the CLI tells a user on stderr besides results and errors: the progress of a long step,
and warnings grouped by kind so that a large plan's are read, not scrolled past."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

from planner.planfile import Warning

# From this many workloads a step (the optimizer, the program under mocks) takes seconds, and a
# line on stderr says what is running; below it the run is quick and stays quiet.
LONG_RUN_WORKLOADS = 100
# Names listed in a grouped warning on stderr before "and N more".
NAMES_SHOWN = 3


def is_long(workloads: int) -> bool:
    return workloads >= LONG_RUN_WORKLOADS


def progress(message: str) -> None:
    """One line on stderr for a phase of a long run; stdout stays the result alone."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class WarningGroup:
    """One warning (the same code and message) and the workloads it was raised for."""

    code: str
    message: str
    names: tuple[str, ...]


def group_warnings(warnings: Iterable[tuple[str, Warning]]) -> list[WarningGroup]:
    """Equal warnings of several workloads as one, in the order they first appear."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, warning in warnings:
        groups.setdefault((warning.code, warning.message), []).append(name)
    return [WarningGroup(code, message, tuple(names)) for (code, message), names in groups.items()]


def warning_lines(warnings: Iterable[tuple[str, Warning]]) -> list[str]:
    """`warning: NAME: CODE: MESSAGE` for a warning of one workload; a warning several
    workloads share, once: `warning: CODE (N workloads: a, b, c and K more): MESSAGE`."""
    lines = []
    for group in group_warnings(warnings):
        if len(group.names) == 1:
            lines.append(f"warning: {group.names[0]}: {group.code}: {group.message}")
            continue
        shown = ", ".join(group.names[:NAMES_SHOWN])
        rest = len(group.names) - NAMES_SHOWN
        names = f"{shown} and {rest} more" if rest > 0 else shown
        lines.append(
            f"warning: {group.code} ({len(group.names)} workloads: {names}): {group.message}"
        )
    return lines
