"""Each consumer's way in to a workload, proven path by path or refused at the first component
that blocks it: into a pool (its own network, or PrivateLink through an endpoint service), to
the planned endpoint of a PrivateLink provider (Bedrock's), or out through the egress network's
firewall."""

from __future__ import annotations

from dataclasses import dataclass

from planner.graph.resources import Resource
from planner.planfile import Consumer
from planner.verification.aws_network import Network
from planner.verification.aws_types import (
    ASG,
    ENDPOINT,
    ENDPOINT_ACCEPTER,
    ENDPOINT_SERVICE,
    ENDPOINT_SERVICE_PRINCIPAL,
    FIREWALL,
    LB,
    LISTENER,
    ROUTE,
    SG,
    TARGET_GROUP,
    TGW_ATTACHMENT,
)
from planner.verification.expectations import Expectations
from planner.verification.headers import within
from planner.verification.policies import endpoint_policy_problem, policy_unknown
from planner.verification.registry import Finding, Subject, WorkloadVerdict
from planner.verification.values import strings, truthy


def caller_name(consumer: Consumer) -> str:
    """A consumer as a report names it."""
    if consumer.namespace is not None:
        return f"consumer namespace {consumer.namespace} (pods of site {consumer.site})"
    where = (
        f"in {consumer.vpc}"
        if consumer.vpc
        else f"in account {consumer.account}"
        if consumer.account
        else "named by its range only"
    )
    return f"consumer {consumer.cidr} ({where})"


@dataclass(frozen=True)
class Serving:
    """Where a pool's requests land: load balancer, listener, target group, nodes."""

    balancer: Resource
    listener: Resource
    port: int
    target_group: Resource
    nodes: Resource

    def path(self) -> list[str]:
        return [
            self.balancer.label,
            f"{self.listener.label} (port {self.port})",
            self.target_group.label,
            f"nodes of {self.nodes.name}",
        ]


def consumers_to_prove(expect: Expectations, verdict: WorkloadVerdict) -> list[Consumer]:
    """The workload's consumers whose ways in a network model proves: none where the plan is
    not known (no consumer to prove a path for), and a failure where it names none (nothing
    reaches the workload)."""
    callers = expect.consumers.get(verdict.name)
    if callers is None:
        return []
    if not callers:
        verdict.failures.append(
            Finding("way-in", f"workload {verdict.name}", "has no consumer: nothing reaches it")
        )
    return list(callers)


def prove_ways_in(
    network: Network, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
) -> None:
    """Each consumer's path to the workload (its PASS path) or the first component that blocks
    it (a failure). A workload with no consumer to reach it is a failure too."""
    for caller in consumers_to_prove(expect, verdict):
        for subject in subjects:
            if caller.cidr is None:
                path, blocked = _cluster_caller(caller, subject)
            elif subject.kind == "pool":
                path, blocked = _pool_way_in(network, subject, caller)
            elif subject.kind in ("provider", "endpoint"):  # a PrivateLink provider (Bedrock):
                # its network, or an endpoint the stack makes in the consumer's VPC
                provider = expect.workload_provider.get(verdict.name)
                path, blocked = _linked_way_in(network, expect, provider, caller)
            else:
                path, blocked = _egress_way_in(network, subject, caller)
            if blocked is not None:
                verdict.failures.append(
                    Finding(
                        "way-in", caller_name(caller), f"cannot reach {verdict.name}: {blocked}"
                    )
                )
            elif path:
                verdict.ways_in.append(" -> ".join([caller_name(caller), *path]))


Proof = tuple[list[str] | None, str | None]  # (the path, or None and what blocks it)


def _cluster_caller(caller: Consumer, subject: Subject) -> Proof:
    """Pods of a namespace of a Kubernetes site reach no AWS part of the stack."""
    return None, (
        f"its callers are the pods of namespace {caller.namespace} of site {caller.site}'s "
        f"cluster: only a pool on that site admits them, and {subject.name} is not one"
    )


