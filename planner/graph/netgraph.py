"""The resource graph of a stack, and where packets can go in it.

The graph comes from what the Pulumi engine sees: the real program run under mocks
(planner.graph.offline), the steps of a `pulumi preview --json`, or the resources a CrossGuard
policy is handed. Resources are joined through their property dependencies (URNs), never through id
values, which are unknown for new resources at preview time.

Reachability carries header sets (address family, protocol, address range, port range) from a
network interface through its security groups' egress rules, its subnet's network ACL, the
subnet's route table by longest-prefix match, and on through whatever the route leads to (a
firewall or a NAT gateway forwards into its own subnet's routing), to a fixpoint: the way
Tiros and VPC Reachability Analyzer reason, over the subset of AWS networking modelled here.
What is not modelled is never assumed harmless: a route target or a resource the model does not
know, touching a sensitive network, is reported as an exit (fail closed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from pulumi.runtime import rpc

from planner import names

UNKNOWN_SENTINEL = rpc.UNKNOWN  # how `pulumi preview --json` writes a value known after apply
MASKED = "[secret]"  # how a preview shows a secret


class Secret:
    """A secret value: its content is never kept."""

    def __repr__(self) -> str:
        return "Secret()"


class Unknown:
    """A value known only after `pulumi up`."""

    def __repr__(self) -> str:
        return "Unknown()"


SECRET = Secret()
UNKNOWN = Unknown()
TAG_PREFIX = names.TAG_PREFIX


def normalize(value: Any) -> Any:
    """Inputs as the verifier reads them: secrets and unknowns as markers, whatever the source."""
    if rpc.is_rpc_secret(value) or value == MASKED or type(value).__name__ == "Secret":
        return SECRET
    if value == UNKNOWN_SENTINEL or type(value).__name__ == "Unknown":
        return UNKNOWN
    if isinstance(value, Mapping):
        return {str(key): normalize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    return value


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    # input property -> URNs of the resources its value came from
    deps: dict[str, tuple[str, ...]]
    protect: bool = False
    retain_on_delete: bool = False

    def tags(self) -> dict[str, str]:
        tags = self.inputs.get("tags")
        if isinstance(tags, list):  # auto-scaling groups: [{key, value, propagateAtLaunch}]
            return {str(t.get("key")): str(t.get("value")) for t in tags if isinstance(t, dict)}
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
        return {}

    @property
    def label(self) -> str:
        return f"{self.type.split(':')[1].split('/')[-1]} {self.name}"


@dataclass
class Graph:
    resources: dict[str, Resource]

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> Graph:
        return cls({r.urn: r for r in resources})

    @cached_property
    def _by_type(self) -> dict[str, list[Resource]]:
        index: dict[str, list[Resource]] = {}
        for resource in sorted(self.resources.values(), key=lambda r: r.urn):
            index.setdefault(resource.type, []).append(resource)
        return index

    @cached_property
    def _users(self) -> dict[str, list[Resource]]:
        """URN -> the resources with an input that came from it."""
        index: dict[str, list[Resource]] = {}
        for resource in sorted(self.resources.values(), key=lambda r: r.urn):
            for urn in sorted({u for values in resource.deps.values() for u in values}):
                index.setdefault(urn, []).append(resource)
        return index

    def users(self, resource: Resource, *types: str) -> list[Resource]:
        """Resources (of these types) with an input that came from this one."""
        return [r for r in self._users.get(resource.urn, []) if r.type in types]

    def of_type(self, *types: str) -> list[Resource]:
        if len(types) == 1:
            return self._by_type.get(types[0], [])
        return sorted((r for t in types for r in self._by_type.get(t, [])), key=lambda r: r.urn)

    def refs(self, resource: Resource, prop: str, *types: str) -> list[Resource]:
        """The resources an input property came from (of the given types, if any)."""
        found = [self.resources[u] for u in resource.deps.get(prop, ()) if u in self.resources]
        return [r for r in found if not types or r.type in types]

    def ref(self, resource: Resource, prop: str, *types: str) -> Resource | None:
        found = self.refs(resource, prop, *types)
        return found[0] if found else None

    def touching(self, urns: set[str]) -> list[Resource]:
        """Resources with an input that came from one of these resources."""
        found = {r.urn: r for urn in urns for r in self._users.get(urn, [])}
        return [found[urn] for urn in sorted(found)]


def graph_from_offline(run: Any) -> Graph:
    """From planner.graph.offline.OfflineRun: what the mock monitor recorded of each
    registration."""
    return Graph.of(
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=normalize(r.inputs),
            deps={k: tuple(v) for k, v in r.dependencies.items()},
            protect=r.protect,
            retain_on_delete=r.retain_on_delete,
        )
        for r in run.resources
        if r.custom
    )


def graph_from_preview(document: Mapping[str, Any]) -> Graph:
    """From `pulumi preview --json` (or `planner preview --json`): each step's new state."""
    resources = []
    for step in document.get("steps") or []:
        # What leaves the stack: deletions, and the old halves of replacements.
        if step.get("op") in (
            "delete", "delete-replaced", "discard", "discard-replaced", "remove-pending-replace",
        ):  # fmt: skip
            continue
        state = step.get("newState") or {}
        if not state.get("custom", True) or str(state.get("type", "")).startswith("pulumi:"):
            continue
        urn = str(state.get("urn") or step.get("urn"))
        resources.append(
            Resource(
                urn=urn,
                type=str(state.get("type")),
                name=urn.rsplit("::", 1)[-1],
                inputs=normalize(state.get("inputs") or {}),
                # The engine writes `null` for a property with no dependencies.
                deps={
                    k: tuple(v or ()) for k, v in (state.get("propertyDependencies") or {}).items()
                },
                protect=bool(state.get("protect")),
                retain_on_delete=bool(state.get("retainOnDelete")),
            )
        )
    return Graph.of(resources)


