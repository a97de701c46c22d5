"""The plan itself: the models of the file's top level (Plan, its providers' access, the
connections in consumer VPCs, the totals and the figures used) and what names a stack."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from planner.planfile.base import _Out
from planner.planfile.pool import Pool
from planner.planfile.workload import WorkloadPlan

# A stack name: it names Pulumi.<stack>.yaml, so no path separators (the CLI's --stack rule).
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def is_stack_name(stack: str) -> bool:
    """A name Pulumi takes for a stack that is also one directory under plans/: "." and ".."
    match the characters but would put the plan in plans/ itself or in the project's root."""
    return bool(STACK_NAME.match(stack)) and stack not in (".", "..")


class FigureUsed(_Out):
    """A catalog figure a cost was computed from."""

    value: float | str
    unit: str
    source: str
    date: str


class ProviderAccess(_Out):
    provider: str
    hosts: list[str]
    private_link: bool
    models: list[str]
    secret_config_key: str | None
    workloads: list[str]
    # Its own network and security pieces a month (key secret, PrivateLink endpoint).
    fixed_monthly_usd: float


class SiteNodeCost(_Out):
    """What one GPU node of a cluster site costs a month as bought hardware: power (draw x PUE
    x electricity x the hours of a month), hosting, and for a purchase (owned: false) the
    capital over the amortization horizon (planner/targets/kubernetes.py). Each figure is the
    workloads file's where `from_file` names it (sites[i].cost), else the catalog's
    (pricing.yaml hardware; the horizon: the plan's assumptions.amortization_months); the
    plan-file checks recompute the site's pools from them."""

    owned: bool
    power_kw_per_node: float
    pue: float
    usd_per_kwh: float
    hosting_usd_per_node_month: float
    capital_usd_per_node: float | None
    amortization_months: float | None
    from_file: list[str]
    node_monthly_usd: float


class ClusterLoadBalancer(_Out):
    """A cluster site's internal load balancer (the workloads file's sites[].load_balancer): a
    pool with callers outside the cluster is a Service of type LoadBalancer carrying these, and
    verify holds such a Service to them."""

    # The Service's annotations that make the cluster's implementation keep it internal.
    annotations: dict[str, str]
    # The Service's loadBalancerClass (the workloads file's `class`), or None.
    load_balancer_class: str | None
    # The DNS domain pools are named under for callers outside (<namespace>.<dns_suffix>).
    dns_suffix: str | None
    # The ranges its health checks come from, which the pools admit on the serving port.
    health_check_cidrs: list[str] = Field(default_factory=list)


class ClusterSite(_Out):
    """A Kubernetes cluster of the workloads file's `sites` that pools of the plan run on, with
    what the stack needs to deploy there: the kubeconfig context, the GPU nodes and how to
    select them, the weights' storage class and object store. A pool runs there when its
    `site` names it."""

    name: str
    kind: Literal["kubernetes"] = "kubernetes"
    context: str
    gpu: str
    gpus_per_node: int
    nodes: int
    node_selector: dict[str, str]
    # The taints of the GPU nodes the pods tolerate, as a pod spec's tolerations.
    tolerations: list[dict[str, str]] = Field(default_factory=list)
    storage_class: str
    weights_source: str
    # A GPU node's CPUs and memory (the workloads file's, else the catalog's server of the GPU),
    # and what each pod of a pool here requests and is limited to besides the node's GPUs
    # (Guaranteed QoS): the node less the kubelet's reserve and the DaemonSets' headroom, whole
    # CPUs; shm_mib of its memory is /dev/shm. `figures`: the ids in the plan's figures these
    # rest on, each with where it came from.
    cpus_per_node: int
    memory_gib_per_node: float
    pod_cpus: int
    pod_memory_mib: int
    shm_mib: int
    figures: list[str]
    # What a GPU node of it costs a month, and the figures that cost is made of.
    cost: SiteNodeCost
    # Its internal load balancer for callers outside the cluster; None: callers inside only.
    load_balancer: ClusterLoadBalancer | None = None
    # What the cluster must provide that the stack cannot make or check (kubernetes.yaml), each
    # with its source: a pool's technical perimeter there rests on them.
    assumptions: list[str]


class Connection(_Out):
    """What the stack adds in one consumer VPC of this account for one service (a pool, the
    PrivateLink network or the egress network), priced once and shared equally by the workloads
    of that service that name the VPC."""

    service: str  # a pool's name, "private_link" or "egress"
    kind: str  # operations.yaml connections: self_hosted_pool, private_link, egress
    vpc: str
    subnets: list[str]
    workloads: list[str]
    monthly_cost_usd: float
    formula: str


class Totals(_Out):
    monthly_cost_usd: float
    monthly_cost_low_usd: float
    monthly_cost_high_usd: float
    self_hosted_usd: float
    cloud_api_usd: float
    # The same total by kind, as `planner preview` shows it: the pools' staff, the API tokens,
    # and the shared access (providers' pieces and the egress network, each once); the rest is
    # the pools' nodes and network pieces.
    staff_usd: float
    api_tokens_usd: float
    shared_access_usd: float
    # The connections in the consumers' VPCs (Plan.connections), each once; part of the pools'
    # workloads' costs and of the API workloads' costs by the service they connect.
    connections_usd: float
    # The same workloads decided one at a time, and what planning them together saves.
    per_workload_usd: float
    saved_by_sharing_usd: float
    # The boundary the providers reached over the internet share, once.
    egress_network_usd: float
    # strategy optimal: how far above the optimum the plan may be, proven by the solver's bound
    # (0: the exact optimum); the solve stops within optimizer.yaml's gap, or at a time limit.
    optimality_gap_usd: float
    # A time limit stopped the solve first: the gap still holds, but a rerun may differ.
    optimizer_stopped_by_time_limit: bool = False
    # The node limit stopped it first: the gap still holds, and a rerun gives the same plan.
    optimizer_stopped_by_node_limit: bool = False


class Plan(_Out):
    schema_version: int
    organization: str
    stack: str
    region: str
    workloads_file: str
    inputs_sha256: str
    catalog_sha256: str
    assumptions: dict[str, str | float | int]
    strategy: str
    workloads: list[WorkloadPlan]
    pools: list[Pool]
    # The workloads file's Kubernetes sites, which its options and pools name (a pool on any
    # other site runs on AWS EC2).
    sites: list[ClusterSite] = Field(default_factory=list)
    providers: list[ProviderAccess]
    # The API networks' ranges the plan needs ("private_link", "egress"), allocated at plan time.
    networks: dict[str, str]
    # What the stack makes in the consumers' VPCs of this account, by service and VPC.
    connections: list[Connection]
    totals: Totals
    figures: dict[str, FigureUsed]


# A provider reached over PrivateLink needs the PrivateLink network; the others the egress one.
API_NETWORK_FOR = {True: "private_link", False: "egress"}
