"""The three answers, decided separately for each workload."""

from __future__ import annotations

import pytest

from planner.catalog import TIER_ORDER, Catalog
from planner.catalog.vocabulary import Tier
from planner.costing import pool_fixed_cost
from planner.errors import PlannerError
from planner.planfile import VolumeEconomics
from tests.conftest import workload_yaml
from tests.helpers import only, plan_text


@pytest.mark.parametrize(
    ("task", "tier"),
    [
        ("classification", "small"),
        ("extraction", "small"),
        ("faq", "small"),
        ("rag_qa", "small"),
        ("summarization", "capable"),
        ("chat", "capable"),
        ("code_assistant", "capable"),
        ("code_generation", "frontier"),
        ("multi_step_reasoning", "frontier"),
        ("synthesis", "frontier"),
        ("legal_analysis", "frontier"),
        ("financial_analysis", "frontier"),
    ],
)
def test_task_quality_tier(catalog: Catalog, task: str, tier: str) -> None:
    answer = only(plan_text(workload_yaml(task=task), catalog)).answers.task_quality
    assert answer.tier == tier
    assert answer.reason.startswith(task)


def test_quality_field_overrides_the_task(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="faq", quality="frontier"), catalog))
    assert workload.answers.task_quality.tier == Tier.frontier
    assert "set to frontier in the workloads file" in workload.answers.task_quality.reason
    assert all(o.tier == Tier.frontier for o in workload.answers.volume_economics.options)


@pytest.mark.parametrize(
    ("data", "perimeter"),
    [
        ("public", "contractual"),
        ("internal", "contractual"),
        ("confidential", "private_link"),
        ("regulated", "technical"),
    ],
)
def test_data_sensitivity_perimeter(catalog: Catalog, data: str, perimeter: str) -> None:
    answer = only(plan_text(workload_yaml(data=data), catalog)).answers.data_sensitivity
    assert answer.perimeter == perimeter


def test_every_option_meets_tier_and_perimeter(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="chat", data="confidential"), catalog))
    options = workload.answers.volume_economics.options
    assert options
    for option in options:
        assert TIER_ORDER[option.tier] >= TIER_ORDER[Tier.capable]
        if option.placement == "cloud_api":
            assert option.provider == "bedrock"  # the only provider behind PrivateLink
    placements = {o.placement for o in options}
    assert placements == {"cloud_api", "self_hosted"}


def test_choice_is_the_cheapest_option(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="chat"), catalog))
    economics = workload.answers.volume_economics
    cheapest = min(o.monthly_cost_usd for o in economics.options)
    chosen = next(o for o in economics.options if o.id == economics.chosen)
    assert chosen.monthly_cost_usd == cheapest == workload.monthly_cost_usd
    assert economics.reason.startswith(f"cheapest of {len(economics.options)} option(s)")


def test_regulated_frontier_gets_best_open_model_and_a_warning(catalog: Catalog) -> None:
    """No frontier model meets the technical perimeter: the top-ranked capable model, with the
    cheaper capable models priced beside it and what insisting on the top one costs."""
    workload = only(plan_text(workload_yaml(task="legal_analysis", data="regulated"), catalog))
    assert workload.placement == "self_hosted"
    assert workload.model == "deepseek-v3.2"  # the highest-ranked open model
    economics = workload.answers.volume_economics
    assert {o.model for o in economics.options} == {"deepseek-v3.2"}
    capable = {m for m, model in catalog.models.items() if model.tier is Tier.capable}
    cheaper = [o for o in economics.alternatives if o.model != "deepseek-v3.2"]
    assert {o.model for o in cheaper} == capable - {"deepseek-v3.2"}
    assert all(o.monthly_cost_usd < workload.monthly_cost_usd for o in cheaper)
    assert [o.monthly_cost_usd for o in cheaper] == sorted(o.monthly_cost_usd for o in cheaper)
    [warning] = [w for w in workload.warnings if w.code == "quality_ceiling"]
    assert "frontier" in warning.message and "deepseek-v3.2" in warning.message
    assert "insisting on the top-ranked deepseek-v3.2 costs" in warning.message
    assert all(o.model in warning.message for o in cheaper)
    # The price of insisting is in each alternative's note (the warning carries no prices, so
    # the same warning of many workloads groups into one line).
    assert "USD" not in warning.message
    extra = workload.monthly_cost_usd - cheaper[0].monthly_cost_usd
    assert f"{extra:,.2f} USD a month less than {workload.answers.volume_economics.chosen}" in (
        cheaper[0].note or ""
    )