def graph_from_policy(resources: Iterable[Any]) -> Graph:
    """From the resources a CrossGuard stack validation policy receives (PolicyResource)."""
    return Graph.of(
        Resource(
            urn=r.urn,
            type=r.resource_type,
            name=r.name,
            inputs=normalize(dict(r.props)),
            deps={k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()},
            protect=bool(getattr(r.opts, "protect", False)),
            # CrossGuard does not show retain_on_delete: the program sets it with protect.
            retain_on_delete=bool(getattr(r.opts, "protect", False)),
        )
        for r in resources
    )


# ----------------------------------------------------------------------------- header sets

PROTOCOLS = ("tcp", "udp", "icmp", "other")
PORTS = (0, 65535)
V4 = (0, 2**32 - 1)
V6 = (0, 2**128 - 1)


@dataclass(frozen=True)
class Box:
    """Packets of one address family and protocol, to an address range and a port range.
    A prefix list (a gateway endpoint's services) is its own family with a single address."""

    family: str
    protocol: str
    low: int
    high: int
    port_low: int = PORTS[0]
    port_high: int = PORTS[1]

    def __and__(self, other: Box) -> Box | None:
        if self.family != other.family or self.protocol != other.protocol:
            return None
        low, high = max(self.low, other.low), min(self.high, other.high)
        port_low, port_high = (
            max(self.port_low, other.port_low),
            min(self.port_high, other.port_high),
        )
        if low > high or port_low > port_high:
            return None
        return Box(self.family, self.protocol, low, high, port_low, port_high)

    def minus(self, other: Box) -> list[Box]:
        """This box less another: up to four boxes, below and above in address, then below
        and above in port within the common address range."""
        common = self & other
        if common is None:
            return [self]
        pieces = [
            replace(self, high=common.low - 1) if self.low < common.low else None,
            replace(self, low=common.high + 1) if common.high < self.high else None,
            replace(common, port_low=self.port_low, port_high=common.port_low - 1)
            if self.port_low < common.port_low
            else None,
            replace(common, port_low=common.port_high + 1, port_high=self.port_high)
            if common.port_high < self.port_high
            else None,
        ]
        return [piece for piece in pieces if piece is not None]

    def describe(self) -> str:
        if self.family.startswith("pl:"):
            where = "prefix list of " + self.family[3:].rsplit("::", 1)[-1]
        else:
            version = 4 if self.family == "ipv4" else 6
            where = _range_text(version, self.low, self.high)
        if self.protocol in ("tcp", "udp"):
            ports = (
                "all ports"
                if (self.port_low, self.port_high) == PORTS
                else f"port {self.port_low}"
                if self.port_low == self.port_high
                else f"ports {self.port_low}-{self.port_high}"
            )
            return f"{self.protocol} {ports} to {where}"
        return f"{self.protocol} to {where}"


