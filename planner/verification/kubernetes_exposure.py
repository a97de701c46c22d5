"""How callers reach a pool on a Kubernetes site, as verify judges it (issue 16): the pool's
LoadBalancer Service, held to the site's internal load balancer as the plan states it
(kubernetes_network.py judges the rest of the pool), and each consumer's way in.

A LoadBalancer Service selecting the pool's pods passes only with every annotation and the
loadBalancerClass the plan's site gives (else public-ip: the cluster may make its load balancer
public), `loadBalancerSourceRanges` each within a consumer's range (open-ingress otherwise,
and with none), `allocateLoadBalancerNodePorts: false` and no nodePort (open-ingress: a port of
every node) and `externalTrafficPolicy: Local` (open-ingress: a node would forward with its own
address as the source, and the pool's ipBlock rules would no longer see the caller). A consumer
given by its range is a caller outside the cluster: its way in is the LoadBalancer Service whose
source ranges hold it, then a NetworkPolicy ingress rule admitting it on the serving port, then
the pods (kubernetes.io, "Service", type LoadBalancer, and ServiceSpec)."""

from __future__ import annotations

from typing import Any

from planner.graph.resources import Resource
from planner.planfile import ClusterLoadBalancer, Consumer
from planner.verification.headers import within
from planner.verification.kubernetes_pods import (
    ClusterPoolView,
    Pods,
    k8s_label,
    meta,
    named_namespace,
    number,
    spec_of,
)
from planner.verification.registry import Finding, Subject

EVERYWHERE = ("0.0.0.0/0", "::/0")


def external_ips_findings(svc: Resource, pods: Pods) -> list[Finding]:
    """A Service (of any type) taking external IPs: callers of those addresses reach the
    pods, whatever the Service's type (kubernetes.io, "Service", External IPs)."""
    spec, label = spec_of(svc), k8s_label(svc)
    if not spec.get("externalIPs"):
        return []
    return [
        Finding(
            "open-ingress",
            label,
            f"{label} takes external IPs {spec['externalIPs']}: callers of those "
            "addresses reach the pool's pods",
            ("callers of its external IPs", label, pods.label),
        )
    ]