def test_confidential_frontier_gets_claude_on_bedrock(catalog: Catalog) -> None:
    """Claude through a Bedrock inference profile is a private_link frontier option."""
    workload = only(plan_text(workload_yaml(task="synthesis", data="confidential"), catalog))
    assert not any(w.code == "quality_ceiling" for w in workload.warnings)
    assert workload.placement == "cloud_api"
    assert workload.model.startswith("bedrock-claude-opus-5.5-")


def test_public_frontier_goes_to_a_frontier_api(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="code_generation", data="public"), catalog))
    assert workload.placement == "cloud_api"
    assert workload.answers.task_quality.tier == Tier.frontier
    assert catalog.api_models[workload.model].tier == Tier.frontier
    # Only the note of where a Bedrock profile may process it, no quality warning.
    assert {w.code for w in workload.warnings} <= {"cross_region_inference"}


def test_vendor_data_limits(catalog: Catalog) -> None:
    """DeepSeek's own API may receive public data only."""

    def api_models(data: str) -> set[str]:
        workload = only(plan_text(workload_yaml(task="chat", data=data), catalog))
        options = workload.answers.volume_economics.options
        return {o.model for o in options if o.placement == "cloud_api"}

    # Retired from DeepSeek's API on 2026-07-24: compared only when pinned, and then only for
    # public data.
    assert "deepseek-v3.2-api" not in api_models("public")
    pinned = workload_yaml(task="chat", data="public", model="deepseek-v3.2-api")
    assert only(plan_text(pinned, catalog)).model == "deepseek-v3.2-api"
    with pytest.raises(PlannerError):
        plan_text(workload_yaml(task="chat", data="internal", model="deepseek-v3.2-api"), catalog)
    assert "gpt-6.1-terra" in api_models("internal")


def test_deepseek_fp8_on_h100_needs_two_nodes(catalog: Catalog) -> None:
    workload = only(
        plan_text(workload_yaml(task="chat", data="regulated", model="deepseek-v3.2"), catalog)
    )
    h100 = next(
        o for o in workload.answers.volume_economics.options if o.instance_type == "p5.48xlarge"
    )
    assert h100.memory_fit is not None
    assert not h100.memory_fit.fits_one_node
    assert (h100.memory_fit.tensor_parallel, h100.memory_fit.pipeline_parallel) == (8, 2)
    assert h100.nodes == 2


def test_pinned_api_model_must_respect_the_perimeter(catalog: Catalog) -> None:
    with pytest.raises(PlannerError) as caught:
        plan_text(workload_yaml(data="regulated", model="gpt-4.1"), catalog)
    [problem] = caught.value.problems
    assert problem.field == "workloads[0].model"
    assert "technical" in problem.message


def test_pinned_model_restricts_the_options(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="chat", model="claude-sonnet-4"), catalog))
    assert [o.id for o in workload.answers.volume_economics.options] == [
        "cloud_api/claude-sonnet-4"
    ]


def test_high_availability_means_two_nodes(catalog: Catalog) -> None:
    plan = plan_text(workload_yaml(data="regulated", availability="high"), catalog)
    workload = only(plan)
    [pool] = plan.pools
    assert workload.pool == pool.name
    assert pool.nodes >= 2
    assert all((o.nodes or 0) >= 2 for o in workload.answers.volume_economics.options)


