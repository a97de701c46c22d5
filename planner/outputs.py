"""Schema versions of the planner's JSON outputs, as plan.json has its own (model.SCHEMA_VERSION).

Every JSON document a command prints (`preview --json`, `verify --json`, `diff --format json`,
`crossover --json`, `throughput --json`, `tco --json`) carries `schema_version`: a script reading
one checks it first. A version goes up when a field is removed, renamed or changes meaning;
adding a field does not change it.
"""

from __future__ import annotations

from typing import Any, Literal

Output = Literal["preview", "verify", "diff", "crossover", "throughput", "tco"]

VERSIONS: dict[Output, int] = {
    "preview": 1,
    "verify": 2,  # 2: rules carry status, failures and unknowns; `warnings` gone
    "diff": 1,
    "crossover": 1,
    "throughput": 1,
    "tco": 1,
}


def versioned(output: Output, document: dict[str, Any]) -> dict[str, Any]:
    """The document with its output's schema version first."""
    return {"schema_version": VERSIONS[output], **document}
