"""A cluster pool's serving pods: vLLM from the pinned image in the organization's registry, the
weights copied by an init step from the site's object store (never a public hub) into a volume
of the site's storage class, probes on /health.

Each pod holds a whole GPU node, as an EC2 pool holds whole instances: the plan prices a pool at
`nodes` whole nodes and keeps a site's pools within its nodes, and a pod of fewer GPUs than a
node would let the scheduler scatter a pool's pods over more nodes than it is priced at, leaving
partial nodes where another pool's whole-node pod no longer fits. So a pod requests all the
node's GPUs (`gpus_per_node`) and all the CPUs and memory the node can give a pod (the plan's
`sites[]`: the node less the kubelet's reserve and the DaemonSets' headroom), requests equal to
limits in every container, the init step's too (Guaranteed QoS: kubernetes.io, "Pod Quality of
Service Classes"; the init step runs before the server, so the pod's effective request stays
one node's: kubernetes.io, "Init Containers", resource sharing within containers). The /dev/shm
emptyDir (medium Memory) has a sizeLimit within that memory, whose pages count in the
container's limit (kubernetes.io, "Volumes", emptyDir).

- A replica within one node (tensor x pipeline parallel GPUs at most the node's): one pod per
  node, a Deployment of `nodes` pods, each running the replicas the plan put on a node as vLLM
  data-parallel engines behind one port (`--data-parallel-size replicas_per_node`), as an EC2
  node does (stacks/serving.py). A pipelined replica within a node is vLLM's own multiprocessing
  (its default executor on one node with the GPUs it needs: vLLM docs, Distributed Inference and
  Serving); the plan checks keep it to one replica a node.
- A replica spanning nodes: a LeaderWorkerSet group of one pod per node
  (leaderworkerset.x-k8s.io/v1, kubernetes-sigs/lws): the leader starts a Ray head and `vllm
  serve`, the workers join its Ray cluster, as the LWS documentation's vLLM example does
  (lws.sigs.k8s.io/docs/examples/vllm, docs/examples/vllm/GPU/lws.yaml at v0.10.0, whose pods
  also take all 8 GPUs of a node, using the multi-node-serving.sh script the vLLM image ships);
  `nodes` / nodes-a-replica groups.

So pods x GPUs a pod = `nodes` x `gpus_per_node` for every pool (tests/test_kubernetes_stack.py
checks it over pool shapes). No affinity is added: two pods that each request all of a node's
GPUs cannot share a node, so a pool's pods take exactly `nodes` nodes whatever the scheduler
picks, and the site's pools together at most its `nodes` (the plan's assumption
dedicated_gpu_nodes: no other workload holds them). LWS exclusive placement
(leaderworkerset.sigs.k8s.io/exclusive-topology, LWS concepts at v0.10.0) would give each group a
topology domain (a rack) of its own; that is speed, not correctness, and a site names no
topology key, so a group's pods may land on any of its nodes, joined by the cluster's network
as the plan assumes (its offer's `efa`). The cluster must run the LWS controller: install the
pinned release (LWS_RELEASE) with `kubectl apply --server-side -f LWS_MANIFESTS`
(lws.sigs.k8s.io, Installation).

About 580 lines on purpose: the two shapes of serving pods (a Deployment's, a LeaderWorkerSet's
leader and worker) share one container, volume, probe and security context, and half the module
is the constants each field is set from with the source of its rule (the deploy-time limits
tests/test_kubernetes_stack.py holds it to); apart, each piece would restate the others'."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

from planner import names
from planner.catalog import Catalog
from planner.planfile import ClusterLoadBalancer, ClusterSite, Pool
from stacks.boot import (
    COPY_RETRY,
    CopyRetry,
    boot_figures,
    pod_ready_s,
    pod_startup_s,
    ray_wait_s,
    readiness_gate_s,
    termination_figures,
    weights_gb,
)
from stacks.kubernetes.labels import PREFIX, label_key
from stacks.serving import TLS_KEY, data_parallel, serve_args
from stacks.settings import SERVING_PORT, ClusterSettings

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_RELEASE = "v0.10.0"
LWS_MANIFESTS = (
    f"https://github.com/kubernetes-sigs/lws/releases/download/{LWS_RELEASE}/manifests.yaml"
)
# The LeaderWorkerSet's name: never the pool's Service's (`serving`, stacks/kubernetes/service.py).
# The LWS controller makes a headless Service named after the LWS and leaves one already there
# alone (kubernetes-sigs/lws v0.10.0 pkg/controllers/leaderworkerset_controller.go
# CreateHeadlessServiceIfNotExists(..., lws.Name), pkg/utils/controller/controller_utils.go), and
# a worker reaches its leader as <lws>-<group>.<lws>.<namespace> (LWS_LEADER_ADDRESS,
# pkg/utils/pod/pod_utils.go): a name only that headless Service resolves.
LWS_NAME = "serving-group"
# Of the pool's cost labels, those a pod template carries: the names (stack, pool), which stay
# for the pool's life; its cost and perimeter stay on the Deployment or LWS.
NAME_LABELS = frozenset({label_key(names.TAG_STACK), label_key(names.TAG_POOL)})
# The role label the Service selects the serving pods by (a group's leader serves).
ROLE_LABEL = f"{PREFIX}/role"
WEIGHTS_DIR = "/weights"
# The pod-template annotation holding the SHA-256 of the serving certificate the pods mount: a
# certificate re-issued changes the template, so the pods are replaced and start with it.
# vLLM's own reload (--enable-ssl-refresh, vllm/entrypoints/ssl.py SSLCertRefresher) is not
# used: it watches the two file paths with watchfiles, and a mounted Secret's files are
# symlinks through `..data` that the kubelet swaps to a new directory, deleting the old one;
# a watch on a file ends once that file is deleted (samuelcolvin/watchfiles#235, "Watched file
# no longer watched after a change"; spring-projects/spring-boot#44807, "SSL Hot Reload
# reloads certificates only once on Kubernetes"; istio/istio#14540 and KServe's refresher,
# kserve/kserve#6106, watch the directory's `..data` instead), so at most the first renewal
# would reach the server and the next would leave it serving an expired certificate.
CERTIFICATE_ANNOTATION = f"{PREFIX}/serving-certificate-sha256"
# vLLM's multi-node helper in its image (vllm examples/online_serving/multi-node-serving.sh).
MULTI_NODE = "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh"
# The annotation pulumi-kubernetes reads for what to await on a custom resource.
WAIT_FOR = "pulumi.com/waitFor"
# The non-root user the pods run as (Pod Security "restricted": runAsNonRoot).
USER_ID = 1000
# The name getpass.getuser() returns for that user: the image has no /etc/passwd entry for uid
# 1000, and torch calls getpass.getuser() at import, which reads LOGNAME, USER, LNAME and USERNAME
# before the password database and raises KeyError without either (Python docs, getpass.getuser;
# ai-dynamo/dynamo PR #12457, kserve/kserve#5666). Set in every container of the pod.
USER_NAME = "vllm"
USER_ENV = [{"name": "USER", "value": USER_NAME}, {"name": "LOGNAME", "value": USER_NAME}]
# Probe cadence (operational choices, not costs): a probe every 10 s; a serving container
# failing 3 readiness checks leaves the Service, 6 liveness checks (a minute) is restarted.
PROBE_PERIOD_S = 10
# A probe's answer may take this long (Kubernetes's default, 1 s, is shorter than a busy vLLM
# server's /health over TLS takes at times, and a liveness miss restarts the pod).
PROBE_TIMEOUT_S = 5
READINESS_FAILURES = 3
LIVENESS_FAILURES = 6
SECRET_API_KEY = "api-key"
SECRET_WEIGHTS = "weights-reader"
# The NVIDIA device plugin's resource (k8s-device-plugin README: `nvidia.com/gpu` in limits).
GPU_RESOURCE = "nvidia.com/gpu"
# The pool's serving certificate and key (a kubernetes.io/tls Secret: tls.crt, tls.key), mounted
# read-only where the serving command reads them (stacks/serving.py TLS_KEY, TLS_CERTIFICATE).
SECRET_TLS = "serving-tls"
TLS_DIR = TLS_KEY.rsplit("/", 1)[0]
# Where the init step finds the weights' store CA (clusters.<site>.weights_ca), a key of the
# weights' Secret.
WEIGHTS_CA_DIR = "/etc/weights-ca"
WEIGHTS_CA_KEY = "ca.crt"
# Owner and group may read, no one else: the pods' fsGroup owns the files (0440).
TLS_FILE_MODE = 0o440


@dataclass(frozen=True)
class Shape:
    """How the plan's nodes map onto pods: replicas (pods, or groups of pods), pods per replica,
    GPUs a pod (always the node's), and the vLLM data-parallel engines a replica's server runs."""

    replicas: int
    group_size: int
    gpus_per_pod: int
    engines: int

    @property
    def spans_pods(self) -> bool:
        return self.group_size > 1

    @property
    def pods(self) -> int:
        return self.replicas * self.group_size


@dataclass(frozen=True)
class AwaitTimeouts:
    """How long `pulumi up` waits for the serving pods before it calls a create or an update
    failed, in seconds (pulumi-kubernetes waits 10 minutes for a Deployment to be Available
    and a Service's endpoints to be ready unless customTimeouts say otherwise: its Deployment
    and Service docs, 4.34.2; a GPU pod copying and loading its weights takes longer)."""

    create_s: int
    update_s: int


def await_timeouts(
    catalog: Catalog, pool: Pool, load_balancer: ClusterLoadBalancer | None = None
) -> AwaitTimeouts:
    """A create starts every pod at once: one pod's way to serving (stacks/boot.py
    pod_ready_s), and then to Ready behind the load balancer of its outside callers
    (`load_balancer`; an AWS NLB's readiness gate, stacks/boot.py readiness_gate_s). An update
    replaces them one replica at a time (the Deployment's maxUnavailable 1 with no surge; the
    LeaderWorkerSet's rolloutStrategy defaults, maxUnavailable 1 and maxSurge 0 in its v0.10.0
    CRD): each replica's old pods end (their grace, whose preStop sleep runs whole) and free
    their GPUs before its new ones start, in turn. A group's workers end only after their
    leader is gone (their StatefulSet is the leader pod's, deleted with background
    propagation: kubernetes-sigs/lws#956), so its end is two graces."""
    form = shape(pool)
    ready = pod_ready_s(catalog, pool, form.spans_pods) + readiness_gate_s(load_balancer)
    ends = termination_figures().grace_s(load_balancer) * (2 if form.spans_pods else 1)
    # In whole minutes, as `pulumi up`'s waits are given (stacks/kubernetes/pool.py).
    update_s = math.ceil((ends + ready) * form.replicas / 60) * 60
    return AwaitTimeouts(create_s=ready, update_s=update_s)


def shape(pool: Pool) -> Shape:
    """One pod a node. A replica's GPUs are tensor x pipeline parallel; where they fit a node,
    each of the pool's `nodes` pods runs the node's replicas_per_node replicas as engines;
    where they do not, a replica is a group of the nodes it needs, `nodes` / that groups."""
    per_replica = pool.tensor_parallel * pool.pipeline_parallel
    nodes_per_replica = math.ceil(per_replica / pool.gpus_per_node)
    if pool.nodes % nodes_per_replica:
        raise ValueError(
            f"pool {pool.name}: {pool.nodes} nodes are not whole replicas of "
            f"{nodes_per_replica} nodes (tensor {pool.tensor_parallel} x pipeline "
            f"{pool.pipeline_parallel} GPUs on nodes of {pool.gpus_per_node}): plan again"
        )
    if nodes_per_replica == 1:
        return Shape(pool.nodes, 1, pool.gpus_per_node, data_parallel(pool))
    return Shape(pool.nodes // nodes_per_replica, nodes_per_replica, pool.gpus_per_node, 1)


def pod_serve_args(pool: Pool, catalog: Catalog) -> list[str]:
    """The arguments after `vllm serve /weights` a pool's serving pod runs: the node's replicas
    as data-parallel engines, HTTPS with the pool's certificate, and, for a replica spanning
    pods, the Ray backend the group's Ray cluster serves it with (as an EC2 multi-node head
    does)."""
    form = shape(pool)
    args = serve_args(pool, catalog, engines=form.engines, tls=True)
    # A certificate the stack re-issues reaches the server by new pods, not by a reload
    # (CERTIFICATE_ANNOTATION).
    return [*args, "--distributed-executor-backend", "ray"] if form.spans_pods else args


def image(catalog: Catalog, cluster: ClusterSettings, tag: str) -> str:
    """The pinned vLLM image, mirrored into the organization's registry."""
    repository = catalog.serving.release.image.rsplit(":", 1)[0]
    return f"{cluster.registry}/{repository}:{tag}"


def volume_gi(catalog: Catalog, pool: Pool) -> int:
    """The weights volume: the checkpoint's size with the boot margin's headroom, in GiB."""
    size = weights_gb(catalog, pool.model, pool.precision) * boot_figures().margin.value
    return math.ceil(size * 1e9 / 2**30)


def resources(site: ClusterSite, gpus: int = 0) -> dict[str, dict[str, str]]:
    """A container's requests and limits, equal (Guaranteed QoS): the CPUs and memory a pod on
    the site holds (the plan's sites[]), and its node's GPUs where it serves."""
    limits = {"cpu": str(site.pod_cpus), "memory": f"{site.pod_memory_mib}Mi"}
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(limits), "limits": limits}


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def copy_script(retry: CopyRetry = COPY_RETRY) -> str:
    """The init step's shell script (POSIX sh; the image needs `aws`, `sh` and `sleep`):
    `aws s3 sync` of $1 (the checkpoint) from the store at $2 into the weights volume, tried
    again in place after a failure (sync copies only what is still missing), each try bounded
    by the CLI's timeouts, up to `retry.attempts` times (stacks/boot.py CopyRetry). It exits
    non-zero only once every attempt failed: a LeaderWorkerSet recreates a group, every pod's
    copy included, once any of its pods' containers restarted, init containers too, however
    long ago (kubernetes-sigs/lws v0.10.0 pkg/utils/pod/pod_utils.go ContainerRestarted;
    RecreateGroupAfterStart only defers it until no pod of the group is Pending,
    pkg/controllers/pod_controller.go)."""
    timeouts = (
        f"--cli-connect-timeout {retry.connect_timeout_s} --cli-read-timeout {retry.read_timeout_s}"
    )
    return (
        f'i=1; until aws s3 sync "$1" {WEIGHTS_DIR} --only-show-errors --endpoint-url "$2" '
        f"{timeouts}; do "
        f'if [ "$i" -ge {retry.attempts} ]; then exit 1; fi; '
        f'echo "copy-weights: attempt $i failed, again in {retry.retry_s} s" >&2; '
        f"i=$((i + 1)); sleep {retry.retry_s}; done"
    )


def _copy_weights(pool: Pool, site: ClusterSite, cluster: ClusterSettings) -> dict[str, Any]:
    """The init step: the checkpoint from the site's object store to the pod's volume."""
    source = f"{site.weights_source.rstrip('/')}/{pool.weights}"
    return {
        "name": "copy-weights",
        "image": cluster.weights_copy_image,
        # The script's $0 names it in the shell's messages; $1 and $2 are the args.
        "command": ["sh", "-c", copy_script(), "copy-weights"],
        "args": [source, cluster.weights_endpoint],
        "env": [
            {"name": "HOME", "value": "/cache"},
            *USER_ENV,
            # Each request of the sync tried this many times (AWS CLI User Guide, environment
            # variables and retries: standard mode).
            {"name": "AWS_RETRY_MODE", "value": "standard"},
            {"name": "AWS_MAX_ATTEMPTS", "value": str(COPY_RETRY.requests)},
            *(
                {
                    "name": env,
                    "valueFrom": {"secretKeyRef": {"name": SECRET_WEIGHTS, "key": env}},
                }
                for env in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            ),
            # The AWS CLI verifies the store's certificate against this bundle instead of its
            # public CAs (AWS CLI User Guide, environment variables: AWS_CA_BUNDLE).
            *(
                [{"name": "AWS_CA_BUNDLE", "value": f"{WEIGHTS_CA_DIR}/{WEIGHTS_CA_KEY}"}]
                if cluster.weights_ca is not None
                else []
            ),
        ],
        # The whole pod's CPUs and memory while it runs, before the server starts.
        "resources": resources(site),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "weights", "mountPath": WEIGHTS_DIR},
            {"name": "cache", "mountPath": "/cache"},
            *(
                [{"name": "weights-ca", "mountPath": WEIGHTS_CA_DIR, "readOnly": True}]
                if cluster.weights_ca is not None
                else []
            ),
        ],
    }


