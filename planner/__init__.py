"""ai-infra-planner: per workload, self-host or cloud API, costed, and deployable with Pulumi.

The public API for scripts is `load_workloads`, `build_plan`, `read_plan` and `verify`
(planner/api.py, README "Scripting the planner"). They are imported on first use, so importing
a module of the package (as the Pulumi program does) does not load the optimizer and the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["build_plan", "load_workloads", "read_plan", "verify"]

if TYPE_CHECKING:
    from planner.api import build_plan, load_workloads, read_plan, verify


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("planner.api"), name)
    raise AttributeError(f"module 'planner' has no attribute {name!r}")
