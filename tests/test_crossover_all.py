"""Every crossover, not only the first: the API can win again above it, a node at a time; the
same self-hosted option and the same APIs in `planner crossover` and in the plan."""

from __future__ import annotations

import hashlib
import math
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from planner import costing
from planner.catalog import Catalog
from planner.cli import main
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Plan
from planner.planning.build import build_plan
from planner.planning.crossover import reports
from planner.render.plan_files import plan_markdown

GENEROUS = "assumptions:\n  pricing: savings_1yr\n"


def workload(name: str, data: str, tokens: str, task: str = "chat") -> str:
    return (
        f"  - name: {name}\n    task: {task}\n    data: {data}\n    monthly_tokens: {tokens}\n"
        '    consumers: [{cidr: 10.0.0.0/16, account: "111122223333"}]\n'
    )


# A big internal FAQ self-hosts (Llama 3.1 8B), a smaller confidential one does not on its own;
# both share a pool in the optimal plan.
TEXT = (
    "organization: acme\nregion: us-east-1\n"
    + GENEROUS
    + "workloads:\n"
    + workload("big", "internal", "{input: 150B, output: 30B}", "faq")
    + workload("small", "confidential", "{input: 20B, output: 4B}", "faq")
)


def loaded(catalog: Catalog, text: str = TEXT) -> LoadedWorkloads:
    spec = parse_workloads(text, "workloads.yaml", catalog)
    return LoadedWorkloads(Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest())


def plan(catalog: Catalog, strategy: str = "per-workload") -> Plan:
    return build_plan(loaded(catalog), catalog, "dev", "workloads.yaml", strategy)  # type: ignore[arg-type]


def cost_gap(a: float, c: float, cap: float, m: int, fa: float, fs: float, v: float) -> float:
    """Self-hosted minus API at volume v."""
    return fs + c * max(m, math.ceil(v / cap - costing.EPSILON)) - (fa + a * v)


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(0.5, 2.0),
    ratio=st.floats(0.7, 1.3),
    cap=st.floats(1.0, 10.0),
    m=st.integers(1, 3),
    fa=st.floats(0.0, 20.0),
    fs=st.floats(0.0, 60.0),
)
# A tie within the tolerance at every unit's end: no crossing, and no break-even either.
@example(a=1.0, ratio=1.0, cap=1.0, m=1, fa=0.0, fs=1e-09)
def test_each_crossing_changes_the_cheaper_side(
    a: float, ratio: float, cap: float, m: int, fa: float, fs: float
) -> None:
    """Between two crossings the side each names is the cheaper one (checked in the middle of
    every stretch); the first is break_even_tokens; they alternate."""
    c = a * cap * ratio
    top = 60.0
    found, cut = costing.crossings(a, c, cap, m, top, fa, fs, limit=1000)
    assert not cut
    first = costing.break_even_tokens(a, c, cap, m, fa, fs)
    if found:
        assert first == pytest.approx(found[0].monthly_tokens)
        assert found[0].cheaper == "self_hosted"
    else:
        assert first is None or first > top
    sides = [x.cheaper for x in found]
    assert all(x != y for x, y in pairwise(sides))
    edges = [0.0, *[x.monthly_tokens for x in found], top]
    expected = ["cloud_api", *sides]
    for (low, high), side in zip(pairwise(edges), expected, strict=True):
        if high - low < 1e-6:
            continue  # a tie at one volume
        middle = (low + high) / 2
        gap = cost_gap(a, c, cap, m, fa, fs, middle)
        assert (gap <= 1e-9) == (side == "self_hosted"), (low, high, side, gap)


def test_the_api_wins_again_above_the_first_crossover() -> None:
    """A unit of 10 tokens costs 9, the API 1 a token, the pool 14.5 fixed: from the 15th unit
    the API has paid for the pool inside each unit's stretch, but every further node hands it the
    lead again, until its 1 a unit has paid back the fixed 14.5 (the 25th)."""
    found, cut = costing.crossings(1.0, 9.0, 10.0, 1, 200.0, 0.0, 14.5)
    assert not cut
    assert [(x.monthly_tokens, x.cheaper) for x in found] == [
        (149.5, "self_hosted"), (150.0, "cloud_api"), (158.5, "self_hosted"),
        (160.0, "cloud_api"), (167.5, "self_hosted"), (170.0, "cloud_api"),
        (176.5, "self_hosted"), (180.0, "cloud_api"), (185.5, "self_hosted"),
        (190.0, "cloud_api"), (194.5, "self_hosted"), (200.0, "cloud_api"),
    ]  # fmt: skip
    assert costing.break_even_tokens(1.0, 9.0, 10.0, 1, 0.0, 14.5) == 149.5
    # Up to just below 200 the last change is at 194.5; at 200 itself the API takes the lead
    # right above it, a crossing at the end of the range that is listed (it was not).
    below, _ = costing.crossings(1.0, 9.0, 10.0, 1, 199.9, 0.0, 14.5)
    assert below[-1] == costing.Crossing(194.5, "self_hosted")
    # From the 25th unit on self-hosting stays cheaper: nothing listed past it.
    later, _ = costing.crossings(1.0, 9.0, 10.0, 1, 1000.0, 0.0, 14.5)
    assert later[-1] == costing.Crossing(230.5, "self_hosted")


