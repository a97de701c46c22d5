"""The deletion rule: what holds data (keys, buckets, secrets) survives `pulumi destroy`, and
nothing buys capacity without the flag that approves the purchase."""

from __future__ import annotations

from planner import names
from planner.graph.resources import Graph
from planner.verification.aws_network import Network
from planner.verification.aws_types import (
    BUCKET_TYPES,
    CAPACITY_RESERVATION,
    KMS_KEY,
    SECRET_TYPE,
    SECRET_VERSION,
)
from planner.verification.expectations import Expectations
from planner.verification.registry import Finding, rule


@rule(
    "deletion",
    "keys, buckets and secrets protected; no capacity purchase without a flag",
    KMS_KEY,
    SECRET_TYPE,
    SECRET_VERSION,
    *BUCKET_TYPES,
    CAPACITY_RESERVATION,
)
def _deletion(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    if expect.protect:
        for resource in graph.of_type(KMS_KEY, SECRET_TYPE, SECRET_VERSION, *BUCKET_TYPES):
            if not (resource.protect and resource.retain_on_delete):
                found.append(
                    Finding(
                        "deletion",
                        resource.label,
                        "not protected (`protect` and `retain_on_delete`)",
                    )
                )
    for reservation in graph.of_type(CAPACITY_RESERVATION):
        if reservation.tags().get(names.TAG_PURCHASE_APPROVED) != "true":
            found.append(
                Finding(
                    "deletion",
                    reservation.label,
                    "creates (buys) a capacity reservation without the `purchase-approved` flag",
                )
            )
    return found
