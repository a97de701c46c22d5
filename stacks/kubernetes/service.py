"""How callers reach a cluster pool, and how much of it a voluntary disruption may take: a
ClusterIP Service (a name and address inside the cluster; never a NodePort or LoadBalancer,
which would open it on every node or outside the cluster) and a PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from stacks.kubernetes.workload import ROLE_LABEL


def service_manifest(
    namespace: str, labels: dict[str, str], pods: dict[str, str], port: int
) -> dict[str, Any]:
    """The serving pods (a group's leader where a replica spans pods) on the serving port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "serving", "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {**pods, ROLE_LABEL: "leader"},
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


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
