"""What each pod of a pool on a Kubernetes site holds besides its node's GPUs (issue 16): the
node's CPUs and memory less what the kubelet and the system keep of it and a headroom for the
node's DaemonSets, and vLLM's shared memory within that memory.

A pool's pods each hold a whole node (stacks/kubernetes/workload.py), so its pod asks for all a
node can give a pod: the node's CPUs and memory (the workloads file's `sites[i].cpus_per_node`
and `memory_gib_per_node`, or the catalog's server of the site's GPU, kubernetes.yaml
node_resources) less the kubelet's reserve (GKE's formula, the planner's estimate for any
cluster: kubernetes.io, "Reserve Compute Resources for System Daemons", leaves the figures to
the cluster's operator) and the DaemonSets' headroom. Requests equal limits for every container
(Guaranteed QoS: kubernetes.io, "Pod Quality of Service Classes"); CPUs are whole, so the static
CPU manager policy may give the pod exclusive cores (kubernetes.io, "Control CPU Management
Policies on the Node"). The plan records each figure and where it came from (plan.json
`sites[]` and `figures`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.catalog import Catalog
from planner.catalog.types import ReserveTier
from planner.inputs.sites import KubernetesSite
from planner.targets.base import Cited

MIB_PER_GIB = 1024


def reserved(amount: float, tiers: list[ReserveTier]) -> float:
    """What a tiered reserve keeps of `amount` (CPUs or GiB): each tier's share of its part."""
    kept, left = 0.0, amount
    for tier in tiers:
        part = left if tier.size is None else min(left, tier.size)
        kept += part * tier.share
        left -= part
        if left <= 0:
            break
    return kept


@dataclass(frozen=True)
class PodResources:
    """A pool pod's CPUs and memory on the site, and the figures they rest on."""

    cpus_per_node: int
    memory_gib_per_node: float
    cpus: int
    memory_mib: int
    shm_mib: int
    figures: tuple[Cited, ...]


class NoNodeFigure(ValueError):
    """The site gives no figure of its nodes and the catalog has none for its GPU node."""


def pod_resources(catalog: Catalog, site: KubernetesSite, index: int) -> PodResources:
    """The CPUs and memory each pod of a pool on `site` (sites[index]) requests and is limited
    to. Raises NoNodeFigure where neither the file nor the catalog gives a node's figure (the
    loader reports it first)."""
    data = catalog.node_resources
    server = data.server(site.gpu, site.gpus_per_node)
    prefix = f"site.{site.name}"

    def node(field: str, given: float | None, unit: str) -> Cited:
        if given is not None:
            where = f"set in the workloads file: sites[{index}].{field}"
            return Cited(f"{prefix}.{field}", given, unit, where, "")
        if server is None:
            raise NoNodeFigure(field)
        figure = server.cpus if field == "cpus_per_node" else server.memory_gib
        return Cited(f"{prefix}.{field}", figure.value, unit, figure.source, figure.date)

    cpus = node("cpus_per_node", site.cpus_per_node, "CPUs a node")
    memory = node("memory_gib_per_node", site.memory_gib_per_node, "GiB a node")
    reserve = data.kubelet_reserve
    kubelet_cpus = reserved(cpus.value, reserve.cpu_tiers)
    kubelet_gib = reserved(memory.value, reserve.memory_gib_tiers) + (
        reserve.eviction_mib / MIB_PER_GIB
    )
    headroom = data.daemonset_headroom
    figures = (
        cpus,
        memory,
        Cited(
            f"{prefix}.kubelet_reserved_cpus",
            round(kubelet_cpus, 4),
            "CPUs the kubelet and system keep",
            reserve.source,
            reserve.date,
        ),
        Cited(
            f"{prefix}.kubelet_reserved_gib",
            round(kubelet_gib, 4),
            "GiB the kubelet and system keep (eviction threshold included)",
            reserve.source,
            reserve.date,
        ),
        Cited(
            "kubernetes.daemonset_headroom.cpus",
            headroom.cpus.value,
            "CPUs left to a node's DaemonSets",
            headroom.cpus.source,
            headroom.cpus.date,
        ),
        Cited(
            "kubernetes.daemonset_headroom.memory_gib",
            headroom.memory_gib.value,
            "GiB left to a node's DaemonSets",
            headroom.memory_gib.source,
            headroom.memory_gib.date,
        ),
        Cited(
            "kubernetes.shm_gib",
            data.shm_gib.value,
            "GiB of /dev/shm a pod (within its memory)",
            data.shm_gib.source,
            data.shm_gib.date,
        ),
    )
    pod_cpus = math.floor(cpus.value - kubelet_cpus - headroom.cpus.value)
    pod_mib = math.floor((memory.value - kubelet_gib - headroom.memory_gib.value) * MIB_PER_GIB)
    return PodResources(
        cpus_per_node=int(cpus.value),
        memory_gib_per_node=memory.value,
        cpus=pod_cpus,
        memory_mib=pod_mib,
        shm_mib=math.ceil(data.shm_gib.value * MIB_PER_GIB),
        figures=figures,
    )


def pod_problem(resources: PodResources) -> tuple[str, str] | None:
    """Why a node this small leaves a pool's pod nothing to run on, as (field, message), or
    None: at least one whole CPU, and more memory than the shared memory it holds."""
    if resources.cpus < 1:
        return (
            "cpus_per_node",
            f"{resources.cpus_per_node} CPUs leave a pod no whole CPU once the kubelet's "
            "reserve and the DaemonSets' headroom are kept (kubernetes.yaml node_resources)",
        )
    if resources.memory_mib <= resources.shm_mib:
        return (
            "memory_gib_per_node",
            f"{resources.memory_gib_per_node:g} GiB leave a pod {resources.memory_mib} MiB once "
            "the kubelet's reserve and the DaemonSets' headroom are kept, no more than its "
            f"{resources.shm_mib} MiB of shared memory (kubernetes.yaml node_resources)",
        )
    return None