def _range(caller: Consumer) -> str:
    """The caller's range: prove_ways_in sends only callers named by one to the AWS paths."""
    if caller.cidr is None:
        raise ValueError(f"{caller_name(caller)} has no range to prove an AWS way in for")
    return caller.cidr


def _inside(network: Network, vpc: Resource | None, cidr: str) -> bool:
    return vpc is not None and any(within(cidr, c) for c in network.vpc_cidrs(vpc))


def _serving(network: Network, vpc: Resource) -> tuple[list[Serving], str | None]:
    """The pool's load balancers in the VPC and the listeners that forward to nodes."""
    graph = network.graph
    # The balancers placed in the VPC's subnets (by the edges, not a scan of every balancer).
    near = {lb.urn: lb for s in network.subnets_of(vpc) for lb in graph.users(s, LB)}
    balancers = [near[urn] for urn in sorted(near)]
    if not balancers:
        return [], f"no load balancer sits in {vpc.label}: nothing serves the pool"
    found = []
    for balancer in balancers:
        for listener in graph.users(balancer, LISTENER):
            if graph.ref(listener, "loadBalancerArn") is not balancer:
                continue
            port = listener.inputs.get("port")
            for group in graph.refs(listener, "defaultActions", TARGET_GROUP):
                for nodes in graph.users(group, ASG):
                    if group.urn in nodes.deps.get("targetGroupArns", ()) and isinstance(
                        port, int | float
                    ):
                        found.append(Serving(balancer, listener, int(port), group, nodes))
    if not found:
        return [], (
            f"{balancers[0].label}: no listener forwards to a target group with nodes behind it"
        )
    return found, None


def _principals(network: Network, service: Resource) -> list[str]:
    graph = network.graph
    found = strings(service.inputs.get("allowedPrincipals"))
    for grant in graph.users(service, ENDPOINT_SERVICE_PRINCIPAL):
        if graph.ref(grant, "vpcEndpointServiceId") is service:
            found += strings(grant.inputs.get("principalArn"))
    return found


def _admits_text(groups: list[Resource], caller: Consumer, port: int) -> str:
    cidr = _range(caller)
    ids = ", ".join(g.name for g in groups)
    return f"security group{'s' if len(groups) > 1 else ''} {ids} (tcp {port} from {cidr})"


