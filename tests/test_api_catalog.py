"""The API catalog of today: current models per provider and tier, Claude on Bedrock through
inference profiles (its IAM grants and data-class gate), cached-input prices, and what a quality
ceiling offers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import costing
from planner.catalog import Catalog
from planner.catalog.vocabulary import DataClass, Tier
from planner.cli import main
from planner.graph.offline import OfflineRun, run_program
from planner.graph.resources import graph_from_offline
from planner.planfile import Option, read_plan
from planner.verification.expectations import Expectations
from planner.verification.run import verify
from tests.conftest import workload_yaml
from tests.helpers import only, plan_text
from tests.test_stacks import _MODEL_VERSION, accepted, plan_project

PRICE_DATE = date(2026, 12, 1)
PROVIDERS = ("anthropic", "openai", "google")
# A confidential frontier workload whose callers name their VPC (the endpoint goes there).
DEAL_MEMOS = workload_yaml(
    name="deal-memos",
    task="synthesis",
    data="confidential",
    monthly_tokens="{input: 200M, output: 20M}",
    consumers="[{cidr: 10.20.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, "
    "subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]}]",
)


def price(catalog: Catalog, api_id: str, shape: tuple[int, int] = (2000, 400)) -> costing.ApiPrice:
    return costing.api_price(catalog, catalog.api_models[api_id], *shape, PRICE_DATE)


# ----------------------------------------------------------------------------- the catalog
def test_every_provider_has_a_current_model_of_each_tier_with_its_source(
    catalog: Catalog,
) -> None:
    for provider in PROVIDERS:
        current = {
            a.tier: a for a in catalog.api_models.values() if a.provider == provider and a.current
        }
        assert set(current) == set(Tier), provider
        for api in current.values():
            assert api.tier_source is not None and api.tier_source.source and api.tier_source.date


def test_current_prices_are_the_pinned_package_s(catalog: Catalog) -> None:
    """The pinned package's figures at the plan's price_date (2026-12-01): Opus 5.5 at 4 / 20,
    not Opus 4.8's 5 / 25 nor Opus 4's 15 / 75; Fable 5.2 at 8 / 40, not 5.1's 10 / 50."""
    for api_id, expected in {
        "claude-fable-5.2": (8, 40, 0.2),
        "claude-fable-5.1": (10, 50, 0.25),  # pin-only since Fable 5.2 (2026-11-09)
        "claude-opus-5.5": (4, 20, 0.2),
        "claude-sonnet-5.5": (2, 10, 0.1),
        "claude-haiku-5.5": (0.1, 0.5, 0.01),
        "gpt-6-astra": (10, 50, 1),
        "gpt-6.1-sol": (2, 10, 0.1),
        "gpt-6.1-terra": (1, 5, 0.05),
        "gpt-6-luna": (0.1, 0.5, 0.01),
        # Gemini 4 Argon after its introductory 2 / 10, which ended on 2026-12-01.
        "gemini-4-argon": (4, 20, 0.2),
        "gemini-3.8-flash": (0.75, 3.75, 0.075),
        "gemini-3.5-flash-lite": (0.3, 2.5, 0.03),
        # Bedrock: the US profile at AWS's regional rate, 10 % above the global one.
        "bedrock-claude-opus-5.5-us": (4.4, 22, 0.22),
        "bedrock-claude-opus-5.5-global": (4, 20, 0.2),
        "bedrock-claude-sonnet-5.5-us": (2.2, 11, 0.11),
        "bedrock-claude-haiku-5.5-global": (0.1, 0.5, 0.01),
        "claude-opus-4": (15, 75, 1.5),  # the article's, still priced when pinned
        "claude-opus-4.8": (5, 25, 0.5),  # superseded, still priced when pinned
    }.items():
        found = price(catalog, api_id)
        assert (
            found.input_usd_per_mtok,
            found.output_usd_per_mtok,
            found.cached_input_usd_per_mtok,
        ) == pytest.approx(expected), api_id


