"""The Kubernetes target's network model for verify (issue 16): a pool on a cluster site is the
pods of its namespace (kubernetes_pods.py finds them), held to the technical perimeter by
NetworkPolicy and judged fail closed from the graph alone:

- every pod template of the pool (a Deployment's, a LeaderWorkerSet's leader and worker) is
  selected by a policy denying Ingress and Egress by default (no rule), and by no Service but a
  ClusterIP one or an internal LoadBalancer (a NodePort opens it on every node: open-ingress); a
  LoadBalancer passes only on a site whose internal load balancer the plan states, carrying its
  annotations and loadBalancerClass (else public-ip), its loadBalancerSourceRanges within the
  consumers' ranges, allocateLoadBalancerNodePorts false and no nodePort, and
  externalTrafficPolicy Local, which keeps the caller's address for the ipBlock rules (else
  open-ingress);
- the union of the egress the policies selecting it allow stays within the pool's own pods,
  cluster DNS (kube-system's kube-dns pods on port 53) and the ranges the stack config names for
  its site (`clusters.<site>.weights_cidr`, the weights' store: Expectations.cluster_ranges);
  anything beyond is a perimeter failure (and 0.0.0.0/0 or ::/0 an open-egress one);
- the union of the ingress they allow is the pool's own pods, and its consumers on the serving
  port the pool's Service targets: their ranges (an ipBlock within one of them) and the
  namespaces they name (a namespaceSelector on the namespace's name; an empty selector, one by
  another label, or a namespace no consumer names is open-ingress);
- no hostNetwork (NetworkPolicy does not hold a pod on the node's network: perimeter) and no
  hostPort (open-ingress);
- a Kubernetes resource of a kind the model does not know, in the pool's namespace or naming it
  or the pool's pod label anywhere (a CiliumNetworkPolicy, an Ingress, a Pod), fails closed.

What the cluster itself must provide (a CNI enforcing NetworkPolicy, DNS resolving no outside
name for the pool, no node-level egress path) is the plan's stated assumption, which a passing
pool lists among its blockers: the graph cannot show it. How callers reach the pool (its
LoadBalancer Service, each consumer's way in, a namespace consumer's by name) is
kubernetes_exposure.py's.

About 660 lines on purpose (the consumers named by namespace added about 50, and the
fail-closed reading of what it cannot see about 100 more: three-valued selection, other
NetworkPolicy APIs, a DNS impostor, Unknown values): one judgement of
one kind of network, whose rules all read the same view of a pool's pods and policies
(kubernetes_pods.py finds them); the AWS model's counterpart, aws_network.py, is one class for
the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner import names
from planner.catalog.types import PrivateConsumers
from planner.graph.resources import Graph
from planner.planfile import ClusterLoadBalancer
from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations
from planner.verification.headers import within
from planner.verification.kubernetes_exposure import (
    EVERYWHERE,
    external_ips_findings,
    load_balancer_findings,
    way_in,
)
from planner.verification.kubernetes_pods import (
    DNS_NAMESPACE,
    DNS_PODS,
    DNS_PORT,
    NAMESPACE,
    NAMESPACE_NAME,
    ClusterPoolView,
    Pods,
    cluster_pools,
    dns_impostor,
    has_unknown,
    host_network,
    host_ports,
    k8s_label,
    meta,
    named_namespace,
    number,
    opens_any,
    pool_view,
    spec_of,
)
from planner.verification.registry import Finding, Subject, WorkloadVerdict, unique
from planner.verification.ways_in import caller_name, consumers_to_prove

ASSUMED = (
    "the cluster enforces NetworkPolicy, resolves no outside name for the pool and has no "
    "node-level egress path (the plan's stated assumptions: the graph cannot show them)"
)


def _ports(rule: dict[str, Any]) -> str:
    entries = rule.get("ports") or []
    if not entries:
        return "every port"
    texts = []
    for entry in entries:
        port, end = number(entry.get("port")), number(entry.get("endPort"))
        span = "every port" if port is None else f"{port}" + (f"-{end}" if end else "")
        texts.append(f"{entry.get('protocol', 'TCP')} {span}")
    return ", ".join(texts)


def _peer(peer: Any) -> str:
    """A policy peer as a report names it."""
    if not isinstance(peer, dict):
        return repr(peer)
    parts = []
    if "namespaceSelector" in peer:
        parts.append(f"namespaces {peer['namespaceSelector'] or 'all'}")
    if "podSelector" in peer:
        parts.append(f"pods {peer['podSelector'] or 'all'}")
    if "ipBlock" in peer:
        parts.append(f"ipBlock {(peer['ipBlock'] or {}).get('cidr')}")
    return ", ".join(parts) or "a peer the verifier does not model"


def _serving_only(pods: Pods, rule: dict[str, Any], serving: set[int]) -> bool:
    """The rule's ports are the serving port only: by number, or by a name the pods give one
    (workers serve none: the consumers' rule then admits them only on the number the Service
    targets)."""
    entries = rule.get("ports") or []
    named = {
        given if isinstance(given := number(e.get("port")), int) else pods.port(given)
        for e in entries
    }
    return bool(
        entries and serving and not any(e.get("endPort") for e in entries) and named <= serving
    )


# The port the weights' store is reached on (its https:// endpoint; the stack's settings refuse
# another: stacks/settings.py, HTTPS_PORT of stacks/kubernetes/network_policy.py, which verify
# may not import: tests/test_kubernetes_verify.py checks they agree).
STORE_PORT = 443


def _store_port_only(rule: dict[str, Any]) -> bool:
    entries = rule.get("ports") or []
    return bool(entries) and all(
        number(e.get("port")) == STORE_PORT
        and e.get("protocol", "TCP") == "TCP"
        and not e.get("endPort")
        for e in entries
    )


def _dns(peer: dict[str, Any], rule: dict[str, Any]) -> bool:
    """Cluster DNS, as the stack names it, on port 53 only."""
    entries = rule.get("ports") or []
    return (
        peer.get("namespaceSelector") == {"matchLabels": DNS_NAMESPACE}
        and peer.get("podSelector") == {"matchLabels": DNS_PODS}
        and "ipBlock" not in peer
        and bool(entries)
        and all(number(e.get("port")) == DNS_PORT and not e.get("endPort") for e in entries)
    )


@dataclass
class _Judgement:
    """One pool's subject being judged, and what its pods may reach (for its blockers)."""

    view: ClusterPoolView
    subject: Subject
    ranges: dict[str, str]
    site: str | None
    consumers: list[str] | None
    load_balancer: ClusterLoadBalancer | None = None
    # The namespaces the pool's consumers name (None: the plan is not known).
    namespaces: list[str] | None = None
    # The private ranges, when the plan is not known (Expectations.private).
    private: PrivateConsumers | None = None
    blocks: list[str] = field(default_factory=list)

    def fail(self, rule: str, resource: str, message: str, *witness: str) -> None:
        self.subject.failures.append(Finding(rule, resource, message, tuple(witness)))

    def egress(self, pods: Pods) -> None:
        policies = self.view.policies_of(pods, "Egress")
        if not policies:
            self.fail(
                "perimeter",
                pods.label,
                "no NetworkPolicy of type Egress selects them: they may send anywhere the "
                "cluster routes",
                pods.label,
                "no Egress policy selects them",
                "every destination the cluster routes to, the internet among them",
            )
            return
        allowed = []
        for policy in policies:
            for index, rule in enumerate(spec_of(policy).get("egress") or [], 1):
                where, ports = f"{k8s_label(policy)} egress rule {index}", _ports(rule)
                peers = rule.get("to") or []
                if not peers:
                    self.fail(
                        "perimeter",
                        pods.label,
                        f"{where} allows every destination on {ports}",
                        pods.label,
                        f"{where} (no `to`: every destination)",
                        "the internet",
                    )
                for peer in peers:
                    text = self._egress_peer(pods, where, ports, peer, rule)
                    if text:
                        allowed.append(text)
        self.blocks.append(
            f"{pods.label}: egress only to {'; '.join(sorted(set(allowed))) or 'nowhere'} "
            f"({', '.join(k8s_label(p) for p in policies)})"
        )

    def _egress_peer(
        self, pods: Pods, where: str, ports: str, peer: Any, rule: dict[str, Any]
    ) -> str | None:
        if isinstance(peer, dict) and "ipBlock" in peer and len(peer) == 1:
            cidr = (peer["ipBlock"] or {}).get("cidr")
            named = [
                n
                for n, r in sorted(self.ranges.items())
                if isinstance(cidr, str) and within(cidr, r)
            ]
            if named and _store_port_only(rule):
                return f"{cidr} on {ports}: {named[0]}"
            if named:
                self.fail(
                    "perimeter",
                    pods.label,
                    f"{where} allows egress to {cidr} ({named[0]}) on {ports}: the store is "
                    f"reached on TCP {STORE_PORT} only (its HTTPS endpoint)",
                    pods.label,
                    f"{where}: ipBlock {cidr} ({ports})",
                    f"whatever else listens in {cidr}",
                )
                return None
            known = ", ".join(f"{r}: {n}" for n, r in sorted(self.ranges.items()))
            beyond = (
                "the internet"
                if cidr in EVERYWHERE or str(cidr).endswith("/0")
                else f"{cidr}: no range named for the site"
            )
            self.fail(
                "perimeter",
                pods.label,
                f"{where} allows egress to {cidr} on {ports}: beyond the pool's pods, "
                f"cluster DNS and the ranges the stack config names for site {self.site} "
                f"({known or 'none given to this run'})",
                pods.label,
                f"{where}: ipBlock {cidr} ({ports})",
                beyond,
            )
            if beyond == "the internet":
                self.fail(
                    "open-egress",
                    pods.label,
                    f"{where} allows egress to {cidr} from the pool's GPU pods",
                    pods.label,
                    f"{where}: ipBlock {cidr} ({ports})",
                    beyond,
                )
            return None
        if isinstance(peer, dict) and self.view.own(peer):
            return f"the pool's own pods on {ports}"
        if isinstance(peer, dict) and _dns(peer, rule):
            return f"cluster DNS (kube-system's kube-dns pods) on {ports}"
        self.fail(
            "perimeter",
            pods.label,
            f"{where} allows egress to {_peer(peer)} on {ports}: not the pool's own pods, "
            "cluster DNS or a range named for the site",
            pods.label,
            f"{where}: {_peer(peer)}",
            "pods or addresses beyond the pool",
        )
        return None

    def ingress(self, pods: Pods) -> None:
        policies = self.view.policies_of(pods, "Ingress")
        if not policies:
            self.fail(
                "open-ingress",
                pods.label,
                "no NetworkPolicy of type Ingress selects them: every source reaches them",
                "every source",
                "no Ingress policy selects them",
                pods.label,
            )
            return
        serving = self.view.serving_ports()
        allowed = []
        for policy in policies:
            for index, rule in enumerate(spec_of(policy).get("ingress") or [], 1):
                where, ports = f"{k8s_label(policy)} ingress rule {index}", _ports(rule)
                peers = rule.get("from") or []
                if not peers:
                    self.fail(
                        "open-ingress",
                        pods.label,
                        f"{where} admits every source on {ports}",
                        "every source",
                        f"{where} (no `from`)",
                        pods.label,
                    )
                for peer in peers:
                    text = self._ingress_peer(pods, where, ports, peer, rule, serving)
                    if text:
                        allowed.append(text)
        self.blocks.append(
            f"{pods.label}: ingress only from {'; '.join(sorted(set(allowed))) or 'nowhere'} "
            f"({', '.join(k8s_label(p) for p in policies)})"
        )

    def _ingress_peer(
        self,
        pods: Pods,
        where: str,
        ports: str,
        peer: Any,
        rule: dict[str, Any],
        serving: set[int],
    ) -> str | None:
        if isinstance(peer, dict) and "namespaceSelector" in peer and "ipBlock" not in peer:
            return self._namespace_peer(pods, where, ports, peer, rule, serving)
        if isinstance(peer, dict) and "ipBlock" in peer and len(peer) == 1:
            cidr = (peer["ipBlock"] or {}).get("cidr")
            checks = self._health_checks()
            if self.consumers is None:
                # No plan: no consumer is known, but one is never outside the private ranges
                # (the loader refuses it), so a range beyond them (0.0.0.0/1, 2000::/3) is open.
                inside = (
                    isinstance(cidr, str)
                    and cidr not in EVERYWHERE
                    and self.private is not None
                    and self.private.range_problem(cidr) is None
                )
            else:
                inside = isinstance(cidr, str) and any(within(cidr, c) for c in self.consumers)
            checker = not inside and isinstance(cidr, str) and any(within(cidr, c) for c in checks)
            if not inside and not checker:
                also = f"; the load balancer's health checks: {', '.join(checks)}" if checks else ""
                self.fail(
                    "open-ingress",
                    pods.label,
                    f"{where} admits {cidr}, which is not within the consumers' ranges "
                    f"({', '.join(self.consumers or []) or 'none known'}{also})",
                    str(cidr),
                    f"{where}: ipBlock {cidr} ({ports})",
                    pods.label,
                )
                return None
            if not _serving_only(pods, rule, serving):
                self._off_serving_port(pods, where, ports, serving, str(cidr), f"ipBlock {cidr}")
                return None
            if checker:
                return f"{cidr} on {ports} (the load balancer's health checks)"
            return f"{cidr} on {ports} (a consumer's range)"
        if isinstance(peer, dict) and self.view.own(peer):
            return f"the pool's own pods on {ports}"
        self.fail(
            "open-ingress",
            pods.label,
            f"{where} admits {_peer(peer)} on {ports}: neither the pool's own pods nor a "
            "consumer's range or namespace",
            _peer(peer),
            where,
            pods.label,
        )
        return None

    def _off_serving_port(
        self,
        pods: Pods,
        where: str,
        ports: str,
        serving: set[int],
        admitted: str,
        peer: str,
    ) -> None:
        """A consumer's peer (`admitted`: its range, or its namespace) let in on more than the
        port the pool's Service serves."""
        self.fail(
            "open-ingress",
            pods.label,
            f"{where} admits the consumers' {admitted} on {ports}, not only the "
            f"serving port ({', '.join(map(str, sorted(serving))) or 'none'})",
            admitted,
            f"{where}: {peer} ({ports})",
            pods.label,
        )

    def _health_checks(self) -> list[str]:
        """The ranges the site's load balancer checks the pods from (the plan's sites[].
        load_balancer.health_check_cidrs), admitted only for a pool the plan serves through it
        (callers by range): a pool of in-cluster callers has nothing to be checked by."""
        if self.load_balancer is None or not self.consumers:
            return []
        return list(self.load_balancer.health_check_cidrs)

    def _namespace_peer(
        self,
        pods: Pods,
        where: str,
        ports: str,
        peer: dict[str, Any],
        rule: dict[str, Any],
        serving: set[int],
    ) -> str | None:
        """Pods of other namespaces: one a consumer names, selected by its name, on the serving
        port only. A podSelector beside it narrows the pods of that namespace (both must match:
        kubernetes.io, "Network Policies", Behavior of to and from selectors)."""
        selector = peer["namespaceSelector"]
        name = named_namespace(selector)
        pod_selector = peer.get("podSelector", {})
        if name is None or not isinstance(pod_selector, dict):
            self.fail(
                "open-ingress",
                pods.label,
                f"{where} admits {_peer(peer)} on {ports}: "
                + (
                    "an empty namespaceSelector selects every namespace of the cluster"
                    if selector == {}
                    else "a namespaceSelector not by the namespace's name "
                    f"(matchLabels {{{NAMESPACE_NAME}: <name>}}) may select any namespace its "
                    "owner labels so"
                ),
                _peer(peer),
                where,
                pods.label,
            )
            return None
        if self.namespaces is not None and name not in self.namespaces:
            self.fail(
                "open-ingress",
                pods.label,
                f"{where} admits the pods of namespace {name}, which no consumer names "
                f"(the consumers' namespaces: {', '.join(self.namespaces) or 'none'})",
                f"namespace {name}",
                f"{where}: {_peer(peer)} ({ports})",
                pods.label,
            )
            return None
        if not _serving_only(pods, rule, serving):
            self._off_serving_port(pods, where, ports, serving, f"namespace {name}", _peer(peer))
            return None
        return f"namespace {name} on {ports} (a consumer's namespace)"

    def host(self, pods: Pods) -> None:
        if host_network(pods):
            self.fail(
                "perimeter",
                pods.label,
                "they run on their node's network (hostNetwork): NetworkPolicy does not "
                "hold their packets, which leave by the node's routes",
                pods.label,
                "hostNetwork: true (the node's network namespace)",
                "every destination the node reaches",
            )
        for container, port in host_ports(pods):
            self.fail(
                "open-ingress",
                pods.label,
                f"container {container} takes hostPort {port}: the pods answer on their "
                "node's address, a way in beside the Service (fail closed)",
                "any address that reaches the node",
                f"hostPort {port} of {container}",
                pods.label,
            )
        if not host_network(pods) and not host_ports(pods):
            self.blocks.append(f"{pods.label}: on the pod network (no hostNetwork, no hostPort)")

    def deny(self, pods: Pods) -> None:
        # Surely selecting: a deny whose selector turns on labels the template does not give
        # (pod-template-hash DoesNotExist, say) may hold no real pod.
        both = [
            p
            for p in self.view.policies_of(pods, "Ingress", surely=True)
            if p in self.view.policies_of(pods, "Egress", surely=True)
        ]
        deny = [p for p in both if not spec_of(p).get("ingress") and not spec_of(p).get("egress")]
        if deny:
            self.blocks.append(
                f"{pods.label}: denied both ways by default ({k8s_label(deny[0])}: Ingress and "
                "Egress, no rule)"
            )
            return
        held = ", ".join(
            k8s_label(p)
            for p in self.view.policies
            if p in both or p in self.view.policies_of(pods, "Egress")
        )
        self.fail(
            "perimeter",
            pods.label,
            "no NetworkPolicy denying by default (Ingress and Egress, no rule) selects "
            "them: only allow-lists hold them, and a pod of namespace "
            f"{self.view.name} those do not select is open both ways",
            pods.label,
            f"selected by {held or 'no NetworkPolicy'}",
            "no default deny",
        )

    def services(self) -> None:
        seen = set()
        for svc, pods in self.view.serving():
            if svc.urn in seen:
                continue
            seen.add(svc.urn)
            spec, label = spec_of(svc), k8s_label(svc)
            kind = spec.get("type") or "ClusterIP"
            if kind == "ClusterIP" and not spec.get("externalIPs"):
                self.blocks.append(f"{label} is ClusterIP: no node port, no load balancer")
            elif kind == "ClusterIP":
                self.subject.failures.extend(external_ips_findings(svc, pods))
            elif kind == "NodePort":
                self.fail(
                    "open-ingress",
                    label,
                    f"{label} is a NodePort Service: it opens the pool's pods on a port "
                    "of every node of the cluster, a way in beside the consumers' ranges",
                    "any address that reaches a node of the cluster",
                    f"{label} (NodePort)",
                    pods.label,
                )
            elif kind == "LoadBalancer":
                found, block = load_balancer_findings(
                    svc, pods, self.load_balancer, self.site, self.consumers
                )
                self.subject.failures.extend(found)
                self.blocks.extend([block] if block else [])
            else:
                self.fail(
                    "perimeter",
                    label,
                    f"{label} is a Service of type {kind}, which the verifier does not "
                    "model (fail closed)",
                    label,
                    pods.label,
                )