def _pool_way_in(network: Network, subject: Subject, caller: Consumer) -> Proof:
    cidr = _range(caller)
    graph = network.graph
    vpc = subject.vpc
    if vpc is None:
        return None, f"{subject.name} has no network in the graph"
    serving, missing = _serving(network, vpc)
    if missing is not None:
        return None, missing
    first = serving[0]
    port = first.port
    if not caller.vpc and not caller.account:
        # Callers named by their range only: inside the pool's own network, or nowhere.
        if not _inside(network, vpc, cidr):
            return None, (
                f"{cidr} lies outside {vpc.label} "
                f"({', '.join(network.vpc_cidrs(vpc))}) and names no VPC or account, so no "
                "endpoint is made for it and no route carries its packets in (blocked at the "
                f"edge of {vpc.label})"
            )
        groups = graph.refs(first.balancer, "securityGroups", SG)
        if groups and not network.admits(groups, cidr, port):
            return None, (
                f"blocked by security groups {', '.join(g.name for g in groups)} of "
                f"{first.balancer.label}: nothing admits {cidr} on port {port}"
            )
        hops = [f"local route of {vpc.label}"]
        if groups:
            hops.append(_admits_text(groups, caller, port))
        return [*hops, *first.path()], None
    services = [
        s
        for sv in serving
        for s in graph.users(sv.balancer, ENDPOINT_SERVICE)
        if sv.balancer.urn in s.deps.get("networkLoadBalancerArns", ())
    ]
    if not services:
        return None, (
            f"no VPC endpoint service publishes {first.balancer.label} (PrivateLink): nothing "
            "outside its VPC can connect to it"
        )
    service = services[0]
    [through] = [
        sv for sv in serving if sv.balancer.urn in service.deps.get("networkLoadBalancerArns", ())
    ][:1]
    tail = [service.label, *through.path()]
    acceptance = truthy(service.inputs.get("acceptanceRequired"))
    if caller.account:
        principals = _principals(network, service)
        if not any(
            p == caller.account or f":{caller.account}:" in p or p == "*" for p in principals
        ):
            return None, f"{service.label} does not allow account {caller.account} to connect"
        return [
            f"its own interface endpoint to {service.label} (account {caller.account} makes it"
            + ("; the service owner accepts the connection)" if acceptance else ")"),
            *tail,
        ], None
    endpoints = [
        e for e in graph.users(service, ENDPOINT) if service.urn in e.deps.get("serviceName", ())
    ]
    if not endpoints:
        return None, f"no interface endpoint of {service.label} is made in {caller.vpc}"
    here = [e for e in endpoints if e.inputs.get("vpcId") == caller.vpc]
    if not here:
        elsewhere = endpoints[0]
        where = elsewhere.inputs.get("vpcId")
        return None, (
            f"{elsewhere.label} sits in {where if isinstance(where, str) else 'another VPC'}, "
            f"not in the consumer's {caller.vpc}"
        )
    endpoint = here[0]
    subnets = endpoint.inputs.get("subnetIds")
    if (
        caller.subnets
        and isinstance(subnets, list)
        and not set(caller.subnets) & set(strings(subnets))
    ):
        return None, f"{endpoint.label} has no interface in the consumer's subnets"
    groups = graph.refs(endpoint, "securityGroupIds", SG)
    if not groups:
        return None, (
            f"{endpoint.label} has no security group of its own: {caller.vpc}'s default group "
            "decides, which the verifier does not see (fail closed)"
        )
    if not network.admits(groups, cidr, through.port):
        return None, (
            f"blocked by security groups {', '.join(g.name for g in groups)} of "
            f"{endpoint.label}: nothing admits {cidr} on port {through.port}"
        )
    if acceptance and not any(
        graph.ref(a, "vpcEndpointId") is endpoint for a in graph.users(endpoint, ENDPOINT_ACCEPTER)
    ):
        return None, (
            f"{service.label} requires acceptance and nothing accepts {endpoint.label}'s connection"
        )
    return [
        _admits_text(groups, caller, through.port),
        f"{endpoint.label} in {caller.vpc}",
        *tail,
    ], None


def _linked_way_in(
    network: Network, expect: Expectations, provider_id: str | None, caller: Consumer
) -> Proof:
    """A PrivateLink provider's caller to the provider's interface endpoint (its service from
    the catalog): in the caller's VPC, or in the stack's network that holds its range."""
    cidr = _range(caller)
    graph = network.graph
    provider = expect.links.get(provider_id or "")
    if provider is None or provider.endpoint is None:
        return None, f"provider {provider_id} is not reached through PrivateLink in the catalog"
    short, label, service = provider.short_name, provider.endpoint.label, provider.endpoint.service
    endpoints = [
        e
        for e in graph.of_type(ENDPOINT)
        if e.inputs.get("vpcEndpointType") == "Interface"
        and str(e.inputs.get("serviceName", "")).endswith(f".{service}")
    ]
    if caller.account:
        return None, (
            f"its callers are in account {caller.account}: a {short} endpoint there is not this "
            "stack's, so no path to the planned endpoint can be shown"
        )
    if caller.vpc:
        here = [e for e in endpoints if e.inputs.get("vpcId") == caller.vpc]
        where = f"the consumer's {caller.vpc}"
    else:
        here = [e for e in endpoints if _inside(network, network.vpc_of(e), cidr)]
        where = f"a network of the stack holding {cidr}"
    if not here:
        if not endpoints:
            return None, f"the stack has no {label} endpoint"
        other = endpoints[0]
        vpc = network.vpc_of(other)
        sits = (
            f"{vpc.label} ({', '.join(network.vpc_cidrs(vpc))})"
            if vpc is not None
            else str(other.inputs.get("vpcId"))
        )
        return None, f"{other.label} sits in {sits}, not in {where}"
    endpoint = here[0]
    groups = graph.refs(endpoint, "securityGroupIds", SG)
    if not groups or not network.admits(groups, cidr, 443):
        return None, (
            f"blocked by security groups {', '.join(g.name for g in groups) or '(none)'} of "
            f"{endpoint.label}: nothing admits {cidr} on port 443"
        )
    broad = endpoint_policy_problem(endpoint, expect)
    if broad:
        return None, f"{endpoint.label}'s {broad}"
    models = (
        "its policy known only after `pulumi up`"
        if policy_unknown(endpoint)
        else "planned models only"
    )
    return [_admits_text(groups, caller, 443), f"{endpoint.label} ({models})", label], None


