"""No hidden globals in pricing (issue 15): list prices, hours a month, the catalog's hash and
the throughput model's data come from the catalog a plan is priced with, not from the bundled
one whatever was loaded."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import yaml

from planner import costing
from planner.catalog import DATA_DIR, Catalog, default_catalog, load_catalog
from planner.catalog.aws_prices import list_price, price_figure
from planner.catalog.vocabulary import Pricing
from planner.costing.throughput_data import throughput_data
from planner.planning.build import catalog_sha256

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
    egress = costing.pieces_cost(custom, ("egress_network",)).monthly_usd
    assert egress != costing.pieces_cost(bundled, ("egress_network",)).monthly_usd
    assert costing.component_monthly_usd(custom, ("egress_network",), []) == egress


def test_the_catalog_hash_is_the_catalog_s_own(tmp_path: Path) -> None:
    bundled = default_catalog()
    same = load_catalog(shutil.copytree(DATA_DIR, tmp_path / "same"))
    custom = copied_catalog(tmp_path, hours=700, nat_usd_per_hour=0.1)
    assert catalog_sha256(same) == catalog_sha256(bundled)
    assert catalog_sha256(custom) != catalog_sha256(bundled)


def throughput_catalog(
    tmp_path: Path, bandwidth_efficiency: float, runtime_reserve_gb: float
) -> Catalog:
    """A copy of the bundled data with another fitted bandwidth efficiency and engine reserve
    (throughput.yaml)."""
    directory = tmp_path / "throughput-data"
    shutil.copytree(DATA_DIR, directory)
    path = directory / "throughput.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["fit"]["bandwidth_efficiency"]["value"] = bandwidth_efficiency
    data["settings"]["runtime_reserve_gb"]["value"] = runtime_reserve_gb
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_catalog(directory)


def test_throughput_comes_from_the_catalog_given(tmp_path: Path) -> None:
    """A unit's memory fit, KV cache and throughput use the throughput data of the catalog's
    own directory: a global reading the bundled files would give the bundled answers here."""
    bundled = default_catalog()
    same = load_catalog(shutil.copytree(DATA_DIR, tmp_path / "same"))
    custom = throughput_catalog(tmp_path, bandwidth_efficiency=0.4, runtime_reserve_gb=6)
    assert throughput_data(custom).fit.bandwidth_efficiency.value == 0.4
    settings = costing.Settings(
        pricing=Pricing.on_demand,
        utilization=0.4,
        memory_reserve=0.1,
        request_input_tokens=2000,
        request_output_tokens=400,
        price_date=date.fromisoformat(bundled.defaults.price_date.value),
        user_output_tps=30.0,
    )

    def served(catalog: Catalog) -> tuple[float, dict[int, tuple[float, float]]]:
        """The usable memory a GPU, and by tensor-parallel group the KV cache and throughput."""
        model, instance = catalog.models["llama-3.3-70b"], catalog.instances["p5.48xlarge"]
        fit = costing.memory_fit(catalog, model, instance, "fp8", 0.1)
        assert fit is not None
        units = costing.unit_options(catalog, model, instance, settings)
        return fit.usable_gb_per_gpu, {
            unit.fit.gpus_per_replica: (
                unit.kv_tokens_per_replica,
                costing.unit_throughput(unit, 2000, 400, 30.0).output_tps,
            )
            for unit in units
        }

    assert served(same) == served(bundled)
    usable, groups = served(custom)
    theirs, their_groups = served(bundled)
    assert usable == theirs - 4  # 4 GB more of the engine's reserve on every GPU
    assert groups.keys() & their_groups.keys()
    for group in groups.keys() & their_groups.keys():
        assert groups[group][0] < their_groups[group][0]  # less KV cache
        assert groups[group][1] < their_groups[group][1]  # and less throughput


def test_the_stack_s_boundaries_cost_what_the_plan_says(project: Path) -> None:
    """The egress and PrivateLink components report the cost the plan prices for them: the
    boundary's pieces and the connections each makes in consumer VPCs (one costing, not two
    lists kept equal by a test)."""
    from planner.graph.offline import run_program
    from planner.planfile import read_plan
    from tests.test_stacks import plan_project

    config = plan_project(project, None)
    plan = read_plan(project / "plans" / "dev" / "plan.json")
    components = run_program(project, "dev", config).outputs["component_monthly_cost_usd"]

    def connected(kind: str) -> float:
        return sum(c.monthly_cost_usd for c in plan.connections if c.kind == kind)

    assert any(c.kind == "egress" for c in plan.connections)
    egress = plan.totals.egress_network_usd + connected("egress")
    assert components["api-egress"] == round(egress, 2)
    link = next(a for a in plan.providers if a.private_link)
    own = costing.pieces_cost(default_catalog(), ("private_link",)).monthly_usd
    has_own = any(c for w in plan.workloads if w.provider == link.provider for c in w.consumers
                  if not isinstance(c, str) and c.vpc is None and c.account is None)  # fmt: skip
    expected = (own if has_own else 0.0) + connected("private_link")
    assert components[f"{link.provider}-link"] == round(expected, 2)
