"""How callers reach a cluster pool, and how much of it a voluntary disruption may take.

- Callers inside the cluster only: a ClusterIP Service (a name and address inside the cluster).
- Callers outside the cluster (consumers given by their range, on a site that states its
  internal load balancer): a Service of type LoadBalancer (kubernetes.io, "Service", type
  LoadBalancer; ServiceSpec) carrying the site's annotations and loadBalancerClass that make the
  cluster's implementation keep it internal, `loadBalancerSourceRanges` the consumers' ranges,
  `externalTrafficPolicy: Local` (traffic goes to a pod on the node it arrives at, with no
  source NAT: the caller's address reaches the pod, so the pool's NetworkPolicy ipBlock rules
  still apply), and `allocateLoadBalancerNodePorts: false` (no node port on every node; the
  implementation must send traffic to the pods' own addresses, as the AWS Load Balancer
  Controller's ip targets do). With `Local`, Kubernetes still allocates a healthCheckNodePort:
  kube-proxy serves it on every node, answering whether the node has a ready endpoint of the
  Service, and forwards nothing to the pods (kubernetes/kubernetes issue 130776: it is separate
  from the node ports and allocateLoadBalancerNodePorts does not turn it off); the plan states
  it among the load balancer's assumptions.

Never a NodePort, nor a LoadBalancer without the site's internal settings. The same Service
keeps a cluster IP, so callers inside the cluster use its name either way. A
PodDisruptionBudget beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stacks.kubernetes.workload import ROLE_LABEL


@dataclass(frozen=True)
class Outside:
    """What a LoadBalancer Service takes from the site and the consumers."""

    annotations: dict[str, str]
    load_balancer_class: str | None
    source_ranges: list[str]


def service_manifest(
    namespace: str,
    labels: dict[str, str],
    pods: dict[str, str],
    port: int,
    outside: Outside | None = None,
) -> dict[str, Any]:
    """The serving pods (a group's leader where a replica spans pods) on the serving port."""
    metadata: dict[str, Any] = {"name": "serving", "namespace": namespace, "labels": labels}
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": {**pods, ROLE_LABEL: "leader"},
        "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
    }
    if outside is not None:
        if outside.annotations:
            metadata["annotations"] = dict(outside.annotations)
        spec["type"] = "LoadBalancer"
        if outside.load_balancer_class is not None:
            spec["loadBalancerClass"] = outside.load_balancer_class
        spec["loadBalancerSourceRanges"] = list(outside.source_ranges)
        spec["externalTrafficPolicy"] = "Local"
        spec["allocateLoadBalancerNodePorts"] = False
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def disruption_budget(
    namespace: str, labels: dict[str, str], pods: dict[str, str]
) -> dict[str, Any]:
    """One pod of the pool at a time: a drain takes at most one replica out of service."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "serving", "namespace": namespace, "labels": labels},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pods}},
    }