def test_the_article_s_models_are_named_options_only(catalog: Catalog) -> None:
    """Unpinned, a frontier task never gets a mid-2025 model; pinned, it does, at its price."""
    article = {a for a, m in catalog.api_models.items() if not m.current}
    assert {"claude-opus-4", "gpt-4.1", "gemini-2.5-pro"} <= article
    workload = only(plan_text(workload_yaml(task="code_generation"), catalog))
    assert not {o.model for o in workload.answers.volume_economics.options} & article
    pinned = only(plan_text(workload_yaml(task="code_generation", model="claude-opus-4"), catalog))
    assert pinned.model == "claude-opus-4"
    assert "15 USD/M" in pinned.answers.volume_economics.options[0].formula


# ------------------------------------------------------------------- Claude on Bedrock
def test_confidential_frontier_work_gets_claude_through_bedrock(catalog: Catalog) -> None:
    workload = only(plan_text(DEAL_MEMOS, catalog))
    assert workload.answers.data_sensitivity.perimeter.value == "private_link"
    options = workload.answers.volume_economics.options
    apis = {o.model for o in options if o.placement == "cloud_api"}
    assert {"bedrock-claude-opus-5.5-us", "bedrock-claude-opus-5.5-global"} <= apis
    assert not apis & {"claude-opus-5.5", "gpt-6-astra"}  # no PrivateLink to them
    assert not [a for a in apis if "4.8" in a]  # superseded: pin-only
    # The global profile is the cheaper one, and the plan says where it may process the data.
    assert workload.model == "bedrock-claude-opus-5.5-global"
    chosen = next(o for o in options if o.id == workload.answers.volume_economics.chosen)
    assert chosen.note is not None and "any of 34 commercial AWS regions" in chosen.note
    us = next(o for o in options if o.model == "bedrock-claude-opus-5.5-us")
    assert us.note is not None and "us-east-1, us-east-2, us-west-1, us-west-2" in us.note
    [warning] = [w for w in workload.warnings if w.code == "cross_region_inference"]
    assert "global.anthropic.claude-opus-5-5" in warning.message
    assert "any of 34 commercial regions" in warning.message


def test_data_that_stays_in_region_gets_no_cross_region_profile(catalog: Catalog) -> None:
    """The gate the code applies to destination regions: a data class that must stay in the
    stack's region may use neither the US nor the global profile, so confidential frontier
    work falls back to the quality ceiling."""
    classes = dict(catalog.data_classes)
    classes[DataClass.confidential] = classes[DataClass.confidential].model_copy(
        update={"stays_in_region": True}
    )
    strict = catalog.model_copy(update={"data_classes": classes})
    workload = only(plan_text(DEAL_MEMOS, strict))
    options = workload.answers.volume_economics.options
    assert not [o for o in options if o.model.startswith("bedrock-claude")]
    assert any(w.code == "quality_ceiling" for w in workload.warnings)


@pytest.fixture(scope="module")
def claude_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[OfflineRun, Path]:
    project = tmp_path_factory.mktemp("claude")
    repo = Path(__file__).resolve().parent.parent
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((repo / name).read_text())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        config = plan_project(project, DEAL_MEMOS)
        return run_program(project, "dev", config), project


def _resources(run: OfflineRun, token: str, name: str) -> dict[str, Any]:
    [found] = [r for r in run.resources if r.type == token and r.name == name]
    return found.inputs


def test_the_stack_grants_exactly_the_global_profile_and_its_model(
    claude_run: tuple[OfflineRun, Path],
) -> None:
    """A global profile is granted as the Bedrock user guide says: the profile in this region,
    the model in this region and the model's region-less ARN (any commercial region); nothing
    by wildcard, and the endpoint policy names the same."""
    run, _ = claude_run
    expected = [
        "arn:aws:bedrock:::foundation-model/anthropic.claude-opus-5-5",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-opus-5-5",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-5-5",
    ]
    policy = _resources(run, "aws:iam/policy:Policy", "deal-memos-api-access")
    [invoke] = json.loads(policy["policy"])["Statement"]
    assert invoke["Resource"] == expected
    endpoint = _resources(
        run,
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "bedrock-link-vpc-0a1b2c3d4e5f60718-bedrock-runtime",
    )
    [statement] = json.loads(endpoint["policy"])["Statement"]
    assert statement["Resource"] == expected
    assert lint(invoke) == [] and lint(statement) == []


