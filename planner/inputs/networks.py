"""The stack's own network ranges, allocated at plan time: one per pool, and the API networks
(the PrivateLink network, the egress network) when the plan needs them.

No two ranges overlap, none overlaps a consumer's range, and all stay inside the space the
workloads file names (`network.space`). Ranges are handed out in order from a starting range
(`network.pools`, `network.apis`), in steps of its size, skipping taken ones and wrapping once
round the space; when the space is full, planning stops with the count it ran short of.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

IPv4Network = ipaddress.IPv4Network

# The API networks, in the order their places are kept (both are kept, where they fit, whether
# or not the plan needs them, so adding a PrivateLink provider never moves the egress network).
API_NETWORKS = ("private_link", "egress")

API_WHAT = "the API networks"
POOLS_WHAT = "the pools"

# Today's ranges: pools 10.100.0.0/16 upwards, the API networks 10.250.0.0/16 and the next.
DEFAULT_SPACE = "10.0.0.0/8"
DEFAULT_POOLS = "10.100.0.0/16"
DEFAULT_APIS = "10.250.0.0/16"


class OutOfRanges(Exception):
    """The space has fewer free ranges than the plan needs."""

    def __init__(self, what: str, needed: int, free: int, size: int, space: str) -> None:
        self.what, self.needed, self.free, self.size, self.space = what, needed, free, size, space
        super().__init__(
            f"ran out of /{size} ranges in {space} for {what}: {needed} needed, {free} free"
        )


@dataclass(frozen=True)
class Allocation:
    pools: list[str]
    # "private_link" / "egress" -> range, only the ones asked for.
    networks: dict[str, str]


Span = tuple[int, int]  # first and last address of a range, as integers


def _span(network: IPv4Network) -> Span:
    return int(network.network_address), int(network.broadcast_address)


def _blocked(space: IPv4Network, size: int, taken: list[Span]) -> set[int]:
    """The slots of `size` addresses in the space that a taken range touches."""
    first, count = int(space.network_address), space.num_addresses // size
    blocked: set[int] = set()
    for low, high in taken:  # clipped to the space: a range outside it blocks nothing
        low_slot = max((low - first) // size, 0)
        high_slot = min((high - first) // size, count - 1)
        blocked.update(range(low_slot, high_slot + 1))
    return blocked


def _free(space: IPv4Network, start: IPv4Network, taken: list[Span]) -> Iterator[IPv4Network]:
    """The ranges of start's size in the space that overlap nothing taken: from start upwards,
    then from the space's bottom up to start."""
    size, first = start.num_addresses, int(space.network_address)
    count = space.num_addresses // size
    blocked = _blocked(space, size, taken)
    offset = (int(start.network_address) - first) // size
    for step in range(count):
        slot = (offset + step) % count
        if slot not in blocked:
            yield IPv4Network((first + slot * size, start.prefixlen))


def _consumer_spans(consumers: Iterable[str]) -> list[Span]:
    spans = []
    for cidr in consumers:
        network = ipaddress.ip_network(cidr)
        if isinstance(network, IPv4Network):  # an IPv6 range takes no IPv4 address
            spans.append(_span(network))
    return spans


def _take(
    what: str, count: int, space: IPv4Network, start: IPv4Network, taken: list[Span]
) -> list[IPv4Network]:
    free = _free(space, start, taken)
    found = list(itertools.islice(free, count))
    if len(found) < count:
        raise OutOfRanges(what, count, len(found), start.prefixlen, str(space))
    taken.extend(_span(network) for network in found)
    return found


def _api_places(outer: IPv4Network, api_start: str, taken: list[Span]) -> list[IPv4Network]:
    """The API networks' places, in API_NETWORKS order, as many as fit (taken)."""
    places = list(itertools.islice(_free(outer, IPv4Network(api_start), taken), len(API_NETWORKS)))
    taken.extend(_span(network) for network in places)
    return places


def allocate(
    pools: int,
    needs: Sequence[str],
    consumers: Iterable[str],
    space: str = DEFAULT_SPACE,
    pool_start: str = DEFAULT_POOLS,
    api_start: str = DEFAULT_APIS,
) -> Allocation:
    """Ranges for `pools` pools and the API networks in `needs` (names of API_NETWORKS), none
    overlapping another or a consumer's range. Raises OutOfRanges naming what ran out."""
    outer = IPv4Network(space)
    taken = _consumer_spans(consumers)
    api = _api_places(outer, api_start, taken)
    wanted = max((API_NETWORKS.index(name) + 1 for name in needs), default=0)
    if wanted > len(api):
        raise OutOfRanges(API_WHAT, wanted, len(api), IPv4Network(api_start).prefixlen, space)
    found = _take(POOLS_WHAT, pools, outer, IPv4Network(pool_start), taken)
    return Allocation(
        pools=[str(network) for network in found],
        networks={
            name: str(api[index]) for index, name in enumerate(API_NETWORKS) if name in needs
        },
    )


def pool_limit(
    consumers: Iterable[str],
    space: str = DEFAULT_SPACE,
    pool_start: str = DEFAULT_POOLS,
    api_start: str = DEFAULT_APIS,
) -> int:
    """The most pools the space holds beside the consumers' ranges and the API networks' places:
    allocate(n, ...) succeeds for every n up to it (when the API networks it needs fit)."""
    outer = IPv4Network(space)
    taken = _consumer_spans(consumers)
    _api_places(outer, api_start, taken)
    size = IPv4Network(pool_start).num_addresses
    return outer.num_addresses // size - len(_blocked(outer, size, taken))
