"""AWS list prices of the resource types the stacks create (planner/data/aws_prices.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from planner.catalog import DATA_DIR, default_catalog


@dataclass(frozen=True)
class ListPrice:
    monthly_usd: float
    quantity: str
    usage: str | None
    source: str


@cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DATA_DIR / "aws_prices.yaml").read_text())
    return loaded


def hours_per_month() -> float:
    """The catalog's one hours-per-month figure (pricing.yaml), as the plans use."""
    return default_catalog().pricing.hours_per_month.value


def list_price(token: str, count: int, what: str = "") -> ListPrice | None:
    """The monthly list price of `count` units of a resource type; None if it has no entry."""
    entry = _data()["resources"].get(token)
    if entry is None:
        return None
    what = what or str(count)
    if "usd_per_hour" in entry:
        hours = hours_per_month()
        monthly = count * float(entry["usd_per_hour"]) * hours
        quantity = f"{count} x {entry['usd_per_hour']} USD/h x {hours:.0f} h ({what})"
    else:
        monthly = count * float(entry["usd_per_month"])
        quantity = f"{count} x {entry['usd_per_month']:.2f} USD/month ({what})"
    return ListPrice(
        round(monthly, 2), quantity, entry.get("usage"), f"{entry['source']}, {entry['date']}"
    )


def price_figure(token: str) -> tuple[float, str, str, str] | None:
    """A resource type's price as a plan figure: value, unit, source, date; None if unpriced."""
    entry = _data()["resources"].get(token)
    if entry is None:
        return None
    if "usd_per_hour" in entry:
        value, unit = float(entry["usd_per_hour"]), f"USD per hour, {entry['unit']}"
    else:
        value, unit = float(entry["usd_per_month"]), f"USD per month, {entry['unit']}"
    return value, unit, str(entry["source"]), str(entry["date"])