def _range_text(version: int, low: int, high: int) -> str:
    start = ipaddress.ip_address(low) if version == 4 else ipaddress.IPv6Address(low)
    end = ipaddress.ip_address(high) if version == 4 else ipaddress.IPv6Address(high)
    networks = list(ipaddress.summarize_address_range(start, end))
    text = ", ".join(str(n) for n in networks[:3])
    return text + (f" (+{len(networks) - 3} more)" if len(networks) > 3 else "")


@dataclass(frozen=True)
class Headers:
    boxes: frozenset[Box] = frozenset()

    @classmethod
    def of(cls, boxes: Iterable[Box]) -> Headers:
        return cls(frozenset(boxes))

    def __bool__(self) -> bool:
        return bool(self.boxes)

    def __and__(self, other: Headers) -> Headers:
        return Headers.of(
            common for a in self.boxes for b in other.boxes if (common := a & b) is not None
        )

    def __or__(self, other: Headers) -> Headers:
        return Headers(self.boxes | other.boxes)

    def __sub__(self, other: Headers) -> Headers:
        pieces = list(self.boxes)
        for cut in other.boxes:
            pieces = [piece for box in pieces for piece in box.minus(cut)]
        return Headers.of(pieces)

    def describe(self) -> str:
        texts = sorted(box.describe() for box in self.boxes)
        return "; ".join(texts[:4]) + (f"; +{len(texts) - 4} more" if len(texts) > 4 else "")


EVERYTHING = Headers.of(
    [Box("ipv4", p, *V4) for p in PROTOCOLS] + [Box("ipv6", p, *V6) for p in PROTOCOLS]
)


@lru_cache(maxsize=4096)
def cidr_box(cidr: str) -> tuple[str, int, int]:
    network = ipaddress.ip_network(cidr, strict=False)
    family = "ipv4" if network.version == 4 else "ipv6"
    return family, int(network.network_address), int(network.broadcast_address)


def protocol_set(protocol: Any, from_port: Any, to_port: Any) -> list[tuple[str, int, int]]:
    """(protocol, port range) of an AWS rule: -1/all is every protocol and port."""
    name = str(protocol).lower() if protocol is not None else "-1"
    name = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp", "icmpv6": "icmp"}.get(name, name)
    if name in ("-1", "all"):
        return [(p, *PORTS) for p in PROTOCOLS]
    if name in ("tcp", "udp"):
        try:
            low, high = int(from_port), int(to_port)
        except (TypeError, ValueError):
            low, high = PORTS
        if low < 0 or high < 0:
            low, high = PORTS
        return [(name, low, high)]
    if name == "icmp":
        return [("icmp", *PORTS)]
    return [("other", *PORTS)]


def destinations(cidrs: Iterable[str], protocols: list[tuple[str, int, int]]) -> Headers:
    boxes: list[Box] = []
    for cidr in cidrs:
        family, low, high = cidr_box(cidr)
        boxes.extend(Box(family, p, low, high, pl, ph) for p, pl, ph in protocols)
    return Headers.of(boxes)


def every_address(protocols: list[tuple[str, int, int]]) -> Headers:
    return Headers.of(
        [Box("ipv4", p, *V4, pl, ph) for p, pl, ph in protocols]
        + [Box("ipv6", p, *V6, pl, ph) for p, pl, ph in protocols]
    )


