"""AWS list prices of the resource types the stacks create (the catalog's aws_prices.yaml).

Every price is read from the catalog it is given, with that catalog's hours a month: a plan, its
preview and its stack priced from one catalog agree, whichever directory it was read from."""

from __future__ import annotations

from dataclasses import dataclass

from planner import formulas
from planner.catalog import Catalog


@dataclass(frozen=True)
class ListPrice:
    monthly_usd: float
    quantity: str
    usage: str | None
    source: str


def list_price(catalog: Catalog, token: str, count: int, what: str = "") -> ListPrice | None:
    """The monthly list price of `count` units of a resource type; None if it has no entry."""
    entry = catalog.aws_prices.get(token)
    if entry is None:
        return None
    what = what or str(count)
    if "usd_per_hour" in entry:
        hours = catalog.pricing.hours_per_month.value
        monthly = count * float(entry["usd_per_hour"]) * hours
        quantity = formulas.hourly_quantity(count, entry["usd_per_hour"], hours, what)
    else:
        monthly = count * float(entry["usd_per_month"])
        quantity = formulas.monthly_quantity(count, float(entry["usd_per_month"]), what)
    return ListPrice(
        round(monthly, 2), quantity, entry.get("usage"), f"{entry['source']}, {entry['date']}"
    )


def price_figure(catalog: Catalog, token: str) -> tuple[float, str, str, str] | None:
    """A resource type's price as a plan figure: value, unit, source, date; None if unpriced."""
    entry = catalog.aws_prices.get(token)
    if entry is None:
        return None
    if "usd_per_hour" in entry:
        value, unit = float(entry["usd_per_hour"]), f"USD per hour, {entry['unit']}"
    else:
        value, unit = float(entry["usd_per_month"]), f"USD per month, {entry['unit']}"
    return value, unit, str(entry["source"]), str(entry["date"])
