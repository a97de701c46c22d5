"""A cluster pool's NetworkPolicies: everything in its namespace denied both ways, then what the
pool needs allowed (kubernetes.io, "Network Policies": policies are additive allow-lists, so a
pod selected by a policy of a type takes only what some policy of that type allows).

- Ingress: the serving port from the consumers only: their ranges (ipBlock) and the namespaces
  of the cluster they name (a namespaceSelector on the namespace's name), and the ranges the
  site's load balancer checks their health from; and any port from the pool's own pods (a
  multi-node replica's Ray and NCCL traffic).
- Egress: the pool's own pods; cluster DNS (kube-system's kube-dns pods, port 53, UDP and TCP,
  which the pods need to find each other: LeaderWorkerSet's leader address is a DNS name); and
  the weights' object store range on HTTPS, which the init step copying the weights needs. A
  policy selects pods, not containers, so the serving container may reach the store too: the
  store is the organization's own, and the stack's credentials for it are read-only (README).

The cluster itself must enforce them: a CNI that implements NetworkPolicy, DNS that resolves
no outside names for the pool, no node-level egress path (the plan's stated assumptions)."""

from __future__ import annotations

from typing import Any

# Cluster DNS as kubeadm and most distributions deploy it (kubernetes.io, "DNS for Services and
# Pods"; CoreDNS's pods keep the k8s-app: kube-dns label). The namespace is selected by the
# label the API server sets on every namespace (kubernetes.io/metadata.name, Kubernetes 1.22+).
NAMESPACE_NAME = "kubernetes.io/metadata.name"
DNS_NAMESPACE = {NAMESPACE_NAME: "kube-system"}
DNS_PODS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
HTTPS_PORT = 443


def _policy(
    name: str, namespace: str, labels: dict[str, str], spec: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def default_deny(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """Every pod of the namespace (the empty selector), no rule: nothing in, nothing out."""
    return _policy(
        "default-deny",
        namespace,
        labels,
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    )


def pool_allow(
    namespace: str,
    labels: dict[str, str],
    pods: dict[str, str],
    port: int,
    consumers: list[str],
    weights_cidr: str,
    namespaces: tuple[str, ...] | list[str] = (),
    health_checks: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """What the pool's pods (`pods`: their selector) may send and receive. `consumers`: the
    callers' ranges; `namespaces`: the namespaces whose pods call it. A peer with only a
    namespaceSelector admits every pod of the namespaces it selects (kubernetes.io, "Network
    Policies", Behavior of to and from selectors); the namespace is selected by its name, in the
    label the API server sets on every namespace (kubernetes.io/metadata.name: kubernetes.io,
    "Well-Known Labels, Annotations and Taints"; on by default since Kubernetes 1.21, GA in
    1.22, KEP-2161), which only the namespace's own name can match. `health_checks`: the
    ranges the site's load balancer checks the pods from (an AWS NLB's own subnets: with ip
    targets the pod sees the load balancer's private address as the source of a health check),
    admitted on the serving port only, where the pool has a LoadBalancer Service."""
    own = {"podSelector": {"matchLabels": pods}}
    callers: list[dict[str, Any]] = [
        {"ipBlock": {"cidr": cidr}} for cidr in [*consumers, *health_checks]
    ]
    callers += [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: namespace}}}
        for namespace in namespaces
    ]
    return _policy(
        "serving",
        namespace,
        labels,
        {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": callers,
                    "ports": [{"protocol": "TCP", "port": port}],
                },
                {"from": [own]},
            ],
            "egress": [
                {"to": [own]},
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": DNS_NAMESPACE},
                            "podSelector": {"matchLabels": DNS_PODS},
                        }
                    ],
                    "ports": [
                        {"protocol": "UDP", "port": DNS_PORT},
                        {"protocol": "TCP", "port": DNS_PORT},
                    ],
                },
                {
                    "to": [{"ipBlock": {"cidr": weights_cidr}}],
                    "ports": [{"protocol": "TCP", "port": HTTPS_PORT}],
                },
            ],
        },
    )
