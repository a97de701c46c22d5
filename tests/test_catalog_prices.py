"""No hidden globals in pricing (issue 15): list prices, hours a month and the catalog's hash
come from the catalog a plan is priced with, not from the bundled one whatever was loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from planner import costs
from planner.aws_prices import list_price, price_figure
from planner.catalog import DATA_DIR, Catalog, default_catalog, load_catalog
from planner.plan import catalog_sha256
from stacks.common import fixed_monthly_usd

NAT = "aws:ec2/natGateway:NatGateway"


def copied_catalog(tmp_path: Path, hours: float, nat_usd_per_hour: float) -> Catalog:
    """A copy of the bundled data with another hours-a-month and NAT gateway price."""
    directory = tmp_path / "data"
    shutil.copytree(DATA_DIR, directory)
    pricing = yaml.safe_load((directory / "pricing.yaml").read_text(encoding="utf-8"))
    pricing["hours_per_month"]["value"] = hours
    (directory / "pricing.yaml").write_text(yaml.safe_dump(pricing), encoding="utf-8")
    prices = yaml.safe_load((directory / "aws_prices.yaml").read_text(encoding="utf-8"))
    prices["resources"][NAT]["usd_per_hour"] = nat_usd_per_hour
    (directory / "aws_prices.yaml").write_text(yaml.safe_dump(prices), encoding="utf-8")
    return load_catalog(directory)


def test_list_prices_come_from_the_catalog_given(tmp_path: Path) -> None:
    bundled = default_catalog()
    custom = copied_catalog(tmp_path, hours=700, nat_usd_per_hour=0.1)
    mine, theirs = list_price(custom, NAT, 2), list_price(bundled, NAT, 2)
    assert mine is not None and theirs is not None
    assert mine.monthly_usd == round(2 * 0.1 * 700, 2) != theirs.monthly_usd
    assert "x 700 h" in mine.quantity
    figure = price_figure(custom, NAT)
    assert figure is not None and figure[0] == 0.1
    # The plan's egress pieces and the stack's boundary price from the same catalog.
    egress = costs.pieces_cost(custom, ("egress_network",)).monthly_usd
    assert egress != costs.pieces_cost(bundled, ("egress_network",)).monthly_usd
    assert fixed_monthly_usd(custom, [(NAT, 2)]) == mine.monthly_usd


def test_the_catalog_hash_is_the_catalog_s_own(tmp_path: Path) -> None:
    bundled = default_catalog()
    same = load_catalog(shutil.copytree(DATA_DIR, tmp_path / "same"))
    custom = copied_catalog(tmp_path, hours=700, nat_usd_per_hour=0.1)
    assert catalog_sha256(same) == catalog_sha256(bundled)
    assert catalog_sha256(custom) != catalog_sha256(bundled)
