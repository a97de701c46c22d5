"""Where packets can go in a stack's AWS network, and what stops them.

Reachability carries header sets (planner.verification.headers) from a network interface
through its security groups' egress rules, its subnet's network ACL, the subnet's route table by
longest-prefix match, and on through whatever the route leads to (a firewall or a NAT gateway
forwards into its own subnet's routing), to a fixpoint: the way Tiros and VPC Reachability
Analyzer reason, over the subset of AWS networking modelled here. What each component lets
through is read in planner.verification.aws_components. What is not modelled is never assumed
harmless: a route target or a resource the model does not know, touching a sensitive network,
is reported as an exit (fail closed).

About 540 lines on purpose: the fixpoint (`reach`, about 180 of them) and the resolver's way out
are one model's, over the same sources and forwarders; the component readers already live apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from planner.graph.resources import Resource
from planner.verification.aws_components import Components
from planner.verification.aws_types import (
    ASG,
    ASSOCIATION,
    DEFAULT_NACL,
    DEFAULT_ROUTE_TABLE,
    DNS_ASSOCIATION,
    DNS_CONFIG,
    DNS_DOMAIN_LIST,
    DNS_RULE,
    DNS_RULE_GROUP,
    EIGW,
    ENDPOINT,
    ENI,
    FIREWALL,
    FLOW_LOG,
    IGW,
    IGW_ATTACHMENT,
    INSTANCE,
    LAUNCH_TEMPLATE,
    LB,
    MAIN_ASSOCIATION,
    NACL,
    NACL_ASSOCIATION,
    NACL_RULE,
    NAT,
    PEERING,
    ROUTE,
    ROUTE_TABLE,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE,
    SUBNET,
    TARGET_GROUP,
    TGW_ATTACHMENT,
    VGW,
    VGW_ATTACHMENT,
)
from planner.verification.headers import (
    EVERYTHING,
    PORTS,
    PROTOCOLS,
    V4,
    V6,
    Box,
    Headers,
    destinations,
)
from planner.verification.values import strings

# Kinds of route target and what each one is.
EXITS = {
    "internet gateway": "leaves for the internet",
    "egress-only internet gateway": "leaves for the internet (IPv6)",
    "NAT gateway": "is translated toward the internet",
    "transit gateway": "leaves for other networks",
    "peering connection": "leaves for another VPC",
    "VPN gateway": "leaves for an on-premises network",
    "unmodelled": "goes where the verifier cannot follow (fail closed)",
}

# Resource types the model knows, when they touch a sensitive VPC or subnet.
MODELLED = {
    SUBNET,
    ROUTE_TABLE,
    DEFAULT_ROUTE_TABLE,
    ROUTE,
    ASSOCIATION,
    MAIN_ASSOCIATION,
    NACL,
    DEFAULT_NACL,
    NACL_RULE,
    NACL_ASSOCIATION,
    ENDPOINT,
    IGW,
    IGW_ATTACHMENT,
    EIGW,
    NAT,
    VGW,
    VGW_ATTACHMENT,
    PEERING,
    TGW_ATTACHMENT,
    FIREWALL,
    ASG,
    INSTANCE,
    ENI,
    LB,
    FLOW_LOG,
    TARGET_GROUP,
    SG,
    SG_INGRESS,
    SG_EGRESS,
    SG_RULE,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    # DNS Firewall: filters the resolver's answers (checked by the dns rule), carries no traffic
    DNS_ASSOCIATION,
    DNS_CONFIG,
    # carries no traffic: AWS's own analysis of the same property
    "aws:ec2/networkInsightsAccessScope:NetworkInsightsAccessScope",
}


@dataclass(frozen=True)
class Hop:
    """One step of a path: the component and what it let through."""

    resource: str  # label
    note: str = ""

    def text(self) -> str:
        return f"{self.resource}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Reached:
    """A place packets from a source can reach, with the path that shows it."""

    kind: str  # an EXITS key, "endpoint" or "firewall"
    target: Resource | None
    headers: Headers
    path: tuple[Hop, ...]
    through_firewall: Resource | None = None


@dataclass
class Blocked:
    """Why a route toward an exit carries nothing: the component that stops it."""

    exit: str
    component: str


@dataclass(frozen=True)
class Source:
    """Network interfaces that serve a workload: where they sit and what filters them."""

    label: str
    subnets: tuple[Resource, ...]
    groups: tuple[Resource, ...]  # empty with `open_egress`: nothing filters
    open_egress: bool = False


@dataclass
class Network(Components):
    """Where packets from a network interface can go, over what each component lets through
    (Components), and who may come in."""

    @cached_property
    def as_known(self) -> Network:
        """This network read with values known only after `pulumi up` as no address."""
        return replace(self, known_only=True)

    # --- sources and forwarders
    def sources_in(self, subnets: list[Resource]) -> list[Source]:
        """Every network interface placed in these subnets: nodes of auto-scaling groups (by
        their launch templates), instances, network interfaces, load balancers."""
        inside = {s.urn for s in subnets}
        near = {r.urn: r for s in subnets for r in self.graph.users(s, ASG, INSTANCE, ENI, LB)}
        placed = [near[urn] for urn in sorted(near)]
        found = []
        for group in (r for r in placed if r.type == ASG):
            where = [s for s in self.graph.refs(group, "vpcZoneIdentifiers") if s.urn in inside]
            if not where:
                continue
            for template in self.graph.refs(group, "launchTemplate", LAUNCH_TEMPLATE) + (
                self.graph.refs(group, "mixedInstancesPolicy", LAUNCH_TEMPLATE)
            ):
                groups = (
                    self.graph.refs(template, "networkInterfaces", SG)
                    + self.graph.refs(template, "vpcSecurityGroupIds", SG)
                    + self.graph.refs(template, "securityGroupNames", SG)
                )
                found.append(
                    Source(
                        f"nodes of {group.name} ({template.label})",
                        tuple(where),
                        tuple(groups),
                        open_egress=not groups,
                    )
                )
        for instance in (r for r in placed if r.type in (INSTANCE, ENI)):
            where = [s for s in self.graph.refs(instance, "subnetId") if s.urn in inside]
            if where:
                groups = self.graph.refs(instance, "vpcSecurityGroupIds", SG) + self.graph.refs(
                    instance, "securityGroups", SG
                )
                found.append(Source(instance.label, tuple(where), tuple(groups), not groups))
        for balancer in (r for r in placed if r.type == LB):
            where = [
                s
                for s in self.graph.refs(balancer, "subnets")
                + self.graph.refs(balancer, "subnetMappings")
                if s.urn in inside
            ]
            if where:
                groups = self.graph.refs(balancer, "securityGroups", SG)
                found.append(Source(balancer.label, tuple(where), tuple(groups), not groups))
        return found

    def forwarder_subnets(self, target: Resource) -> list[Resource]:
        if target.type == NAT:
            return self.graph.refs(target, "subnetId", SUBNET)
        if target.type == FIREWALL:
            return self.graph.refs(target, "subnetMappings", SUBNET)
        return []

    def endpoint_admits(self, endpoint: Resource, headers: Headers) -> bool:
        """Whether the interface endpoint's security groups admit these packets' protocols
        and ports (sources are not narrowed: conservative)."""
        if endpoint.inputs.get("vpcEndpointType") != "Interface":
            return True
        groups = self.graph.refs(endpoint, "securityGroupIds", SG)
        if not groups:
            return True  # the VPC's default group: not modelled, so assumed open
        admitted = Headers()
        for group in groups:
            for box in self.ingress(group).boxes:
                admitted = admitted | Headers.of(
                    [
                        Box(
                            f,
                            box.protocol,
                            *(V4 if f == "ipv4" else V6),
                            box.port_low,
                            box.port_high,
                        )
                        for f in ("ipv4", "ipv6")
                    ]
                )
        return bool(headers & admitted)

    def endpoint_addresses(self, endpoint: Resource) -> Headers:
        """Where an interface endpoint's network interfaces sit: its subnets."""
        everything = [(p, *PORTS) for p in PROTOCOLS]
        cidrs = [
            c
            for s in self.graph.refs(endpoint, "subnetIds", SUBNET)
            for c in strings(s.inputs.get("cidrBlock"))
        ]
        return destinations(cidrs, everything) if cidrs else EVERYTHING

    # --- who may come in
    def admits(self, groups: Iterable[Resource], cidr: str, port: int) -> bool:
        """Whether these security groups, together, admit TCP to `port` from every address of
        `cidr` (a group admitting only part of the range does not carry the consumer)."""
        wanted = destinations([cidr], [("tcp", port, port)])
        admitted = Headers()
        for group in groups:
            admitted = admitted | self.ingress(group)
        return not (wanted - admitted)

    # --- DNS
    def dns_way_out(self, vpc: Resource) -> tuple[str, Resource] | None:
        """Why the VPC's Route 53 Resolver would look up a name the VPC does not need (data
        spelled into a name reaches whoever serves it), with the component that lets it; None
        when DNS Firewall answers only AWS service names and blocks every other, failing
        closed. Rule groups by association priority, rules by priority, first match wins."""
        if vpc.inputs.get("enableDnsSupport") is False:
            return None  # no resolver at all
        for config in self.graph.users(vpc, DNS_CONFIG):
            if self.graph.ref(config, "resourceId") is vpc and (
                str(config.inputs.get("firewallFailOpen", "")).upper() == "ENABLED"
            ):
                return (
                    "its DNS Firewall fails open: when the firewall does not answer, the "
                    "resolver looks up any name",
                    config,
                )
        associations = [
            a for a in self.graph.users(vpc, DNS_ASSOCIATION) if self.graph.ref(a, "vpcId") is vpc
        ]
        if not associations:
            return (
                "no DNS Firewall rule group is associated with it: its Route 53 Resolver looks "
                "up any name",
                vpc,
            )
        rules: list[tuple[int, int, Resource]] = []
        for association in associations:
            for group in self.graph.refs(association, "firewallRuleGroupId", DNS_RULE_GROUP):
                for rule in self.graph.users(group, DNS_RULE):
                    if self.graph.ref(rule, "firewallRuleGroupId") is group:
                        rules.append(
                            (
                                _number(association.inputs.get("priority")),
                                _number(rule.inputs.get("priority")),
                                rule,
                            )
                        )
        for _, _, rule in sorted(rules, key=lambda r: (r[0], r[1], r[2].urn)):
            listed = self.graph.ref(rule, "firewallDomainListId", DNS_DOMAIN_LIST)
            if listed is None:
                continue  # an Advanced rule (tunnelling, DGA): matches no name for certain
            domains = listed.inputs.get("domains")
            if not isinstance(domains, list):
                return (f"the names of {listed.label} are not known: fail closed", listed)
            action = str(rule.inputs.get("action", "")).upper()
            if action == "BLOCK":
                if DNS_ALL in domains:
                    return None
                continue
            loose = sorted(d for d in strings(domains) if not aws_service_name(d))
            if loose:
                return (
                    f"{rule.label} lets the resolver look up {', '.join(loose[:3])}"
                    + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
                    + f" ({action or 'no action'}): not an AWS service name",
                    rule,
                )
        return (
            "no DNS Firewall rule blocks `*` after its allow-list: its Route 53 Resolver looks "
            "up any name it does not list",
            associations[0],
        )

    # --- the fixpoint
    def reach(self, source: Source) -> tuple[list[Reached], list[Blocked]]:
        """Everywhere packets from the source can go, each with a witness path; and for the
        exits they cannot reach, the component that blocks them."""
        if source.open_egress:
            allowed = EVERYTHING
            first = Hop(source.label, "no security group: nothing filters its egress")
        else:
            allowed = Headers()
            for group in source.groups:
                allowed = allowed | self.egress(group)
            first = Hop(source.label, f"security groups {', '.join(g.name for g in source.groups)}")
        reached: list[Reached] = []
        blocked: list[Blocked] = []
        seen: dict[tuple[str, str], Headers] = {}
        queue: list[tuple[Resource, Headers, tuple[Hop, ...], Resource | None]] = [
            (subnet, allowed, (first,), None) for subnet in source.subnets
        ]
        if not allowed:
            blocked.append(
                Blocked(
                    "any",
                    f"security groups {', '.join(g.name for g in source.groups)} allow no egress",
                )
            )
        while queue:
            subnet, headers, path, firewall = queue.pop(0)
            key = (subnet.urn, firewall.urn if firewall else "")
            fresh = headers - seen.get(key, Headers())
            if not fresh:
                continue
            seen[key] = seen.get(key, Headers()) | fresh
            acl_allows, acl = self.nacl_egress(subnet)
            passing = fresh & acl_allows
            here = (*path, Hop(f"subnet {subnet.name}"))
            if acl is not None:
                here = (*here, Hop(acl.label, "network ACL"))
            if not passing:
                blocked.append(
                    Blocked("any", f"{acl.label if acl else 'network ACL'} of subnet {subnet.name}")
                )
                continue
            vpc = self.vpc_of(subnet)
            if vpc is None:
                reached.append(Reached("unmodelled", subnet, passing, here, firewall))
                continue
            table = self.route_table(subnet)
            table_hop = Hop(
                table.label if table else f"main route table of {vpc.name}",
                "" if table else "local route only",
            )
            routes = self.routes(table, vpc)
            for destination, kind, target, region in _longest_prefix(routes):
                carried = passing & region
                if not carried:
                    # Blocked where the packets start; further on, routing already narrowed them.
                    if kind in EXITS and len(path) == 1:
                        blocked.append(Blocked(kind, _what_blocks(source, destination, acl)))
                    continue
                route_hop = Hop(
                    f"route to {target.label if isinstance(target, Resource) else kind}",
                    carried.describe(),
                )
                step = (*here, table_hop, route_hop)
                if kind == "local":
                    for endpoint in self.graph.users(vpc, ENDPOINT):
                        if endpoint.inputs.get("vpcEndpointType") != "Interface":
                            continue
                        if self.vpc_of(endpoint) is not vpc:
                            continue
                        to_endpoint = carried & self.endpoint_addresses(endpoint)
                        if to_endpoint and self.endpoint_admits(endpoint, to_endpoint):
                            reached.append(
                                Reached(
                                    "endpoint",
                                    endpoint,
                                    to_endpoint,
                                    (*step, Hop(endpoint.label)),
                                    firewall,
                                )
                            )
                    continue
                if kind == "endpoint":
                    reached.append(
                        Reached("endpoint", target, carried, (*step, Hop(target.label)), firewall)
                    )
                    continue
                if kind in ("firewall", "NAT gateway") and isinstance(target, Resource):
                    onward = self.forwarder_subnets(target)
                    if kind == "NAT gateway":
                        reached.append(
                            Reached(kind, target, carried, (*step, Hop(target.label)), firewall)
                        )
                    for next_subnet in onward:
                        queue.append(
                            (
                                next_subnet,
                                carried,
                                (*step, Hop(target.label)),
                                target if kind == "firewall" else firewall,
                            )
                        )
                    if kind == "firewall":
                        reached.append(
                            Reached(
                                "firewall", target, carried, (*step, Hop(target.label)), firewall
                            )
                        )
                    if not onward:
                        reached.append(
                            Reached(
                                "unmodelled",
                                target,
                                carried,
                                (*step, Hop(target.label, "its subnet is unknown")),
                                firewall,
                            )
                        )
                    continue
                label = target.label if isinstance(target, Resource) else kind
                reached.append(
                    Reached(
                        kind,
                        target if isinstance(target, Resource) else None,
                        carried,
                        (*step, Hop(label)),
                        firewall,
                    )
                )
        return reached, blocked


