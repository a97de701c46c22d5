"""The workloads file's `sites`: where self-hosted pools may run (issue 16). Without the list,
pools run on AWS EC2 in the file's `region`, as before; with it, on the sites it names: `aws`
(EC2 in `region`) and Kubernetes clusters the organization runs, each with its GPU nodes and
what they cost (owned: power, hosting and staff; bought: capital over a horizon besides).

The Kubernetes names are checked as the API server checks them, so a plan never names what a
deploy would refuse (kubernetes.io, "Object Names and IDs" and "Labels and Selectors", Syntax
and character set)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from planner.inputs.strict import Strict as _Strict

# RFC 1123 label (a site's name becomes part of resource names and labels): at most 63
# lowercase alphanumerics and '-', starting and ending with an alphanumeric.
SITE_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# A DNS subdomain name (StorageClass names; a label key's prefix): at most 253 characters,
# lowercase alphanumerics, '-' and '.', starting and ending with an alphanumeric.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# A label key's name and a label value: at most 63 characters, alphanumerics with '-', '_' and
# '.' between (a value may be empty).
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


def label_key_problem(key: str) -> str | None:
    """Why Kubernetes refuses this label key, or None: an optional DNS-subdomain prefix and '/',
    then a name of at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"{key!r}: its prefix {prefix!r} is not a DNS subdomain (lowercase, '-', '.')"
    if not _LABEL_NAME.match(name):
        return (
            f"{key!r}: a label key's name is 1 to 63 alphanumerics, '-', '_' or '.', starting "
            "and ending with an alphanumeric"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if value and not _LABEL_NAME.match(value):
        return (
            f"{value!r}: a label value is at most 63 alphanumerics, '-', '_' or '.', starting "
            "and ending with an alphanumeric"
        )
    return None


class SiteCost(_Strict):
    """What a Kubernetes site's GPU nodes cost a month: `owned: true` (already bought: power,
    hosting and staff) or `owned: false` (a purchase: its capital over the amortization horizon
    besides). Figures left out take the catalog's defaults (pricing.yaml hardware), and the plan
    says which were the file's."""

    owned: bool = Field(description="true: the nodes are already bought; false: price buying them.")
    capital_usd_per_node: float | None = Field(
        default=None,
        gt=0,
        le=10**8,
        description="Price of one GPU node (owned: false; default: the catalog's 8-GPU server "
        "of the site's GPU).",
    )
    amortization_months: float | None = Field(
        default=None,
        ge=1,
        le=240,
        description="Horizon a purchase is written off over (default: assumptions' or the "
        "catalog's).",
    )
    power_kw_per_node: float | None = Field(
        default=None, gt=0, le=200, description="Average draw of one node, kW."
    )
    usd_per_kwh: float | None = Field(default=None, gt=0, le=10, description="Electricity, USD.")
    pue: float | None = Field(
        default=None, ge=1, le=5, description="Power usage effectiveness of the data centre."
    )
    hosting_usd_per_node_month: float | None = Field(
        default=None,
        ge=0,
        le=10**6,
        description="Rack space, cooling capacity and network of one node a month.",
    )

    @model_validator(mode="after")
    def _purchase_fields(self) -> SiteCost:
        given = [
            name
            for name in ("capital_usd_per_node", "amortization_months")
            if getattr(self, name) is not None
        ]
        if self.owned and given:
            raise ValueError(
                f"{' and '.join(given)} price a purchase: remove with owned: true, or set "
                "owned: false"
            )
        return self


# The figures of a site's cost, in the order the plan's sites[].cost lists them (the plan's
# figures key them `site.<name>.<figure>`); the last two price a purchase only.
COST_FIGURES = (
    "power_kw_per_node",
    "pue",
    "usd_per_kwh",
    "hosting_usd_per_node_month",
    "capital_usd_per_node",
    "amortization_months",
)
# Annotations of one object together: at most 256 KiB (kubernetes.io, "Annotations": keys are
# label keys, values any string; the API server refuses a larger total).
_ANNOTATIONS_BYTES = 256 * 1024
# The AWS Load Balancer Controller's NLB (its loadBalancerClass, or the type annotation it takes
# instead) sends to instances unless told otherwise, and keeps the client's address only where a
# target group attribute says so: the plan's load_balancer_assumptions (traffic to the pods' own
# addresses, the caller's address kept up to the pod) hold only with both annotations (AWS Load
# Balancer Controller docs, Service annotations: aws-load-balancer-nlb-target-type "default
# instance in case of LoadBalancerClass"; aws-load-balancer-target-group-attributes,
# preserve_client_ip.enabled; Network Load Balancer, IP mode; checked 2026-12).
AWS_NLB_CLASS = "service.k8s.aws/nlb"
# The type annotation the controller takes instead of the class: `external`, or the legacy
# `nlb-ip` (an ip-target NLB; AWS Load Balancer Controller, NLB IP mode).
AWS_LB_TYPE = ("service.beta.kubernetes.io/aws-load-balancer-type", ("external", "nlb-ip"))
# The port an NLB checks its targets on: the traffic port (the serving port, which the pools
# admit the health checks on) unless this annotation says otherwise.
AWS_HEALTH_CHECK_PORT = (
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port",
    "traffic-port",
)
AWS_NLB_NEEDS = {
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
        "preserve_client_ip.enabled=true"
    ),
}