def _probe(path: str, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTPS"},
        "periodSeconds": PROBE_PERIOD_S,
        "timeoutSeconds": PROBE_TIMEOUT_S,
        "failureThreshold": failures,
    }


def _serving_container(
    name: str,
    command: list[str],
    site: ClusterSite,
    catalog: Catalog,
    pool: Pool,
    image_ref: str,
    serves: bool,
    hold_s: int,
    multi_node: bool = False,
) -> dict[str, Any]:
    """`hold_s`: how long the container keeps running once its pod is told to end, before it
    gets SIGTERM (a preStop sleep, which the pod's grace period holds): until its callers'
    paths to it have closed and the requests it took before then have finished
    (TerminationFigures.serve_on_s); a multi-node worker as long, as its leader's requests run
    on its GPUs too. A liveness or startup probe's kill cuts the sleep at exit_s (the probe's
    own terminationGracePeriodSeconds, which overrides the pod's: kubernetes.io API reference,
    Probe; the kubelet gives the preStop hook that long, then SIGTERM and 2 s to SIGKILL), as a
    server that stopped answering has nothing to drain."""
    container: dict[str, Any] = {
        "name": name,
        "image": image_ref,
        "command": command,
        "env": [
            {"name": "HOME", "value": "/cache"},
            *USER_ENV,
            {
                "name": "VLLM_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": SECRET_API_KEY, "key": "key"}},
            },
            # Every serving process's environment (vllm.yaml `environment`).
            *(
                {"name": name, "value": value}
                for name, value in sorted(catalog.serving.environment.values.items())
            ),
        ],
        "resources": resources(site, site.gpus_per_node),
        "securityContext": _container_security(),
        # The image's coreutils sleep (the vLLM image is Ubuntu's): the exec form works on every
        # Kubernetes release, where the sleep action needs 1.30 or later (KEP-3960: beta in
        # 1.30, stable in 1.34).
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(hold_s)]}}},
        "volumeMounts": [
            {"name": "weights", "mountPath": WEIGHTS_DIR, "readOnly": True},
            {"name": "cache", "mountPath": "/cache"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if serves:
        container["volumeMounts"].append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        # The startup probe holds liveness off while the weights load and the engine starts.
        budget = pod_startup_s(catalog, pool, multi_node)
        container["ports"] = [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}]
        killed = {"terminationGracePeriodSeconds": termination_figures().exit_s}
        container["startupProbe"] = {
            **_probe("/health", math.ceil(budget / PROBE_PERIOD_S)),
            **killed,
        }
        container["readinessProbe"] = _probe("/health", READINESS_FAILURES)
        container["livenessProbe"] = {**_probe("/health", LIVENESS_FAILURES), **killed}
    return container


def pod_spec(
    catalog: Catalog,
    pool: Pool,
    site: ClusterSite,
    cluster: ClusterSettings,
    image_ref: str,
    container: dict[str, Any],
    grace_s: int,
) -> dict[str, Any]:
    """`grace_s`: the pod's terminationGracePeriodSeconds (TerminationFigures.grace_s)."""
    return {
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_s,
        "nodeSelector": dict(site.node_selector),
        # The GPU nodes' taints the site tolerates (sites[].tolerations), if any.
        **({"tolerations": [dict(t) for t in site.tolerations]} if site.tolerations else {}),
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
            # Memory-backed: its pages count in the container's memory limit.
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{site.shm_mib}Mi"}},
            {"name": "tls", "secret": {"secretName": SECRET_TLS, "defaultMode": TLS_FILE_MODE}},
            # The store's CA only, of the weights' Secret (its keys stay in the copy's env).
            *(
                [
                    {
                        "name": "weights-ca",
                        "secret": {
                            "secretName": SECRET_WEIGHTS,
                            "items": [{"key": WEIGHTS_CA_KEY, "path": WEIGHTS_CA_KEY}],
                            "defaultMode": TLS_FILE_MODE,
                        },
                    }
                ]
                if cluster.weights_ca is not None
                else []
            ),
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
    certificate_sha256: Any = None,
    load_balancer: ClusterLoadBalancer | None = None,
) -> dict[str, Any]:
    """The Deployment, or the LeaderWorkerSet where a replica spans pods. `certificate_sha256`
    (a string, or the stack's Output of one): the serving certificate's digest, which every pod
    template carries, so a certificate re-issued replaces the pods (CERTIFICATE_ANNOTATION).
    `load_balancer`: the one the pool's outside callers come through, if any (how long a new
    pod waits for it, await_timeouts; how long an old one keeps serving, TerminationFigures)."""
    form = shape(pool)
    ending = termination_figures()
    grace_s = ending.grace_s(load_balancer)
    serve_on_s = ending.serve_on_s(load_balancer)
    ref = image(catalog, cluster, image_tag)
    flags = pod_serve_args(pool, catalog)
    metadata = {
        "name": "serving" if not form.spans_pods else LWS_NAME,
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    # The pod templates carry only what stays for the pool's life, their pods' selector and
    # role, and the serving certificate's digest, whose change is meant to restart them. A
    # change to a template restarts its pods (kubernetes.io, "Deployments", updating a
    # Deployment: a rollout is triggered only by a change of .spec.template), so the cost
    # labels and annotations, which change with a price, stay on the Deployment or LWS itself.
    stable = {key: value for key, value in labels.items() if key in NAME_LABELS}
    serving_labels = {**stable, **pods, ROLE_LABEL: "leader"}
    # On the serving pods: a group's leader, as a change to either of its templates updates
    # the whole group (kubernetes-sigs/lws v0.10.0 pkg/utils/revision/revision_utils.go: a
    # revision is the whole leaderWorkerTemplate, with networkConfig).
    certified = (
        {"annotations": {CERTIFICATE_ANNOTATION: certificate_sha256}}
        if certificate_sha256 is not None
        else {}
    )
    if not form.spans_pods:
        container = _serving_container(
            "vllm",
            ["vllm", "serve", WEIGHTS_DIR, *flags],
            site,
            catalog,
            pool,
            ref,
            True,
            serve_on_s,
        )
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": form.replicas,
                # A rollout makes progress once per pod serving, which takes longer than the
                # 600 s default (kubernetes.io, "Deployments", Progress Deadline Seconds), else
                # every rollout reads ProgressDeadlineExceeded (pulumi-kubernetes only warns);
                # a new pod also waits for the old one to end and free its GPUs.
                "progressDeadlineSeconds": await_timeouts(catalog, pool, load_balancer).create_s
                + grace_s,
                "selector": {"matchLabels": pods},
                # The plan priced its nodes exactly: no surge pod would find a GPU.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                },
                "template": {
                    "metadata": {"labels": serving_labels, **certified},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, container, grace_s),
                },
            },
        }
    # The pods of a replica wait this long for one another, not the script's 300 s (boot.py).
    wait = ray_wait_s(catalog, pool)
    leader = _serving_container(
        "vllm-leader",
        [
            "sh",
            "-c",
            f"{MULTI_NODE} leader --ray_cluster_size=$(LWS_GROUP_SIZE) "
            f"--ray_init_timeout={wait} && exec vllm serve {WEIGHTS_DIR} {shlex.join(flags)}",
        ],
        site,
        catalog,
        pool,
        ref,
        True,
        serve_on_s,
        multi_node=True,
    )
    # pulumi-kubernetes waits for a custom resource only where it says what to wait for
    # (pulumi.com/waitFor: a JSON array of conditions, all of which must hold; provider
    # pkg/metadata/overrides.go ReadyCondition); else `pulumi up` would end while the groups
    # still load. Every group updated and every group ready, of replicas with no surge (LWS
    # v0.10.0 status: readyReplicas counts ready groups updated or not, updatedReplicas updated
    # groups ready or not). A jsonpath check passes only once status.observedGeneration, where
    # present, has reached the spec's generation (provider pkg/await/condition/jsonpath.go), so
    # an update is not judged on the status of the spec before it; the LWS controller writes
    # that field from v0.9.0 (kubernetes-sigs/lws#807). The first check requires the field,
    # so an older controller, without it, times the wait out instead of passing it at once.
    metadata["annotations"] = {
        **annotations,
        WAIT_FOR: json.dumps(
            [
                "jsonpath={.status.observedGeneration}",
                f"jsonpath={{.status.updatedReplicas}}={form.replicas}",
                f"jsonpath={{.status.readyReplicas}}={form.replicas}",
            ]
        ),
    }
    worker = _serving_container(
        "vllm-worker",
        [
            "sh",
            "-c",
            f"{MULTI_NODE} worker --ray_address=$(LWS_LEADER_ADDRESS) --ray_init_timeout={wait}",
        ],
        site,
        catalog,
        pool,
        ref,
        False,
        # Up while the leader serves on, whose requests run on this pod's GPUs too (a worker
        # evicted or lost has the group's leader deleted with it, so the group's pods end
        # together; a leader ended, by an update or a drain, ends its workers only once it is
        # gone: await_timeouts).
        serve_on_s,
    )
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": metadata,
        "spec": {
            "replicas": form.replicas,
            "leaderWorkerTemplate": {
                "size": form.group_size,
                # A pod of a group lost is the group's replica lost: start the group again,
                # but not while a pod of it is still Pending (copying its weights in its init
                # step), which would restart every pod's copy from nothing (LWS v0.10.0
                # restartPolicy RecreateGroupAfterStart, "Failure handling": the failure is
                # skipped while any pod is Pending). It only defers that: a restarted init step
                # still recreates the group once all started, so the copy retries within its
                # step (copy_script) instead of failing it.
                "restartPolicy": "RecreateGroupAfterStart",
                "leaderTemplate": {
                    "metadata": {"labels": serving_labels, **certified},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, leader, grace_s),
                },
                "workerTemplate": {
                    "metadata": {"labels": {**stable, **pods, ROLE_LABEL: "worker"}},
                    "spec": pod_spec(catalog, pool, site, cluster, ref, worker, grace_s),
                },
            },
        },
    }
