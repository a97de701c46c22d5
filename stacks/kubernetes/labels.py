"""The labels and annotations a cluster pool's resources carry: what the AWS stack's cost tags
say (stacks/addressing.py cost_tags), in Kubernetes label syntax, and the selector of its pods.

A label value is at most 63 alphanumerics, '-', '_' or '.', starting and ending with an
alphanumeric (kubernetes.io, "Labels and Selectors", Syntax and character set); a name that
does not fit (a stack name of up to 100 characters) is shortened with a hash of the whole, and
the annotations keep every value whole."""

from __future__ import annotations

import hashlib
import re

from planner import names
from planner.inputs.sites import label_value_problem
from stacks.addressing import cost_tags

# The planner's label keys: its project name is a DNS subdomain, a label key's prefix.
PREFIX = names.PROJECT
# The label every pod of a pool carries, selecting them for its policies, Service and budget.
POOL_LABEL = names.LABEL_POOL
# The label key of a cost tag's key: the project's name as its prefix, then the tag's name.
label_key = names.label_key


def label_value(text: str) -> str:
    """A label value standing for `text`: itself when Kubernetes takes it, else its valid
    characters, cut to fit, and a hash of the whole."""
    if label_value_problem(text) is None and len(text) <= 63:
        return text
    kept = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{kept[:54].rstrip('-._')}-{digest}" if kept[:54].rstrip("-._") else digest


def cost_labels(
    stack: str, kind: str, name: str, monthly_usd: float, perimeter: str | None = None
) -> dict[str, str]:
    """The cost tags as labels (selectable: `kubectl get -l ai-infra-planner/pool=...`)."""
    tags = cost_tags(stack, kind, name, monthly_usd, perimeter)
    return {label_key(key): label_value(value) for key, value in tags.items()}


def cost_annotations(
    stack: str, kind: str, name: str, monthly_usd: float, perimeter: str | None = None
) -> dict[str, str]:
    """The same tags as annotations, each value whole."""
    tags = cost_tags(stack, kind, name, monthly_usd, perimeter)
    return {label_key(key): value for key, value in tags.items()}


def workload_cost_key(workload: str) -> str:
    """The annotation key of a workload's share of a pool's cost. An annotation key is a label
    key (kubernetes.io, "Annotations", Syntax and character set): after the prefix's '/', at
    most 63 characters, so a long workload name (a DNS label, up to 63) is shortened as a label
    value is, with a hash of the whole."""
    prefix, _, name = label_key(names.tag("workload-monthly-usd")).partition("/")
    return f"{prefix}/{label_value(f'{name}.{workload}')}"
