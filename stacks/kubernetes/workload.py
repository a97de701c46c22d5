"""A cluster pool's serving pods: vLLM from the pinned image in the organization's registry, the
weights copied by an init step from the site's object store (never a public hub) into a volume
of the site's storage class, GPUs per the plan's parallelism, probes on /health.

One pod serves one replica where a replica fits a node (a Deployment; the Service spreads
requests over the replicas); a replica spanning pods (pipeline parallelism, or more GPUs than a
node has) is a LeaderWorkerSet group (leaderworkerset.x-k8s.io/v1, kubernetes-sigs/lws): the
leader starts a Ray head and `vllm serve`, the workers join its Ray cluster, as the LWS
documentation's vLLM example does (lws.sigs.k8s.io/docs/examples/vllm, docs/examples/vllm/GPU/
lws.yaml at v0.10.0, using the multi-node-serving.sh script the vLLM image ships). The cluster
must run the LWS controller: install the pinned release (LWS_RELEASE) with
`kubectl apply --server-side -f LWS_MANIFESTS` (lws.sigs.k8s.io, Installation)."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

from planner.catalog import Catalog
from planner.planfile import ClusterSite, Pool
from stacks.boot import boot_figures, pod_startup_s, weights_gb
from stacks.kubernetes.labels import PREFIX
from stacks.serving import TLS_KEY, serve_args
from stacks.settings import SERVING_PORT, ClusterSettings

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_RELEASE = "v0.10.0"
LWS_MANIFESTS = (
    f"https://github.com/kubernetes-sigs/lws/releases/download/{LWS_RELEASE}/manifests.yaml"
)
# The role label the Service selects the serving pods by (a group's leader serves).
ROLE_LABEL = f"{PREFIX}/role"
WEIGHTS_DIR = "/weights"
# vLLM's multi-node helper in its image (vllm examples/online_serving/multi-node-serving.sh).
MULTI_NODE = "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh"
# The non-root user the pods run as (Pod Security "restricted": runAsNonRoot).
USER_ID = 1000
# Probe cadence (operational choices, not costs): a probe every 10 s; a serving container
# failing 3 readiness checks leaves the Service, 6 liveness checks (a minute) is restarted.
PROBE_PERIOD_S = 10
READINESS_FAILURES = 3
LIVENESS_FAILURES = 6
SECRET_API_KEY = "api-key"
SECRET_WEIGHTS = "weights-reader"
# The pool's serving certificate and key (a kubernetes.io/tls Secret: tls.crt, tls.key), mounted
# read-only where the serving command reads them (stacks/serving.py TLS_KEY, TLS_CERTIFICATE).
SECRET_TLS = "serving-tls"
TLS_DIR = TLS_KEY.rsplit("/", 1)[0]
# Owner and group may read, no one else: the pods' fsGroup owns the files (0440).
TLS_FILE_MODE = 0o440


@dataclass(frozen=True)
class Shape:
    """How the plan's replicas map onto pods: replicas, pods per replica, GPUs a pod."""

    replicas: int
    group_size: int
    gpus_per_pod: int

    @property
    def spans_pods(self) -> bool:
        return self.group_size > 1


def shape(pool: Pool) -> Shape:
    """A replica's GPUs are tensor x pipeline parallel; a node holds gpus_per_node of them. A
    replica on one node is one pod (and a node runs replicas_per_node of them); one spanning
    nodes, or pipelined, is a group of max(pipeline stages, nodes it needs) pods."""
    per_replica = pool.tensor_parallel * pool.pipeline_parallel
    nodes_per_replica = math.ceil(per_replica / pool.gpus_per_node)
    if pool.pipeline_parallel == 1 and nodes_per_replica == 1:
        return Shape(pool.nodes * pool.replicas_per_node, 1, per_replica)
    size = max(pool.pipeline_parallel, nodes_per_replica)
    replicas = max(1, pool.nodes * pool.gpus_per_node // per_replica)
    return Shape(replicas, size, per_replica // size)


def image(catalog: Catalog, cluster: ClusterSettings, tag: str) -> str:
    """The pinned vLLM image, mirrored into the organization's registry."""
    repository = catalog.serving.release.image.rsplit(":", 1)[0]
    return f"{cluster.registry}/{repository}:{tag}"


def volume_gi(catalog: Catalog, pool: Pool) -> int:
    """The weights volume: the checkpoint's size with the boot margin's headroom, in GiB."""
    size = weights_gb(catalog, pool.model, pool.precision) * boot_figures().margin.value
    return math.ceil(size * 1e9 / 2**30)


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _copy_weights(pool: Pool, site: ClusterSite, cluster: ClusterSettings) -> dict[str, Any]:
    """The init step: the checkpoint from the site's object store to the pod's volume."""
    source = f"{site.weights_source.rstrip('/')}/{pool.weights}"
    return {
        "name": "copy-weights",
        "image": cluster.weights_copy_image,
        "command": ["aws", "s3", "sync", source, WEIGHTS_DIR, "--only-show-errors"],
        "args": ["--endpoint-url", cluster.weights_endpoint],
        "env": [
            {"name": "HOME", "value": "/cache"},
            *(
                {
                    "name": env,
                    "valueFrom": {"secretKeyRef": {"name": SECRET_WEIGHTS, "key": env}},
                }
                for env in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if cluster.access_key_id is not None
            ),
        ],
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "weights", "mountPath": WEIGHTS_DIR},
            {"name": "cache", "mountPath": "/cache"},
        ],
    }