def _read_namespace(view: ClusterPoolView) -> Any:
    found = meta(view.namespace)
    return [found.get("name"), found.get("labels")]


def judge_pool(graph: Graph, pool: str, expect: Expectations) -> Subject:
    """The pool's subject: its failures, or (when it passes) what blocks each way out."""
    planned = expect.pools.get(pool)
    view = pool_view(graph, pool)
    site = expect.pool_sites.get(pool)
    labels = (meta(view.namespace).get("labels") or {}) if view else {}
    perimeter = (
        planned[0] if planned else labels.get(names.label_key(names.TAG_PERIMETER), "technical")
    )
    subject = Subject("pool", f"pool {pool}", perimeter, list(planned[1]) if planned else [])
    if view is None:
        subject.failures.append(
            Finding(
                "perimeter",
                subject.name,
                f"the plan places it on Kubernetes site {site} and no namespace of the "
                f"graph is annotated {names.LABEL_POOL}: {pool}: nothing to verify it "
                "against",
            )
        )
        return subject
    ranges = (
        expect.cluster_ranges.get(site, {})
        if site
        else {n: r for found in expect.cluster_ranges.values() for n, r in found.items()}
    )
    judged = _Judgement(
        view,
        subject,
        ranges,
        site,
        planned[2] if planned else None,
        expect.site_load_balancers.get(site) if site else None,
        expect.pool_namespaces.get(pool, []) if planned else None,
        private=expect.private,
    )
    if view.unknown or has_unknown(_read_namespace(view)):
        # What the perimeter rests on is known only after `pulumi up`: unknown, not judged
        # (a pass would claim what the graph cannot show).
        for resource in view.unknown or [view.namespace]:
            subject.unknowns.append(
                Finding.unknown(
                    "perimeter",
                    k8s_label(resource),
                    f"{k8s_label(resource)} has a value the pool's perimeter rests on (its "
                    "namespace, selectors, rules, ports or host access) that is known only "
                    "after `pulumi up`: verify the stack's state once it is deployed",
                )
            )
        return subject
    for resource in view.unmodelled:
        where = (
            "in the pool's namespace"
            if meta(resource).get("namespace") == view.name
            else "also annotated as this pool's namespace"
            if resource.type == NAMESPACE
            else "that may select any pod of the cluster"
            if opens_any(resource.type)
            else "whose pods the pool's DNS egress reaches"
            if dns_impostor(resource)
            else "naming the pool's namespace or pod label"
        )
        judged.fail(
            "perimeter",
            k8s_label(resource),
            f"a {resource.type} {where}, which the verifier does not model: it may "
            "select the pool's pods and open a way in or out of them (fail closed)",
            k8s_label(resource),
            f"namespace {view.name}",
            "the pool's pods",
        )
    if not view.pods:
        judged.blocks.append(f"no pod template in namespace {view.name}")
    for pods in view.pods:
        judged.host(pods)
        judged.deny(pods)
        judged.egress(pods)
        judged.ingress(pods)
    judged.services()
    subject.failures = unique(subject.failures)
    if subject.passed:
        subject.blocks = sorted({*judged.blocks, ASSUMED})
    return subject


@dataclass(frozen=True)
class KubernetesNetworkModel:
    """The Kubernetes target's network model (planner.verification.verdicts composes it with
    every target's): a subject per pool on a cluster site, its ways in through its Service."""

    network: Network
    kind: str = "kubernetes"

    def subjects(self, expect: Expectations) -> list[Subject]:
        graph = self.network.graph
        return [judge_pool(graph, pool, expect) for pool in cluster_pools(graph, expect)]

    def served_elsewhere(
        self, subjects: list[Subject], workload: str, expect: Expectations
    ) -> Subject | None:
        return None

    def prove_ways_in(
        self, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
    ) -> None:
        callers = consumers_to_prove(expect, verdict)
        for subject in subjects:
            pool = subject.name.removeprefix("pool ")
            view = pool_view(self.network.graph, pool)
            for caller in callers:
                path, blocked = way_in(view, subject, caller, expect.pool_sites.get(pool))
                if blocked is not None:
                    verdict.failures.append(
                        Finding(
                            "way-in", caller_name(caller), f"cannot reach {verdict.name}: {blocked}"
                        )
                    )
                else:
                    verdict.ways_in.append(" -> ".join([caller_name(caller), *path]))
        verdict.failures[:] = unique(verdict.failures)
