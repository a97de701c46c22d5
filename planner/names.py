"""Names several modules share, in one place: the Pulumi project (the config namespace), the
tags the stacks put on resources and that verify, preview and diff read back, the stack config
keys the planner writes and the program reads, and the component type tokens.

A tag the stacks write and the tag verify reads are the same constant, so they cannot drift
apart. The values are part of every deployed stack (type tokens are in its URNs, tags on its
resources): changing one replaces or retags resources.
"""

from __future__ import annotations

PROJECT = "ai-infra-planner"  # Pulumi.yaml's name: config keys are `PROJECT:key`
TAG_PREFIX = PROJECT


def tag(key: str) -> str:
    """A tag key of the planner's (`ai-infra-planner:pool`)."""
    return f"{TAG_PREFIX}:{key}"


def config_key(key: str) -> str:
    """A stack config key of the project (`ai-infra-planner:plan`)."""
    return f"{PROJECT}:{key}"


def label_key(tag: str) -> str:
    """The Kubernetes label (and annotation) key of a tag's key: the project's name, a DNS
    subdomain, as its prefix, then the tag's name (`ai-infra-planner/pool`)."""
    return f"{PROJECT}/{tag.removeprefix(TAG_PREFIX + ':')}"


def component_type(name: str) -> str:
    """A component resource's type token (`ai-infra-planner:index:InferencePool`)."""
    return f"{PROJECT}:index:{name}"


# Tags (stacks/addressing.py cost_tags and the components; read by verification, preview, diff).
TAG_STACK = tag("stack")
TAG_POOL = tag("pool")
TAG_PROVIDER = tag("provider")
TAG_NETWORK = tag("network")
TAG_WORKLOAD = tag("workload")
TAG_PERIMETER = tag("perimeter")
TAG_MONTHLY_USD = tag("monthly-usd")
TAG_REPLICA = tag("replica")
TAG_IMDS_HOP_LIMIT_REASON = tag("imds-hop-limit-reason")
TAG_PURCHASE_APPROVED = tag("purchase-approved")
# The label every pod of a cluster pool carries (stacks/kubernetes/labels.py; verify finds the
# pool's pods and namespace by it, the namespace by its annotation holding the name whole).
LABEL_POOL = label_key(TAG_POOL)

# Stack config keys (Pulumi.<stack>.yaml): written by `planner plan`, read by __main__.py.
CONFIG_PLAN = config_key("plan")
CONFIG_PROTECT = config_key("protect")
# The Kubernetes sites' settings (stacks/settings.py read_clusters; verify reads their ranges).
CONFIG_CLUSTERS = config_key("clusters")

# Component type tokens (stacks/aws/*.py; preview and verify find the pools by them).
INFERENCE_POOL = component_type("InferencePool")
# A pool on a Kubernetes site (stacks/kubernetes/pool.py).
CLUSTER_POOL = component_type("ClusterPool")
API_ACCESS = component_type("ApiAccess")
COST_BUDGET = component_type("CostBudget")
PRIVATE_NETWORK = component_type("PrivateNetwork")
PRIVATE_LINK_NETWORK = component_type("PrivateLinkNetwork")
EGRESS_NETWORK = component_type("EgressNetwork")
