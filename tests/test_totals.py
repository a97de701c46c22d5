"""One total: `planner preview` adds the stack's resources, the pools' staff and the API tokens,
each once, and that is the plan's total to the cent, and the stack's budget."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog, default_catalog
from planner.cli import main
from planner.diff.compare import diff_plans, run_plan
from planner.fmt import usd_range
from planner.graph.preview import Preview, price_resources
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Plan, plan_problems, read_plan
from planner.planning.build import Strategy, build_plan
from planner.render.diff_report import render_json, render_markdown
from planner.render.plan_files import plan_json, plan_markdown, template_environment
from planner.render.preview_report import render_text
from tests.conftest import EXAMPLE, workload_yaml
from tests.test_diff import BASE as DIFF_BASE
from tests.test_diff import SCENARIOS, pricier_p5
from tests.test_properties import organization

CATALOG: Catalog = default_catalog()

# A small SaaS company: everything through an API (Bedrock over PrivateLink), a few dollars of
# tokens next to 15.60 USD of access. The preview counted that access twice (40.61 against 25.01).
SAAS = """\
organization: tiny-saas
region: us-east-1
workloads:
  - name: helpdesk-ticket-summaries
    task: summarization
    data: confidential
    monthly_tokens: {input: 30M, output: 6M}
    consumers: ["10.0.0.0/16"]
  - name: faq-bot
    task: faq
    data: confidential
    monthly_tokens: {input: 10M, output: 2M}
    consumers: ["10.1.0.0/16"]
"""


def _plan(text: str, strategy: Strategy = "per-workload") -> Plan:
    spec = parse_workloads(text, "workloads.yaml", CATALOG)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    return build_plan(loaded, CATALOG, "dev", "workloads.yaml", strategy)


def _preview(plan: Plan) -> Preview:
    run = run_plan(plan, CATALOG)
    return Preview(plan.stack, plan, run, price_resources(run, plan, CATALOG))


def _cents(amount: float) -> int:
    return round(amount * 100)


def _assert_reconciles(plan: Plan) -> None:
    assert plan_problems(plan, CATALOG) == []
    preview = _preview(plan)
    totals = plan.totals
    # The preview's total is the plan's to the cent, consumer VPCs' pieces included.
    assert _cents(preview.grand_total_usd) == _cents(totals.monthly_cost_usd)
    assert preview.agrees
    # Piece by piece: the pools' resources are their cost less their staff; the access's
    # resources are the shared access the plan charges its API workloads, once.
    pools = sum(_cents(p.monthly_cost_usd) for p in plan.pools) - _cents(totals.staff_usd)
    assert _cents(preview.pools_usd) == pools
    assert _cents(preview.shared_access_usd) == _cents(totals.shared_access_usd)
    # The resources in the consumers' VPCs are the plan's connections, once.
    assert _cents(preview.connections_usd) == _cents(totals.connections_usd)
    api_connections = sum(
        _cents(w.connection_share_usd) for w in plan.workloads if w.placement == "cloud_api"
    )
    assert _cents(totals.api_tokens_usd) + _cents(
        totals.shared_access_usd
    ) + api_connections == _cents(totals.cloud_api_usd)
    # The budget is that total.
    [budget] = [r for r in preview.run.resources if r.type == "aws:budgets/budget:Budget"]
    assert budget.inputs["limitAmount"] == f"{totals.monthly_cost_usd:.2f}"


def test_the_saas_example_reconciles() -> None:
    plan = _plan(SAAS)
    assert not plan.pools and plan.totals.staff_usd == 0
    assert plan.totals.shared_access_usd == 15.60  # the Bedrock endpoint and its log key
    assert plan.totals.monthly_cost_usd == 26.66
    assert plan.totals.api_tokens_usd == 11.06
    _assert_reconciles(plan)


def test_an_all_api_preview_has_no_pool_lines() -> None:
    """No pools: no staff line (0.00 USD for 0 pools is noise), and the lines still add up."""
    plan = _plan(SAAS)
    lines = render_text(_preview(plan)).splitlines()
    assert not any("staff (plan)" in line or "self-hosted pools'" in line for line in lines)
    assert any(line.strip().startswith("API tokens (plan)") for line in lines)
    assert "  (the plan's total to the cent, and the stack's budget)" in lines


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_the_example_reconciles(strategy: Strategy) -> None:
    plan = _plan(EXAMPLE.read_text(), strategy)
    _assert_reconciles(plan)


# Two workloads sharing one pool, both called from one VPC of three subnets, one also from a VPC
# of one subnet: the stack makes one endpoint and one zone per VPC, not per workload.
SHARED_CONSUMER_VPC = """\
organization: acme
region: us-east-1
workloads:
  - name: notes-a
    task: summarization
    data: regulated
    monthly_tokens: {input: 3B, output: 600M}
    consumers:
      - cidr: 10.20.0.0/16
        vpc: vpc-0a1b2c3d4e5f60718
        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719, subnet-0c1c2d3e4f5a60719]
  - name: notes-b
    task: summarization
    data: regulated
    monthly_tokens: {input: 3B, output: 600M}
    consumers:
      - cidr: 10.21.0.0/16
        vpc: vpc-0a1b2c3d4e5f60718
        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719, subnet-0c1c2d3e4f5a60719]
      - cidr: 10.30.0.0/16
        vpc: vpc-0c3d4e5f6a7b80912
        subnets: [subnet-0c3d4e5f6a7b80912]