def _probe(path: str, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTPS"},
        "periodSeconds": PROBE_PERIOD_S,
        "failureThreshold": failures,
    }


def _serving_container(
    name: str,
    command: list[str],
    gpus: int,
    catalog: Catalog,
    pool: Pool,
    image_ref: str,
    serves: bool,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image_ref,
        "command": command,
        "env": [
            {"name": "HOME", "value": "/cache"},
            {
                "name": "VLLM_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": SECRET_API_KEY, "key": "key"}},
            },
        ],
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "weights", "mountPath": WEIGHTS_DIR, "readOnly": True},
            {"name": "cache", "mountPath": "/cache"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if serves:
        container["volumeMounts"].append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        # The startup probe holds liveness off while the weights load and the engine starts.
        budget = pod_startup_s(catalog, pool)
        container["ports"] = [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}]
        container["startupProbe"] = _probe("/health", math.ceil(budget / PROBE_PERIOD_S))
        container["readinessProbe"] = _probe("/health", READINESS_FAILURES)
        container["livenessProbe"] = _probe("/health", LIVENESS_FAILURES)
    return container


def pod_spec(
    catalog: Catalog,
    pool: Pool,
    site: ClusterSite,
    cluster: ClusterSettings,
    image_ref: str,
    container: dict[str, Any],
) -> dict[str, Any]:
    return {
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": dict(site.node_selector),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_copy_weights(pool, site, cluster)],
        "containers": [container],
        "volumes": [
            {
                # A PVC of the site's storage class made with the pod and deleted with it: each
                # pod of a replica needs the weights on its own node.
                "name": "weights",
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": site.storage_class,
                            "resources": {"requests": {"storage": f"{volume_gi(catalog, pool)}Gi"}},
                        }
                    }
                },
            },
            {"name": "cache", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
            {"name": "tls", "secret": {"secretName": SECRET_TLS, "defaultMode": TLS_FILE_MODE}},
        ],
    }


def serving_manifest(
    catalog: Catalog,
    pool: Pool,
    site: ClusterSite,
    cluster: ClusterSettings,
    image_tag: str,
    namespace: str,
    pods: dict[str, str],
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """The Deployment, or the LeaderWorkerSet where a replica spans pods."""
    form = shape(pool)
    ref = image(catalog, cluster, image_tag)
    flags = serve_args(pool, catalog, engines=1, tls=True)
    metadata = {
        "name": "serving",
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    serving_labels = {**labels, **pods, ROLE_LABEL: "leader"}
    if not form.spans_pods:
        container = _serving_container(
            "vllm",
            ["vllm", "serve", WEIGHTS_DIR, *flags],
            form.gpus_per_pod,
            catalog,
            pool,
            ref,
            True,
        )
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": form.replicas,
                "selector": {"matchLabels": pods},
                # The plan priced its nodes exactly: no surge pod would find a GPU.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                },
                "template": {
                    "metadata": {"labels": serving_labels},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, container),
                },
            },
        }
    leader = _serving_container(
        "vllm-leader",
        [
            "sh",
            "-c",
            f"{MULTI_NODE} leader --ray_cluster_size=$(LWS_GROUP_SIZE); "
            f"exec vllm serve {WEIGHTS_DIR} {shlex.join(flags)}",
        ],
        form.gpus_per_pod,
        catalog,
        pool,
        ref,
        True,
    )
    worker = _serving_container(
        "vllm-worker",
        ["sh", "-c", f"{MULTI_NODE} worker --ray_address=$(LWS_LEADER_ADDRESS)"],
        form.gpus_per_pod,
        catalog,
        pool,
        ref,
        False,
    )
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": metadata,
        "spec": {
            "replicas": form.replicas,
            "leaderWorkerTemplate": {
                "size": form.group_size,
                # A pod of a group lost is the group's replica lost: start the group again.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": serving_labels},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, leader),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**labels, **pods, ROLE_LABEL: "worker"}},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, worker),
                },
            },
        },
    }
