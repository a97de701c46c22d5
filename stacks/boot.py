"""How long a node of a pool takes to serve: the health-check grace of its Auto Scaling group.

Computed, not guessed: the weights' size (the catalog's parameters times the bytes per parameter
of the pool's precision), fetched from the pool's bucket at the instance's documented rate
(planner/data/instances.yaml `s3_download_gbps`, the target the node gives its S3 client) and
loaded into GPU memory, plus the engine's start, with a margin (planner/data/boot.yaml).

Target-neutral, so at the top of stacks/ rather than in stacks/aws/: the Kubernetes target the
next issue asks for reuses it (a pod's startup grace is the same boot), and the Ray head's lease
and the serving unit's back-off hold wherever the nodes run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import yaml

from planner.catalog import DATA_DIR, Catalog, Figure
from planner.inputs.sites import AWS_HEALTH_CHECK_INTERVAL, AWS_HEALTHY_THRESHOLD, is_aws_nlb
from planner.planfile import ClusterLoadBalancer, Pool


@dataclass(frozen=True)
class BootFigures:
    weights_load_gb_per_s: Figure
    engine_start_s: Figure
    margin: Figure
    cluster_copy_gb_per_s: Figure


@cache
def _boot_data() -> dict[str, dict[str, object]]:
    """planner/data/boot.yaml, read once for all its sections."""
    data: dict[str, dict[str, object]] = yaml.safe_load(
        (DATA_DIR / "boot.yaml").read_text(encoding="utf-8")
    )
    return data


def _whole_figures(section: str) -> dict[str, int]:
    """A boot.yaml section of whole-number figures (seconds, days), each checked as a Figure."""
    return {
        name: int(Figure.model_validate(value).value)
        for name, value in _boot_data()[section].items()
    }


@cache
def boot_figures() -> BootFigures:
    data = _boot_data()["boot"]
    return BootFigures(**{name: Figure.model_validate(value) for name, value in data.items()})


def weights_gb(catalog: Catalog, model: str, precision: str) -> float:
    """The checkpoint's size in GB: parameters times bytes per parameter of the precision."""
    params_b = catalog.models[model].total_params_b.value
    return params_b * catalog.precisions[precision].bytes_per_param.value


@dataclass(frozen=True)
class BootTime:
    weights_gb: float
    download_gbps: float
    download_s: float
    load_s: float
    engine_start_s: float
    grace_s: int

    @property
    def estimate_s(self) -> float:
        return self.download_s + self.load_s + self.engine_start_s

    @property
    def restart_s(self) -> float:
        """A restart of the serving unit on a node that has the weights: `aws s3 sync` copies
        nothing new, so the load and the engine's start."""
        return self.load_s + self.engine_start_s


def boot_time(catalog: Catalog, pool: Pool) -> BootTime:
    """The boot of one node of the pool, and the grace before its health checks count (the
    estimate with its margin, in whole minutes)."""
    instance = catalog.instances[pool.instance_type]
    if instance.s3_download_gbps is None:
        raise ValueError(f"instances.yaml: {pool.instance_type} has no s3_download_gbps")
    figures = boot_figures()
    size = weights_gb(catalog, pool.model, pool.precision)
    download = size * 8 / instance.s3_download_gbps.value
    load = size / figures.weights_load_gb_per_s.value
    start = figures.engine_start_s.value
    grace = math.ceil((download + load + start) * figures.margin.value / 60) * 60
    return BootTime(size, instance.s3_download_gbps.value, download, load, start, grace)


@dataclass(frozen=True)
class CopyRetry:
    """How a cluster pod's init step copies the weights when the store fails (boot.yaml
    `copy_retry`, each figure with its source): the whole `aws s3 sync` tried `attempts`
    times, `retry_s` apart, each request of it `requests` times (the AWS CLI's
    AWS_MAX_ATTEMPTS) within `connect_timeout_s` and `read_timeout_s` (--cli-connect-timeout
    and --cli-read-timeout). A store's outage of a few minutes is ridden out in place, since a
    restarted init step would recreate a LeaderWorkerSet group, every pod's copy included
    (stacks/kubernetes/workload.py copy_script)."""

    attempts: int
    retry_s: int
    requests: int
    connect_timeout_s: int
    read_timeout_s: int

    @property
    def allowance_s(self) -> int:
        """The most the retries may delay a copy beyond its transfer: every attempt failing
        after its requests each waited out both timeouts, and the waits between attempts."""
        attempt = self.requests * (self.connect_timeout_s + self.read_timeout_s)
        return self.attempts * attempt + (self.attempts - 1) * self.retry_s


COPY_RETRY = CopyRetry(**_whole_figures("copy_retry"))