def _egress_way_in(network: Network, subject: Subject, caller: Consumer) -> Proof:
    """A contractual workload's callers out to the providers' hosts: through the firewall of
    the egress network (whose allow-list the perimeter rule checks), from the egress network
    itself, or from the consumer's VPC attached to it by a transit gateway."""
    cidr = _range(caller)
    graph = network.graph
    vpc = subject.vpc
    if vpc is None:
        return None, f"{subject.name} has no network in the graph"
    subnets = {s.urn for s in network.subnets_of(vpc)}
    firewalls = [
        f
        for f in graph.of_type(FIREWALL)
        if any(s.urn in subnets for s in graph.refs(f, "subnetMappings"))
    ]
    if caller.vpc:
        inline = [f for f in graph.of_type(FIREWALL) if f.inputs.get("vpcId") == caller.vpc]
        if inline:
            return [f"{inline[0].label} in {caller.vpc} (allow-list)", "providers' hosts"], None
    if not firewalls:
        return None, f"{vpc.label} has no firewall: no allowed way to the providers' hosts"
    firewall = firewalls[0]
    if not caller.vpc and not caller.account:
        if not _inside(network, vpc, cidr):
            return None, (
                f"{cidr} lies outside {vpc.label} "
                f"({', '.join(network.vpc_cidrs(vpc))}) and names no VPC: nothing attaches it "
                f"to the egress path (blocked at the edge of {vpc.label})"
            )
        return [
            f"route tables of {vpc.label}",
            f"{firewall.label} (allow-list of the providers' hosts)",
            "providers' hosts",
        ], None
    if caller.account:
        return None, (
            f"its callers are in account {caller.account}: this stack attaches no network of "
            "another account to its egress path"
        )
    attachments = [a for a in graph.of_type(TGW_ATTACHMENT) if a.inputs.get("vpcId") == caller.vpc]
    if not attachments:
        return None, (
            f"no transit gateway attachment joins {caller.vpc} to the egress path (nor a "
            "firewall in it)"
        )
    attachment = attachments[0]
    gateways = graph.refs(attachment, "transitGatewayId")
    egress_side = [
        a
        for a in graph.of_type(TGW_ATTACHMENT)
        if graph.ref(a, "vpcId") is vpc
        and set(a.deps.get("transitGatewayId", ())) & {g.urn for g in gateways}
    ]
    if not gateways or not egress_side:
        return None, f"{attachment.label}'s transit gateway has no attachment in {vpc.label}"
    gateway = gateways[0]
    routed = [
        r
        for r in graph.users(gateway, ROUTE)
        if graph.ref(r, "transitGatewayId") is gateway and graph.ref(r, "routeTableId") is None
    ]
    if not routed:
        return None, (
            f"no route in {caller.vpc}'s route tables sends its traffic to {gateway.label}: "
            "the VPC is attached, but nothing the stack makes routes it there (the consumer's "
            "own route would, and the verifier cannot see it)"
        )
    return [
        f"{routed[0].label} in {caller.vpc}",
        attachment.label,
        gateway.label,
        egress_side[0].label,
        f"{firewall.label} (allow-list of the providers' hosts)",
        "providers' hosts",
    ], None