H100_ONLY = "assumptions:\n  instance_types: [p5.48xlarge]\n"


def test_volume_drives_node_count(catalog: Catalog) -> None:
    small = plan_text(
        H100_ONLY + workload_yaml(data="regulated", model="llama-4-maverick"), catalog
    )
    big = plan_text(
        H100_ONLY
        + workload_yaml(
            data="regulated",
            model="llama-4-maverick",
            monthly_tokens="{input: 200B, output: 40B}",
        ),
        catalog,
    )
    assert small.pools[0].nodes == 1
    assert big.pools[0].nodes > 5
    # Nodes scale; the pool's staff and network pieces do not.
    fixed = pool_fixed_cost(catalog).monthly_usd
    assert big.pools[0].monthly_cost_usd == pytest.approx(
        fixed + (small.pools[0].monthly_cost_usd - fixed) * big.pools[0].nodes
    )


GENEROUS = "assumptions:\n  pricing: savings_3yr\n  utilization: 1\n"


def test_break_even_is_reported_and_consistent(catalog: Catalog) -> None:
    """At the reported break-even volume, the self-hosted and API options cost the same."""

    def costs_at(volume: int) -> dict[str, float]:
        """Every admissible option's cost standing alone (what a one-workload plan pays)."""
        tokens = f"{{input: {volume * 5 // 6}, output: {volume // 6}}}"
        text = workload_yaml(task="faq", monthly_tokens=tokens)
        options = only(plan_text(GENEROUS + text, catalog)).answers.volume_economics.options
        return {o.id: o.monthly_cost_usd for o in options}

    base = only(plan_text(GENEROUS + workload_yaml(task="faq"), catalog))
    break_even = base.answers.volume_economics.break_even
    assert break_even is not None and break_even.monthly_tokens is not None
    volume = break_even.monthly_tokens
    assert volume > base.answers.volume_economics.monthly_input_tokens
    api, own = break_even.api_option, break_even.self_hosted_option
    at = costs_at(volume)
    assert at[api] == pytest.approx(break_even.api_monthly_usd, rel=1e-3)
    assert at[own] == pytest.approx(at[api], rel=1e-3)
    # Below the break-even the API wins, above it self-hosting does.
    below = costs_at(volume // 2)
    assert below[api] < below[own]
    above = costs_at(volume * 11 // 10)
    assert above[own] < above[api]


def test_never_breaks_even_says_why(catalog: Catalog) -> None:
    # A capable-tier task: Bedrock's Llama 4 Scout costs less a token than any capable model's
    # node serves at 30 tok/s a user (the throughput model's answer at 2,000 / 400 tokens).
    workload = only(plan_text(workload_yaml(task="chat", data="internal"), catalog))
    break_even = workload.answers.volume_economics.break_even
    assert break_even is not None
    assert break_even.monthly_tokens is None
    assert "never costs less than" in break_even.explanation
    assert "less than the unit" in break_even.explanation


def test_break_even_chart_lines_cross_where_reported(catalog: Catalog) -> None:
    base = only(plan_text(GENEROUS + workload_yaml(task="faq"), catalog))
    break_even = base.answers.volume_economics.break_even
    assert break_even is not None and break_even.monthly_tokens is not None
    tokens, api, own = (
        break_even.chart_tokens, break_even.chart_api_usd, break_even.chart_self_hosted_usd
    )  # fmt: skip
    assert len(tokens) == len(api) == len(own) >= 9 and tokens[0] == 0
    assert tokens[-1] >= 2 * break_even.monthly_tokens
    # Unused, the API costs its access (nothing here: the callers are in another account, which
    # makes its own endpoint) and self-hosting its minimum pool.
    assert 0 <= api[0] < own[0]
    assert api == sorted(api) and own == sorted(own)
    before = [i for i, v in enumerate(tokens) if v < break_even.monthly_tokens]
    after = [i for i, v in enumerate(tokens) if v > break_even.monthly_tokens]
    assert all(api[i] < own[i] for i in before)
    assert any(api[i] > own[i] for i in after)
    per_token = break_even.api_monthly_usd / break_even.monthly_tokens
    assert api[4] - api[0] == pytest.approx(per_token * tokens[4], rel=1e-5)


def test_kv_cache_of_long_contexts_and_many_requests_needs_more_nodes(catalog: Catalog) -> None:
    """Llama 3.1 8B on one H100 keeps 62 GB of KV cache (72 GB of vLLM's budget less 2 GB the
    engine keeps and 8 GB of weights), 946k tokens at 64 KiB each (its FP8 KV cache,
    architectures.yaml): 100 requests of 33,000 tokens need ceil(3.49) = 4 nodes, though the
    volume alone needs one."""
    option_id = "self_hosted/llama-3.1-8b/p5.4xlarge"

    def nodes(**fields: str) -> int:
        workload = only(plan_text(workload_yaml(task="classification", **fields), catalog))
        [option] = [o for o in workload.answers.volume_economics.options if o.id == option_id]
        assert option.nodes is not None
        return option.nodes

    shape = "{input_tokens: 32000, output_tokens: 1000}"
    assert nodes(request=shape) == 1
    assert nodes(request=shape, concurrency="100") == 4
    # Without a concurrency, the peak alone: a node serves 622.9 output tok/s at this shape and
    # 30 tok/s a user, so 3,000 tok/s need 5 (the requests in flight at that rate are in the
    # throughput model's batch already: Demand.kv_tokens).
    assert nodes(request=shape, peak_tokens_per_second="3000") == 5
    workload = only(plan_text(workload_yaml(request=shape, concurrency="100"), catalog))
    option = next(o for o in workload.answers.volume_economics.options if o.id == option_id)
    # A request holds its prompt and, on average over its decode, half its output (vLLM grows
    # its cache as it writes): 32,500 tokens, as the throughput model sizes a batch.
    assert (
        "KV cache 100 request(s) in flight (its concurrency) x 32,500 tokens held (prompt "
        "32,000 + 0.5 x output 1,000) / 946k" in option.formula
    )
    # The plan shows the throughput behind the count: shape, per-user speed, rate and bound.
    assert option.throughput is not None
    assert (option.throughput.input_tokens, option.throughput.output_tokens) == (32000, 1000)
    assert option.throughput.user_output_tps == 30
    assert option.throughput.output_tokens_per_second == pytest.approx(622.9, abs=0.1)
    assert option.throughput.bound == "per-user speed"


def test_a_context_no_replica_holds_rules_the_model_out(catalog: Catalog) -> None:
    """The tensor-parallel group is chosen per workload shape: a 1,000,000-token request needs
    98 GB of Llama 4 Scout's KV cache (96 KiB a token, FP8), more than a one-H200 replica (the
    group p5en.48xlarge serves the plan's 2,000/400 shape best with) keeps, so its replicas span
    more GPUs and Scout on p5en stays. A 5,000,000-token request fits only eight H200s (9.06M
    tokens), not eight H100s (4.59M): Scout on p5 drops out. A 9,500,000-token one (within
    Scout's 10M window) fits no Scout replica: pinned to Scout, it is an error. (A batch
    reader, 1 tok/s a user, the slowest the schema takes: a multi-million-token prompt's
    prefill takes minutes.)"""

    def plan_of(request: str, **fields: str) -> VolumeEconomics:
        text = workload_yaml(
            task="chat", data="regulated", request=request, user_output_tps="1", **fields
        )
        return only(plan_text(text, catalog)).answers.volume_economics

    economics = plan_of("{input_tokens: 999000, output_tokens: 1000}")
    by_id = {o.id: o for o in economics.options}
    p5en = by_id["self_hosted/llama-4-scout/p5en.48xlarge"]
    assert p5en.memory_fit is not None and p5en.memory_fit.gpus_per_replica > 1
    assert "self_hosted/llama-4-scout/p5.48xlarge" in by_id
    assert "does not fit" not in economics.reason
    economics = plan_of("{input_tokens: 4999000, output_tokens: 1000}")
    ids = {o.id for o in economics.options}
    assert "self_hosted/llama-4-scout/p5en.48xlarge" in ids
    assert "self_hosted/llama-4-scout/p5.48xlarge" not in ids
    assert "does not fit a replica's KV cache: self_hosted/llama-4-scout/p5.48xlarge" in (
        economics.reason
    )
    with pytest.raises(PlannerError) as caught:
        plan_of("{input_tokens: 9499000, output_tokens: 1000}", model="llama-4-scout")
    [problem] = caught.value.problems
    assert problem.field == "workloads[0].request"
    assert "9,500,000 tokens fits no replica's KV cache" in problem.message


def test_costs_carry_a_range_from_the_uncertain_assumptions(catalog: Catalog) -> None:
    """At 110B tokens on Maverick (on p5.48xlarge) the node count moves with utilization
    (0.2-0.6) and the throughput model's error (its fit's 1.11x either way), so the cost has a
    range around the expected value; the pool, the workload and the totals carry the same one."""
    text = H100_ONLY + workload_yaml(
        data="regulated", model="llama-4-maverick", monthly_tokens="{input: 110B, output: 22B}"
    )
    plan = plan_text(text, catalog)
    workload, pool = only(plan), plan.pools[0]
    assert workload.monthly_cost_low_usd < workload.monthly_cost_usd
    assert workload.monthly_cost_usd < workload.monthly_cost_high_usd
    assert (pool.monthly_cost_low_usd, pool.monthly_cost_high_usd) == (
        workload.monthly_cost_low_usd,
        workload.monthly_cost_high_usd,
    )
    assert plan.totals.monthly_cost_low_usd == workload.monthly_cost_low_usd
    # The ends are whole nodes at the ends of the ranges, plus the pool's fixed costs.
    fixed = pool_fixed_cost(catalog).monthly_usd
    node = 55.04 * 730
    for end in (workload.monthly_cost_low_usd, workload.monthly_cost_high_usd):
        assert ((end - fixed) / node) == pytest.approx(round((end - fixed) / node))
    # A given utilization has no range of its own; the throughput model's error stays: at 110B
    # its favourable end saves no node, its unfavourable end needs one more.
    given = text.replace(
        "  instance_types: [p5.48xlarge]\n", "  instance_types: [p5.48xlarge]\n  utilization: 0.4\n"
    )
    fixed_plan = only(plan_text(given, catalog))
    assert fixed_plan.monthly_cost_low_usd == fixed_plan.monthly_cost_usd
    assert fixed_plan.monthly_cost_high_usd - fixed_plan.monthly_cost_usd == pytest.approx(
        node, abs=0.01
    )
    assert workload.monthly_cost_high_usd - workload.monthly_cost_low_usd > (
        fixed_plan.monthly_cost_high_usd - fixed_plan.monthly_cost_low_usd
    )
    # Spot's multiplier has a range of its own (0.297-0.66 of on-demand).
    spot = only(
        plan_text(
            given.replace("  utilization: 0.4\n", "  utilization: 0.4\n  pricing: spot\n"), catalog
        )
    )
    assert spot.monthly_cost_low_usd < spot.monthly_cost_usd < spot.monthly_cost_high_usd


def test_an_api_cost_has_no_range(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(), catalog))
    assert workload.placement == "cloud_api"
    assert workload.monthly_cost_low_usd == workload.monthly_cost_usd
    assert workload.monthly_cost_high_usd == workload.monthly_cost_usd


def test_a_model_too_big_for_one_node_is_priced_at_lower_precision_side_by_side(
    catalog: Catalog,
) -> None:
    """DeepSeek V3.2's 671 GB of FP8 weights need two H100 nodes or one H200 node (options);
    its int4 weights (362 GB) fit one H100 node: an alternative with its quality note, never
    chosen. (Pinned: unpinned, a cheaper capable model would serve this frontier task.)"""
    text = workload_yaml(task="legal_analysis", data="regulated", model="deepseek-v3.2")
    workload = only(plan_text(text, catalog))
    economics = workload.answers.volume_economics
    ids = {o.id for o in economics.options}
    assert {
        "self_hosted/deepseek-v3.2/p5.48xlarge",
        "self_hosted/deepseek-v3.2/p5en.48xlarge",
    } <= ids
    [alternative] = economics.alternatives
    assert alternative.id == "self_hosted/deepseek-v3.2/p5.48xlarge/int4"
    assert alternative.id not in ids and economics.chosen != alternative.id
    assert alternative.nodes == 1 and alternative.memory_fit is not None
    assert alternative.memory_fit.precision == "int4" and alternative.memory_fit.fits_one_node
    multi_node = next(
        o for o in economics.options if o.id == "self_hosted/deepseek-v3.2/p5.48xlarge"
    )
    assert alternative.monthly_cost_usd < multi_node.monthly_cost_usd
    assert alternative.note is not None
    assert catalog.precisions["int4"].quality_note in alternative.note
    # Models that fit one node have no such alternative.
    text = workload_yaml(task="classification", data="regulated", model="llama-3.1-8b")
    small = only(plan_text(text, catalog))
    assert small.answers.volume_economics.alternatives == []


def test_staff_and_amortization_can_be_set(catalog: Catalog) -> None:
    """The workloads file sets its own engineer cost, staffing and hardware horizon."""
    text = workload_yaml(data="regulated", model="llama-4-scout")
    default = plan_text(text, catalog)
    given = plan_text(
        text.replace(
            "workloads:",
            "assumptions: {engineer_usd_per_month: 20000, pool_fte: 0.5, amortization_months: 36}"
            "\nworkloads:",
        ),
        catalog,
    )
    default_pool, pool = default.pools[0], given.pools[0]
    # 0.5 x 20,000 instead of 0.25 x 16,667.
    assert round(pool.monthly_cost_usd - default_pool.monthly_cost_usd, 2) == round(
        10_000 - 0.25 * 16_667, 2
    )
    assert given.figures["operations.pool_fte"].value == 0.5
    assert given.figures["operations.pool_fte"].source.startswith("set in the workloads file")
    assert given.assumptions["amortization_months"] == 36
    buy = {o.option: o for o in pool.purchase_options}["buy"]
    default_buy = {o.option: o for o in default_pool.purchase_options}["buy"]
    assert "/ 36 months" in buy.formula and "/ 18 months" in default_buy.formula
    assert buy.monthly_cost_usd < default_buy.monthly_cost_usd


def test_a_pinned_open_model_may_also_be_bought_as_an_api(catalog: Catalog) -> None:
    """Pinning an open-weights model pins the model, not how it is served: the same weights sold
    as an API (Bedrock's Maverick) compete with self-hosting it where the perimeter allows."""
    internal = only(plan_text(workload_yaml(task="chat", model="llama-4-maverick"), catalog))
    ids = [o.id for o in internal.answers.volume_economics.options]
    assert "cloud_api/bedrock-llama-4-maverick" in ids
    assert all(
        o.model in ("llama-4-maverick", "bedrock-llama-4-maverick")
        for o in internal.answers.volume_economics.options
    )
    # At 120M tokens a month the API costs a fraction of a node.
    assert internal.answers.volume_economics.chosen == "cloud_api/bedrock-llama-4-maverick"
    # Regulated data: no API may see it, so the pin self-hosts as before.
    regulated = only(
        plan_text(workload_yaml(task="chat", data="regulated", model="llama-4-maverick"), catalog)
    )
    assert regulated.placement == "self_hosted"
    assert all(o.placement == "self_hosted" for o in regulated.answers.volume_economics.options)


# ------------------------------------------------- Bedrock models served through inference profiles


def _stays_in_region(catalog: Catalog, data: str) -> Catalog:
    classes = dict(catalog.data_classes)
    key = next(k for k in classes if k.value == data)
    classes[key] = classes[key].model_copy(update={"stays_in_region": True})
    return catalog.model_copy(update={"data_classes": classes})


def test_the_plan_says_where_a_profile_may_process_the_data(catalog: Catalog) -> None:
    # A geographic profile names its regions (Llama 4 Scout, pinned: Claude Haiku 5.5's global
    # profile is the cheaper small model now).
    text = workload_yaml(task="classification", data="confidential", model="bedrock-llama-4-scout")
    workload = only(plan_text(text, catalog))
    assert workload.provider == "bedrock"
    [warning] = [w for w in workload.warnings if w.code == "cross_region_inference"]
    assert "us.meta.llama4-scout-17b-instruct-v1:0" in warning.message
    assert "may be processed in us-east-1, us-east-2, us-west-1, us-west-2" in warning.message


def test_data_that_stays_in_region_gets_no_profile_that_leaves_it(catalog: Catalog) -> None:
    strict = _stays_in_region(catalog, "confidential")
    workload = only(plan_text(workload_yaml(task="classification", data="confidential"), strict))
    assert workload.provider != "bedrock"
    assert not [w for w in workload.warnings if w.code == "cross_region_inference"]
    pinned = workload_yaml(
        task="classification", data="confidential", model="bedrock-llama-4-scout"
    )
    with pytest.raises(PlannerError) as refused:
        plan_text(pinned, strict)
    message = str(refused.value.problems[0])
    assert "confidential data stays in us-east-1" in message
    assert (
        "us.meta.llama4-scout-17b-instruct-v1:0 may process it in us-east-2, us-west-1" in message
    )


def test_a_profile_is_not_offered_where_it_cannot_be_called(catalog: Catalog) -> None:
    text = workload_yaml(
        task="classification", data="confidential", model="bedrock-llama-4-scout"
    ).replace("region: us-east-1", "region: eu-west-1\nassumptions: {price_region: us-east-1}")
    with pytest.raises(PlannerError) as refused:
        plan_text(text, catalog)
    assert "not callable in eu-west-1" in str(refused.value.problems[0])


def test_requests_in_flight_at_their_rate_take_no_more_nodes_than_the_rate(
    catalog: Catalog,
) -> None:
    """Long answers read slowly: 30,000-token answers at 10 tok/s a user. The throughput model's
    unit is bound by its KV memory and serves its users at about 30 tok/s, faster than the 10
    asked; counting the requests in flight at 10 tok/s (three times as many as are ever there)
    sized the KV cache at 17 nodes where the rate needs 6 (an outside review). Now the nodes
    are the rate's, no KV term is shown without a stated concurrency, and the break-even's
    chart prices the workload's own volume at the option's cost."""
    text = workload_yaml(
        monthly_tokens="{input: 5B, output: 150B}",
        request="{input_tokens: 1000, output_tokens: 30000}",
        user_output_tps="10",
    )
    workload = only(plan_text(text, catalog))
    economics = workload.answers.volume_economics
    break_even = economics.break_even
    assert break_even is not None
    [own] = [o for o in economics.options if o.id == break_even.self_hosted_option]
    assert own.id == "self_hosted/llama-3.1-8b/p5en.48xlarge"
    assert own.formula is not None and "KV cache" not in own.formula
    assert own.throughput is not None and own.throughput.bound == "KV memory"
    # 57,077.6 output tok/s on average over 0.4 utilization of 27,054.3 a unit: 5.27, so 6.
    assert own.nodes == 6
    volume = 155_000_000_000  # 5B input + 150B output
    at_volume = dict(zip(break_even.chart_tokens, break_even.chart_self_hosted_usd, strict=True))
    assert at_volume[volume] == pytest.approx(own.monthly_cost_usd, abs=0.01)
