"""What each component of a stack's AWS network lets through, read from the resource graph:
security groups (egress and ingress rules, inline or on their own), a subnet's network ACL and
route table, a route table's routes, a VPC's subnets and address ranges. The network model
(planner.verification.aws_network) follows packets across them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from planner.graph.resources import Graph, Resource, Unknown
from planner.verification.aws_types import (
    ASSOCIATION,
    DEFAULT_NACL,
    DEFAULT_ROUTE_TABLE,
    EIGW,
    ENDPOINT,
    FIREWALL,
    IGW,
    MAIN_ASSOCIATION,
    NACL,
    NACL_ASSOCIATION,
    NACL_RULE,
    NAT,
    PEERING,
    ROUTE,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE,
    SUBNET,
    VGW,
    VPC,
)
from planner.verification.headers import (
    EVERYTHING,
    PORTS,
    PROTOCOLS,
    Headers,
    destinations,
    every_address,
    prefix_list,
    protocol_set,
)
from planner.verification.values import items, strings


@dataclass
class Components:
    """What each component lets through. A value known only after `pulumi up` where an address
    should be (a route's destination, a security group's or an allowing network ACL rule's
    CIDR) is read as every address (a denying ACL rule's, as none); with `known_only`, the other
    way: a way out found in the first reading and not in the second rests on such values, and
    the perimeter reports it UNKNOWN, never a pass."""

    graph: Graph
    known_only: bool = False

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
        headers = self._addresses(
            [
                (values.get("cidrIpv4"), "ipv4"),
                (values.get("cidrIpv6"), "ipv6"),
                (values.get("cidrBlocks"), "ipv4"),
                (values.get("ipv6CidrBlocks"), "ipv6"),
            ],
            protocols,
        )
        lists = strings(values.get("prefixListId")) + strings(values.get("prefixListIds"))
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

    def _addresses(
        self,
        fields: list[tuple[Any, str]],
        protocols: list[tuple[str, int, int]],
        every: bool | None = None,
    ) -> Headers:
        """The addresses these fields (each a CIDR or a list of them, of one address family)
        name, to these protocols: one known only after `pulumi up` (the field or an item) is
        every address of its family (as a /0 route is, so it takes nothing from a more specific
        route), or none with `known_only` (or as `every` says); an Unknown is never iterated."""
        every = not self.known_only if every is None else every
        headers = Headers()
        for value, family in fields:
            headers = headers | destinations(strings(value), protocols)
            if every and any(isinstance(i, Unknown) for i in items(value)):
                headers = headers | every_address(protocols, (family,))
        return headers

    # --- subnets, route tables, network ACLs
    def vpc_of(self, resource: Resource) -> Resource | None:
        return self.graph.ref(resource, "vpcId", VPC)

    def subnets_of(self, vpc: Resource) -> list[Resource]:
        return [s for s in self.graph.users(vpc, SUBNET) if self.vpc_of(s) is vpc]

    def vpc_cidrs(self, vpc: Resource) -> list[str]:
        return strings(vpc.inputs.get("cidrBlock")) + strings(vpc.inputs.get("ipv6CidrBlock"))

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
        headers = self._addresses(
            [
                (values.get("destinationCidrBlock") or values.get("cidrBlock"), "ipv4"),
                (values.get("destinationIpv6CidrBlock") or values.get("ipv6CidrBlock"), "ipv6"),
            ],
            everything,
        )
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
        allow = str(values.get(action)).lower() == "allow"
        # An address known only after `pulumi up` opens the network in the first reading (an
        # allow rule for every address, a deny rule for none) and shuts it with `known_only`.
        headers = self._addresses(
            [(values.get("cidrBlock"), "ipv4"), (values.get("ipv6CidrBlock"), "ipv6")],
            protocols,
            every=allow != self.known_only,
        )
        return int(values.get(number) or 0), allow, headers