"""


def test_connections_are_priced_once_per_pool_and_vpc_and_shared_equally() -> None:
    plan = _plan(SHARED_CONSUMER_VPC, "optimal")
    [pool] = plan.pools
    assert pool.workloads == ["notes-a", "notes-b"]
    found = {(c.service, c.vpc): c for c in plan.connections}
    assert set(found) == {
        (pool.name, "vpc-0a1b2c3d4e5f60718"),
        (pool.name, "vpc-0c3d4e5f6a7b80912"),
    }
    # 3 subnets x 0.01 USD/h x 730 h + a 0.50 USD zone; 1 subnet: 7.30 + 0.50.
    shared = found[(pool.name, "vpc-0a1b2c3d4e5f60718")]
    assert shared.monthly_cost_usd == 22.40 and shared.workloads == ["notes-a", "notes-b"]
    assert found[(pool.name, "vpc-0c3d4e5f6a7b80912")].monthly_cost_usd == 7.80
    shares = {w.name: w.connection_share_usd for w in plan.workloads}
    assert shares == {"notes-a": 11.20, "notes-b": 19.00}  # 11.20 + 7.80
    assert plan.totals.connections_usd == 30.20
    # The prices used are among the plan's figures.
    assert plan.figures["aws_prices:aws:ec2/vpcEndpoint:VpcEndpoint"].value == 0.01
    assert plan.figures["aws_prices:aws:route53/zone:Zone"].value == 0.50
    _assert_reconciles(plan)
    # Decided one at a time, each workload's pool has its own endpoint in the shared VPC.
    alone = _plan(SHARED_CONSUMER_VPC, "per-workload")
    assert alone.totals.connections_usd == 52.60  # 22.40 + 22.40 + 7.80
    assert plan.totals.per_workload_usd == alone.totals.monthly_cost_usd


def test_an_api_networks_connections_are_data() -> None:
    """The API networks' connection pieces (a Bedrock endpoint in each consumer VPC of the
    PrivateLink network's workloads, each consumer VPC's transit gateway attachment to the egress
    path) are data entries: priced, shared and checked like a pool's; without them the plan
    prices the same tokens and shares."""
    operations = CATALOG.operations
    pools_only = {"self_hosted_pool": operations.connections["self_hosted_pool"]}
    catalog = CATALOG.model_copy(
        update={"operations": operations.model_copy(update={"connections": pools_only})}
    )
    text = EXAMPLE.read_text()
    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    without = build_plan(loaded, catalog, "dev", "workloads.yaml")
    plan = _plan(text)
    # support-faq and ticket-triage reach Bedrock (through the PrivateLink network) from
    # vpc-0a1b... (2 subnets): one endpoint, 14.60 USD, 7.30 each.
    [bedrock] = [c for c in plan.connections if c.service == "private_link"]
    assert (bedrock.vpc, bedrock.workloads, bedrock.monthly_cost_usd) == (
        "vpc-0a1b2c3d4e5f60718",
        ["support-faq", "ticket-triage"],
        14.60,
    )
    # code-review's VPC attaches to the egress path: 1 x 0.05 USD/h x 730 h.
    [egress] = [c for c in plan.connections if c.service == "egress"]
    assert (egress.vpc, egress.workloads, egress.monthly_cost_usd) == (
        "vpc-0e5f6a7b8c9d0a1b2",
        ["code-review"],
        36.50,
    )
    shares = {w.name: w.connection_share_usd for w in plan.workloads if w.placement == "cloud_api"}
    assert shares == {"support-faq": 7.30, "ticket-triage": 7.30, "code-review": 36.50}
    assert plan.totals.connections_usd == 81.30  # the pools' 30.20, Bedrock's 14.60, 36.50
    assert plan.totals.cloud_api_usd == round(without.totals.cloud_api_usd + 51.10, 2)
    assert plan.totals.api_tokens_usd == without.totals.api_tokens_usd
    assert (
        plan.figures["aws_prices:aws:ec2transitgateway/vpcAttachment:VpcAttachment"].value == 0.05
    )
    assert plan_problems(plan, CATALOG) == []


def test_the_api_boundaries_are_priced_as_the_stacks_build_them() -> None:
    """No PrivateLink network of its own (endpoints, log key) when no caller is a plain CIDR;
    the egress VPC's own transit gateway attachment only when a consumer VPC attaches."""
    plan = _plan(EXAMPLE.read_text())
    fixed = {a.provider: a.fixed_monthly_usd for a in plan.providers}
    assert fixed["bedrock"] == 0.0  # its callers name a VPC or another account
    # NAT, addresses, firewall endpoints, secretsmanager endpoints, log key and the egress
    # VPC's attachment (36.50 USD).
    assert plan.totals.egress_network_usd == 701.80
    _assert_reconciles(plan)
    # Callers given as plain CIDRs: Bedrock's own network (2 endpoints, 14.60 USD, and its log
    # key, 1.00 USD) and no attachment of the egress VPC.
    text = EXAMPLE.read_text()
    for vpc in ("vpc-0a1b2c3d4e5f60718", "vpc-0e5f6a7b8c9d0a1b2"):
        tail = vpc.removeprefix("vpc-")
        text = text.replace(f"        vpc: {vpc}\n", "")
        text = re.sub(rf"        subnets: \[subnet-{tail}, [^\]]*\]\n", "", text)
    plain = _plan(text)
    fixed = {a.provider: a.fixed_monthly_usd for a in plain.providers}
    assert fixed["bedrock"] == 15.60
    assert plain.totals.egress_network_usd == 665.30
    assert [c.service for c in plain.connections] == ["contract-review-pool", "patient-notes-pool"]
    _assert_reconciles(plain)


