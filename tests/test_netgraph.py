"""The header-set algebra and longest-prefix match the verifier's fixpoint rests on, checked
point by point against their definitions for random sets and routes."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from planner.graph.resources import Graph, Resource
from planner.verification.aws_network import Network, _longest_prefix, aws_service_name
from planner.verification.aws_types import (
    DNS_ASSOCIATION,
    DNS_CONFIG,
    DNS_DOMAIN_LIST,
    DNS_RULE,
    DNS_RULE_GROUP,
    VPC,
)
from planner.verification.headers import PROTOCOLS, Box, Headers, destinations

SMALL = 255  # addresses and ports from a small space, so random sets overlap


def boxes() -> st.SearchStrategy[Box]:
    def make(proto: str, a: int, b: int, c: int, d: int) -> Box:
        return Box("ipv4", proto, min(a, b), max(a, b), min(c, d), max(c, d))

    value = st.integers(0, SMALL)
    return st.builds(make, st.sampled_from(PROTOCOLS[:2]), value, value, value, value)


def headers() -> st.SearchStrategy[Headers]:
    return st.lists(boxes(), max_size=4).map(Headers.of)


def contains(h: Headers, proto: str, address: int, port: int) -> bool:
    return any(
        b.protocol == proto and b.low <= address <= b.high and b.port_low <= port <= b.port_high
        for b in h.boxes
    )


points = st.tuples(st.sampled_from(PROTOCOLS[:2]), st.integers(0, SMALL), st.integers(0, SMALL))


@given(headers(), headers(), st.lists(points, min_size=1, max_size=20))
def test_difference_union_and_intersection_hold_point_by_point(
    a: Headers, b: Headers, samples: list[tuple[str, int, int]]
) -> None:
    for point in samples:
        in_a, in_b = contains(a, *point), contains(b, *point)
        assert contains(a - b, *point) == (in_a and not in_b)
        assert contains(a & b, *point) == (in_a and in_b)
        assert contains(a | b, *point) == (in_a or in_b)


# Inside 10.0.0.0/16 and at lengths 8-24, so that random prefixes nest and overlap.
addresses = st.integers(10 << 24, (10 << 24) + 2**16 - 1)
prefixes = st.tuples(addresses, st.integers(8, 24)).map(
    lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
)


@given(st.lists(prefixes, min_size=1, max_size=6, unique=True), addresses)
def test_each_address_goes_to_its_longest_matching_prefix(cidrs: list[str], address: int) -> None:
    everything = [(p, 0, 65535) for p in PROTOCOLS]
    routes = [(destinations([c], everything), "route", c) for c in cidrs]
    matching = [c for c in cidrs if ipaddress.ip_address(address) in ipaddress.ip_network(c)]
    chosen = [
        target
        for _, _, target, region in _longest_prefix(routes)
        if contains(region, "tcp", address, 443)
    ]
    if not matching:
        assert chosen == []
    else:
        best = max(matching, key=lambda c: ipaddress.ip_network(c).prefixlen)
        assert chosen == [best]


# ----------------------------------------------------------------------------- DNS

STACK = "urn:pulumi:dev::p::t"


def _r(type_: str, name: str, inputs: dict[str, Any], **deps: Resource) -> Resource:
    return Resource(
        f"{STACK}${type_}::{name}", type_, name, inputs, {k: (v.urn,) for k, v in deps.items()}
    )


def _resolver(
    groups: list[tuple[int, list[tuple[int, str, list[str]]]]], **vpc: Any
) -> tuple[Network, Resource]:
    """A VPC with rule groups (association priority, [(rule priority, action, domains)])."""
    resources = [_r(VPC, "vpc", {"cidrBlock": "10.0.0.0/16", **vpc})]
    for g, (priority, rules) in enumerate(groups):
        group = _r(DNS_RULE_GROUP, f"g{g}", {})
        resources += [group, _r(DNS_ASSOCIATION, f"a{g}", {"priority": priority},
                                vpcId=resources[0], firewallRuleGroupId=group)]  # fmt: skip
        for n, (rule_priority, action, domains) in enumerate(rules):
            listed = _r(DNS_DOMAIN_LIST, f"l{g}-{n}", {"domains": domains})
            rule = _r(DNS_RULE, f"r{g}-{n}", {"priority": rule_priority, "action": action},
                      firewallRuleGroupId=group, firewallDomainListId=listed)  # fmt: skip
            resources += [listed, rule]
    graph = Graph.of(resources)
    return Network(graph), resources[0]


SSM = ["ssm.us-east-1.amazonaws.com"]


def test_the_first_matching_rule_decides() -> None:
    closed = [(101, [(100, "ALLOW", SSM), (200, "BLOCK", ["*"])])]
    network, vpc = _resolver(closed)
    assert network.dns_way_out(vpc) is None
    # Block-all first: nothing is answered, which shuts the way (and breaks the endpoints).
    network, vpc = _resolver([(101, [(100, "BLOCK", ["*"]), (200, "ALLOW", ["*"])])])
    assert network.dns_way_out(vpc) is None
    # Allow-all first: every name is looked up.
    network, vpc = _resolver([(101, [(50, "ALLOW", ["*"]), (100, "BLOCK", ["*"])])])
    found = network.dns_way_out(vpc)
    assert found is not None and "lets the resolver look up *" in found[0]
    assert found[1].name == "r0-0"
    # An earlier rule group (lower association priority) lets a stranger's name through.
    network, vpc = _resolver(
        [(200, [(100, "BLOCK", ["*"])]), (101, [(100, "ALERT", ["example.com"])])]
    )
    found = network.dns_way_out(vpc)
    assert found is not None and "example.com (ALERT)" in found[0]
    # No block-all rule: names not listed are looked up.
    network, vpc = _resolver([(101, [(100, "ALLOW", SSM)])])
    found = network.dns_way_out(vpc)
    assert found is not None and "no DNS Firewall rule blocks `*`" in found[0]
    # No association at all, and a VPC with no resolver.
    network, vpc = _resolver([])
    found = network.dns_way_out(vpc)
    assert found is not None and "no DNS Firewall rule group is associated" in found[0]
    network, vpc = _resolver([], enableDnsSupport=False)
    assert network.dns_way_out(vpc) is None


def test_failing_open_is_a_way_out() -> None:
    network, vpc = _resolver([(101, [(100, "ALLOW", SSM), (200, "BLOCK", ["*"])])])
    config = _r(DNS_CONFIG, "c", {"firewallFailOpen": "ENABLED"}, resourceId=vpc)
    network = Network(Graph({**network.graph.resources, config.urn: config}))
    found = network.dns_way_out(vpc)
    assert found is not None and "fails open" in found[0] and found[1] is config


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".compute.internal", ".ec2.internal")


@given(st.lists(labels, min_size=1, max_size=4), st.sampled_from(["com", "net", "io", "internal"]))
def test_no_name_outside_aws_domains_is_an_aws_service_name(parts: list[str], tld: str) -> None:
    """A stranger's name, or any `*`-wildcard over one, never counts as an AWS service name;
    nor does `*` without its dot (it would match evilamazonaws.com)."""
    name = ".".join([*parts, tld])
    if name.endswith(AWS_SUFFIXES) or name == "ec2.internal":
        return
    assert not aws_service_name(name)
    assert not aws_service_name("*." + name)
    assert not aws_service_name("*" + name)
    assert not aws_service_name("*amazonaws.com") and not aws_service_name("*.amazonaws.com")
    assert aws_service_name(f"{parts[0]}.us-east-1.amazonaws.com")