# The subnets an NLB is made in, by ID or Name tag, comma-separated (AWS Load Balancer
# Controller, Service annotations: aws-load-balancer-subnets). Without it the controller picks
# subnets by their kubernetes.io/role/internal-elb tag (later releases also by route table: its
# "Subnet auto-discovery" guide), and the NLB checks its targets from whichever it picked.
AWS_NLB_SUBNETS = "service.beta.kubernetes.io/aws-load-balancer-subnets"

# The namespace label that has the AWS Load Balancer Controller inject its pod readiness gate
# into the pods it creates there: a pod behind an ip-target NLB turns Ready only once its target
# is healthy, so a rolling update does not end the old pods while the NLB has only new ones in
# "initial" (AWS Load Balancer Controller docs, "Pod readiness gate": only with target type ip,
# injected at the pod's creation where a Service with a target group selects it).
AWS_NLB_READINESS_GATE = ("elbv2.k8s.aws/pod-readiness-gate-inject", "enabled")
# The NLB's health check, how many successes and how far apart, as the Service's annotations
# set them (AWS Load Balancer Controller, Service annotations, integers), within what the ELB API
# takes for a target group (Elastic Load Balancing API Reference, CreateTargetGroup:
# HealthyThresholdCount 2-10, HealthCheckIntervalSeconds 5-300).
AWS_HEALTHY_THRESHOLD = (
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold",
    range(2, 11),
)
AWS_HEALTH_CHECK_INTERVAL = (
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval",
    range(5, 301),
)


# Why a site's health-check ranges must be the organization's own (the loader and plan checks).
HEALTH_CHECKS_INSIDE = "the pools admit the load balancer's health checks from there"


def is_aws_nlb(annotations: dict[str, str], load_balancer_class: str | None) -> bool:
    """The AWS Load Balancer Controller makes this Service's load balancer (an NLB): its class,
    or the type annotation it takes instead."""
    key, values = AWS_LB_TYPE
    return load_balancer_class == AWS_NLB_CLASS or annotations.get(key) in values


def aws_nlb_problem(annotations: dict[str, str], load_balancer_class: str | None) -> str | None:
    """Why an AWS Load Balancer Controller NLB with these settings breaks the plan's load
    balancer assumptions, or None (another implementation: its own annotations)."""
    if not is_aws_nlb(annotations, load_balancer_class):
        return None
    for key, allowed in (AWS_HEALTHY_THRESHOLD, AWS_HEALTH_CHECK_INTERVAL):
        given = annotations.get(key)
        if given is not None and not (
            # As the controller reads it: strconv.ParseInt of the value as given, no spaces
            # (aws-load-balancer-controller pkg/annotations ParseInt64Annotation).
            re.fullmatch(r"[0-9]+", given) and int(given) in allowed
        ):
            return (
                f"{key}: {given!r} is not a whole number from {allowed.start} to "
                f"{allowed.stop - 1} (Elastic Load Balancing API Reference, CreateTargetGroup)"
            )
    port, default = AWS_HEALTH_CHECK_PORT
    if annotations.get(port, default) != default:
        return (
            f"{port}: {annotations[port]} makes the NLB check the pods on a port the pools' "
            "NetworkPolicies do not open to its health checks (they admit health_check_cidrs "
            f"on the serving port only): leave it at {default}"
        )
    target, attributes = AWS_NLB_NEEDS
    kept = {part.strip() for part in annotations.get(attributes, "").split(",")}
    missing = [f"{target}: {AWS_NLB_NEEDS[target]}"] if annotations.get(target) != "ip" else []
    if AWS_NLB_NEEDS[attributes] not in kept:
        missing.append(f"{attributes} with {AWS_NLB_NEEDS[attributes]}")
    if not missing:
        return None
    return (
        "the AWS Load Balancer Controller's NLB sends to the nodes (target type instance by "
        "default with a loadBalancerClass) and drops the caller's address unless told: give "
        f"the annotations {'; '.join(missing)} (the plan assumes traffic to the pods' own "
        "addresses with the caller's address kept)"
    )


