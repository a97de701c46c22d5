"""AWS names the stack gives explicitly: where a resource's Pulumi auto-name would pass its AWS
limit (planner/data/aws_limits.yaml), a stable short name instead."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pulumi
import yaml

from planner.catalog import DATA_DIR


def aws_name(stack: str, name: str, limit: int, replaced_by: tuple[str, ...] = ()) -> str:
    """An explicit AWS name for a resource whose auto-name would not fit (load balancers and
    target groups: 32 characters, planner/data/aws_limits.yaml): the start of the logical name
    and a hash of stack and name, so that it is stable, unique per stack and account, and made
    of alphanumerics and inner hyphens only. Never `internal-...` (reserved for internal load
    balancers' DNS names).

    `replaced_by`: the values whose change makes the provider replace the resource. They go into
    the hash, so a replacement gets a new name: Pulumi creates a replacement before deleting the
    old resource, and AWS refuses a second resource of the same name ("This name must be unique
    per region per account", CreateLoadBalancer and CreateTargetGroup, ELB API Reference)."""
    key = "/".join((stack, name, *replaced_by))
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")
    if prefix.lower().startswith("internal-"):
        prefix = prefix[len("internal-") :]
    prefix = prefix[: limit - len(digest) - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else digest


# Pulumi's auto-name: the logical name, "-" and 7 random characters ("Resource names:
# auto-naming", Pulumi docs).
AUTONAME_SUFFIX = 8


@functools.cache
def autoname_limits() -> dict[str, tuple[str, int, str]]:
    """Resource type -> (name property, its maximum length, "lower" or "true") for every type
    whose name pulumi-aws makes from the logical name (planner/data/aws_limits.yaml)."""
    rules = yaml.safe_load((DATA_DIR / "aws_limits.yaml").read_text(encoding="utf-8"))["rules"]
    return {
        rule["type"]: (rule["property"], rule["max_length"], str(rule["autoname"]).lower())
        for rule in rules
        if rule.get("autoname") and "max_length" in rule
    }


def fit_autonames(stack: str) -> Callable[[pulumi.ResourceTransformationArgs], Any]:
    """A stack transformation: a resource whose auto-name (logical name + 8 characters) would
    pass its AWS limit gets an explicit name, aws_name's stable short form, instead. Long
    workload names make long logical names; short ones keep their auto-names."""

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        found = autoname_limits().get(args.type_)
        if found is None:
            return None
        prop, limit, mode = found
        if args.props.get(prop) is not None or len(args.name) + AUTONAME_SUFFIX <= limit:
            return None
        name = aws_name(stack, args.name, limit)
        props = {**args.props, prop: name.lower() if mode == "lower" else name}
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transform