DNS_ALL = "*"
# AWS's own domains: names below them are answered by AWS (endpoints' private zones, the VPC's
# host names ip-10-0-0-1.ec2.internal or ....<region>.compute.internal), never by a stranger.
AWS_DOMAINS = ("amazonaws.com", "amazonaws.com.cn", "compute.internal")
AWS_ZONES = ("ec2.internal",)  # a zone whose own name is asked too


def aws_service_name(domain: str) -> bool:
    """A name (or `*.`-wildcard) strictly inside AWS's own domains. `*.amazonaws.com` is not
    one (it is every service of every region, S3 website buckets included), nor
    `*amazonaws.com`, which also matches evilamazonaws.com."""
    name = domain.lower().rstrip(".")
    if name.startswith("*"):
        if not name.startswith("*."):
            return False
        name = name[2:]
        if name in AWS_ZONES:
            return True
        if name in AWS_DOMAINS or name.count(".") < 2:
            return False
    return name in AWS_ZONES or any(
        name.endswith("." + suffix) for suffix in (*AWS_DOMAINS, *AWS_ZONES)
    )


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 2**31


def _longest_prefix(
    routes: list[tuple[Headers, str, Any]],
) -> list[tuple[Headers, str, Any, Headers]]:
    """Each route with the part of its destination no more specific route takes."""
    result = []
    for index, (destination, kind, target) in enumerate(routes):
        region = destination
        for other_index, (other, _, _) in enumerate(routes):
            if other_index == index:
                continue
            if _more_specific(other, destination):
                region = region - other
        result.append((destination, kind, target, region))
    return result


def _more_specific(a: Headers, b: Headers) -> bool:
    """a's prefixes are narrower than b's where they overlap (prefix lists beat nothing: AWS
    prefers a longer prefix; a prefix list route and a CIDR route do not overlap here)."""

    def size(h: Headers) -> int:
        return min((box.high - box.low for box in h.boxes), default=0)

    return bool(a & b) and size(a) < size(b)


def _what_blocks(source: Source, destination: Headers, acl: Resource | None) -> str:
    groups = ", ".join(g.name for g in source.groups) or "none"
    return (
        f"security groups {groups}"
        + (f" and {acl.label}" if acl else "")
        + f" allow nothing toward {destination.describe()}"
    )