def test_preview_prints_one_total(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "examples").mkdir()
    (project / "examples" / "workloads.yaml").write_text(EXAMPLE.read_text())
    # The example's per-workload plan: two pools and three APIs, every kind of cost.
    assert main(["plan", "examples/workloads.yaml", "--strategy", "per-workload"]) == 0
    capsys.readouterr()
    assert main(["preview"]) == 0
    lines = capsys.readouterr().out.splitlines()
    plan = read_plan(project / "plans/dev/plan.json")

    def amount(label: str) -> float:
        [line] = [x for x in lines if x.strip().startswith(label + "  ")]
        return float(line.split("USD")[0].split()[-1].replace(",", ""))

    assert amount("staff (plan)") == plan.totals.staff_usd == 2 * 4166.75
    assert amount("API tokens (plan)") == plan.totals.api_tokens_usd
    assert amount("shared access' resources") == plan.totals.shared_access_usd
    # Each pool's consumer VPC: an endpoint in 2 subnets (2 x 0.01 USD/h x 730 h) and a zone
    # (0.50 USD): 15.10 USD, twice; Bedrock's endpoint in its consumer VPC's 2 subnets, 14.60
    # USD; code-review's VPC attached to the egress path's transit gateway, 36.50 USD.
    assert amount("consumer connections' resources") == plan.totals.connections_usd == 81.30
    assert amount("total") == plan.totals.monthly_cost_usd == 140_927.54
    assert _cents(amount("resources total")) + _cents(amount("staff (plan)")) + _cents(
        amount("API tokens (plan)")
    ) == _cents(amount("total"))
    assert not any("differ from what the plan priced" in line for line in lines)

    assert main(["preview", "--json"]) == 0
    costs = json.loads(capsys.readouterr().out)["costs"]
    assert costs["totalMonthlyUsd"] == costs["planTotalMonthlyUsd"] == 140_927.54
    assert costs["connectionsMonthlyUsd"] == 81.30
    assert costs["staffMonthlyUsd"] == plan.totals.staff_usd
    assert costs["apiTokensMonthlyUsd"] == plan.totals.api_tokens_usd