def lint(statement: dict[str, Any]) -> list[tuple[str, Any]]:
    """Parliament's findings of medium severity or more on one statement, but those
    tests/test_stacks.py accepts for the Bedrock statements (the resource types not named)."""
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

    override_config(
        str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    )
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    policy = analyze_policy_string(
        _MODEL_VERSION.sub(r'\1-v\2"', text), include_community_auditors=True
    )
    return [
        (f.issue, f.detail)
        for f in map(enhance_finding, policy.findings)
        if f.severity in ("MEDIUM", "HIGH", "CRITICAL")
        and not accepted(statement.get("Sid", ""), f.issue, f.detail)
    ]


def test_verify_passes_the_global_profile_and_refuses_another_model(
    claude_run: tuple[OfflineRun, Path], catalog: Catalog
) -> None:
    run, project = claude_run
    plan = read_plan(project / "plans/dev/plan.json")
    graph = graph_from_offline(run)
    assert verify(graph, Expectations.of(plan, catalog), run.outputs).failures() == []
    [endpoint] = [
        r for r in graph.resources.values() if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"
    ]
    document = json.loads(endpoint.inputs["policy"])
    document["Statement"][0]["Resource"].append(
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-opus-5"
    )
    endpoint.inputs["policy"] = json.dumps(document)
    failures = verify(graph, Expectations.of(plan, catalog), run.outputs).failures()
    assert any("global.anthropic.claude-opus-5" in str(f) for f in failures), failures


# ----------------------------------------------------------------------- cached input
def test_cached_input_is_charged_at_the_cache_read_price(catalog: Catalog) -> None:
    text = workload_yaml(task="code_generation", cached_input_fraction="0.75")
    workload = only(plan_text(text, catalog))
    option = next(
        o for o in workload.answers.volume_economics.options if o.model == "claude-opus-5.5"
    )
    found = price(catalog, "claude-opus-5.5")
    usage = (100e6 * 0.25 * 4 + 100e6 * 0.75 * 0.2 + 20e6 * 20) / 1e6
    assert option.monthly_cost_usd == round(usage + option.fixed_monthly_usd, 2)
    assert "0.75 cached (cached_input_fraction) x 0.2 USD/M cache read" in option.formula
    figure = "api.claude-opus-5.5.cached_input_usd_per_mtok[2000/400]"
    assert figure in option.figures
    plan = plan_text(text, catalog)
    assert plan.figures[figure].value == found.cached_input_usd_per_mtok == 0.2
    assert "genai-prices" in plan.figures[figure].source
    # Without the field the same option costs the full input price.
    plain = only(plan_text(workload_yaml(task="code_generation"), catalog))
    same = next(o for o in plain.answers.volume_economics.options if o.id == option.id)
    assert same.monthly_cost_usd - option.monthly_cost_usd == pytest.approx(
        100e6 * 0.75 * (4 - 0.2) / 1e6, abs=0.01
    )


def test_a_model_without_a_cache_price_charges_the_cached_share_as_input(
    catalog: Catalog,
) -> None:
    text = workload_yaml(task="chat", cached_input_fraction="0.5")
    workload = only(plan_text(text, catalog))
    option = next(
        o for o in workload.answers.volume_economics.options if o.model == "bedrock-llama-4-scout"
    )
    assert price(catalog, "bedrock-llama-4-scout").cached_input_usd_per_mtok is None
    assert "no cache-read price for bedrock-llama-4-scout" in option.formula
    plain = only(plan_text(workload_yaml(task="chat"), catalog))
    same = next(o for o in plain.answers.volume_economics.options if o.id == option.id)
    assert same.monthly_cost_usd == option.monthly_cost_usd


def test_an_override_carries_its_own_cache_price(catalog: Catalog) -> None:
    found = price(catalog, "deepseek-v3.2-api")
    assert found.cached_input_usd_per_mtok == 0.028
    assert found.source.startswith("api_price_overrides.yaml")


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 10**10),
    st.integers(0, 10**10),
    st.sampled_from(["claude-opus-5.5", "gpt-6-luna", "claude-haiku-5.5", "bedrock-llama-4-scout"]),
)
def test_more_cached_input_never_costs_more(
    low: float, high: float, input_tokens: int, output_tokens: int, api_id: str
) -> None:
    from planner.catalog import default_catalog

    low, high = sorted((low, high))
    found = price(default_catalog(), api_id)
    assert costing.api_monthly_cost(found, input_tokens, output_tokens, high) <= (
        costing.api_monthly_cost(found, input_tokens, output_tokens, low) + 1e-6
    )


