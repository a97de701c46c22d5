"""Provider capabilities as data (issue 15, "no code names a provider"): a PrivateLink provider
added to a copy of planner/data alone is planned, built (its endpoint from the data's service,
its policies from the data's actions and ARN forms) and verified; the capabilities are checked
when the catalog loads."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.catalog import DATA_DIR, Catalog, load_catalog
from planner.errors import PlannerError
from planner.graph.offline import run_program
from planner.graph.resources import graph_from_offline
from planner.render.plan_files import plan_json, plan_markdown
from planner.verification.expectations import Expectations
from planner.verification.run import verify
from stacks.program import run
from tests.conftest import workload_yaml
from tests.helpers import only, plan_text

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
POLICY = "aws:iam/policy:Policy"
VPC = "vpc-0a1b2c3d4e5f60718"
# A fictional provider reached through PrivateLink with the callers' IAM role. The verifier
# knows AWS's IAM actions (the Service Authorization Reference), so its endpoint and actions
# are a real AWS service's: SageMaker runtime, whose endpoints it invokes.
ACME = {
    "name": "Acme Models",
    "short_name": "Acme",
    "hosts": ["runtime.sagemaker.{region}.amazonaws.com"],
    "private_link": True,
    "max_data": "confidential",
    "auth": {"kind": "iam_role", "source": "test", "date": "2026-12"},
    "endpoint": {
        "service": "sagemaker.runtime",
        "label": "Acme runtime",
        "source": "test",
        "date": "2026-12",
    },
    "invoke": {
        "actions": ["sagemaker:InvokeEndpoint"],
        "model_arn": "arn:{partition}:sagemaker:{region}:{account}:endpoint/{model_id}",
        "source": "test",
        "date": "2026-12",
    },
    "before_first_call": [
        {
            "model_prefix": "acme-",
            "note": "accept Acme's terms in its console.",
            "source": "test",
            "date": "2026-12",
        }
    ],
}
ACME_MODEL = {
    "provider": "acme",
    "tier": "frontier",
    "tier_source": {"source": "test", "date": "2026-12"},
    "provider_model_id": "acme-frontier-1",
    "price_ref": {"model": "acme-frontier-1", "provider": "acme"},
    "context_window": {"value": 200000, "source": "test", "date": "2026-12"},
}
# Far below every other frontier model's price: the planner picks it where the perimeter allows.
ACME_PRICE = {
    "price_ref": {"model": "acme-frontier-1", "provider": "acme"},
    "input_usd_per_mtok": 0.01,
    "output_usd_per_mtok": 0.02,
    "source": "test",
    "date": "2026-11",
}
# Confidential frontier work: only a PrivateLink provider (or a pool) may serve it.
MEMOS = workload_yaml(
    name="deal-memos",
    task="synthesis",
    data="confidential",
    monthly_tokens="{input: 200M, output: 20M}",
    consumers=f"[{{cidr: 10.20.0.0/16, vpc: {VPC}, "
    "subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]}]",
)


def _edit(directory: Path, name: str, change: Callable[[Any], None]) -> None:
    path = directory / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def data_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA_DIR, tmp_path / "data"))


def _without_bedrock(data: dict[str, Any]) -> None:
    for api_id in [a for a, api in data["api_models"].items() if api["provider"] == "bedrock"]:
        del data["api_models"][api_id]
    data["api_models"]["acme-1"] = ACME_MODEL


def with_acme(tmp_path: Path) -> Catalog:
    """The bundled catalog with Acme in Bedrock's place (the stack builds one PrivateLink
    network, so a catalog has at most one PrivateLink provider): three data files edited, no
    code."""
    directory = data_copy(tmp_path)
    _edit(directory, "providers.yaml", lambda d: d["providers"].pop("bedrock"))
    _edit(directory, "providers.yaml", lambda d: d["providers"].update(acme=ACME))
    _edit(directory, "api_models.yaml", _without_bedrock)
    _edit(directory, "api_price_overrides.yaml", lambda d: d["overrides"].append(ACME_PRICE))
    return load_catalog(directory)


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return with_acme(tmp_path_factory.mktemp("acme"))


def test_a_provider_added_as_data_is_planned_through_privatelink(acme: Catalog) -> None:
    plan = plan_text(MEMOS, acme)
    workload = only(plan)
    assert workload.answers.data_sensitivity.perimeter.value == "private_link"
    assert (workload.placement, workload.provider, workload.model) == (
        "cloud_api",
        "acme",
        "acme-1",
    )
    [access] = plan.providers
    assert access.provider == "acme" and access.private_link
    assert access.secret_config_key is None  # iam_role: no key to set
    # plan.md names its endpoint and its one-time step from the data.
    markdown = plan_markdown(plan, acme)
    assert (
        f"({VPC}): for Acme, an interface endpoint with private DNS in the named subnets, so "
        "`sagemaker.runtime` resolves to it" in markdown
    )
    assert "Before the first call to acme-1: accept Acme's terms in its console." in markdown
    assert "Bedrock" not in markdown.split("## Workloads")[0]


@pytest.fixture(scope="module")
def acme_stack(
    acme: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Any, Expectations]:
    """The plan's stack under mocks, through stacks.program.run (the one call __main__.py
    makes, here with the copied catalog: __main__.py loads the bundled one)."""
    plan = plan_text(MEMOS, acme)
    project = tmp_path_factory.mktemp("acme-project")
    (project / "plans" / "dev").mkdir(parents=True)
    (project / "plans" / "dev" / "plan.json").write_text(plan_json(plan))
    config = {"ai-infra-planner:plan": "plans/dev/plan.json", "aws:region": "us-east-1"}
    result = run_program(project, "dev", config, program=lambda: run(plan, acme))
    return result, graph_from_offline(result), Expectations.of(plan, acme)


def test_its_stack_is_built_from_the_data(acme_stack: tuple[Any, Any, Expectations]) -> None:
    result, _, _ = acme_stack
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/acme-frontier-1"
    [endpoint] = [r for r in result.resources if r.type == ENDPOINT]
    assert endpoint.name == f"acme-link-{VPC}-sagemaker.runtime"
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.sagemaker.runtime"
    [statement] = json.loads(endpoint.inputs["policy"])["Statement"]
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == [arn]
    [policy] = [
        r for r in result.resources if r.type == POLICY and r.name == "deal-memos-api-access"
    ]
    [invoke] = json.loads(policy.inputs["policy"])["Statement"]
    assert (invoke["Action"], invoke["Resource"]) == (["sagemaker:InvokeEndpoint"], [arn])
    assert "Acme models" in policy.inputs["description"]
    assert not [r for r in result.resources if r.type == "aws:secretsmanager/secret:Secret"]
    caller = result.outputs["workloads"]["deal-memos"]
    assert caller["kind"] == "acme" and caller["model_id"] == "acme-frontier-1"
    assert caller["endpoint_dns_name"] == "sagemaker.runtime.us-east-1.amazonaws.com"


def test_verify_accepts_its_endpoint_and_refuses_another_service(
    acme_stack: tuple[Any, Any, Expectations],
) -> None:
    result, graph, expect = acme_stack
    report = verify(graph, expect, result.outputs)
    assert report.failures() == []
    [verdict] = report.workloads
    assert verdict.served_by == f"endpoint acme-link-{VPC}-sagemaker.runtime"
    assert verdict.ways_in and verdict.ways_in[0].endswith("(planned models only) -> Acme runtime")
    # The same endpoint to another service (Bedrock's) is not Acme's: nothing serves the work.
    [endpoint] = [r for r in graph.resources.values() if r.type == ENDPOINT]
    endpoint.inputs["serviceName"] = "com.amazonaws.us-east-1.bedrock-runtime"
    try:
        failures = verify(graph, expect, result.outputs).failures()
    finally:
        endpoint.inputs["serviceName"] = "com.amazonaws.us-east-1.sagemaker.runtime"
    assert any(
        f.resource == "workload deal-memos" and "no network of the stack serves it" in f.message
        for f in failures
    ), failures


def test_verify_holds_its_invoke_action_on_every_resource_as_risky(
    acme_stack: tuple[Any, Any, Expectations],
) -> None:
    """The iam rule's "invokes any model" comes from the catalog's invoke actions."""
    result, graph, expect = acme_stack
    [policy] = [
        r
        for r in graph.resources.values()
        if r.type == POLICY and r.name == "deal-memos-api-access"
    ]
    original = policy.inputs["policy"]
    document = json.loads(original)
    document["Statement"][0]["Resource"] = "*"
    policy.inputs["policy"] = json.dumps(document)
    try:
        failures = verify(graph, expect, result.outputs).failures()
    finally:
        policy.inputs["policy"] = original
    assert any(
        "allows sagemaker:InvokeEndpoint (invokes any model) on every resource" in f.message
        for f in failures
    ), failures


# ------------------------------------------------------------------ checked when it loads
def _bedrock(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    return lambda data: change(data["providers"]["bedrock"])


def _openai(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    return lambda data: change(data["providers"]["openai"])


PROVIDER_FAULTS: dict[str, tuple[Callable[[Any], None], str, str]] = {
    "unknown auth kind": (
        _bedrock(lambda p: p["auth"].update(kind="password")),
        "providers.bedrock.auth.kind",
        "'api_key' or 'iam_role'",
    ),
    "auth without a source": (
        _bedrock(lambda p: p["auth"].pop("source")),
        "providers.bedrock.auth.source",
        "Field required",
    ),
    "private_link without an endpoint": (
        _bedrock(lambda p: p.pop("endpoint")),
        "providers.bedrock",
        "private_link: true needs `endpoint`",
    ),
    "an endpoint without private_link": (
        _openai(lambda p: p.update(endpoint=ACME["endpoint"])),
        "providers.openai",
        "`endpoint` is given but private_link is false",
    ),
    "iam_role without invoke": (
        _bedrock(lambda p: p.pop("invoke")),
        "providers.bedrock",
        "auth iam_role needs `invoke`",
    ),
    "private_link with an API key": (
        _bedrock(lambda p: (p["auth"].update(kind="api_key"), p.pop("invoke"))),
        "providers.bedrock",
        "private_link: true needs auth iam_role",
    ),
    "iam_role without private_link": (
        _bedrock(lambda p: (p.update(private_link=False), p.pop("endpoint"))),
        "providers.bedrock",
        "auth iam_role needs private_link: true",
    ),
    "a full service name": (
        _bedrock(lambda p: p["endpoint"].update(service="com.amazonaws.{region}.bedrock-runtime")),
        "providers.bedrock.endpoint.service",
        "is not an endpoint service's name",
    ),
    "a wildcard action": (
        _bedrock(lambda p: p["invoke"].update(actions=["bedrock:InvokeModel*"])),
        "providers.bedrock.invoke.actions",
        "is not one IAM action",
    ),
    "an ARN form with an unknown field": (
        _bedrock(
            lambda p: p["invoke"].update(model_arn="arn:{partition}:bedrock:{region}::{model}")
        ),
        "providers.bedrock.invoke.model_arn",
        "(unknown: model)",
    ),
}


@pytest.mark.parametrize("fault", sorted(PROVIDER_FAULTS))
def test_a_provider_s_capabilities_are_checked_when_the_catalog_loads(
    tmp_path: Path, fault: str
) -> None:
    change, field, message = PROVIDER_FAULTS[fault]
    directory = data_copy(tmp_path)
    _edit(directory, "providers.yaml", change)
    with pytest.raises(PlannerError) as caught:
        load_catalog(directory)
    assert caught.value.file == str(directory)
    found = [p for p in caught.value.problems if p.field == field]
    assert found and message in found[0].message, caught.value.render()


def _model(api_id: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    return lambda data: change(data["api_models"][api_id])


MODEL_FAULTS: dict[str, tuple[Callable[[Any], None], str, str]] = {
    "an IAM-role model without its provider id": (
        _model("bedrock-llama-4-scout", lambda m: m.pop("provider_model_id")),
        "api_models.bedrock-llama-4-scout.provider_model_id",
        "reached with an IAM role",
    ),
    "a profile that is not the model's": (
        _model(
            "bedrock-claude-opus-5.5-us",
            lambda m: m["inference_profile"].update(id="us.anthropic.claude-opus-5"),
        ),
        "api_models.bedrock-claude-opus-5.5-us.inference_profile.id",
        "with a geography in front",
    ),
}


def _no_any_region_arn(data: Any) -> None:
    data["providers"]["bedrock"]["invoke"].pop("any_region_model_arn")


def _no_profile_arn(data: Any) -> None:
    data["providers"]["bedrock"]["invoke"].pop("profile_arn")


PROVIDER_FORM_FAULTS: dict[str, tuple[Callable[[Any], None], str, str]] = {
    "a global profile without the any-region ARN": (
        _no_any_region_arn,
        "api_models.bedrock-claude-opus-5.5-global.inference_profile.scope",
        "needs invoke.any_region_model_arn",
    ),
    "a profile without the profile ARN": (
        _no_profile_arn,
        "api_models.bedrock-claude-opus-5.5-us.inference_profile",
        "no inference profile ARN form",
    ),
}


@pytest.mark.parametrize("fault", sorted(MODEL_FAULTS) + sorted(PROVIDER_FORM_FAULTS))
def test_a_model_s_provider_ids_are_checked_against_its_provider(
    tmp_path: Path, fault: str
) -> None:
    directory = data_copy(tmp_path)
    if fault in MODEL_FAULTS:
        change, field, message = MODEL_FAULTS[fault]
        _edit(directory, "api_models.yaml", change)
    else:
        change, field, message = PROVIDER_FORM_FAULTS[fault]
        _edit(directory, "providers.yaml", change)
    with pytest.raises(PlannerError) as caught:
        load_catalog(directory)
    found = [p for p in caught.value.problems if p.field == field]
    assert found and message in found[0].message, caught.value.render()


def provider_names_in_code(repo: Path, provider_ids: set[str]) -> list[str]:
    """Where a string literal of the code (no docstring; a word-free one, as names, ids,
    service names and actions are written: prose citing a provider's documentation aside)
    names a catalog provider."""
    separators = str.maketrans({c: " " for c in "-.:/_{}*"})
    found = []
    for package in ("planner", "stacks", "policy"):
        for path in sorted((repo / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and " " not in node.value.strip()
                ):
                    words = set(node.value.lower().translate(separators).split())
                    if words & provider_ids:
                        found.append(f"{path.relative_to(repo)}:{node.lineno}: {node.value!r}")
    return found


def test_no_code_names_a_provider() -> None:
    """No code of the planner, the stacks or the policy pack spells a catalog provider's id
    where it would decide behaviour (a comparison, a service name, an action, a resource name,
    an output): a provider is data (providers.yaml)."""
    repo = Path(__file__).resolve().parent.parent
    found = provider_names_in_code(repo, set(load_catalog().providers))
    assert found == [], found


def test_a_second_privatelink_provider_is_refused_as_the_stack_builds_one_network(
    tmp_path: Path,
) -> None:
    """Review of issue 15: Acme beside Bedrock loaded, and the stack built two VPCs of one range
    and two private-DNS endpoints of one service in a consumer VPC."""
    directory = data_copy(tmp_path)
    _edit(directory, "providers.yaml", lambda d: d["providers"].update(acme=ACME))
    with pytest.raises(PlannerError) as raised:
        load_catalog(directory)
    messages = [(p.field, p.message) for p in raised.value.problems]
    assert messages == [
        (
            "providers.bedrock.private_link",
            "acme and bedrock are both reached through PrivateLink: the stack builds one "
            "PrivateLink network, so at most one provider may be",
        )
    ]


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("arn:{partition}:bedrock:{region}::foundation-model/{model_id}}", "Single '}'"),
        ("arn:{partition}:bedrock:{region}::foundation-model/*", "does not name {model_id}"),
        ("arn:{partition}:bedrock:{region}::foundation-model/{model_id}*", "has a wildcard"),
        ("arn:{partition}:bedrock:{region}::foundation-model/x", "does not name {model_id}"),
    ],
)
def test_an_arn_template_the_stack_could_not_fill_or_that_grants_too_much_is_refused(
    tmp_path: Path, template: str, says: str
) -> None:
    """Review of issue 15: a stray brace loaded and crashed the stack with a traceback; a
    wildcard or a template without the model loaded and granted every model."""
    directory = data_copy(tmp_path)
    _edit(
        directory,
        "providers.yaml",
        lambda d: d["providers"]["bedrock"]["invoke"].update(model_arn=template),
    )
    with pytest.raises(PlannerError) as raised:
        load_catalog(directory)
    [problem] = raised.value.problems
    assert problem.field == "providers.bedrock.invoke.model_arn"
    assert says in problem.message