@st.composite
def staffed_organization(draw: st.DrawFn) -> str:
    """Generated organizations, some with odd staff figures (sub-cent products)."""
    doc = yaml.safe_load(draw(organization()))
    if draw(st.booleans()):
        doc["assumptions"]["pool_fte"] = draw(st.sampled_from([0.1, 0.3, 0.33, 1.0]))
        doc["assumptions"]["engineer_usd_per_month"] = draw(
            st.sampled_from([12345.67, 9999.99, 20000.0])
        )
    return yaml.safe_dump(doc, sort_keys=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(staffed_organization(), st.sampled_from(["per-workload", "optimal"]))
def test_every_plan_passes_its_own_checks(text: str, strategy: Strategy) -> None:
    plan = _plan(text, strategy)
    assert plan_problems(plan, CATALOG) == []
    totals = plan.totals
    pools = sum(_cents(p.monthly_cost_usd) for p in plan.pools)
    parts = pools + _cents(totals.api_tokens_usd) + _cents(totals.shared_access_usd)
    assert _cents(totals.monthly_cost_usd) == parts
    assert _cents(totals.staff_usd) <= pools


# Each example runs the program under mocks (a fraction of a second to a second).
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(staffed_organization(), st.sampled_from(["per-workload", "optimal"]))
def test_preview_equals_the_plan_for_generated_organizations(text: str, strategy: Strategy) -> None:
    _assert_reconciles(_plan(text, strategy))


# ----------------------------------------------------------------------------- labels and ranges

BIG = """\
organization: acme
region: us-east-1
workloads:
  - name: big-notes
    task: summarization
    data: regulated
    monthly_tokens: {input: 60B, output: 12B}
    consumers: ["10.50.0.0/16"]
"""
# "138,988.49 USD to 138,988.49 USD", "124.62 USD - 124.62 USD": a range whose ends are equal.
NOISE = re.compile(r"([\d,]+\.\d\d USD) (to|-) \1")


def test_usd_range_is_empty_where_the_ends_agree() -> None:
    assert usd_range(138_988.49, 138_988.49) == ""
    assert usd_range(10.0, 10.004) == ""  # the same cent
    assert usd_range(84_644.78, 406_078.38) == "84,644.78 USD to 406,078.38 USD"


def test_plan_md_shows_ranges_only_where_the_ends_differ() -> None:
    example = plan_markdown(_plan(EXAMPLE.read_text()))
    assert not NOISE.search(example)
    # An API-only plan has no range anywhere: no range column at all.
    apis = plan_markdown(_plan(workload_yaml()))
    assert "| monthly cost | range |" not in apis and "low - high" not in apis
    big = plan_markdown(_plan(BIG))
    assert "(85,045.18 USD to 165,403.58 USD)" in big
    assert "| 85,045.18 USD | 85,045.18 USD to 165,403.58 USD |" in big
    assert "; 85,045.18 USD to 165,403.58 USD over the ranges" in big


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organization())
def test_no_range_is_noise(text: str) -> None:
    plan = _plan(text)
    assert not NOISE.search(plan_markdown(plan))
    environment = template_environment()
    for w in plan.workloads:
        explained = environment.get_template("explain.txt.j2").render(w=w, plan=plan)
        assert not NOISE.search(explained)