def test_cache_writes_are_charged_at_the_cache_write_price(catalog: Catalog) -> None:
    text = workload_yaml(
        task="code_generation", cached_input_fraction="0.5", cache_write_fraction="0.1"
    )
    plan = plan_text(text, catalog)
    option = next(
        o for o in only(plan).answers.volume_economics.options if o.model == "claude-opus-5.5"
    )
    found = price(catalog, "claude-opus-5.5")
    # genai-prices: Anthropic charges a five-minute cache write 1.25x the input price.
    assert found.cache_write_usd_per_mtok == pytest.approx(1.25 * found.input_usd_per_mtok)
    # A tenth of the misses (the uncached half) is written: 0.05 of the input.
    usage = (100e6 * (0.45 * 4 + 0.5 * 0.2 + 0.05 * 5) + 20e6 * 20) / 1e6
    assert option.monthly_cost_usd == round(usage + option.fixed_monthly_usd, 2)
    assert (
        "0.05 written (cache_write_fraction 0.1 of the uncached 0.5) x 5 USD/M cache write"
        in option.formula
    )
    assert "not counted" not in option.formula
    figure = "api.claude-opus-5.5.cache_write_usd_per_mtok[2000/400]"
    assert figure in option.figures and plan.figures[figure].value == 5


def test_cache_reads_without_writes_say_the_writes_are_not_counted(catalog: Catalog) -> None:
    workload = only(plan_text(workload_yaml(task="chat", cached_input_fraction="0.5"), catalog))
    options = {o.model: o for o in workload.answers.volume_economics.options}
    assert "cache writes not counted: claude-opus-5.5 charges them 5 USD/M" in (
        options["claude-opus-5.5"].formula
    )
    # Gemini prices no cache write (genai-prices): nothing is left out there.
    assert "not counted" not in options["gemini-3.8-flash"].formula


def test_a_provider_without_a_write_price_charges_the_written_share_as_input(
    catalog: Catalog,
) -> None:
    written = workload_yaml(task="chat", cached_input_fraction="0.5", cache_write_fraction="0.2")
    read_only = workload_yaml(task="chat", cached_input_fraction="0.5")
    model = "gemini-3.8-flash"
    assert price(catalog, model).cache_write_usd_per_mtok is None

    def option(text: str) -> Option:
        workload = only(plan_text(text, catalog))
        return next(o for o in workload.answers.volume_economics.options if o.model == model)

    assert f"no cache-write price for {model}: its written share 0.1 is charged as input" in (
        option(written).formula
    )
    assert option(written).monthly_cost_usd == option(read_only).monthly_cost_usd


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 10**10),
    st.sampled_from(["claude-opus-5.5", "gpt-6-luna", "claude-haiku-5.5", "gemini-3.5-flash"]),
)
def test_more_cache_writes_never_cost_less(
    read: float, low: float, high: float, input_tokens: int, api_id: str
) -> None:
    """Writing to the cache costs at least the input price wherever it is priced at all."""
    from planner.catalog import default_catalog

    low, high = sorted((low, high))
    found = price(default_catalog(), api_id)
    assert costing.api_monthly_cost(found, input_tokens, 0, read, high) >= (
        costing.api_monthly_cost(found, input_tokens, 0, read, low) - 1e-6
    )