def test_a_long_alternation_is_cut_short_and_says_so() -> None:
    found, cut = costing.crossings(1.0, 9.999, 10.0, 1, 1e9, 0.0, 15.0, limit=5)
    assert cut and len(found) <= 5


def test_crossover_and_plan_compare_the_same_option_and_api(catalog: Catalog) -> None:
    """Per workload, `planner crossover` and the plan's break-even compare the same self-hosted
    option against the same API, with the same crossings at the plan's purchase option; a pool of
    one workload lists the same crossings as the command, for every purchase option."""
    alone = plan(catalog)
    found = {r.workload: r for r in reports(loaded(catalog), catalog, None)}
    assert set(found) == {"big", "small"}
    for w in alone.workloads:
        report, break_even = found[w.name], w.answers.volume_economics.break_even
        assert break_even is not None
        assert break_even.self_hosted_option == report.self_hosted
        [row] = [r for r in report.rows if r.purchase == "savings_1yr"]
        assert break_even.api_option == f"cloud_api/{row.api_id}"
        assert [(c.monthly_tokens, c.cheaper) for c in break_even.crossings] == [
            (round(c.monthly_tokens), c.placement) for c in row.crossings
        ]
        assert len(break_even.crossings) >= 3  # the API wins again above the first crossover
        assert "is cheaper again from" in break_even.explanation
    [pool] = [p for p in alone.pools if p.workloads == ["big"]]
    assert {
        (c.api_option, c.purchase): [(x.monthly_tokens, x.cheaper) for x in c.crossings]
        for c in pool.crossover
    } == {
        (f"cloud_api/{r.api_id}", r.purchase): [
            (round(x.monthly_tokens), x.placement) for x in r.crossings
        ]
        for r in found["big"].rows
    }


def test_only_apis_the_workloads_may_use_are_compared(catalog: Catalog) -> None:
    """A confidential workload is compared with the APIs its perimeter admits, not with a closed
    frontier API it may not use; a shared pool with the APIs all of its members may use."""
    alone = plan(catalog)
    allowed = {
        w.name: {o.model for o in w.answers.volume_economics.options if o.placement == "cloud_api"}
        for w in alone.workloads
    }
    assert allowed["small"] < allowed["big"]  # the confidential one may use fewer
    for report in reports(loaded(catalog), catalog, None):
        assert report.apis and {a.api_id for a in report.apis} <= allowed[report.workload]
    shared = plan(catalog, "optimal")
    [pool] = [p for p in shared.pools if len(p.workloads) == 2]
    compared = {c.api_option.removeprefix("cloud_api/") for c in pool.crossover}
    assert compared and compared <= allowed["small"] & allowed["big"]


def test_plan_md_lists_the_later_crossings(catalog: Catalog) -> None:
    text = plan_markdown(plan(catalog))
    assert "again from" in text and "is cheaper again from" in text
    # Under each workload's chart: its purchase option, every crossing and its own volume.
    assert (
        "(savings_1yr); they cross at 69.9B tokens a month, again at 79.7B, again at 90.8B" in text
    )
    assert "this workload: 180B tokens a month." in text


def test_the_chart_draws_the_plans_purchase_option_and_the_volume(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "workloads.yaml").write_text(TEXT)
    assert main(["crossover", "workloads.yaml", "big", "--chart", "big.svg"]) == 0
    out = capsys.readouterr().out
    assert "savings_1yr" in out and "API from" in out
    svg = (project / "big.svg").read_text()
    # The plan buys savings_1yr: that staircase is drawn, no other purchase option's.
    assert "(savings_1yr)" in svg and "(on_demand)" not in svg
    # The workload's own volume is marked and named, with thousands separators on the axes.
    assert "this workload: 180,000M tokens a month" in svg
    assert "100,000" in svg