def test_a_share_and_the_price_standing_alone_are_both_labelled() -> None:
    plan = _plan(EXAMPLE.read_text())
    faq = next(w for w in plan.workloads if w.name == "support-faq")
    # Bedrock's callers name a VPC: no network of its own to share, but the endpoint in that VPC
    # (14.60 USD) is shared with ticket-triage.
    assert faq.monthly_cost_usd == 87.30 and faq.access_share_usd == 0.0
    assert faq.connection_share_usd == 7.30
    [chosen] = [
        o for o in faq.answers.volume_economics.options if o.id.endswith("haiku-5.5-global")
    ]
    assert chosen.monthly_cost_usd == 80.00  # one price: the option with its access alone
    text = plan_markdown(plan)
    assert (
        "3. **Volume economics: cloud_api/bedrock-claude-haiku-5.5-global, 87.30 USD a month in "
        "this plan.** In this plan: 80.00 USD of tokens + 0.00 USD, its share of the shared access "
        "(paid once in the plan) + 7.30 USD, its share of the connections in its consumers' "
        "VPCs; the option standing alone: 80.00 USD, with 0.00 USD of access to itself." in text
    )
    assert (
        "| option | tier | nodes | memory fit | output tok/s a unit (bound) | monthly cost, "
        "standing alone |" in text
    )
    # code-review is the egress network's only user: its share is the access alone (703.20
    # USD, the egress VPC's attachment included), and its VPC's attachment its own.
    assert (
        "3. **Volume economics: cloud_api/gpt-6.1-sol, 4,639.70 USD a month in this plan.** "
        "In this plan: 3,900.00 USD of tokens + 703.20 USD" in text
    )
    explained = template_environment().get_template("explain.txt.j2").render(w=faq, plan=plan)
    assert "at 87.30 USD a month in this plan\n   In this plan: 80.00 USD of tokens" in explained
    assert "Options (cheapest first; each standing alone" in explained


def test_every_share_adds_up() -> None:
    for strategy in ("per-workload", "optimal"):
        plan = _plan(EXAMPLE.read_text(), strategy)
        for w in plan.workloads:
            if w.placement == "cloud_api":
                chosen = next(
                    o for o in w.answers.volume_economics.options
                    if o.id == w.answers.volume_economics.chosen
                )  # fmt: skip
                tokens = chosen.monthly_cost_usd - chosen.fixed_monthly_usd
                assert _cents(w.monthly_cost_usd) == _cents(tokens) + _cents(
                    w.access_share_usd
                ) + _cents(w.connection_share_usd)


# ----------------------------------------------------------------------------- diff


@pytest.mark.parametrize("name", ["volume-flip", "catalog-price"])
def test_diff_resource_delta_reconciles_with_its_headline(name: str) -> None:
    catalog = pricier_p5(CATALOG) if name == "catalog-price" else CATALOG
    base = _plan(DIFF_BASE)
    spec_text = SCENARIOS[name]()
    spec = parse_workloads(spec_text, "workloads.yaml", catalog)
    head = build_plan(
        LoadedWorkloads(Path("workloads.yaml"), spec, "0" * 64), catalog, "dev", "workloads.yaml"
    )
    diff = diff_plans({"dev": base}, {"dev": head}, catalog)
    [stack] = diff.stacks
    parts = (
        stack.resources_change_usd,
        stack.staff_change_usd,
        stack.tokens_change_usd,
        stack.prices_change_usd,
    )
    assert (
        sum(_cents(part) for part in parts) == _cents(stack.change_usd) == _cents(diff.change_usd)
    )
    text = render_markdown(diff)
    if name == "volume-flip":  # same prices: the resources, the new pool's staff, fewer tokens
        assert stack.prices_change_usd == 0 and stack.staff_change_usd == 4166.75
        assert stack.tokens_change_usd < 0
        assert (
            f"Of the change of {stack.change_usd:+,.2f} USD a month, "
            f"{stack.resources_change_usd:+,.2f} USD is in the resources below; the rest: staff "
            f"+4,166.75 USD, API tokens {stack.tokens_change_usd:+,.2f} USD." in text
        )
    else:  # a price update: the rows price both sides at HEAD's prices, so it is all "prices"
        assert stack.resources_change_usd == 0 and stack.prices_change_usd == stack.change_usd > 0
        assert "from prices that changed since BASE was planned" in text
    document = json.loads(render_json(diff))
    by_kind = document["stacks"][0]["change_by_kind"]
    assert by_kind["prices_usd"] == stack.prices_change_usd


