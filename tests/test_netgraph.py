"""The header-set algebra and longest-prefix match the verifier's fixpoint rests on, checked
point by point against their definitions for random sets and routes."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from planner.netgraph import PROTOCOLS, Box, Headers, _longest_prefix, destinations

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