def without(catalog: Catalog, instance_type: str, field: str) -> Catalog:
    """A copy of the catalog whose instance type lacks a published rate (the field unset)."""
    instances = dict(catalog.instances)
    instances[instance_type] = instances[instance_type].model_copy(update={field: None})
    return catalog.model_copy(update={"instances": instances})


def pricing_plan(catalog: Catalog, pricing: str, instance_type: str) -> Plan:
    """A regulated workload (so it self-hosts) on one instance type under one purchase option."""
    text = (
        f"organization: acme\nregion: us-east-1\nassumptions:\n  pricing: {pricing}\n"
        f"  instance_types: [{instance_type}]\nworkloads:\n"
        + workload("big", "regulated", "{input: 150B, output: 30B}")
    )
    found = build_plan(loaded(catalog, text), catalog, "dev", "workloads.yaml")
    assert found.pools and {p.instance_type for p in found.pools} == {instance_type}
    return found


def test_every_published_rate_field_is_an_instance_figure() -> None:
    """The one mapping from a purchase option to the Instance field of its published rate names
    real optional figures (a typo would silently price every node at the multiplier)."""
    from planner.catalog import Instance
    from planner.catalog.vocabulary import Pricing

    assert set(costing.PUBLISHED_RATES) == set(Pricing) - {Pricing.on_demand}
    for field, _label in costing.PUBLISHED_RATES.values():
        assert field in Instance.model_fields
        assert Instance.model_fields[field].default is None


def test_published_spot_prices_with_their_ranges(catalog: Catalog) -> None:
    """Spot is the published spot price plus the premium; the range is the price's observed
    range with the premium's where the data has one (p5en.48xlarge, p5.48xlarge), the premium's
    alone where it has none (p5.4xlarge: no range is invented); the formulas say so."""
    from planner.catalog.vocabulary import Pricing

    h200 = catalog.instances["p5en.48xlarge"]
    spot = costing.node_rate(catalog, h200, Pricing.spot)
    assert spot.published and spot.usd_per_hour == pytest.approx(35.9826 * 1.15)
    assert (spot.low, spot.high) == (pytest.approx(17.1932 * 1.10), pytest.approx(35.9826 * 1.20))
    assert "published spot" in spot.basis and "at most on-demand" not in spot.basis
    h100 = costing.node_rate(catalog, catalog.instances["p5.48xlarge"], Pricing.spot)
    assert h100.published and h100.usd_per_hour == pytest.approx(26.904583 * 1.15)
    # 52.0766 x 1.20 = 62.49 USD/h is above on-demand: no one buys spot there, the range ends
    # at on-demand, and the basis says so.
    on_demand = catalog.instances["p5.48xlarge"].on_demand_usd_per_hour.value
    assert on_demand < 52.0766 * 1.20
    assert (h100.low, h100.high) == (pytest.approx(13.2182 * 1.10), on_demand)
    assert h100.basis.startswith("published spot 26.904583 USD/h (2026-10-05) x (1 + 0.15")
    assert h100.basis.endswith(f"at most on-demand {on_demand:,.10g} USD/h")
    one = catalog.instances["p5.4xlarge"].spot_usd_per_hour
    assert one is not None and one.low is None and one.high is None
    assert "No low or high was found" in one.source
    single = costing.node_rate(catalog, catalog.instances["p5.4xlarge"], Pricing.spot)
    assert single.published and single.usd_per_hour == pytest.approx(3.33834 * 1.15)
    assert (single.low, single.high) == (
        pytest.approx(3.33834 * 1.10),
        pytest.approx(3.33834 * 1.20),
    )
    assert "inferred" not in single.basis
    formulas = {c.option: c.formula for c in costing.purchase_costs(catalog, "p5.48xlarge", 2)}
    assert "published spot 26.904583 USD/h" in formulas["spot"]
    assert "published 3-year rate 23.77728 USD/h" in formulas["savings_3yr"]
    spot_plan = pricing_plan(catalog, "spot", "p5.48xlarge")
    used = spot_plan.figures["instance.p5.48xlarge.spot_usd_per_hour"]
    assert used.value == 26.904583 and used.date == "2026-10-05"
    assert "pricing.spot.premium" in spot_plan.figures
    assert "pricing.spot.multiplier" not in spot_plan.figures
    # Without the published price, spot falls back to the inferred multiplier, and says so.
    bare = without(catalog, "p5.48xlarge", "spot_usd_per_hour")
    inferred = costing.node_rate(bare, bare.instances["p5.48xlarge"], Pricing.spot)
    assert not inferred.published and "inferred: no published rate" in inferred.basis
    assert inferred.usd_per_hour == pytest.approx(55.04 * 0.5175)
    bare_plan = pricing_plan(bare, "spot", "p5.48xlarge")
    assert "pricing.spot.multiplier" in bare_plan.figures
    assert "instance.p5.48xlarge.spot_usd_per_hour" not in bare_plan.figures