class LoadBalancer(_Strict):
    """The site's internal load balancer, for callers outside the cluster (a consumer given by
    its range): what a Service of type LoadBalancer carries so the cluster's load-balancer
    implementation makes it internal. Without it, the site serves callers inside the cluster
    only (stacks/kubernetes/service.py; kubernetes.io, "Service", type LoadBalancer)."""

    model_config = ConfigDict(populate_by_name=True)

    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations the Service carries, e.g. service.beta.kubernetes.io/"
        "aws-load-balancer-scheme: internal (AWS Load Balancer Controller).",
    )
    load_balancer_class: str | None = Field(
        default=None,
        alias="class",
        description="The Service's loadBalancerClass: the implementation that makes it, e.g. "
        "service.k8s.aws/nlb.",
    )
    dns_suffix: str | None = Field(
        default=None,
        description="A DNS domain the organization points at the load balancers: a pool's "
        "certificate names <namespace>.<dns_suffix> too.",
    )
    health_check_cidrs: list[str] = Field(
        default_factory=list,
        description="The ranges the load balancer's health checks come from, which the pools' "
        "NetworkPolicies admit on the serving port beside the consumers: an AWS NLB checks ip "
        "targets from its own private addresses, so its subnets' ranges (required for it).",
    )

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [problem for key in value if (problem := label_key_problem(key))]
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > _ANNOTATIONS_BYTES:
            problems.append(f"{size} bytes of annotations: Kubernetes takes at most 256 KiB")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("load_balancer_class")
    @classmethod
    def _class(cls, value: str | None) -> str | None:
        # A label-style identifier with an optional prefix (ServiceSpec.loadBalancerClass).
        problem = None if value is None else label_key_problem(value)
        if problem:
            raise ValueError(f"not a loadBalancerClass: {problem}")
        return value

    @field_validator("dns_suffix")
    @classmethod
    def _dns_suffix(cls, value: str | None) -> str | None:
        if value is not None and (
            len(value) > 253 - 64
            or not _DNS_SUBDOMAIN.match(value)
            or any(not _DNS_LABEL.match(part) for part in value.split("."))
        ):
            raise ValueError(
                f"{value!r} is not a DNS domain a pool's name fits under (lowercase labels of "
                "alphanumerics and '-', joined by '.', at most 189 characters)"
            )
        return value

    @field_validator("health_check_cidrs")
    @classmethod
    def _health_check_cidrs(cls, value: list[str]) -> list[str]:
        problems = []
        for cidr in value:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                problems.append(f"{cidr!r} is not a CIDR block: {exc}")
                continue
            if network.prefixlen == 0:
                problems.append(f"{cidr} is every address: give the load balancer's subnets")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _internal(self) -> LoadBalancer:
        if not self.annotations and self.load_balancer_class is None:
            raise ValueError(
                "give the annotations or the class that make the cluster's load balancer "
                "internal: without either, the cluster's default may be a public one"
            )
        problem = aws_nlb_problem(self.annotations, self.load_balancer_class)
        if problem:
            raise ValueError(problem)
        if is_aws_nlb(self.annotations, self.load_balancer_class) and not self.health_check_cidrs:
            raise ValueError(
                "an AWS NLB checks its ip targets' health from its own private addresses, which "
                "the pools' NetworkPolicies refuse unless admitted: give health_check_cidrs, the "
                "ranges of the subnets the load balancer is in (AWS knowledge center, 'security "
                "group load balancer': the target sees the load balancer's private IP address as "
                "the source for health checks)"
            )
        if is_aws_nlb(self.annotations, self.load_balancer_class) and not self.annotations.get(
            AWS_NLB_SUBNETS, ""
        ).strip(" ,"):
            raise ValueError(
                f"name the NLB's subnets with the annotation {AWS_NLB_SUBNETS} (subnet IDs or "
                "Name tags, comma-separated): without it the AWS Load Balancer Controller picks "
                "subnets by their tags, and the NLB checks the pods from whichever it picked, "
                "ranges health_check_cidrs may not hold, so every check is refused and the NLB "
                "fails open to every pod"
            )
        return self


