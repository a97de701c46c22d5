"""What of the graph makes a pool on a Kubernetes site, as the Kubernetes network model
(kubernetes_network.py) reads it: the pool's namespace (annotated with the pool's name, whole:
stacks/kubernetes/pool.py), its pod templates (a Deployment's, a LeaderWorkerSet's leader and
worker), the NetworkPolicies and Services there, label selectors, and the Kubernetes resources
of kinds the model does not know that sit in the namespace or name it or the pool's pod label
anywhere (judged fail closed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner import names
from planner.graph.resources import Graph, Resource, Unknown
from planner.verification.expectations import Expectations
from planner.verification.values import truthy

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LEADER_WORKER_SET = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
SECRET = "kubernetes:core/v1:Secret"
DISRUPTION_BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
# The kinds the model reads; of them, these run no pod and open no path.
MODELLED = {
    NAMESPACE,
    NETWORK_POLICY,
    SERVICE,
    DEPLOYMENT,
    LEADER_WORKER_SET,
    SECRET,
    DISRUPTION_BUDGET,
}
# Cluster DNS as the stack's allow policy names it (stacks/kubernetes/network_policy.py, which
# verify may not import: tests/test_kubernetes_verify.py checks they agree).
# The label the API server sets on every namespace to its name (Kubernetes 1.22+): a consumer's
# namespace is selected by it.
NAMESPACE_NAME = "kubernetes.io/metadata.name"
DNS_NAMESPACE = {NAMESPACE_NAME: "kube-system"}
DNS_PODS = {"k8s-app": "kube-dns"}
DNS_PORT = 53


def named_namespace(selector: Any) -> str | None:
    """The one namespace a namespaceSelector selects by its name (the label only the API server
    sets, to the namespace's own name), or None: another selector may select any namespace
    (`{}` every one; any other label is one a namespace's owner may set)."""
    if not isinstance(selector, dict) or set(selector) != {"matchLabels"}:
        return None
    labels = selector["matchLabels"]
    if not isinstance(labels, dict) or set(labels) != {NAMESPACE_NAME}:
        return None
    name = labels[NAMESPACE_NAME]
    return name if isinstance(name, str) else None


def meta(resource: Resource) -> dict[str, Any]:
    found = resource.inputs.get("metadata")
    return found if isinstance(found, dict) else {}


def spec_of(resource: Resource) -> dict[str, Any]:
    found = resource.inputs.get("spec")
    return found if isinstance(found, dict) else {}


def k8s_label(resource: Resource) -> str:
    """A resource as Kubernetes names it: kind namespace/name."""
    found = meta(resource)
    where = f"{found['namespace']}/" if isinstance(found.get("namespace"), str) else ""
    return f"{resource.type.rsplit(':', 1)[-1]} {where}{found.get('name', resource.name)}"


def number(value: Any) -> Any:
    """A port as the mocks give it back (8000.0) as Kubernetes writes it (8000)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def selection(selector: Any, labels: dict[str, str]) -> bool | None:
    """Whether a label selector (matchLabels, matchExpressions) selects the pods of a template
    with these labels: True, False, or None where it depends on labels the template does not
    give, which the pods' controllers add to the real pods (a Deployment's pod-template-hash, a
    LeaderWorkerSet's leaderworkerset.sigs.k8s.io/* and its StatefulSets' labels: kubernetes.io,
    "Deployments", Pod-template-hash label) or where the model cannot read it. The empty
    selector, and none, select every pod."""
    if not isinstance(selector, dict):
        return True if selector is None else None
    wanted = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(wanted, dict) or not isinstance(expressions, list):
        return None
    unsure = False
    for key, value in wanted.items():
        if key not in labels:
            unsure = True
        elif labels[key] != value:
            return False
    for expression in expressions:
        if not isinstance(expression, dict):
            return None
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if not isinstance(key, str) or not isinstance(values, list):
            return None
        if key not in labels:
            # A label the template does not give may still be on the pods.
            if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
                return None
            unsure = True
            continue
        held = {
            "In": labels[key] in values,
            "NotIn": labels[key] not in values,
            "Exists": True,
            "DoesNotExist": False,
        }.get(str(operator))
        if held is None:
            return None
        if not held:
            return False
    return None if unsure else True


def selects(selector: Any, labels: dict[str, str]) -> bool:
    """The selector may select these pods (what a policy or Service allows counts wherever it
    might apply: fail closed)."""
    return selection(selector, labels) is not False


def surely_selects(selector: Any, labels: dict[str, str]) -> bool:
    """The selector selects these pods whatever labels their controllers add (what must hold
    them, a default deny, counts only where it surely applies)."""
    return selection(selector, labels) is True


@dataclass(frozen=True)
class Pods:
    """One pod template of the pool: what makes it, which template, its labels and pod spec."""

    owner: Resource
    part: str
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"pods of {k8s_label(self.owner)} ({self.part})"

    def port(self, target: Any) -> int | None:
        """The container port a Service's targetPort (a number or a port's name) reaches."""
        target = number(target)
        for container in self.spec.get("containers") or []:
            for port in container.get("ports") or []:
                given = number(port.get("containerPort"))
                if target in (given, port.get("name")) and isinstance(given, int):
                    return given
        return None


def templates(resource: Resource) -> list[Pods]:
    spec = spec_of(resource)
    if resource.type == DEPLOYMENT:
        found = [("pod template", spec.get("template"))]
    else:  # a LeaderWorkerSet: without a leader template, its leader is a worker's copy
        group = spec.get("leaderWorkerTemplate") or {}
        found = [
            ("leader template", group.get("leaderTemplate")),
            ("worker template", group.get("workerTemplate")),
        ]
    pods = []
    for part, template in found:
        if isinstance(template, dict):
            labels = (template.get("metadata") or {}).get("labels") or {}
            pods.append(Pods(resource, part, dict(labels), template.get("spec") or {}))
    return pods


@dataclass
class ClusterPoolView:
    """What of the graph makes one pool: its namespace and what is in it."""

    pool: str
    namespace: Resource
    pods: list[Pods]
    policies: list[Resource]
    services: list[Resource]
    unmodelled: list[Resource]
    # Resources of the pool with a value the model reads known only after `pulumi up`.
    unknown: list[Resource] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(meta(self.namespace).get("name"))

    @property
    def pod_label(self) -> str | None:
        """The value of the pool label its pods carry (the namespace carries it too)."""
        value = (meta(self.namespace).get("labels") or {}).get(names.LABEL_POOL)
        return value if isinstance(value, str) else None

    def own(self, peer: dict[str, Any]) -> bool:
        """A policy peer that is the pool's own pods: a pod selector in its namespace (no
        namespace selector) requiring the pool label."""
        selector = peer.get("podSelector")
        return (
            "namespaceSelector" not in peer
            and "ipBlock" not in peer
            and isinstance(selector, dict)
            and self.pod_label is not None
            and (selector.get("matchLabels") or {}).get(names.LABEL_POOL) == self.pod_label
        )

    def serving(self) -> list[tuple[Resource, Pods]]:
        """Each Service selecting a pod template of the pool, with the template."""
        return [
            (svc, pods)
            for svc in self.services
            for pods in self.pods
            if isinstance(spec_of(svc).get("selector"), dict)
            and selects({"matchLabels": spec_of(svc)["selector"]}, pods.labels)
        ]

    def serving_ports(self) -> set[int]:
        return {
            found
            for svc, pods in self.serving()
            for port in spec_of(svc).get("ports") or []
            if (found := pods.port(port.get("targetPort", port.get("port")))) is not None
        }

    def policies_of(self, pods: Pods, kind: str, surely: bool = False) -> list[Resource]:
        """The policies of this direction (Ingress or Egress) that may select the pods, or with
        `surely`, that select them whatever labels their controllers add."""
        test = surely_selects if surely else selects
        return [
            p
            for p in self.policies
            if test(spec_of(p).get("podSelector"), pods.labels) and kind in policy_types(p)
        ]


def policy_types(policy: Resource) -> list[str]:
    spec = spec_of(policy)
    given = spec.get("policyTypes")
    if isinstance(given, list):
        return [str(t) for t in given]
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def mentions(value: Any, namespace: str, pod_label: str | None) -> bool:
    """Somewhere in these inputs: the namespace's name, or the pool's pod label."""
    if isinstance(value, dict):
        if pod_label is not None and value.get(names.LABEL_POOL) == pod_label:
            return True
        return any(mentions(v, namespace, pod_label) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, namespace, pod_label) for v in value)
    return bool(value == namespace)


def opens_any(kind: str) -> bool:
    """A kind that may select any pod of the cluster without naming it: another network policy
    API (Cilium's, Calico's, the AdminNetworkPolicy of policy.networking.k8s.io, often
    cluster-scoped with selectors of their own syntax), or a component that applies manifests
    the graph does not show (pulumi-kubernetes yaml and helm resources)."""
    return kind.endswith("NetworkPolicy") or kind.startswith(
        ("kubernetes:yaml:", "kubernetes:helm.sh/", "kubernetes:kustomize:")
    )


def dns_impostor(resource: Resource) -> bool:
    """A workload of the program in kube-system whose pods carry cluster DNS's label: the
    pool's egress to cluster DNS (port 53) would reach a pod the program controls."""
    found = meta(resource)
    if found.get("namespace") != DNS_NAMESPACE[NAMESPACE_NAME]:
        return False
    template = spec_of(resource).get("template")
    if resource.type.endswith(":Pod"):
        labels = found.get("labels")
    elif isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels")
    else:
        return False  # runs no pod
    if labels is None:
        return False
    # Labels the model cannot read may be cluster DNS's (fail closed); no controller adds the
    # k8s-app label, so the template's say whether its pods carry it.
    return not isinstance(labels, dict) or all(labels.get(k) == v for k, v in DNS_PODS.items())