@pytest.mark.parametrize(
    ("name", "one_year", "three_year"),
    [
        # EC2 Instance Savings Plan, No Upfront (fsku, 2026-09-27).
        ("p5.48xlarge", 34.6752, 23.77728),
        ("p5en.48xlarge", 39.87648, 27.34387),
        # 1 year: most likely the Compute Savings Plan; 3 years: the Standard RI (Vantage).
        ("p5.4xlarge", 4.76784, 2.97216),
    ],
)
def test_published_commitment_rates_replace_the_multiplier(
    catalog: Catalog, name: str, one_year: float, three_year: float
) -> None:
    """The P5-class types have published 1-year and 3-year commitment rates (instances.yaml,
    dated, with their source): each option prices a node at its rate with no range, the formula
    says so; a 3-year commitment costs less than a 1-year one, which costs less than on-demand."""
    from planner.catalog.vocabulary import Pricing

    instance = catalog.instances[name]
    for pricing, rate, label in (
        (Pricing.savings_1yr, one_year, "1-year"),
        (Pricing.savings_3yr, three_year, "3-year"),
    ):
        committed = costing.node_rate(catalog, instance, pricing)
        assert committed.published and committed.usd_per_hour == rate
        assert committed.low == committed.high == rate
        assert committed.basis.startswith(f"published {label} rate {rate:,.10g} USD/h (")
    assert three_year < one_year < instance.on_demand_usd_per_hour.value


def test_the_plan_uses_the_published_three_year_rate(catalog: Catalog) -> None:
    """savings_3yr prices a p5.48xlarge node at its published rate, the plan lists that figure
    and not the multiplier; without it (a copy of the catalog) the multiplier is back, inferred."""
    from planner.catalog.vocabulary import Pricing

    committed_plan = pricing_plan(catalog, "savings_3yr", "p5.48xlarge")
    used = committed_plan.figures["instance.p5.48xlarge.savings_3yr_usd_per_hour"]
    assert used.value == 23.77728 and used.unit == "USD/hour" and "3 years" in used.source
    assert "pricing.savings_3yr.multiplier" not in committed_plan.figures
    for pool in committed_plan.pools:
        nodes = pool.nodes
        [three] = [c for c in pool.purchase_options if c.option == "savings_3yr"]
        # Each node-month in whole cents, as the pool's own cost (review: a cent apart).
        assert three.monthly_cost_usd == pytest.approx(nodes * round(23.77728 * 730, 2), abs=1e-6)
        fixed = costing.pool_fixed_cost(catalog).monthly_usd
        assert round(three.monthly_cost_usd + fixed, 2) == pool.monthly_cost_usd
        assert "published 3-year rate 23.77728 USD/h" in three.formula
    bare = without(catalog, "p5.48xlarge", "savings_3yr_usd_per_hour")
    inferred = costing.node_rate(bare, bare.instances["p5.48xlarge"], Pricing.savings_3yr)
    assert not inferred.published and "inferred: no published rate" in inferred.basis
    assert inferred.usd_per_hour == pytest.approx(55.04 * 0.45)
    assert (inferred.low, inferred.high) == (
        pytest.approx(55.04 * 0.40),
        pytest.approx(55.04 * 0.55),
    )
    bare_plan = pricing_plan(bare, "savings_3yr", "p5.48xlarge")
    assert "pricing.savings_3yr.multiplier" in bare_plan.figures
    assert "instance.p5.48xlarge.savings_3yr_usd_per_hour" not in bare_plan.figures
    one_year_plan = pricing_plan(catalog, "savings_1yr", "p5en.48xlarge")
    assert one_year_plan.figures["instance.p5en.48xlarge.savings_1yr_usd_per_hour"].value == (
        39.87648
    )
    assert "pricing.savings_1yr.multiplier" not in one_year_plan.figures