def prefix_list(key: str, protocols: list[tuple[str, int, int]]) -> Headers:
    return Headers.of(Box(f"pl:{key}", p, 0, 0, pl, ph) for p, pl, ph in protocols)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# ----------------------------------------------------------------------------- the network


SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
DEFAULT_ROUTE_TABLE = "aws:ec2/defaultRouteTable:DefaultRouteTable"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
MAIN_ASSOCIATION = "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation"
NACL = "aws:ec2/networkAcl:NetworkAcl"
DEFAULT_NACL = "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl"
NACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
NACL_ASSOCIATION = "aws:ec2/networkAclAssociation:NetworkAclAssociation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
IGW = "aws:ec2/internetGateway:InternetGateway"
IGW_ATTACHMENT = "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment"
EIGW = "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"
NAT = "aws:ec2/natGateway:NatGateway"
VGW = "aws:ec2/vpnGateway:VpnGateway"
VGW_ATTACHMENT = "aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment"
PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
TGW_ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment"
TGW = "aws:ec2transitgateway/transitGateway:TransitGateway"
FIREWALL = "aws:networkfirewall/firewall:Firewall"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
INSTANCE = "aws:ec2/instance:Instance"
ENI = "aws:ec2/networkInterface:NetworkInterface"
LB = "aws:lb/loadBalancer:LoadBalancer"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
EIP = "aws:ec2/eip:Eip"
LISTENER = "aws:lb/listener:Listener"
ENDPOINT_SERVICE = "aws:ec2/vpcEndpointService:VpcEndpointService"
ENDPOINT_SERVICE_PRINCIPAL = (
    "aws:ec2/vpcEndpointServiceAllowedPrinciple:VpcEndpointServiceAllowedPrinciple"
)
ENDPOINT_ACCEPTER = "aws:ec2/vpcEndpointConnectionAccepter:VpcEndpointConnectionAccepter"
DNS_DOMAIN_LIST = "aws:route53/resolverFirewallDomainList:ResolverFirewallDomainList"
DNS_RULE_GROUP = "aws:route53/resolverFirewallRuleGroup:ResolverFirewallRuleGroup"
DNS_RULE = "aws:route53/resolverFirewallRule:ResolverFirewallRule"
DNS_ASSOCIATION = (
    "aws:route53/resolverFirewallRuleGroupAssociation:ResolverFirewallRuleGroupAssociation"
)
DNS_CONFIG = "aws:route53/resolverFirewallConfig:ResolverFirewallConfig"

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
class Network:
    graph: Graph
    unmodelled: list[str] = field(default_factory=list)

    # --- security groups
    def egress(self, group: Resource) -> Headers:
        """What a security group lets out: inline rules and rules declared on their own.
        A group created with no egress rule lets nothing out (the provider removes AWS's
        default allow-all rule when it creates a group in a VPC)."""
        headers = Headers()
        for rule in self._rules(group, "egress"):
            headers = headers | rule
        return headers

    def ingress(self, group: Resource) -> Headers:
        """Sources a group admits, as headers (addresses are the sources')."""
        headers = Headers()
        for rule in self._rules(group, "ingress"):
            headers = headers | rule
        return headers

    def _rules(self, group: Resource, direction: str) -> Iterator[Headers]:
        for rule in group.inputs.get(direction) or []:
            if isinstance(rule, dict):
                protocols = protocol_set(
                    rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")
                )
                yield self._peer(rule, protocols, group, direction, inline=True)
        kinds = {"egress": SG_EGRESS, "ingress": SG_INGRESS}
        for rule in self.graph.users(group, kinds[direction], SG_RULE):
            if self.graph.ref(rule, "securityGroupId") is not group:
                continue
            if rule.type == SG_RULE and rule.inputs.get("type") != direction:
                continue
            protocols = protocol_set(
                rule.inputs.get("ipProtocol", rule.inputs.get("protocol")),
                rule.inputs.get("fromPort"),
                rule.inputs.get("toPort"),
            )
            yield self._peer(rule.inputs, protocols, group, direction, rule=rule)

    def _peer(
        self,
        values: Mapping[str, Any],
        protocols: list[tuple[str, int, int]],
        group: Resource,
        direction: str,
        inline: bool = False,
        rule: Resource | None = None,
    ) -> Headers:
        cidrs = (
            _strings(values.get("cidrIpv4"))
            + _strings(values.get("cidrIpv6"))
            + _strings(values.get("cidrBlocks"))
            + _strings(values.get("ipv6CidrBlocks"))
        )
        headers = destinations(cidrs, protocols)
        lists = _strings(values.get("prefixListId")) + _strings(values.get("prefixListIds"))
        if lists or isinstance(values.get("prefixListId"), Unknown):
            endpoints = (
                self.graph.refs(rule, "prefixListId", ENDPOINT)
                + self.graph.refs(rule, "prefixListIds", ENDPOINT)
                if rule is not None
                else self.graph.refs(group, direction, ENDPOINT)
            )
            if endpoints:
                for endpoint in endpoints:
                    headers = headers | prefix_list(endpoint.urn, protocols)
            else:  # a prefix list the graph does not define: it may hold any address
                headers = headers | every_address(protocols)
        peers = (
            values.get("referencedSecurityGroupId")
            or values.get("sourceSecurityGroupId")
            or values.get("securityGroups")
            or values.get("self")
        )
        if peers:
            # Members of another group may sit anywhere the routing reaches (this VPC, a peered
            # one): any address, and the route table decides.
            headers = headers | every_address(protocols)
        return headers

    # --- subnets, route tables, network ACLs
    def vpc_of(self, resource: Resource) -> Resource | None:
        return self.graph.ref(resource, "vpcId", VPC)

    def subnets_of(self, vpc: Resource) -> list[Resource]:
        return [s for s in self.graph.users(vpc, SUBNET) if self.vpc_of(s) is vpc]

    def vpc_cidrs(self, vpc: Resource) -> list[str]:
        return _strings(vpc.inputs.get("cidrBlock")) + _strings(vpc.inputs.get("ipv6CidrBlock"))

    def route_table(self, subnet: Resource) -> Resource | None:
        """The subnet's route table: its explicit association, else the VPC's main table
        (None: the main table AWS creates, with the local route only)."""
        for association in self.graph.users(subnet, ASSOCIATION):
            if self.graph.ref(association, "subnetId") is subnet:
                return self.graph.ref(association, "routeTableId")
        vpc = self.vpc_of(subnet)
        for main in self.graph.of_type(MAIN_ASSOCIATION):
            if self.graph.ref(main, "vpcId") is vpc:
                return self.graph.ref(main, "routeTableId")
        for table in self.graph.of_type(DEFAULT_ROUTE_TABLE):
            if vpc is not None and vpc.urn in table.deps.get("defaultRouteTableId", ()):
                return table
        return None

    def routes(self, table: Resource | None, vpc: Resource) -> list[tuple[Headers, str, Any]]:
        """(destination, target kind, target) of every route: the local route, routes on
        their own, inline routes, and gateway endpoints' prefix lists."""
        everything = [(p, *PORTS) for p in PROTOCOLS]
        found: list[tuple[Headers, str, Any]] = [
            (destinations(self.vpc_cidrs(vpc), everything), "local", vpc)
        ]
        if table is None:
            return found
        for route in self.graph.users(table, ROUTE):
            if self.graph.ref(route, "routeTableId") is table:
                found.append(self._route(route.inputs, route, everything))
        for inline in table.inputs.get("routes") or []:
            if isinstance(inline, dict):
                found.append(self._route(inline, table, everything, prop="routes"))
        for endpoint in self.graph.users(table, ENDPOINT):
            if table.urn in endpoint.deps.get("routeTableIds", ()):
                found.append((prefix_list(endpoint.urn, everything), "endpoint", endpoint))
        return found

    def _route(
        self,
        values: Mapping[str, Any],
        owner: Resource,
        everything: list[tuple[str, int, int]],
        prop: str | None = None,
    ) -> tuple[Headers, str, Any]:
        cidrs = _strings(values.get("destinationCidrBlock") or values.get("cidrBlock"))
        cidrs += _strings(values.get("destinationIpv6CidrBlock") or values.get("ipv6CidrBlock"))
        headers = destinations(cidrs, everything)
        listed = values.get("destinationPrefixListId")
        if listed:
            endpoints = self.graph.refs(owner, prop or "destinationPrefixListId", ENDPOINT)
            headers = headers | (
                Headers.of(b for e in endpoints for b in prefix_list(e.urn, everything).boxes)
                if endpoints
                else every_address(everything)
            )

        def dep(key: str, *types: str) -> Resource | None:
            return self.graph.ref(owner, prop or key, *types)

        if values.get("gatewayId") == "local":
            return headers, "local", None
        if values.get("gatewayId"):
            target = dep("gatewayId", IGW, VGW)
            if target is not None and target.type == VGW:
                return headers, "VPN gateway", target
            return headers, "internet gateway", target
        if values.get("egressOnlyGatewayId"):
            return headers, "egress-only internet gateway", dep("egressOnlyGatewayId", EIGW)
        if values.get("natGatewayId"):
            return headers, "NAT gateway", dep("natGatewayId", NAT)
        if values.get("transitGatewayId"):
            return headers, "transit gateway", dep("transitGatewayId")
        if values.get("vpcPeeringConnectionId"):
            return headers, "peering connection", dep("vpcPeeringConnectionId", PEERING)
        if values.get("vpcEndpointId"):
            firewall = dep("vpcEndpointId", FIREWALL)
            if firewall is not None:
                return headers, "firewall", firewall
            endpoint = dep("vpcEndpointId", ENDPOINT)
            return headers, "unmodelled", endpoint or owner
        # network interface, instance, carrier or local gateway, core network, or nothing known
        return headers, "unmodelled", owner

    def nacl_egress(self, subnet: Resource) -> tuple[Headers, Resource | None]:
        """What the subnet's network ACL lets out: rules by number, first match wins, then
        deny. No ACL of its own: the VPC's default ACL, which allows everything."""
        acl = None
        for association in self.graph.users(subnet, NACL_ASSOCIATION):
            if self.graph.ref(association, "subnetId") is subnet:
                acl = self.graph.ref(association, "networkAclId")
        for candidate in self.graph.users(subnet, NACL, DEFAULT_NACL):
            if subnet.urn in candidate.deps.get("subnetIds", ()):
                acl = candidate
        if acl is None:
            return EVERYTHING, None
        rules: list[tuple[int, bool, Headers]] = []
        for entry in acl.inputs.get("egress") or []:
            if isinstance(entry, dict):
                rules.append(self._acl_rule(entry, "ruleNo", "action"))
        for rule in self.graph.users(acl, NACL_RULE):
            if self.graph.ref(rule, "networkAclId") is acl and rule.inputs.get("egress"):
                rules.append(self._acl_rule(rule.inputs, "ruleNumber", "ruleAction"))
        allowed, decided = Headers(), Headers()
        for _, allow, headers in sorted(rules, key=lambda r: r[0]):
            fresh = headers - decided
            if allow:
                allowed = allowed | fresh
            decided = decided | headers
        return allowed, acl

    def _acl_rule(
        self, values: Mapping[str, Any], number: str, action: str
    ) -> tuple[int, bool, Headers]:
        protocols = protocol_set(
            values.get("protocol"), values.get("fromPort"), values.get("toPort")
        )
        cidrs = _strings(values.get("cidrBlock")) + _strings(values.get("ipv6CidrBlock"))
        return (
            int(values.get(number) or 0),
            str(values.get(action)).lower() == "allow",
            destinations(cidrs, protocols),
        )

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
            for c in _strings(s.inputs.get("cidrBlock"))
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
            loose = sorted(d for d in _strings(domains) if not aws_service_name(d))
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