def has_unknown(value: Any) -> bool:
    """An Unknown anywhere in the value."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def _read(resource: Resource) -> Any:
    """What of a resource the model reads: its namespace, labels, a Service's annotations and
    spec; a workload's pod templates without their annotations (the serving certificate's
    digest there is unknown until the certificate exists, and opens nothing)."""
    found = meta(resource)
    spec = dict(spec_of(resource))
    if resource.type in (DEPLOYMENT, LEADER_WORKER_SET):
        spec = _without_template_annotations(spec)
    return [
        found.get("namespace"),
        found.get("labels"),
        found.get("annotations") if resource.type == SERVICE else None,
        spec,
    ]


def _without_template_annotations(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                {k: v for k, v in item.items() if k != "annotations"}
                if key == "metadata" and isinstance(item, dict)
                else _without_template_annotations(item)
            )
            for key, item in value.items()
        }
    return value


def pool_view(graph: Graph, pool: str) -> ClusterPoolView | None:
    """The pool's namespace (annotated with its name, whole) and what is in it, or None."""
    found = [
        ns
        for ns in graph.of_type(NAMESPACE)
        if (meta(ns).get("annotations") or {}).get(names.LABEL_POOL) == pool
    ]
    if not found:
        return None
    namespace = found[0]
    view = ClusterPoolView(pool, namespace, [], [], [], [])
    # Another namespace claiming the pool: its pods are the pool's too, and not judged here.
    view.unmodelled.extend(found[1:])
    for resource in sorted(graph.resources.values(), key=lambda r: r.urn):
        if not resource.type.startswith("kubernetes:") or resource is namespace:
            continue
        where = meta(resource).get("namespace")
        inside = where == view.name or (isinstance(where, Unknown) and resource.type in MODELLED)
        if inside and resource.type in MODELLED and has_unknown(_read(resource)):
            view.unknown.append(resource)
            continue
        if resource.type in (DEPLOYMENT, LEADER_WORKER_SET) and inside:
            view.pods.extend(templates(resource))
        elif resource.type == NETWORK_POLICY and inside:
            view.policies.append(resource)
        elif resource.type == SERVICE and inside:
            view.services.append(resource)
        elif dns_impostor(resource) or (
            resource.type not in MODELLED
            and (
                inside
                or mentions(resource.inputs, view.name, view.pod_label)
                or opens_any(resource.type)
            )
        ):
            view.unmodelled.append(resource)
    return view


def cluster_pools(graph: Graph, expect: Expectations) -> list[str]:
    """The pools judged here: the plan's on a Kubernetes site, and any namespace annotated as
    a pool's that the plan does not place on EC2."""
    found = set(expect.pool_sites)
    for ns in graph.of_type(NAMESPACE):
        pool = (meta(ns).get("annotations") or {}).get(names.LABEL_POOL)
        if isinstance(pool, str) and (pool not in expect.pools or pool in expect.pool_sites):
            found.add(pool)
    return sorted(found)


def host_network(pods: Pods) -> bool:
    return truthy(pods.spec.get("hostNetwork"))


def host_ports(pods: Pods) -> list[tuple[str, int]]:
    return [
        (str(container.get("name")), number(port["hostPort"]))
        for key in ("initContainers", "containers")
        for container in pods.spec.get(key) or []
        for port in container.get("ports") or []
        if port.get("hostPort") not in (None, 0)
    ]