def test_chart_axis_labels_have_separators_not_exponents(catalog: Catalog) -> None:
    """plan.md's chart labels its volumes in billions: three significant figures below 100,
    whole billions with thousands separators above (1,234, never %g's 1.23e+03), each quoted
    so mermaid does not split a label at its comma."""
    from planner.fmt import billions_label

    assert billions_label(58.5e9) == '"58.5"'
    assert billions_label(1_234.4e9) == '"1,234"'
    assert billions_label(0) == '"0"'
    text = "organization: acme\nregion: us-east-1\nworkloads:\n" + workload(
        "huge", "internal", "{input: 900B, output: 180B}"
    )
    markdown = plan_markdown(build_plan(loaded(catalog, text), catalog, "dev", "workloads.yaml"))
    axes = [line for line in markdown.splitlines() if line.strip().startswith("x-axis [")]
    assert axes and all("e+" not in line for line in axes)
    assert any('"1,' in line or '"2,' in line for line in axes)


def test_preview_names_the_published_rate_s_source(catalog: Catalog) -> None:
    """`planner preview` prices a node group with the same figure as the plan and cites its
    source: the published rate's where there is one, the multiplier's where not."""
    from planner.catalog.vocabulary import Pricing
    from planner.graph.preview import _rate_source

    instance = catalog.instances["p5.48xlarge"]
    three = instance.savings_3yr_usd_per_hour
    assert three is not None
    text = _rate_source(catalog, instance, "savings_3yr")
    assert text.startswith("published 3-year rate 23.77728 USD/h (2026-09-27): ")
    assert text.endswith(three.source)
    spot = _rate_source(catalog, catalog.instances["p5.4xlarge"], "spot")
    assert spot.startswith("published spot 3.33834 USD/h") and "No low or high was found" in spot
    bare = without(catalog, "p5.48xlarge", "savings_3yr_usd_per_hour")
    inferred = _rate_source(bare, bare.instances["p5.48xlarge"], "savings_3yr")
    multiplier = catalog.pricing.options[Pricing.savings_3yr].multiplier
    assert "inferred: no published rate found" in inferred
    assert inferred.endswith(multiplier.source)


def test_plan_md_s_chart_draws_every_stretch_between_crossings(catalog: Catalog) -> None:
    """An outside review: nine evenly spaced points drew the lines straight across the
    self-hosted steps, so a chart whose caption said "they cross at 119B, again at 120B, 149B,
    ..." showed self-hosting cheaper nowhere until 207B. The chart's points now hold every
    crossing, the steps near them and the workload's own volume: between two crossings some
    point shows the side the plan says is cheaper there, and the own volume is labelled."""
    found = 0
    the_plan = plan(catalog)
    for w in the_plan.workloads:
        b = w.answers.volume_economics.break_even
        if b is None or len(b.crossings) < 2:
            continue
        tokens, api, own = b.chart_tokens, b.chart_api_usd, b.chart_self_hosted_usd
        assert tokens == sorted(set(tokens)) and len(tokens) == len(api) == len(own)
        assert {c.monthly_tokens for c in b.crossings} <= set(tokens)
        for crossing, after in pairwise(b.crossings):
            inside = [
                i
                for i, v in enumerate(tokens)
                if crossing.monthly_tokens < v < after.monthly_tokens
            ]
            cheaper_own = [own[i] < api[i] for i in inside]
            assert inside and any(
                side == (crossing.cheaper == "self_hosted") for side in cheaper_own
            ), (w.name, crossing, after)
            found += 1
    assert found >= 2
    text = plan_markdown(the_plan)
    assert '(now)"' in text


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=40, unique=True))
def test_chart_labels_never_repeat_a_category(tokens: list[int]) -> None:
    """mermaid's categories are a list: a label repeated would merge two points into one, so
    each label is unique however close the volumes (a step edge and the point just past it)."""
    import json

    from planner.fmt import chart_labels

    ordered = sorted(tokens)
    labels = json.loads(chart_labels(ordered, ordered[-1]))
    assert len(labels) == len(ordered) == len(set(labels))
    assert labels[-1].endswith(" (now)")


def test_the_chart_reaches_past_the_last_crossing_the_plan_lists() -> None:
    """An outside review: where the API is only slightly dearer than a unit, the sides swap
    over many steps, and crossings listed up to ten times the volume fell off a chart drawn to
    twice the first crossing (48.5B to 67.5B, against a chart ending at 40B)."""
    from planner.planning.crossings import chart_points, chart_top

    found, _ = costing.crossings(1e-9, 9.5, 1e10, 1, 1e11, 0.0, 1.0, limit=12)
    listed = [c.monthly_tokens for c in found]
    assert len(listed) >= 3 and listed[-1] > 40e9
    first = costing.break_even_tokens(1e-9, 9.5, 1e10, 1, 0.0, 1.0)
    top = chart_top(first, 0.5e10, 1e10, listed)
    assert top >= listed[-1]
    assert {round(c) for c in listed} <= set(chart_points(top, 1e10, listed, 0.5e10))