@pytest.mark.parametrize("value", ["1.5", "-0.1", "lots"])
def test_a_bad_cached_input_fraction_is_refused(
    value: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "workloads.yaml"
    path.write_text(workload_yaml(cached_input_fraction=value))
    code = main(["plan", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    assert str(path) in line and "workloads[0].cached_input_fraction (line " in line
    assert not (project / "plans").exists() and not (project / "Pulumi.dev.yaml").exists()


# ------------------------------------------------------------------ the quality ceiling
def test_the_quality_ceiling_lists_the_tier_s_cheaper_options_and_the_top_model_s_price(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "workloads.yaml"
    path.write_text(workload_yaml(task="legal_analysis", data="regulated"))
    assert main(["explain", str(path), "w"]) == 0
    out = capsys.readouterr().out
    assert "the best model allowed, deepseek-v3.2 (capable), is used" in out
    assert "cheaper models of the same tier are priced as alternatives" in out
    assert "insisting on the top-ranked deepseek-v3.2 costs" in out
    # Each cheaper model is an alternative line of its own, with how to choose it.
    assert "~ self_hosted/llama-4-scout/p5.48xlarge" in out
    assert "pin `model: llama-4-scout` to use it" in out


FIRST_CALL = (
    "Before the first call to {models}: Anthropic requires first-time customers to submit their "
    "use-case details once per AWS account"
)
MODEL_ACCESS = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html"


def test_plan_md_says_claude_on_bedrock_needs_anthropic_s_use_case_form(
    claude_run: tuple[OfflineRun, Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, claude_project = claude_run
    plan = read_plan(claude_project / "plans/dev/plan.json")
    assert [w.model for w in plan.workloads] == ["bedrock-claude-opus-5.5-global"]
    text = (claude_project / "plans/dev/plan.md").read_text()
    assert FIRST_CALL.format(models="bedrock-claude-opus-5.5-global") in text
    assert "`aws bedrock put-use-case-for-model-access`" in text and MODEL_ACCESS in text
    # Bedrock without Claude (Llama 4 Scout), and no Bedrock at all: not a word of it.
    for data, model in (("confidential", "bedrock-llama-4-scout"), ("internal", "gemini-4-argon")):
        plan_project(project, workload_yaml(data=data, model=model))
        capsys.readouterr()
        [workload] = read_plan(project / "plans/dev/plan.json").workloads
        assert (workload.placement, workload.model) == ("cloud_api", model)
        text = (project / "plans/dev/plan.md").read_text()
        assert "use-case details" not in text and MODEL_ACCESS not in text


# ------------------------------------------------------------- sources of tiers and ranks
def test_every_api_tier_and_open_model_rank_has_a_source_and_a_date(catalog: Catalog) -> None:
    for api_id, api in catalog.api_models.items():
        assert api.tier_source.source.strip() and api.tier_source.date.strip(), api_id
    for model_id, model in catalog.models.items():
        assert model.quality_source.strip() and model.quality_date.strip(), model_id
    # The rank that decides the "top-ranked" open model cites the benchmark it comes from.
    assert "67.1" in catalog.models["deepseek-v3.2"].quality_source


@pytest.mark.parametrize(
    ("name", "entry", "field", "path"),
    [
        ("api_models.yaml", "  deepseek-v3.2-api:\n", "    tier_source:", "tier_source"),
        ("api_models.yaml", "  gpt-6-astra:\n", "    tier_source:", "tier_source"),
        ("models.yaml", "  qwen3-235b-a22b:\n", "    quality_source:", "quality_source"),
        ("models.yaml", "  llama-3.1-8b:\n", "    quality_date:", "quality_date"),
    ],
)
def test_a_tier_or_rank_without_its_source_is_refused(
    tmp_path: Path, name: str, entry: str, field: str, path: str
) -> None:
    """Fault injection: drop one source line from a copy of the catalog; it does not load, and
    the one problem names the file's directory and the entry's field."""
    import shutil

    from planner.catalog import DATA_DIR, load_catalog
    from planner.errors import PlannerError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    text = (data / name).read_text()
    start = text.index(entry)
    line = text.index(field, start)
    end = text.index("\n", line) + 1
    (data / name).write_text(text[:line] + text[end:])
    with pytest.raises(PlannerError) as raised:
        load_catalog(data)
    [problem] = raised.value.problems
    model = entry.strip().rstrip(":")
    assert str(data) in str(raised.value)
    assert problem.field.endswith(f"{model}.{path}"), problem.field


# -------------------------------------------------------------------- the current catalog
def test_the_current_models_are_those_released_before_the_price_date(catalog: Catalog) -> None:
    """At the price_date (2026-12-01) Fable 5.2 (released 2026-11-09) is Anthropic's flagship
    and Fable 5.1 pin-only; the 5.5 / 6.x / Gemini 4 models are the current ones, the older ones
    pin-only. GPT-6.2 (2026-11-17) is not in the pinned genai-prices, so not in the catalog."""
    current = {a for a, m in catalog.api_models.items() if m.current}
    assert {
        "claude-fable-5.2",
        "claude-opus-5.5",
        "claude-sonnet-5.5",
        "claude-haiku-5.5",
        "gpt-6-astra",
        "gpt-6.1-terra",
        "gpt-6-luna",
        "gemini-4-argon",
        "gemini-3.8-flash",
    } <= current
    assert not current & {
        "claude-fable-5.1",
        "claude-opus-4.8",
        "claude-sonnet-4.6",
        "gpt-5.6-sol",
        "gemini-3.1-pro",
    }
    assert not [a for a, m in catalog.api_models.items() if "gpt-6.2" in m.price_ref.model]
    # The catalog's price_date is the one the current set was judged at.
    assert catalog.defaults.price_date.value == "2026-12-01"
    for api_id in current:
        assert "2026" in catalog.api_models[api_id].tier_source.source or (
            catalog.api_models[api_id].open_model is not None
        ), api_id


def test_every_current_claude_model_has_a_us_and_a_global_bedrock_profile(
    catalog: Catalog,
) -> None:
    bedrock = {
        (m.provider_model_id, m.inference_profile.scope if m.inference_profile else None): m
        for m in catalog.api_models.values()
        if m.provider == "bedrock" and m.current
    }
    for name in ("opus-5-5", "sonnet-5-5", "haiku-5-5"):
        us = bedrock[(f"anthropic.claude-{name}", "geo")]
        world = bedrock[(f"anthropic.claude-{name}", "global")]
        # The profile ids AWS documents are the ids genai-prices prices.
        assert us.inference_profile is not None and world.inference_profile is not None
        assert us.inference_profile.id == us.price_ref.model == f"us.anthropic.claude-{name}"
        assert world.inference_profile.id == world.price_ref.model
        assert world.price_ref.model == f"global.anthropic.claude-{name}"


# ------------------------------------------------------------------------- tiered prices
def test_a_long_prompt_pays_haiku_5_5_s_long_context_tier(catalog: Catalog) -> None:
    """Haiku 5.5 bills every token of a request whose prompt exceeds 100,000 tokens at 5x: the
    plan prices the workload's own request shape at that tier, not the base rate."""

    def haiku(request: str) -> tuple[float, str]:
        text = workload_yaml(task="classification", request=request)
        options = only(plan_text(text, catalog)).answers.volume_economics.options
        [option] = [o for o in options if o.model == "claude-haiku-5.5"]
        return option.monthly_cost_usd - option.fixed_monthly_usd, option.formula

    short, short_formula = haiku("{input_tokens: 100000, output_tokens: 400}")
    long, long_formula = haiku("{input_tokens: 100001, output_tokens: 400}")
    assert short == pytest.approx((100e6 * 0.1 + 20e6 * 0.5) / 1e6)
    assert long == pytest.approx((100e6 * 0.5 + 20e6 * 2.5) / 1e6)
    assert "100M input x 0.1 USD/M + 20M output x 0.5 USD/M" in short_formula
    assert "100M input x 0.5 USD/M + 20M output x 2.5 USD/M" in long_formula
    assert "100,001 input / 400 output tokens" in long_formula
    # The same shape on a flat-priced small model costs the same either side of 100k.
    assert price(catalog, "gpt-6-luna", (100001, 400)).input_usd_per_mtok == 0.1


# -------------------------------------------------------- what insisting on the top costs
def test_the_ceiling_s_saving_is_worded_as_deciding_the_workload_alone(catalog: Catalog) -> None:
    """The cheaper alternative's saving is the difference of two standalone prices: the note
    says so, and that the plan's total (shared pools) moves by another amount."""
    workload = only(plan_text(workload_yaml(task="legal_analysis", data="regulated"), catalog))
    top = next(
        o
        for o in workload.answers.volume_economics.options
        if o.id == workload.answers.volume_economics.chosen
    )
    [alternative, *_] = [
        o for o in workload.answers.volume_economics.alternatives if o.model != top.model
    ]
    assert alternative.note is not None
    saving = round(top.monthly_cost_usd - alternative.monthly_cost_usd, 2)
    assert f"deciding this workload alone, {saving:,.2f} USD a month less than {top.id}" in (
        alternative.note
    )
    assert "not the change in the plan's total" in alternative.note
    [warning] = [w for w in workload.warnings if w.code == "quality_ceiling"]
    assert "costs when this workload is decided alone" in warning.message


def test_the_ranks_that_pick_the_top_model_are_among_the_plan_s_figures(
    catalog: Catalog,
) -> None:
    plan = plan_text(workload_yaml(task="legal_analysis", data="regulated"), catalog)
    economics = only(plan).answers.volume_economics
    [chosen] = [o for o in economics.options if o.id == economics.chosen]
    assert "model.deepseek-v3.2.quality_rank" in chosen.figures
    figure = plan.figures["model.deepseek-v3.2.quality_rank"]
    assert figure.value == 6 and "67.1" in figure.source and figure.date == "2026-12"
    for alternative in economics.alternatives:
        if alternative.model != chosen.model:
            assert f"model.{alternative.model}.quality_rank" in alternative.figures


def test_a_write_fraction_of_zero_is_said_and_counted(catalog: Catalog) -> None:
    """`cache_write_fraction: 0` says the cache is written (almost) never: no 'not counted'
    note, the same cost as reads alone."""
    said = workload_yaml(task="chat", cached_input_fraction="0.5", cache_write_fraction="0")
    unsaid = workload_yaml(task="chat", cached_input_fraction="0.5")

    def option(text: str) -> Option:
        workload = only(plan_text(text, catalog))
        return next(
            o for o in workload.answers.volume_economics.options if o.model == "claude-opus-5.5"
        )

    assert "not counted" not in option(said).formula
    assert "not counted" in option(unsaid).formula
    assert option(said).monthly_cost_usd == option(unsaid).monthly_cost_usd


def test_a_price_the_snapshot_changes_after_the_price_date_is_said(catalog: Catalog) -> None:
    """An outside review: the example's code-review went to gemini-4-argon at its introductory
    2 / 10 USD per million, which genai-prices ends on 2026-12-01 (4 / 20 from then), and the
    plan said nothing. A plan keeps its price_date (reproducible), and says when the pinned
    snapshot already prices a chosen API otherwise after it."""
    argon = catalog.api_models["gemini-4-argon"]
    assert costing.later_prices(catalog, argon, 2000, 400, date(2026, 11, 1)) == [
        costing.LaterPrice(date(2026, 12, 1), 4.0, 20.0, 0.2, None)
    ]
    assert costing.later_prices(catalog, argon, 2000, 400, date(2026, 12, 1)) == []
    # Prices that do not change, and the catalog's own overrides, have none.
    opus = catalog.api_models["claude-opus-5.5"]
    assert costing.later_prices(catalog, opus, 2000, 400, date(2026, 11, 1)) == []
    overridden = next(
        api for api in catalog.api_models.values() if catalog.override_for(api.price_ref)
    )
    assert costing.later_prices(catalog, overridden, 2000, 400, date(2026, 11, 1)) == []

    # A plan priced before the change (a workloads file may give its own price_date).
    pinned = workload_yaml(model="gemini-4-argon").replace(
        "workloads:", "assumptions:\n  price_date: 2026-11-01\nworkloads:"
    )
    [warning] = [
        w for w in only(plan_text(pinned, catalog)).warnings if w.code == "api_price_changes"
    ]
    assert warning.message == (
        "gemini-4-argon is priced as of the plan's price_date, 2026-11-01, at 2 / 10 (0.1 cached "
        "input) USD per million input / output tokens; the pinned genai-prices 0.2.3 prices it "
        "at 4 / 20 (0.2 cached input) from 2026-12-01: give assumptions.price_date on or after "
        "that date to plan at that price"
    )
    later = pinned.replace("price_date: 2026-11-01", "price_date: 2026-12-01")
    assert not [
        w for w in only(plan_text(later, catalog)).warnings if w.code == "api_price_changes"
    ]
    # The catalog's own price_date is past the change.
    default = only(plan_text(workload_yaml(model="gemini-4-argon"), catalog))
    assert not [w for w in default.warnings if w.code == "api_price_changes"]
    # Not on a workload the plan does not send to that API.
    elsewhere = only(plan_text(workload_yaml(model="claude-opus-5.5"), catalog))
    assert not [w for w in elsewhere.warnings if w.code == "api_price_changes"]
