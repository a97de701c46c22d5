"""Break-even: the monthly volumes at which a self-hosted pool (a staircase of units) and an API
(a line) change places as the cheaper."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.costing.settings import EPSILON


def break_even_tokens(
    api_usd_per_token: float,
    unit_monthly_usd: float,
    unit_capacity_tokens: float,
    min_units: int,
    api_fixed_usd: float = 0.0,
    own_fixed_usd: float = 0.0,
) -> float | None:
    """Smallest monthly volume at which self-hosting costs no more than the API.

    The API costs Fa + a*v; self-hosting costs Fs + c*max(m, ceil(v/C)). Within the first m units
    self-hosting is flat, so the crossing is at v = (Fs + m*c - Fa)/a if that is at most m*C.
    Past them each unit adds c and the API a*C: if a*C < c the API only pulls ahead, so there
    is no break-even; otherwise the first unit k whose end the API reaches, k >= (Fs - Fa) /
    (a*C - c), holds the crossing.
    """
    a, c, capacity, m = api_usd_per_token, unit_monthly_usd, unit_capacity_tokens, min_units
    if a <= 0:
        return None
    first = (own_fixed_usd + m * c - api_fixed_usd) / a
    # first <= m*C + EPSILON, computed as `crossings` computes it (self-hosted minus API at the
    # m-th unit's end, within a*EPSILON): the two forms differed in the last bit at a tie, and
    # one listed a break-even the other did not (hypothesis found fs = 1e-9, a = c = C = 1).
    if own_fixed_usd - api_fixed_usd + m * c - a * m * capacity <= a * EPSILON:
        return max(0.0, first)
    slope = a * capacity - c
    if slope <= 0:
        return None
    k = max(m + 1, math.ceil((own_fixed_usd - api_fixed_usd) / slope - EPSILON))
    return max((k - 1) * capacity, (own_fixed_usd + k * c - api_fixed_usd) / a)


@dataclass(frozen=True, slots=True)
class Crossing:
    """From this monthly volume on (up to the next crossing) `cheaper` costs less: the self-hosted
    pool (it costs no more than the API at the volume itself) or the API (from just above it)."""

    monthly_tokens: float
    cheaper: str  # "self_hosted" or "cloud_api"


def crossings(
    api_usd_per_token: float,
    unit_monthly_usd: float,
    unit_capacity_tokens: float,
    min_units: int,
    max_volume: float,
    api_fixed_usd: float = 0.0,
    own_fixed_usd: float = 0.0,
    limit: int = 100,
) -> tuple[list[Crossing], bool]:
    """Every volume up to max_volume at which the cheaper of self-hosting and the API changes, and
    whether the list stops at `limit` crossings before max_volume.

    Self-hosting is a staircase, Fs + c*max(m, ceil(v/C)); the API a line, Fa + a*v. Within the
    k-th unit's stretch ((k-1)C, kC] (the first m units: [0, mC]) self-hosting is flat and the API
    rises, so self-hosting starts to win inside it at v = (Fs + k*c - Fa)/a when it is not already
    winning; at the next unit it jumps by c, which can hand the API the lead again: right above
    (k-1)C when D(k) = Fs + k*c - Fa - a*(k-1)*C > 0. The first crossing is break_even_tokens.
    """
    a, c, cap, m = api_usd_per_token, unit_monthly_usd, unit_capacity_tokens, min_units
    found: list[Crossing] = []
    if a <= 0 or cap <= 0:
        return found, False
    base = own_fixed_usd - api_fixed_usd
    slope = a * cap - c  # how much a unit's capacity is worth more through the API than the unit

    def end_gap(k: int) -> float:  # self-hosted minus API at the end of the k-th stretch
        return base + k * c - a * k * cap

    def wins_at(k: int) -> float:
        return (base + k * c) / a

    # The stretches in which self-hosting wins somewhere, end_gap(k) <= 0 for k from first to
    # last, with break_even_tokens' tolerance of EPSILON tokens.
    tolerance = a * EPSILON
    last: float = math.inf
    if end_gap(m) <= tolerance:
        first = m
        if slope < 0:
            last = max(m, math.floor((base - tolerance) / slope + EPSILON))
    elif slope > 0:
        first = max(m + 1, math.ceil(base / slope - EPSILON))
    else:
        return found, False
    if (first - 1) * cap > max_volume:
        return found, False
    # The last stretch whose start (where the API may take the lead back) is within max_volume:
    # a crossing exactly at max_volume (10 units' capacity, the horizon of a small workload) is
    # listed too.
    top = math.floor(max_volume / cap + EPSILON) + 1
    k = first
    # The stretch self-hosting first wins in: from its start (volume 0) or inside it.
    start_gap = base + k * c - (0.0 if k == m else a * (k - 1) * cap)
    found.append(Crossing(0.0 if start_gap <= 0 else wins_at(k), "self_hosted"))
    if slope < 0:
        # The API gains a unit at a time: skip the stretches self-hosting wins from their start
        # (end_gap(j) + c <= 0 up to j = calm).
        calm = math.floor((-base - c) / -slope + EPSILON)
        k = max(k, min(calm, int(min(last, top))))
    while k < min(last, top):
        k += 1
        if end_gap(k - 1) + c > EPSILON:  # the API is cheaper right above (k-1)C
            if len(found) + 2 > limit:
                return found, True
            found.append(Crossing((k - 1) * cap, "cloud_api"))
            found.append(Crossing(wins_at(k), "self_hosted"))
        elif slope >= 0:
            break  # self-hosting wins from here on
    if last < math.inf and last * cap < max_volume:
        found.append(Crossing(last * cap, "cloud_api"))  # past it the API wins for good
    return [x for x in found if x.monthly_tokens <= max_volume + EPSILON], False
