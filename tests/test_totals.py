"""One total: `planner preview` adds the stack's resources, the pools' staff and the API tokens,
each once, and that is the plan's total to the cent, and the stack's budget."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog, default_catalog
from planner.cli import main
from planner.diff import run_plan
from planner.loader import LoadedWorkloads, parse_workloads
from planner.model import Plan, plan_problems, read_plan
from planner.plan import Strategy, build_plan
from planner.preview import Preview, price_resources
from tests.conftest import EXAMPLE
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
    assert _cents(preview.grand_total_usd) == _cents(totals.monthly_cost_usd)
    assert preview.agrees
    # Piece by piece: the pools' resources are their cost less their staff; the access's
    # resources are the shared access the plan charges its API workloads, once.
    pools = sum(_cents(p.monthly_cost_usd) for p in plan.pools) - _cents(totals.staff_usd)
    assert _cents(preview.pools_usd) == pools
    assert _cents(preview.shared_access_usd) == _cents(totals.shared_access_usd)
    assert _cents(totals.api_tokens_usd) + _cents(totals.shared_access_usd) == _cents(
        totals.cloud_api_usd
    )
    # The budget is that total.
    [budget] = [r for r in preview.run.resources if r.type == "aws:budgets/budget:Budget"]
    assert budget.inputs["limitAmount"] == f"{totals.monthly_cost_usd:.2f}"


def test_the_saas_example_reconciles() -> None:
    plan = _plan(SAAS)
    assert not plan.pools and plan.totals.staff_usd == 0
    assert plan.totals.shared_access_usd == 15.60  # the Bedrock endpoint and its log key
    assert plan.totals.monthly_cost_usd == 27.68
    assert plan.totals.api_tokens_usd == 12.08
    _assert_reconciles(plan)


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_the_example_reconciles(strategy: Strategy) -> None:
    plan = _plan(EXAMPLE.read_text(), strategy)
    _assert_reconciles(plan)


def test_preview_prints_one_total(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "examples").mkdir()
    (project / "examples" / "workloads.yaml").write_text(EXAMPLE.read_text())
    assert main(["plan", "examples/workloads.yaml"]) == 0
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
    assert amount("total") == plan.totals.monthly_cost_usd == 138_988.49
    assert _cents(amount("resources total")) + _cents(amount("staff (plan)")) + _cents(
        amount("API tokens (plan)")
    ) == _cents(amount("total"))
    assert "  (the plan's total to the cent, and the stack's budget)" in lines

    assert main(["preview", "--json"]) == 0
    costs = json.loads(capsys.readouterr().out)["costs"]
    assert costs["totalMonthlyUsd"] == costs["planTotalMonthlyUsd"] == 138_988.49
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


# Each example runs the program under mocks (about a second): a few are enough.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(staffed_organization(), st.sampled_from(["per-workload", "optimal"]))
def test_preview_equals_the_plan_for_generated_organizations(text: str, strategy: Strategy) -> None:
    _assert_reconciles(_plan(text, strategy))
