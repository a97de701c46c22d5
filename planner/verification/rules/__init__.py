"""The rules of security-rules.md, one module per family, each check registered with @rule
(planner.verification.registry) next to it; importing the package registers them all, in the
order reports list them (which is not the families' order: public-ip is listed among the
compute rules, deletion last)."""

from __future__ import annotations

from planner.verification.registry import put_in_order
from planner.verification.rules import (  # noqa: F401 (each registers its rules)
    compute,
    deletion,
    iam,
    network,
    perimeter,
    secrets,
    storage,
)

put_in_order(
    (
        "perimeter",
        "dns",
        "way-in",
        "flow-logs",
        "open-ingress",
        "open-egress",
        "imdsv2",
        "public-ip",
        "disks",
        "buckets",
        "secrets",
        "key-rotation",
        "iam",
        "endpoint-policies",
        "deletion",
    )
)