def pod_startup_s(catalog: Catalog, pool: Pool, multi_node: bool = False) -> int:
    """How long a pool's serving container on a Kubernetes site may take to start before its
    liveness counts (the startup probe's budget): its init step has already copied the weights
    to the pod's volume, so loading them into GPU memory and the engine's start, with the same
    margin, in whole minutes; a multi-node replica's leader first waits for its workers to join
    its Ray cluster (`ray_wait_s`), so its budget holds that wait too."""
    figures = boot_figures()
    load = weights_gb(catalog, pool.model, pool.precision) / figures.weights_load_gb_per_s.value
    own = math.ceil((load + figures.engine_start_s.value) * figures.margin.value / 60) * 60
    # Twice the wait: the script counts 5 s a poll for its sleep alone, and each poll's
    # `ray.init()` takes wall time beside it (allowed here as long as the sleep).
    return own + (2 * ray_wait_s(catalog, pool) if multi_node else 0)


def pod_ready_s(catalog: Catalog, pool: Pool, multi_node: bool = False) -> int:
    """From a cluster pod's creation to its serving: the init step's copy of the weights from
    the site's store (at cluster_copy_gb_per_s, with the margin, and its retries' allowance,
    COPY_RETRY, in whole minutes), then the serving container's startup budget
    (`pod_startup_s`, whose engine allowance holds pulling the image). What `pulumi up` must
    wait for a pod before it calls the rollout failed."""
    figures = boot_figures()
    copy = weights_gb(catalog, pool.model, pool.precision) / figures.cluster_copy_gb_per_s.value
    copy_s = math.ceil((copy * figures.margin.value + COPY_RETRY.allowance_s) / 60) * 60
    return copy_s + pod_startup_s(catalog, pool, multi_node)


def behind_aws_nlb(load_balancer: ClusterLoadBalancer | None) -> bool:
    """Whether a cluster pool's outside callers come through an AWS NLB (ip targets), which
    registers a new pod, and lets go of an old one, minutes after Kubernetes does."""
    return load_balancer is not None and is_aws_nlb(
        load_balancer.annotations, load_balancer.load_balancer_class
    )


def readiness_gate_s(load_balancer: ClusterLoadBalancer | None) -> int:
    """How much longer than its own start a cluster pod takes to turn Ready behind the load
    balancer it is served through (None: a ClusterIP Service, no gate): an AWS NLB's pod
    readiness gate holds it until the NLB has registered it (boot.yaml `load_balancer`) and
    seen the healthy threshold's checks pass, an interval apart (the Service's annotations, or
    the controller's defaults), in whole minutes (as `pulumi up`'s waits are). 0 for another
    implementation, which sets no gate."""
    if load_balancer is None or not behind_aws_nlb(load_balancer):
        return 0
    figures = _whole_figures("load_balancer")
    annotations = load_balancer.annotations
    # The loader refused any other value (planner/inputs/sites.py aws_nlb_problem).
    threshold = int(annotations.get(AWS_HEALTHY_THRESHOLD[0], figures["healthy_threshold"]))
    interval = int(annotations.get(AWS_HEALTH_CHECK_INTERVAL[0], figures["interval_s"]))
    return math.ceil((figures["registration_s"] + threshold * interval) / 60) * 60


def ray_wait_s(catalog: Catalog, pool: Pool) -> int:
    """How long a pod of a multi-node replica on a Kubernetes site waits for the others to join
    (leader) or for the leader's Ray head (worker) before it gives up: each pod copies the
    weights in its own init step first, so one may still be copying a whole checkpoint (its
    node pulling the image first: the engine-start allowance) when another is ready. With the
    margin, in whole minutes. vLLM's multi-node-serving.sh waits 300 s unless told
    (--ray_init_timeout), and a pod that gives up restarts its whole group once every pod has
    started (LeaderWorkerSet RecreateGroupAfterStart), copies included: a wait shorter than the
    copies' skew would never let the group form. A pod whose copy retries lags by at most
    COPY_RETRY's allowance more, which the wait holds too."""
    figures = boot_figures()
    copy = weights_gb(catalog, pool.model, pool.precision) / figures.cluster_copy_gb_per_s.value
    lag = (copy + figures.engine_start_s.value) * figures.margin.value + COPY_RETRY.allowance_s
    return math.ceil(lag / 60) * 60


@dataclass(frozen=True)
class LeaseFigures:
    """The Ray head's lease of a multi-node replica, in seconds (boot.yaml `lease`)."""

    renew_s: int
    ttl_s: int
    retry_s: int
    call_timeout_s: int
    give_up_s: int
    stop_s: int
    clock_skew_s: int

    @property
    def head_gone_by_s(self) -> int:
        """How long after sending its last successful renewal a head has stopped serving, at the
        latest: its give-up time passes between two checks (a retry's sleep and a call cut off
        at its timeout apart), then `docker stop` waits its time before killing the server."""
        return self.give_up_s + self.retry_s + self.call_timeout_s + self.stop_s

    def problems(self) -> list[str]:
        """What breaks the lease's invariant: at most one head per replica believes it holds
        the lease. Another node takes the lease over only once it is older than ttl_s by that
        node's clock, and its LastModified is no earlier than the moment the head sent its last
        renewal; so the old head must be gone before ttl_s, less the clocks' skew."""
        found = []
        if self.head_gone_by_s + self.clock_skew_s >= self.ttl_s:
            found.append(
                f"a head that cannot renew stops only {self.head_gone_by_s} s after its last "
                f"renewal, not {self.clock_skew_s} s before its lease goes stale at {self.ttl_s} s"
            )
        # A renewal that fails once (sent after renew_s, cut off after call_timeout_s) must not
        # stop the head: a transient S3 error would reload every node of the replica.
        if self.give_up_s <= self.renew_s + 2 * self.call_timeout_s:
            found.append(
                f"give_up_s {self.give_up_s} leaves no retry after one failed renewal "
                f"({self.renew_s} s + two calls of {self.call_timeout_s} s)"
            )
        if self.retry_s >= self.renew_s:
            found.append(f"retry_s {self.retry_s} is not shorter than renew_s {self.renew_s}")
        return found


