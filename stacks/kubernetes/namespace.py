"""A cluster pool's namespace and the Pod Security Standard its pods are held to.

"restricted", the narrowest profile (kubernetes.io, "Pod Security Standards", Restricted;
enforced by the Pod Security Admission controller through the namespace's
`pod-security.kubernetes.io/*` labels, kubernetes.io "Pod Security Admission"), admits the
serving pods as the stack writes them: a GPU is requested as the `nvidia.com/gpu` extended
resource, which the NVIDIA device plugin allocates and exposes to the container without
privilege, hostPath volumes or added capabilities; the pods run as a non-root user with no
privilege escalation, every capability dropped and the RuntimeDefault seccomp profile, and use
only the volume types the profile allows (ephemeral PVCs, emptyDir, secrets). The multi-node
pools' NCCL traffic goes over TCP sockets: GPUDirect RDMA would need IPC_LOCK, a capability
neither restricted nor baseline admits, so it is not used (and no profile wider than restricted
is needed)."""

from __future__ import annotations

from typing import Any

from planner.inputs.sites import AWS_NLB_READINESS_GATE

# The Kubernetes minor whose restricted profile the labels pin (kubernetes-validate's schemas in
# the tests are the same version's).
KUBERNETES_VERSION = "1.37"
POD_SECURITY_LEVEL = "restricted"


def pod_security_labels() -> dict[str, str]:
    """Enforce, audit and warn at the restricted level of the pinned Kubernetes version."""
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{KUBERNETES_VERSION}"
    return labels


def namespace_manifest(
    name: str, labels: dict[str, str], annotations: dict[str, str], readiness_gate: bool = False
) -> dict[str, Any]:
    """`readiness_gate`: the pool is served through an AWS NLB, whose controller then holds each
    new pod un-Ready until the NLB calls it healthy (planner/inputs/sites.py
    AWS_NLB_READINESS_GATE; stacks/boot.py readiness_gate_s: how long that adds)."""
    gate = dict([AWS_NLB_READINESS_GATE]) if readiness_gate else {}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**labels, **pod_security_labels(), **gate},
            "annotations": annotations,
        },
    }