def test_diff_hides_sub_cent_changes_of_untouched_workloads(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _plan(EXAMPLE.read_text())
    base = json.loads(plan_json(head))
    # A plan written by another version, its costs a fraction of a cent away (still adding up
    # to the same cents, so it is a valid plan).
    base["workloads"][0]["monthly_cost_usd"] += 0.004
    base["workloads"][3]["monthly_cost_usd"] -= 0.003
    (project / "base.json").write_text(json.dumps(base))
    (project / "head.json").write_text(plan_json(head))
    assert main(["diff", "base.json", "head.json"]) == 0
    out = capsys.readouterr().out
    assert "No workload changes." in out and "+0.00" not in out and "-0.00" not in out
    assert main(["diff", "base.json", "head.json", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {w["status"] for w in document["stacks"][0]["workloads"]} == {"unchanged"}
    assert document["change_usd"] == 0


def test_plan_md_names_only_the_parts_a_plan_has() -> None:
    saas = plan_markdown(_plan(SAAS))
    assert (
        "Made of: API tokens 11.06 USD and the shared API access 15.60 USD, each counted once"
        in saas
    )
    assert "staff" not in saas.split("## ")[0]  # the summary above the first section
    example = plan_markdown(_plan(EXAMPLE.read_text()))
    assert (
        "Made of: the pools' nodes and network pieces 127,604.54 USD, their staff 8,333.50 USD, "
        "API tokens 4,205.00 USD, the shared API access 703.20 USD and the connections in the "
        "consumers' VPCs 81.30 USD, each counted once" in example
    )
    assert "connections in the consumers' VPCs" not in saas.split("## ")[0]


# Found by the property test: three 2-node replicas at spot prices (DeepSeek V3.2 on H100s,
# 788 output tok/s a replica at 30 tok/s a user: a peak of 2,000 needs three). The stack has one
# auto-scaling group per replica; rounding each group's month to the cent gave 3 x 41,585.47
# against 124,756.40 for the 6 nodes at once. A node-month is rounded instead, so any grouping
# adds up to the pool's cost.
MULTI_NODE_SPOT = """\
organization: acme
region: us-east-1
assumptions: {pricing: spot, instance_types: [p5.48xlarge]}
workloads:
  - name: w1
    task: classification
    data: regulated
    quality: frontier
    monthly_tokens: {input: 0, output: 0}
    peak_tokens_per_second: 2000
    consumers: ["10.0.0.0/16"]
"""


def test_a_pool_of_multi_node_replicas_reconciles() -> None:
    plan = _plan(MULTI_NODE_SPOT)
    [pool] = plan.pools
    assert pool.nodes == 4 and pool.pipeline_parallel == 2
    _assert_reconciles(plan)


HOURLY_TERM = re.compile(
    r"(\d+) x ([\d,.]+) USD/h \((?:[^()]|\([^()]*\))*\) x ([\d,]+) h = ([\d,]+\.\d\d) USD"
)


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_every_hourly_term_a_plan_prints_gives_the_total_it_prints(strategy: Strategy) -> None:
    """'N x R USD/h (...) x H h = T USD' in every formula of the example's plan (options, pools,
    purchase options): N x R x H is T to the cent a node. The rate was printed to four significant
    figures (63.3 for 63.296), so the product a reader checks was off by up to 6 USD (an
    outside review)."""
    plan = _plan(EXAMPLE.read_text(), strategy)
    text = plan_json(plan)
    terms = HOURLY_TERM.findall(text)
    assert len(terms) >= 5
    for nodes, rate, hours, total in terms:
        product = int(nodes) * float(rate.replace(",", "")) * float(hours.replace(",", ""))
        # A node's month is priced to the cent, then times the nodes (as `planner preview`).
        slack = 0.005 * (int(nodes) + 1)
        assert product == pytest.approx(float(total.replace(",", "")), abs=slack), (
            nodes,
            rate,
            hours,
            total,
        )