@cache
def lease_figures() -> LeaseFigures:
    figures = LeaseFigures(**_whole_figures("lease"))
    problems = figures.problems()
    if problems:
        raise ValueError("boot.yaml lease: " + "; ".join(problems))
    return figures


@dataclass(frozen=True)
class BackoffFigures:
    """The serving unit's back-off while a node cannot start, in seconds (boot.yaml)."""

    first_s: int
    max_s: int


@cache
def backoff_figures() -> BackoffFigures:
    figures = BackoffFigures(**_whole_figures("backoff"))
    if not 0 < figures.first_s <= figures.max_s:
        raise ValueError("boot.yaml backoff: 0 < first_s <= max_s")
    return figures


@dataclass(frozen=True)
class TerminationFigures:
    """How a serving process ends when told to, in seconds (boot.yaml `termination`): it keeps
    serving, untold, while its callers' paths to it close and then while the requests it took
    finish (drain_s); then SIGTERM, and vLLM aborts what is left and exits (its own drain is
    not used: stacks/serving.py). A cluster pod does so in its preStop sleep; an EC2 node
    while its Auto Scaling group, which has taken it out of the target group, waits out the
    target group's deregistration delay (nlb_serve_on_s: stacks/aws/load_balancer.py) before
    it terminates it (the scale-in activity "WaitingForELBConnectionDraining", AWS re:Post "EC2
    instance terminated with active processes"), and then the group's termination hook
    (node_hold_s). Requests sent on a connection opened before then still arrive (an NLB and
    kube-proxy keep established flows): the last of those are cut."""

    drain_s: int
    endpoints_s: int
    nlb_deregistration_s: int
    exit_s: int

    def hold_s(self, load_balancer: ClusterLoadBalancer | None) -> int:
        """How long a terminating cluster pod keeps serving before its server is told to stop:
        until an AWS NLB in front of it, else every node's kube-proxy, has let go of it."""
        return self.nlb_deregistration_s if behind_aws_nlb(load_balancer) else self.endpoints_s

    def serve_on_s(self, load_balancer: ClusterLoadBalancer | None) -> int:
        """A cluster pod's preStop sleep: the hold, then the drain."""
        return self.hold_s(load_balancer) + self.drain_s

    @property
    def nlb_serve_on_s(self) -> int:
        """How long a target leaving an NLB keeps serving: until the NLB stops sending it new
        connections, then the drain (an EC2 node's target group deregistration delay)."""
        return self.nlb_deregistration_s + self.drain_s

    @property
    def node_hold_s(self) -> int:
        """How long an EC2 node, once out of its target group, still runs before it is
        terminated (its Auto Scaling group's termination lifecycle hook, stacks/aws/nodes.py):
        the target group lets a node with no connection go at once (ELB: "immediately completes
        the deregistration process"), while the NLB may still send it new ones for its own time
        and those then finish; and a multi-node replica's workers, which take no connection,
        keep their Ray processes up while their head drains."""
        return self.nlb_serve_on_s

    def grace_s(self, load_balancer: ClusterLoadBalancer | None) -> int:
        """A cluster pod's terminationGracePeriodSeconds: the sleep and the exit, after which
        the kubelet kills what is left (the preStop sleep counts in it: kubernetes.io, "Pod
        Lifecycle", Termination of Pods)."""
        return self.serve_on_s(load_balancer) + self.exit_s


@cache
def termination_figures() -> TerminationFigures:
    figures = TerminationFigures(**_whole_figures("termination"))
    if min(figures.drain_s, figures.endpoints_s, figures.nlb_deregistration_s, figures.exit_s) <= 0:
        raise ValueError("boot.yaml termination: every figure above 0")
    return figures


@dataclass(frozen=True)
class LifecycleFigures:
    """The weights bucket's lifecycle rules, in days (boot.yaml `bucket_lifecycle`)."""

    lease_noncurrent_days: int
    abort_multipart_days: int


@cache
def lifecycle_figures() -> LifecycleFigures:
    return LifecycleFigures(**_whole_figures("bucket_lifecycle"))