def load_balancer_findings(
    svc: Resource,
    pods: Pods,
    lb: ClusterLoadBalancer | None,
    site: str | None,
    consumers: list[str] | None,
) -> tuple[list[Finding], str | None]:
    """A LoadBalancer Service selecting the pool's pods (`lb`: its site's internal load
    balancer as the plan states it; `consumers`: the pool's consumers' ranges, None without a
    plan): its failures, or (none) what it blocks."""
    spec, label = spec_of(svc), k8s_label(svc)
    found: list[Finding] = []
    way = f"{label} (LoadBalancer)"

    def fail(rule: str, resource: str, message: str, *witness: str) -> None:
        found.append(Finding(rule, resource, message, tuple(witness)))

    if lb is None or not (lb.annotations or lb.load_balancer_class):
        # A stated load balancer with neither annotations nor a class says nothing that makes
        # it internal (the loader and the plan-file checks refuse one): the same as none.
        stated = "no" if lb is None else "no annotation or class of an"
        fail(
            "public-ip",
            label,
            f"{label} is a LoadBalancer Service and the plan states {stated} internal load "
            f"balancer for site {site} (sites[].load_balancer): the cluster gives it "
            "an address for callers beyond the cluster, taken as public",
            "callers beyond the cluster",
            way,
            pods.label,
        )
        return found, None
    found.extend(external_ips_findings(svc, pods))
    given = meta(svc).get("annotations") or {}
    missing = [f"{k}: {v}" for k, v in sorted(lb.annotations.items()) if given.get(k) != v]
    if missing:
        fail(
            "public-ip",
            label,
            f"{label} lacks the annotation(s) that make site {site}'s load balancer "
            f"internal ({'; '.join(missing)}): the cluster may give it a public address",
            "callers beyond the cluster",
            f"{way} without {missing[0]}",
            pods.label,
        )
    if lb.load_balancer_class and spec.get("loadBalancerClass") != lb.load_balancer_class:
        fail(
            "public-ip",
            label,
            f"{label} is of loadBalancerClass {spec.get('loadBalancerClass')!r}, not the "
            f"site's internal {lb.load_balancer_class!r}: another implementation (or the "
            "cluster's default) makes its load balancer, which may be public",
            "callers beyond the cluster",
            f"{way} of class {spec.get('loadBalancerClass')}",
            pods.label,
        )
    ranges = spec.get("loadBalancerSourceRanges") or []
    if not ranges:
        fail(
            "open-ingress",
            label,
            f"{label} sets no loadBalancerSourceRanges: its load balancer admits every "
            "address that reaches it",
            "every address that reaches the load balancer",
            f"{way} (no loadBalancerSourceRanges)",
            pods.label,
        )
    for cidr in ranges:
        if consumers is None:
            inside = isinstance(cidr, str) and cidr not in EVERYWHERE
        else:
            inside = isinstance(cidr, str) and any(within(cidr, c) for c in consumers)
        if not inside:
            fail(
                "open-ingress",
                label,
                f"{label} admits {cidr} (loadBalancerSourceRanges), which is not within "
                f"the consumers' ranges ({', '.join(consumers or []) or 'none known'})",
                str(cidr),
                f"{way}: source range {cidr}",
                pods.label,
            )
    node_ports = [
        number(p.get("nodePort"))
        for p in spec.get("ports") or []
        if p.get("nodePort") not in (None, 0)
    ]
    if spec.get("allocateLoadBalancerNodePorts") is not False or node_ports:
        said = (
            f"names nodePort {', '.join(map(str, node_ports))}"
            if node_ports
            else "allocates node ports (allocateLoadBalancerNodePorts is not false)"
        )
        fail(
            "open-ingress",
            label,
            f"{label} {said}: the pool's pods answer on a port of every node of the "
            "cluster, a way in beside the load balancer's source ranges",
            "any address that reaches a node of the cluster",
            f"{way}: node ports",
            pods.label,
        )
    policy = spec.get("externalTrafficPolicy") or "Cluster"
    if policy != "Local":
        fail(
            "open-ingress",
            label,
            f"{label} has externalTrafficPolicy {policy}, not Local: a node forwards the "
            "load balancer's traffic with its own address as the source, so the pool's "
            "ipBlock rules no longer see who calls",
            "callers of the load balancer, seen as a node",
            f"{way}: externalTrafficPolicy {policy}",
            pods.label,
        )
    if found:
        return found, None
    internal = ", ".join(
        [
            *([f"class {lb.load_balancer_class}"] if lb.load_balancer_class else []),
            *(f"{k}: {v}" for k, v in sorted(lb.annotations.items())),
        ]
    )
    return [], (
        f"{label} is an internal LoadBalancer ({internal}): open to "
        f"{', '.join(map(str, ranges))} only, no node port, externalTrafficPolicy Local"
    )


def admits(rule: dict[str, Any], port: int) -> bool:
    """A policy rule's ports admit this TCP port (no ports: every one)."""
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        given, end = number(entry.get("port")), number(entry.get("endPort"))
        if given is None or given == port or (isinstance(end, int) and given <= port <= end):
            return True
    return False


def _source_range(svc: Any, caller: Consumer) -> str | None:
    """The LoadBalancer Service's source range holding the caller's range, or None."""
    for cidr in spec_of(svc).get("loadBalancerSourceRanges") or []:
        if isinstance(cidr, str) and caller.cidr is not None and within(caller.cidr, cidr):
            return cidr
    return None


def _admits_caller(peer: Any, caller: Consumer) -> str | None:
    """What of an ingress peer admits the consumer (as a path names it), or None: a namespace
    consumer's namespace selected by its name (every pod of it: no narrower podSelector), a
    range consumer's range within the peer's ipBlock and clear of its exceptions."""
    if not isinstance(peer, dict):
        return None
    if caller.namespace is not None:
        if (
            "ipBlock" not in peer
            and named_namespace(peer.get("namespaceSelector")) == caller.namespace
            and peer.get("podSelector", {}) == {}
        ):
            return f"namespace {caller.namespace}"
        return None
    block = peer.get("ipBlock") or {}
    cidr = block.get("cidr") if isinstance(block, dict) else None
    holes = (block.get("except") or []) if isinstance(block, dict) else []
    if (
        isinstance(cidr, str)
        and caller.cidr is not None
        and within(caller.cidr, cidr)
        and not any(within(h, caller.cidr) or within(caller.cidr, h) for h in holes)
    ):
        return cidr
    return None


