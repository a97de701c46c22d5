"""A pool on a cluster site is priced as its site's bought hardware everywhere (issue 16): the
plan says owned or bought (never an EC2 purchase option), the plan-file checks recompute its
cost from the site's figures the plan records, `planner preview` prices its nodes at the
site's node-month, and its cost range comes from the catalog ranges of the figures the
workloads file leaves to the catalog."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from planner.catalog import Catalog, default_catalog
from planner.catalog.vocabulary import Ownership, Pricing
from planner.errors import PlannerError
from planner.planfile import Plan, plan_problems, read_plan
from tests.test_sites import _plan, _spill_file

Doc = dict[str, Any]
BOUGHT = "cost: {owned: false, hosting_usd_per_node_month: 900, pue: 1.25}"


def _mixed(cost: str = "cost: {owned: true}") -> Plan:
    """notes on a one-node site (owned unless `cost` says otherwise), contracts spilled to
    EC2, each decided alone."""
    return _plan(_spill_file(1).replace("cost: {owned: true}", cost), "per-workload")


def _cluster_index(plan: Plan) -> int:
    return next(i for i, p in enumerate(plan.pools) if p.site == "dc1")


def _ec2_index(plan: Plan) -> int:
    return next(i for i, p in enumerate(plan.pools) if p.site == "aws")


# --- 1. What a cluster pool is paid as.


def test_a_cluster_pool_is_paid_as_its_hardware_and_an_ec2_pool_as_its_option() -> None:
    for cost, paid in (("cost: {owned: true}", Ownership.owned), (BOUGHT, Ownership.bought)):
        plan = _mixed(cost)
        cluster, ec2 = plan.pools[_cluster_index(plan)], plan.pools[_ec2_index(plan)]
        assert (cluster.pricing, ec2.pricing) == (paid, Pricing.on_demand)
        document = json.loads(plan.model_dump_json())
        assert document["pools"][_cluster_index(plan)]["pricing"] == paid.value
        assert document["pools"][_ec2_index(plan)]["pricing"] == "on_demand"
        # Every option on the site says the same; the EC2 options keep the plan's option.
        for workload in plan.workloads:
            for option in workload.answers.volume_economics.options:
                if option.instance_type == "dc1":
                    assert option.pricing == paid
                elif option.instance_type is not None:
                    assert option.pricing == Pricing.on_demand


def test_the_plan_schema_documents_owned_and_bought() -> None:
    schema = Plan.model_json_schema()
    pricing = schema["$defs"]["Pool"]["properties"]["pricing"]
    assert {"$ref": "#/$defs/Ownership"} in pricing["anyOf"]
    assert "on a cluster site" in pricing["description"]
    assert schema["$defs"]["Ownership"]["enum"] == ["owned", "bought"]
    committed = json.loads(Path("schema/plan.schema.json").read_text())
    assert committed["$defs"]["Ownership"] == schema["$defs"]["Ownership"]
    assert committed["$defs"]["SiteNodeCost"] == schema["$defs"]["SiteNodeCost"]


def test_the_site_records_the_figures_its_node_costs() -> None:
    catalog = default_catalog()
    hardware = catalog.pricing.hardware
    plan = _mixed(BOUGHT)
    [site] = plan.sites
    cost = site.cost
    assert cost.from_file == ["pue", "hosting_usd_per_node_month"]
    assert (cost.pue, cost.hosting_usd_per_node_month) == (1.25, 900)
    assert cost.power_kw_per_node == hardware.power_kw.value
    assert cost.capital_usd_per_node == hardware.servers["p5.48xlarge"].capital_usd.value
    assert cost.amortization_months == plan.assumptions["amortization_months"]
    hours = catalog.pricing.hours_per_month.value
    power = cost.power_kw_per_node * 1.25 * cost.usd_per_kwh * hours
    node = power + 900 + cost.capital_usd_per_node / cost.amortization_months
    assert cost.node_monthly_usd == round(node, 2)
    # Each figure is the one the pools' formulas cite.
    for name in ("pue", "power_kw_per_node", "capital_usd_per_node"):
        assert plan.figures[f"site.dc1.{name}"].value == getattr(cost, name)


def test_plan_md_names_a_cluster_pool_and_its_break_even_by_its_hardware() -> None:
    """The pools table says bought (as plan.json does, not the purchase option's `buy`), and a
    workload's break-even line names the site's option owned, not the plan's on_demand."""
    from planner.render.plan_files import plan_markdown

    catalog = default_catalog()
    markdown = plan_markdown(_mixed(BOUGHT), catalog)
    assert "| TP 4 x PP 1 | bought | technical | notes |" in markdown
    text = _spill_file(4)
    faq = (
        "workloads:\n  - name: support\n    task: faq\n    data: internal\n"
        "    monthly_tokens: {input: 40B, output: 8B}\n    consumers: [{cidr: 10.50.0.0/16}]\n"
    )
    plan = _plan(text[: text.index("workloads:")] + faq, "per-workload")
    markdown = plan_markdown(plan, catalog)
    [line] = [line for line in markdown.splitlines() if line.startswith("The first line is")]
    assert ", the second self_hosted/llama-3.1-8b/dc1 (owned); they cross at " in line


def test_crossover_names_a_cluster_option_by_its_hardware(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`planner crossover`, the break-even and the pool's crossover rows price a cluster option
    once, as owned hardware: not four identical rows under EC2's purchase options."""
    from planner.cli import main

    text = _spill_file(4)
    faq = (
        "workloads:\n  - name: support\n    task: faq\n    data: internal\n"
        "    monthly_tokens: {input: 40B, output: 8B}\n    consumers: [{cidr: 10.50.0.0/16}]\n"
    )
    path = tmp_path / "workloads.yaml"
    path.write_text(text[: text.index("workloads:")] + faq)
    assert main(["crossover", str(path)]) == 0
    out = capsys.readouterr().out
    assert "; its nodes are owned hardware, under any purchase option;" in out
    assert "the plan buys on_demand" not in out
    rows = [line for line in out.splitlines() if "bedrock-" in line]
    assert len(rows) == 1 and " owned " in rows[0]
    assert main(["crossover", str(path), "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)["workloads"]
    assert report["pricing"] == "owned"
    assert {row["purchase"] for row in report["rows"]} == {"owned"}
    assert {unit["purchase"] for unit in report["units"]} == {"owned"}
    plan = _plan(path.read_text(), "per-workload")
    economics = plan.workloads[0].answers.volume_economics
    assert economics.break_even is not None
    assert "(at this workload's input/output mix, owned, fixed costs included)" in (
        economics.break_even.explanation
    )


# --- 2. The plan-file checks recompute a cluster pool's cost.


def _problems(plan: Plan, corrupt: Callable[[Doc], None], catalog: Catalog) -> dict[str, str]:
    document = json.loads(plan.model_dump_json())
    broken = copy.deepcopy(document)
    corrupt(broken)
    assert broken != document
    found = plan_problems(Plan.model_validate(broken), catalog)
    return {p.field: p.message for p in found}


def _cluster(plan: Plan) -> str:
    return f"pools.{_cluster_index(plan)}"


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def corrupt(document: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return corrupt


def _add(path: str, amount: float) -> Callable[[Doc], None]:
    def corrupt(document: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = round(node[last] + amount, 2)

    return corrupt


def _both(*corruptions: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def corrupt(document: Doc) -> None:
        for one in corruptions:
            one(document)

    return corrupt


def _field(path: str) -> str:
    """A dotted path as the checks name it: pools.0.nodes -> pools[0].nodes."""
    parts = path.split(".")
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def test_a_clean_cluster_plan_passes_the_checks() -> None:
    catalog = default_catalog()
    for cost in ("cost: {owned: true}", BOUGHT):
        for strategy in ("per-workload", "optimal"):
            text = _spill_file(2).replace("cost: {owned: true}", cost)
            assert plan_problems(_plan(text, strategy), catalog) == []


def test_a_tampered_cluster_pool_cost_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    at = _cluster(plan)
    # The pool and its workload together, so the sums still add up: only the recomputation
    # from the site's figures sees it.
    workload = next(i for i, w in enumerate(plan.workloads) if w.name == "notes")
    found = _problems(
        plan,
        _both(
            _add(f"{at}.monthly_cost_usd", 100),
            _add(f"workloads.{workload}.monthly_cost_usd", 100),
            _add("totals.monthly_cost_usd", 100),
            _add("totals.self_hosted_usd", 100),
            _add("totals.per_workload_usd", 100),
        ),
        catalog,
    )
    assert list(found) == [_field(f"{at}.monthly_cost_usd")]
    assert "node(s) of site dc1 at 2,663.30 USD a node-month (owned)" in next(iter(found.values()))
    assert "nodes and cost disagree" in next(iter(found.values()))


def test_a_wrong_cluster_node_count_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    at = _cluster(plan)
    found = _problems(plan, _set(f"{at}.nodes", 2), catalog)
    assert "nodes and cost disagree" in found[_field(f"{at}.monthly_cost_usd")]
    # More nodes than the site has: the site names it.
    assert found["sites[0].nodes"] == (
        f"1 GPU node(s), but its pools (pools[{_cluster_index(plan)}]) use 2: plan again with "
        "`planner plan`"
    )


def test_a_tampered_site_figure_is_named() -> None:
    catalog, plan = default_catalog(), _mixed(BOUGHT)
    # A figure the catalog gave: it is not the catalog's.
    found = _problems(plan, _set("sites.0.cost.power_kw_per_node", 6.0), catalog)
    assert "the catalog's is 7 (pricing.yaml hardware)" in found["sites[0].cost.power_kw_per_node"]
    assert "its figures make" in found["sites[0].cost.node_monthly_usd"]
    # A figure the file set: the plan's own figures say otherwise, and the costs disagree.
    found = _problems(plan, _set("sites.0.cost.pue", 1.1), catalog)
    assert "the plan's figure site.dc1.pue is 1.25" in found["sites[0].cost.pue"]
    # The node-month alone, and the pool with it: the figures still make the old one.
    at = _cluster(plan)
    found = _problems(plan, _add("sites.0.cost.node_monthly_usd", -1000), catalog)
    assert list(found) == ["sites[0].cost.node_monthly_usd"]
    # A figure moved with the plan's figure and the node-month: the catalog still knows it.
    capital = plan.sites[0].cost.capital_usd_per_node
    assert capital is not None

    def halve(document: Doc) -> None:
        document["sites"][0]["cost"]["capital_usd_per_node"] = capital / 2
        document["figures"]["site.dc1.capital_usd_per_node"]["value"] = capital / 2

    found = _problems(plan, halve, catalog)
    assert found["sites[0].cost.capital_usd_per_node"] == (
        "142500, but the workloads file does not set it (from_file) and the catalog's is "
        "285000 (pricing.yaml hardware): plan again with `planner plan`"
    )
    # The pool's cost is recomputed from the figures: halved, they no longer make it.
    assert "nodes and cost disagree" in found[_field(f"{at}.monthly_cost_usd")]
    # An owned node with a capital figure, a purchase without its horizon.
    owned = _mixed()
    found = _problems(owned, _set("sites.0.cost.capital_usd_per_node", 1.0), default_catalog())
    owned_capital = found["sites[0].cost.capital_usd_per_node"]
    assert owned_capital.startswith("1, but an owned node has no capital_usd_per_node")
    found = _problems(plan, _set("sites.0.cost.amortization_months", None), catalog)
    assert "missing" in found["sites[0].cost.amortization_months"]
    found = _problems(plan, _set("sites.0.cost.from_file", ["pue", "wattage"]), catalog)
    assert "'wattage' is no cost figure" in found["sites[0].cost.from_file[1]"]


def test_a_tampered_cluster_purchase_option_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    at = _cluster(plan)
    found = _problems(plan, _add(f"{at}.purchase_options.0.monthly_cost_usd", 5), catalog)
    assert list(found) == [_field(f"{at}.purchase_options.0.monthly_cost_usd")]
    found = _problems(plan, _set(f"{at}.purchase_options.0.option", "on_demand"), catalog)
    assert "paid only as owned" in found[_field(f"{at}.purchase_options.0.option")]


def test_a_purchase_option_on_the_wrong_target_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    cluster, ec2 = _cluster(plan), f"pools.{_ec2_index(plan)}"
    found = _problems(plan, _set(f"{cluster}.pricing", "on_demand"), catalog)
    assert found[_field(f"{cluster}.pricing")].startswith(
        "'on_demand' is an EC2 purchase option, but site dc1's nodes are bought hardware: owned"
    )
    found = _problems(plan, _set(f"{cluster}.pricing", "bought"), catalog)
    assert "'bought', but site dc1's nodes are owned" in found[_field(f"{cluster}.pricing")]
    found = _problems(plan, _set(f"{ec2}.pricing", "owned"), catalog)
    assert "is a cluster site's hardware, but p5" in found[_field(f"{ec2}.pricing")]
    notes = next(i for i, w in enumerate(plan.workloads) if w.name == "notes")
    options = plan.workloads[notes].answers.volume_economics.options
    on_site = next(i for i, o in enumerate(options) if o.instance_type == "dc1")
    where = f"workloads.{notes}.answers.volume_economics.options.{on_site}.pricing"
    found = _problems(plan, _set(where, "spot"), catalog)
    assert "'spot' is an EC2 purchase option" in found[_field(where)]


def test_every_reader_refuses_a_tampered_cluster_plan(tmp_path: Path) -> None:
    plan = _mixed()
    document = json.loads(plan.model_dump_json())
    _set("sites.0.cost.hosting_usd_per_node_month", 10.0)(document)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(PlannerError) as raised:
        read_plan(path)
    fields = [p.field for p in raised.value.problems]
    assert "sites[0].cost.hosting_usd_per_node_month" in fields
    path.write_text(plan.model_dump_json(indent=2))
    assert read_plan(path) == plan


# --- 3. `planner preview` prices a cluster pool's nodes as its site's.


def test_preview_prices_a_cluster_pool_s_nodes_at_its_site_s_node_month(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from planner.graph.preview import CLUSTER_POOL, Preview, price_resources
    from planner.render.preview_report import render_json, render_text
    from tests.test_kubernetes_stack import MULTI, _run

    catalog = default_catalog()
    run = _run(project, MULTI.replace("cost: {owned: true}", BOUGHT))
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.site == "dc1"]
    assert pool.pricing == Ownership.bought and pool.nodes >= 1
    preview = Preview("dev", plan, run, price_resources(run, plan, catalog))
    [nodes] = [c for c in preview.costs if c.type == CLUSTER_POOL]
    staff = plan.totals.staff_usd / len(plan.pools)
    # The plan's figure: the pool's cost less its staff (a cluster pool has no network pieces).
    assert nodes.monthly_usd == pytest.approx(pool.monthly_cost_usd - staff, abs=0.001)
    assert nodes.monthly_usd == pool.purchase_options[0].monthly_cost_usd
    node = plan.sites[0].cost.node_monthly_usd
    assert nodes.quantity == (
        f"{pool.nodes} x GPU node of site dc1 at {node:,.2f} USD a node-month (bought "
        "hardware, not an AWS bill)"
    )
    assert nodes.source.startswith("site dc1: 7 kW x PUE 1.25 x 0.1 USD/kWh x 730 h = ")
    # Nothing of it is priced from instances.yaml: no EC2 group on the site's pool.
    assert not [c for c in preview.costs if "p5" in c.quantity and pool.name in c.urn]
    # The preview's total is the plan's, to the cent, with the site's nodes in it.
    assert preview.agrees and preview.site_nodes_usd == nodes.monthly_usd
    text = render_text(preview)
    assert "  of which cluster sites' nodes" in text
    assert "(the plan's total to the cent; the stack's budget is its AWS share)" in text
    document = json.loads(render_json(preview))
    assert document["costs"]["siteNodesMonthlyUsd"] == nodes.monthly_usd
    assert document["costs"]["totalMonthlyUsd"] == plan.totals.monthly_cost_usd

    # The nodes are counted in the graph (the serving pods' GPUs over a node's), not read from
    # the plan: a stack serving one group more than the plan disagrees with it.
    [lws] = [r for r in run.resources if r.type.endswith(":LeaderWorkerSet")]
    more = dataclasses.replace(
        lws,
        inputs={
            **lws.inputs,
            "spec": {**lws.inputs["spec"], "replicas": lws.inputs["spec"]["replicas"] + 1},
        },
    )
    grown = dataclasses.replace(run, resources=[more if r is lws else r for r in run.resources])
    bigger = Preview("dev", plan, grown, price_resources(grown, plan, catalog))
    [grown_nodes] = [c for c in bigger.costs if c.type == CLUSTER_POOL]
    size = int(lws.inputs["spec"]["leaderWorkerTemplate"]["size"])
    assert grown_nodes.quantity.startswith(f"{pool.nodes + size} x GPU node of site dc1")
    assert not bigger.agrees


# --- 4. A cluster pool's range: the catalog's ranges of the figures the file leaves to it.


def _catalog_with(
    catalog: Catalog,
    hosting: tuple[float | None, float | None] | None = None,
    capital: tuple[float | None, float | None] | None = None,
    horizon: tuple[float | None, float | None] | None = None,
) -> Catalog:
    """The catalog with other low and high ends of hosting, the H100 server's price and the
    amortization horizon (pricing.yaml hardware)."""
    hardware = catalog.pricing.hardware
    update: dict[str, Any] = {}
    if hosting is not None:
        low, high = hosting
        update["hosting_usd_per_node_month"] = hardware.hosting_usd_per_node_month.model_copy(
            update={"low": low, "high": high}
        )
    if horizon is not None:
        low, high = horizon
        update["horizon_months"] = hardware.horizon_months.model_copy(
            update={"low": low, "high": high}
        )
    if capital is not None:
        low, high = capital
        server = hardware.servers["p5.48xlarge"]
        moved = server.capital_usd.model_copy(update={"low": low, "high": high})
        update["servers"] = {
            **hardware.servers,
            "p5.48xlarge": server.model_copy(update={"capital_usd": moved}),
        }
    pricing = catalog.pricing.model_copy(update={"hardware": hardware.model_copy(update=update)})
    return catalog.model_copy(update={"pricing": pricing})


def _rate_ends(catalog: Catalog, **cost: object) -> tuple[float, float, float]:
    """A node-month of the test site at the cost's low end, its value and its high end."""
    from planner.targets.kubernetes import KubernetesTarget
    from tests.test_sites import _site

    target = KubernetesTarget(_site(**cost), index=0)
    rate = target.node_rate(catalog, target.offers(catalog, None)[0], Pricing.on_demand)  # type: ignore[arg-type]
    hours = catalog.pricing.hours_per_month.value
    return rate.low * hours, rate.usd_per_hour * hours, rate.high * hours


def test_an_owned_node_s_range_is_the_catalog_s_hosting_range() -> None:
    catalog = default_catalog()
    hardware = catalog.pricing.hardware
    hosting = hardware.hosting_usd_per_node_month
    assert (hosting.low, hosting.high) == (1428, 2856)
    hours = catalog.pricing.hours_per_month.value
    power = hardware.power_kw.value * hardware.pue.value * hardware.usd_per_kwh.value * hours
    low, value, high = _rate_ends(catalog, owned=True)
    assert value == pytest.approx(power + hosting.value)
    assert low == pytest.approx(power + 1428)
    # The catalog's ends move the node's: hosting's low end, then its high end.
    moved = _rate_ends(_catalog_with(catalog, hosting=(1000, 4000)), owned=True)
    assert moved == pytest.approx((power + 1000, value, power + 4000))
    assert high < moved[2]
    # A figure the workloads file sets is exact: no range where the file sets every figure.
    given = dict(owned=True, power_kw_per_node=7.0, pue=1.3, usd_per_kwh=0.1,
                 hosting_usd_per_node_month=1999)  # fmt: skip
    low, value, high = _rate_ends(_catalog_with(catalog, hosting=(1000, 4000)), **given)
    assert low == value == high


def test_a_bought_node_s_range_adds_the_server_price_s_and_a_longer_horizon_costs_less() -> None:
    catalog = default_catalog()
    hardware = catalog.pricing.hardware
    server = hardware.servers["p5.48xlarge"].capital_usd
    months = hardware.horizon_months.value
    # Only the server's price has a range where the file sets hosting and the power figures.
    given = dict(owned=False, power_kw_per_node=7.0, pue=1.3, usd_per_kwh=0.1,
                 hosting_usd_per_node_month=1999)  # fmt: skip
    low, value, high = _rate_ends(catalog, **given)
    assert value - low == pytest.approx((server.value - 250000) / months)
    assert high - value == pytest.approx((320000 - server.value) / months)
    moved = _rate_ends(_catalog_with(catalog, capital=(200000, 400000)), **given)
    assert moved[0] == pytest.approx(value - (server.value - 200000) / months)
    assert moved[2] == pytest.approx(value + (400000 - server.value) / months)
    # A horizon range: the cost's low end writes the server off over the longer horizon.
    ends = _rate_ends(_catalog_with(catalog, capital=(None, None), horizon=(12, 36)), **given)
    assert ends[0] == pytest.approx(value - server.value / months + server.value / 36)
    assert ends[2] == pytest.approx(value - server.value / months + server.value / 12)
    # A capital the file sets is exact.
    low, _, high = _rate_ends(catalog, **given, capital_usd_per_node=300000)
    assert low == high


def _plan_with(text: str, catalog: Catalog) -> Plan:
    import hashlib

    from planner.inputs.loader import LoadedWorkloads, parse_workloads
    from planner.planning.build import build_plan

    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    return build_plan(loaded, catalog, "dev", "workloads.yaml", "per-workload")


def test_a_cluster_pool_s_range_moves_with_the_catalog_s_range_and_not_with_a_file_figure() -> None:
    catalog = default_catalog()
    wide = _catalog_with(catalog, hosting=(500, 5000))
    text = _spill_file(4)
    base, moved = (
        next(p for p in _plan_with(text, c).pools if p.workloads == ["notes"])
        for c in (catalog, wide)
    )
    assert base.site == moved.site == "dc1" and base.nodes == moved.nodes
    assert moved.monthly_cost_usd == base.monthly_cost_usd
    # The pool's nodes at each end of hosting's range: the ends move by the range's move.
    assert moved.monthly_cost_low_usd < base.monthly_cost_low_usd
    assert moved.monthly_cost_high_usd > base.monthly_cost_high_usd
    assert base.monthly_cost_low_usd < base.monthly_cost_usd < base.monthly_cost_high_usd
    # The file's hosting figure is exact: the catalog's hosting range no longer reaches it.
    fixed = text.replace(
        "cost: {owned: true}", "cost: {owned: true, hosting_usd_per_node_month: 1999}"
    )
    base, moved = (
        next(p for p in _plan_with(fixed, c).pools if p.workloads == ["notes"])
        for c in (catalog, wide)
    )
    assert (moved.monthly_cost_low_usd, moved.monthly_cost_high_usd) == (
        base.monthly_cost_low_usd,
        base.monthly_cost_high_usd,
    )


def test_an_unknown_pricing_lists_every_value_a_pool_takes(tmp_path: Path) -> None:
    """pools[].pricing is a union of two enums: one problem naming the field (not pydantic's
    union member) and every value of both, with the closest."""
    plan = _mixed()
    document = json.loads(plan.model_dump_json())
    document["pools"][_cluster_index(plan)]["pricing"] = "bougth"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PlannerError) as raised:
        read_plan(path)
    [problem] = raised.value.problems
    assert problem.field == f"pools[{_cluster_index(plan)}].pricing"
    assert problem.message == (
        '"bougth" is not one of on_demand, spot, savings_1yr, savings_3yr, owned, bought; '
        "did you mean 'bought'?: plan again"
    )