class Toleration(_Strict):
    """A taint of the site's GPU nodes the pools' pods tolerate (kubernetes.io, "Taints and
    Tolerations"), held to the API's rules (kubernetes pkg/apis/core/validation
    validateTolerations): a key is a label key, and only `Exists` may leave it out (every
    taint); `Exists` takes no value, `Equal` a label value; an effect, where given, is one of
    the three taint effects (none: every effect). Stricter in spelling only: an empty key,
    operator or effect, which the API reads as absent (or Equal), is left out instead."""

    key: str | None = Field(
        default=None, description="The taint's key, e.g. nvidia.com/gpu; none: every taint."
    )
    operator: Literal["Equal", "Exists"] = Field(
        default="Equal", description="Equal (the taint's value) or Exists (any value)."
    )
    value: str | None = Field(default=None, description="The taint's value, with Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint's effect; none: every effect."
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        problem = label_key_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _operator(self) -> Toleration:
        if self.key is None and self.operator != "Exists":
            raise ValueError(
                "operator must be Exists when key is left out (which tolerates every taint)"
            )
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be left out when operator is Exists")
        if self.operator == "Equal":
            problem = label_value_problem(self.value or "")
            if problem:
                raise ValueError(problem)
        return self

    def manifest(self) -> dict[str, str]:
        """As a pod spec's toleration."""
        given = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
        }
        return {name: value for name, value in given.items() if value}


class AwsSite(_Strict):
    """AWS EC2 in the file's `region`, as without `sites`."""

    name: str = Field(pattern=SITE_NAME, description="The site's name, e.g. aws.")
    kind: Literal["aws"]


class KubernetesSite(_Strict):
    """A Kubernetes cluster the organization runs (on premises, or an EKS cluster it has)."""

    name: str = Field(pattern=SITE_NAME, description="The site's name: a DNS label, e.g. dc1.")
    kind: Literal["kubernetes"]
    context: str = Field(
        min_length=1, description="The kubeconfig context the Pulumi Kubernetes provider uses."
    )
    gpu: str = Field(description="The GPU of its GPU nodes: a GPU of the throughput model.")
    gpus_per_node: int = Field(ge=1, le=16, description="GPUs a node.")
    nodes: int = Field(ge=1, le=10_000, description="GPU nodes this planner may use.")
    node_selector: dict[str, str] = Field(
        min_length=1, description="Labels that select the GPU nodes (nodeSelector)."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Taints of the GPU nodes the pools' pods tolerate (e.g. key nvidia.com/gpu, "
        "operator Exists, effect NoSchedule), where the nodes are tainted to keep other "
        "workloads off.",
    )
    storage_class: str = Field(description="The StorageClass of the model weights' volumes.")
    weights_source: str = Field(
        description="The organization's object store holding the weights (s3://bucket/prefix, "
        "S3 API): never a public hub."
    )
    cpus_per_node: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="CPUs a GPU node has, as Kubernetes counts them (its capacity: a "
        "hyperthread is a CPU where the node reports it so); default: the catalog's server of "
        "the site's GPU (kubernetes.yaml node_resources).",
    )
    memory_gib_per_node: float | None = Field(
        default=None,
        gt=0,
        le=65536,
        description="Memory a GPU node has, GiB; default: the catalog's server of the site's GPU.",
    )
    cost: SiteCost
    load_balancer: LoadBalancer | None = Field(
        default=None,
        description="The cluster's internal load balancer, for callers outside it (consumers "
        "given by their range); without it, callers inside the cluster only.",
    )

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [
            problem
            for key, label in value.items()
            for problem in (label_key_problem(key), label_value_problem(label))
            if problem
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(
                f"{value!r} is not a StorageClass name (a DNS subdomain: lowercase "
                "alphanumerics, '-' and '.', at most 253 characters)"
            )
        return value

    @field_validator("weights_source")
    @classmethod
    def _weights_source(cls, value: str) -> str:
        if not _S3_URL.match(value):
            raise ValueError(
                f"{value!r} is not an s3:// URL of a bucket (s3://bucket/prefix): the weights "
                "come from the organization's own object store"
            )
        return value


Site = Annotated[AwsSite | KubernetesSite, Field(discriminator="kind")]