def _admitted(view: ClusterPoolView, pods: Pods, caller: Consumer, target: int) -> str | None:
    """The ingress rule of a policy selecting the pods that admits the caller on the port, as
    a path names it; None where none does."""
    for policy in view.policies_of(pods, "Ingress"):
        for index, rule in enumerate(spec_of(policy).get("ingress") or [], 1):
            for peer in rule.get("from") or []:
                source = _admits_caller(peer, caller)
                if source is not None and admits(rule, target):
                    return (
                        f"{k8s_label(policy)} ingress rule {index} (from {source} on TCP {target})"
                    )
    return None


def _through(
    view: ClusterPoolView, svc: Any, pods: Pods, caller: Consumer
) -> tuple[tuple[Any, str] | None, str]:
    """A port of the Service whose target an ingress rule admits the caller on: (the port, the
    rule as a path names it); or None, with what blocks it."""
    blocked = ""
    for entry in spec_of(svc).get("ports") or []:
        target = pods.port(entry.get("targetPort", entry.get("port")))
        if target is None:
            blocked = f"{k8s_label(svc)} targets no port of the {pods.label}"
            continue
        rule = _admitted(view, pods, caller, target)
        if rule is not None:
            return (number(entry.get("port")), rule), ""
        who = caller.cidr if caller.namespace is None else f"namespace {caller.namespace}"
        blocked = f"no NetworkPolicy selecting the {pods.label} admits {who} on TCP {target}"
    return None, blocked


def _inside(view: ClusterPoolView, caller: Consumer) -> tuple[list[str], str | None]:
    """A namespace consumer (pods of the cluster): the Service's cluster address (a ClusterIP
    Service's, or a LoadBalancer one's, which has one too) -> the ingress rule admitting the
    namespace by name -> the pods."""
    serving = [
        (svc, pods)
        for svc, pods in view.serving()
        if (spec_of(svc).get("type") or "ClusterIP") in ("ClusterIP", "LoadBalancer")
    ]
    if not serving:
        return [], f"no Service of namespace {view.name} selects the pool's pods"
    blocked = ""
    for svc, pods in serving:
        found, blocked = _through(view, svc, pods, caller)
        if found is not None:
            port, rule = found
            kind = (
                "ClusterIP"
                if (spec_of(svc).get("type") or "ClusterIP") == "ClusterIP"
                else "LoadBalancer's cluster IP"
            )
            return [rule, f"{k8s_label(svc)} ({kind}, port {port})", pods.label], None
    return [], blocked


def way_in(
    view: ClusterPoolView | None, subject: Subject, caller: Consumer, site: str | None = None
) -> tuple[list[str], str | None]:
    """A range consumer (a caller outside the cluster) -> the internal LoadBalancer Service
    whose source ranges hold it -> the ingress rule admitting it -> the pods; a namespace
    consumer (pods of the pool's site) -> the Service's cluster address -> the rule admitting
    its namespace -> the pods; or what blocks it."""
    if view is None:
        return [], f"{subject.name} has no namespace in the graph"
    if caller.namespace is not None and site is not None and caller.site != site:
        return [], (
            f"its callers are pods of site {caller.site}'s cluster, and the pool runs on site "
            f"{site}: no NetworkPolicy of one cluster admits another's pods"
        )
    if caller.vpc or caller.account:
        where = caller.vpc or f"account {caller.account}"
        return [], (
            f"its callers are in {where}, which a cluster pool does not reach: a consumer "
            "naming a VPC or an account needs a PrivateLink endpoint, which the cluster makes "
            "none of"
        )
    if caller.namespace is not None:
        return _inside(view, caller)
    serving = [
        (svc, pods)
        for svc, pods in view.serving()
        if (spec_of(svc).get("type") or "ClusterIP") == "LoadBalancer"
    ]
    if not serving:
        return [], (
            f"its callers are outside the cluster (a range) and no LoadBalancer Service of "
            f"namespace {view.name} selects the pool's pods (a ClusterIP one is reached from "
            "inside the cluster only)"
        )
    blocked = ""
    for svc, pods in serving:
        source = _source_range(svc, caller)
        if source is None:
            blocked = (
                f"{k8s_label(svc)}'s loadBalancerSourceRanges "
                f"({', '.join(map(str, spec_of(svc).get('loadBalancerSourceRanges') or []))}) "
                f"do not hold {caller.cidr}"
            )
            continue
        found, blocked = _through(view, svc, pods, caller)
        if found is not None:
            port, rule = found
            return [
                f"{k8s_label(svc)} (LoadBalancer, port {port}, source range {source})",
                rule,
                pods.label,
            ], None
    return [], blocked
