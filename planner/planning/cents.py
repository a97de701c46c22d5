"""Splitting whole cents so the parts add up to the total exactly."""

from __future__ import annotations

import math


def allocate(total_cents: int, weights: list[float]) -> list[int]:
    """Split whole cents in proportion to the weights, largest remainders first: the parts add
    up to the total exactly."""
    if not weights or sum(weights) <= 0:
        weights = [1.0] * len(weights)
    scale = sum(weights)
    shares = [total_cents * weight / scale for weight in weights]
    cents = [math.floor(share) for share in shares]
    order = sorted(range(len(shares)), key=lambda i: (cents[i] - shares[i], i))
    for i in order[: total_cents - sum(cents)]:
        cents[i] += 1
    return cents
