"""Header sets: the packets a network component lets through, as boxes of (address family,
protocol, address range, port range), with intersection, union and difference. The AWS network
model (planner.verification.aws_network) carries them from an interface to where its packets go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

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


def every_address(
    protocols: list[tuple[str, int, int]], families: tuple[str, ...] = ("ipv4", "ipv6")
) -> Headers:
    """Every address of these families (both: IPv4 and IPv6), to these protocols."""
    spans = {"ipv4": V4, "ipv6": V6}
    return Headers.of(
        Box(family, p, *spans[family], pl, ph) for family in families for p, pl, ph in protocols
    )


def prefix_list(key: str, protocols: list[tuple[str, int, int]]) -> Headers:
    return Headers.of(Box(f"pl:{key}", p, 0, 0, pl, ph) for p, pl, ph in protocols)


def within(cidr: str, outer: str) -> bool:
    """Every address of `cidr` lies in `outer` (False when either is not a CIDR)."""
    try:
        family, low, high = cidr_box(cidr)
        family2, low2, high2 = cidr_box(outer)
    except ValueError:
        return False
    return family == family2 and low2 <= low and high <= high2
