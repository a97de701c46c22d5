"""What would stop `pulumi preview` / `pulumi up` (issue 13), caught before it runs.

Every resource of the generated stacks is walked against the provider-level constraints of
planner/data/aws_limits.yaml (each with its documented source), each rule kind is shown failing
on a broken input, and every IAM and resource policy the stacks write is linted with parliament.
The stacks run for real under Pulumi's mocks (planner/graph/offline.py); the Pulumi CLI never runs.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from planner.catalog import DATA_DIR, default_catalog
from planner.graph.offline import ACCOUNT_ID, OfflineRun, Registered, run_program
from planner.graph.resources import graph_from_offline
from planner.planfile import read_plan
from planner.verification.expectations import Expectations
from planner.verification.run import verify
from stacks.aws.identity import AUTOSCALING_ROLE, AUTOSCALING_SUFFIX_LIMIT
from stacks.aws.naming import aws_name
from stacks.aws.nodes import efa_layout
from stacks.aws.weights import OBJECT_ACTIONS
from tests.conftest import REPO, workload_yaml
from tests.test_stacks import CONNECTED, MULTI_NODE, VPC_CONSUMERS, accepted, plan_project

LIMITS = yaml.safe_load((DATA_DIR / "aws_limits.yaml").read_text(encoding="utf-8"))
RULES: list[dict[str, Any]] = LIMITS["rules"]
UNCONSTRAINED: dict[str, str] = LIMITS["unconstrained"]
# Pulumi's auto-name: the logical name, "-", and 7 random characters.
AUTONAME_SUFFIX = "-abcdef0"

LB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
KEY = "aws:kms/key:Key"
SLR = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
HOOK = "aws:autoscaling/lifecycleHook:LifecycleHook"
CERTIFICATE = "aws:acm/certificate:Certificate"


# ----------------------------------------------------------------------------- the runs
def _run(root: Path, text: str | None, stack: str = "dev") -> OfflineRun:
    """Plan `text` (None: the example) in a fresh project under `root` and run the program."""
    project = root / stack
    project.mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copy(REPO / "__main__.py", project / "__main__.py")
    previous = Path.cwd()
    os.chdir(project)
    try:
        config = plan_project(project, text, stack=stack)
        return run_program(project, stack, config)
    finally:
        os.chdir(previous)


# The four shapes of stack: the example (pools, Bedrock over PrivateLink, egress), consumers in
# VPCs of this account and another (CONNECTED, VPC_CONSUMERS) and a multi-node pool on
# p5.48xlarge with a capacity reservation (MULTI_NODE). Planned once per module: the runs are
# only read, or copied before a change.
SHAPES = {"example": None, "connected": CONNECTED, "vpc": VPC_CONSUMERS, "multi_node": MULTI_NODE}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OfflineRun]:
    found = {}
    for label, text in SHAPES.items():
        found[label] = _run(tmp_path_factory.mktemp(label), text)
    return found


def of_type(run: OfflineRun, token: str) -> list[Registered]:
    return [r for r in run.resources if r.type == token]


def named(run: OfflineRun, token: str, name: str) -> Registered:
    [found] = [r for r in run.resources if r.type == token and r.name == name]
    return found


def replaced(run: OfflineRun, target: Registered, **inputs: Any) -> OfflineRun:
    """The run with one resource's inputs changed (None removes an input)."""
    new = {**target.inputs, **inputs}
    broken = dataclasses.replace(target, inputs={k: v for k, v in new.items() if v is not None})
    return dataclasses.replace(run, resources=[broken if r is target else r for r in run.resources])


# ----------------------------------------------------------------------------- the walker
_MISSING = object()


def _values(inputs: dict[str, Any], path: str) -> list[Any]:
    """The values at a rule's property path; [] when absent. `a[].b`: b of each item of a."""
    if "[]" in path:
        head, _, rest = path.partition("[]")
        items = inputs.get(head) or []
        if not rest:
            return list(items)
        return [v for item in items for v in _values(item, rest.removeprefix("."))]
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    return [] if value is None else [value]


def _effective(rule: dict[str, Any], resource: Registered) -> list[Any]:
    """The values AWS will see: the input, or the auto-name pulumi-aws would make."""
    values = _values(resource.inputs, rule["property"])
    if not values and rule.get("autoname"):
        name = resource.name + AUTONAME_SUFFIX
        values = [name.lower() if rule["autoname"] == "lower" else name]
    return values


def _applies(rule: dict[str, Any], resource: Registered) -> bool:
    return resource.custom and rule["type"] in ("*", resource.type)


def _tag_problems(rule: dict[str, Any], tags: Any) -> Iterator[str]:
    limits = rule["tags"]
    if isinstance(tags, list):  # auto-scaling groups: [{key, value, propagateAtLaunch}]
        tags = {t["key"]: t["value"] for t in tags}
    if not isinstance(tags, dict):
        return
    if len(tags) > limits["count_max"]:
        yield f"{len(tags)} tags, more than {limits['count_max']}"
    for key, value in tags.items():
        if not 0 < len(key) <= limits["key_max"]:
            yield f"tag key {key!r} longer than {limits['key_max']}"
        if key.lower().startswith(limits["key_not_prefix"]):
            yield f"tag key {key!r} starts with {limits['key_not_prefix']}"
        if isinstance(value, str) and len(value) > limits["value_max"]:
            yield f"tag {key} value longer than {limits['value_max']}"
        for text in (key, value):
            if isinstance(text, str) and not re.fullmatch(limits["pattern"], text):
                yield f"tag {key}: {text!r} has characters outside {limits['pattern']}"


def _problems(rule: dict[str, Any], resource: Registered) -> Iterator[str]:
    """What AWS would refuse of one resource under one rule."""
    inputs, path = resource.inputs, rule["property"]
    if "exactly_one_of" in rule:
        present = [k for k in rule["exactly_one_of"] if inputs.get(k)]
        if len(present) != 1:
            yield f"needs exactly one of {rule['exactly_one_of']}, has {present}"
        return
    if "tags" in rule:
        yield from _tag_problems(rule, inputs.get("tags"))
        return
    if "requires" in rule:
        when = rule.get("when", {})
        if all(inputs.get(k) in allowed for k, allowed in when.items()):
            for needed in rule["requires"]:
                if inputs.get(needed) in (None, "", []):
                    yield f"{needed} is required here"
        return
    if "only_with_single" in rule:
        items = inputs.get(rule["only_with_single"]) or []
        if _values(inputs, path) and len(items) > 1:
            yield f"{path} is set with {len(items)} items in {rule['only_with_single']}"
        return
    if "max_items" in rule:
        for items in _values(inputs, path):
            if len(items) > rule["max_items"]:
                yield f"{path} has {len(items)} items, more than {rule['max_items']}"
        return
    for value in _effective(rule, resource):
        if "one_of" in rule and value not in rule["one_of"]:
            yield f"{path} {value!r} is not one of {rule['one_of']}"
        if "min_value" in rule and isinstance(value, int | float) and value < rule["min_value"]:
            yield f"{path} {value!r} is less than {rule['min_value']}"
        if "max_value" in rule and isinstance(value, int | float) and value > rule["max_value"]:
            yield f"{path} {value!r} is more than {rule['max_value']}"
        if not isinstance(value, str):
            continue
        if "max_decoded_bytes" in rule:
            size = len(base64.b64decode(value, validate=True))
            if size > rule["max_decoded_bytes"]:
                yield f"{path} is {size} bytes decoded, more than {rule['max_decoded_bytes']}"
        text = rule.get("prefix", "") + value
        if len(text) > rule.get("max_length", len(text)):
            yield f"{path} {text!r} is {len(text)} characters, more than {rule['max_length']}"
        if len(text) < rule.get("min_length", 0):
            yield f"{path} {text!r} is shorter than {rule['min_length']}"
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            yield f"{path} {value!r} does not match {rule['pattern']}"
        for prefix in rule.get("not_prefix", []):
            if value.lower().startswith(prefix):
                yield f"{path} {value!r} starts with {prefix}"


def violations(run: OfflineRun) -> tuple[list[str], int]:
    """Every refusal, named by resource and rule, and how many (rule, resource) pairs held."""
    found: list[str] = []
    checked = 0
    for resource in run.resources:
        for rule in RULES:
            if not _applies(rule, resource):
                continue
            checked += 1
            found.extend(
                f"{resource.type} {resource.name}: {problem} ({rule['source'][:70]})"
                for problem in _problems(rule, resource)
            )
    return found, checked


# ----------------------------------------------------------------------------- the data file
def test_every_rule_names_its_source_and_checks_something() -> None:
    kinds = {"max_length", "min_length", "pattern", "not_prefix", "one_of", "only_with_single"}
    kinds |= {"requires", "exactly_one_of", "tags", "max_decoded_bytes", "min_value", "max_items"}
    kinds |= {"max_value"}
    for rule in RULES:
        assert rule["source"] and re.fullmatch(r"\d{4}-\d{2}", rule["date"]), rule
        assert kinds & set(rule), rule
        assert "property" in rule
        if "pattern" in rule:
            re.compile(rule["pattern"])


def test_lengths_agree_with_the_aws_service_models() -> None:
    """Where AWS's API model (botocore's copy) carries the limit, the data file says the same."""
    import botocore.session

    session = botocore.session.get_session()
    compared = 0
    for rule in RULES:
        if "model" not in rule:
            continue
        service, operation, member = rule["model"].split()
        shape = session.get_service_model(service).operation_model(operation).input_shape
        for part in member.split("."):
            shape = shape.members[part]
        if shape.type_name == "list":  # `a[]`: each item's limit
            shape = shape.member
        if "model_max" in rule:
            # A documented limit shorter than the model's constraint: the model's is the one
            # the rule says, and the member's own documentation states the shorter one.
            assert rule["model_max"] == shape.metadata["max"], rule["model"]
            assert rule["max_length"] < rule["model_max"], rule["model"]
            assert f"cannot exceed {rule['max_length']} octets" in documentation(rule), rule
        else:
            assert rule["max_length"] == shape.metadata["max"], rule["model"]
        if "min_length" in rule:
            assert rule["min_length"] == shape.metadata.get("min"), rule["model"]
        compared += 1
    assert compared >= 20


def documentation(rule: dict[str, Any]) -> str:
    """The service model's documentation of a rule's member, as plain text."""
    import botocore.session

    service, operation, member = rule["model"].split()
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    for part in member.split("."):
        shape = shape.members[part]
    return re.sub(r"<[^>]+>", "", str(shape.documentation))


def test_a_documented_limit_shorter_than_the_model_is_the_one_checked() -> None:
    """ACM's DomainName: the model's constraint says 253, its documentation (and ACM) 64, the
    common name's limit (RFC 5280); a longer name is taken as a subject alternative name."""
    [rule] = [r for r in RULES if r["type"] == CERTIFICATE and r["property"] == "domainName"]
    assert (rule["max_length"], rule["model_max"]) == (64, 253)
    assert "cannot exceed 64 octets" in documentation(rule)
    assert "Subject Alternative Name field, which supports names up to 253" in documentation(rule)


def test_every_resource_type_the_stacks_create_is_covered(runs: dict[str, OfflineRun]) -> None:
    ruled = {rule["type"] for rule in RULES}
    assert not ruled & set(UNCONSTRAINED), "a type is both ruled and unconstrained"
    created = {r.type for run in runs.values() for r in run.resources if r.custom}
    assert created - ruled - set(UNCONSTRAINED) == set()
    # Every type the data file names is one the stacks create (or the one KMS alias rule kept
    # for keys an operator adds): nothing stale.
    assert (ruled | set(UNCONSTRAINED)) - created - {"*", "aws:kms/alias:Alias"} == set()


# ----------------------------------------------------------------------------- the stacks
@pytest.mark.parametrize("shape", list(SHAPES))
def test_generated_stacks_meet_every_provider_limit(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    found, checked = violations(runs[shape])
    assert found == []
    assert checked > 100


# One broken input per rule kind: the walk reports it, naming resource and property.
FAULTS: list[tuple[str, str, str, dict[str, Any], str]] = [
    # max_length, on an explicit name
    ("example", TG, "contract-review-pool-serving", {"name": "t" * 33}, "more than 32"),
    # max_length on an auto-name: pulumi-aws would add 8 characters to the logical name
    ("example", TG, "contract-review-pool-serving", {"name": None}, "more than 32"),
    # pattern: an apostrophe in a security group description
    (
        "connected",
        "aws:ec2/securityGroup:SecurityGroup",
        "claims-notes-pool-nodes",
        {"description": "the nodes' serving port"},
        "does not match",
    ),
    (
        "example",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "contract-review-pool-nodes-from-lb",
        {"description": "the firewall's allow-list"},
        "does not match",
    ),
    # not_prefix
    ("example", LB, "contract-review-pool-lb", {"name": "internal-pool"}, "starts with"),
    # max_length: a certificate's domain name (its common name) over ACM's 64, as the example's
    # contract-review pool's name on a stack of 18 characters would have been
    (
        "example",
        CERTIFICATE,
        "contract-review-pool-serving",
        {"domainName": "contract-review-pool.production-eu-west.ai-infra-planner.internal"},
        "65 characters, more than 64",
    ),
    # max_length and pattern of each subject alternative name
    (
        "example",
        CERTIFICATE,
        "contract-review-pool-serving",
        {"subjectAlternativeNames": ["a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63]},
        "more than 253",
    ),
    # min_length, on a lowercased auto-name and an explicit bucket name
    (
        "example",
        "aws:s3/bucket:Bucket",
        "contract-review-pool-weights",
        {"bucket": "ab"},
        "shorter",
    ),
    # one_of
    (
        "example",
        "aws:cloudwatch/logGroup:LogGroup",
        "contract-review-pool-serving",
        {"retentionInDays": 366},
        "not one of",
    ),
    # min_value and max_items: a lifecycle rule expiring replaced versions at once, and more
    # rules than one configuration holds
    (
        "example",
        LIFECYCLE,
        "contract-review-pool-weights",
        {
            "rules": [
                {
                    "id": "r",
                    "status": "Enabled",
                    "noncurrentVersionExpiration": {"noncurrentDays": 0},
                }
            ]
        },
        "less than 1",
    ),
    (
        "example",
        LIFECYCLE,
        "contract-review-pool-weights",
        {"rules": [{"id": f"r{n}", "status": "Enabled"} for n in range(1001)]},
        "more than 1000",
    ),
    # min_value and max_value: a termination hook's wait outside 30-7200 s
    (
        "example",
        HOOK,
        "contract-review-pool-nodes-ending",
        {"heartbeatTimeout": 7201},
        "more than 7200",
    ),
    (
        "example",
        HOOK,
        "contract-review-pool-nodes-ending",
        {"heartbeatTimeout": 29},
        "less than 30",
    ),
    # prefix + max_length: a suffix the Auto Scaling role name cannot hold
    (
        "example",
        SLR,
        "contract-review-pool-autoscaling",
        {"customSuffix": "s" * 36},
        "more than 64",
    ),
    # requires
    (
        "example",
        "aws:ec2/flowLog:FlowLog",
        "contract-review-pool-net-flow-log",
        {"iamRoleArn": None},
        "iamRoleArn is required",
    ),
    # exactly_one_of
    (
        "example",
        "aws:ec2/vpcEndpointService:VpcEndpointService",
        "contract-review-pool-service",
        {"gatewayLoadBalancerArns": ["arn:aws:elasticloadbalancing:us-east-1:1:gwy"]},
        "exactly one of",
    ),
    # tags: a key and a value too long, a reserved prefix
    ("example", KEY, "contract-review-pool-key", {"tags": {"k" * 129: "v"}}, "tag key"),
    ("example", KEY, "contract-review-pool-key", {"tags": {"k": "v" * 257}}, "value longer"),
    ("example", KEY, "contract-review-pool-key", {"tags": {"aws:cost": "1"}}, "starts with aws:"),
    # max_decoded_bytes: user data over 16 KB before base64
    (
        "example",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "contract-review-pool-nodes",
        {"userData": base64.b64encode(b"#" * 16385).decode()},
        "more than 16384",
    ),
]


@pytest.mark.parametrize(("shape", "token", "name", "change", "expected"), FAULTS)
def test_each_limit_kind_catches_its_fault(
    runs: dict[str, OfflineRun],
    shape: str,
    token: str,
    name: str,
    change: dict[str, Any],
    expected: str,
) -> None:
    run = runs[shape]
    broken = replaced(run, named(run, token, name), **change)
    found, _ = violations(broken)
    assert found and all(f.startswith(f"{token} {name}: ") for f in found), found
    assert any(expected in f for f in found), found


def test_only_one_interface_may_ask_for_a_public_address(runs: dict[str, OfflineRun]) -> None:
    """The multi-node template as main wrote it: associatePublicIpAddress on every interface."""
    run = runs["multi_node"]
    template = named(run, TEMPLATE, "deep-notes-pool-nodes")
    interfaces = [
        {**i, "associatePublicIpAddress": "false"} for i in template.inputs["networkInterfaces"]
    ]
    found, _ = violations(replaced(run, template, networkInterfaces=interfaces))
    assert any("associatePublicIpAddress is set with 33 items" in f for f in found), found
    interfaces = [{**i, "interfaceType": "efa-onl"} for i in template.inputs["networkInterfaces"]]
    found, _ = violations(replaced(run, template, networkInterfaces=interfaces))
    assert any("'efa-onl' is not one of" in f for f in found), found


def test_a_kms_alias_rule_holds_for_aliases_an_operator_adds(runs: dict[str, OfflineRun]) -> None:
    run = runs["example"]
    key = named(run, KEY, "contract-review-pool-key")
    alias = dataclasses.replace(
        key, type="aws:kms/alias:Alias", name="alias", inputs={"name": "alias/aws/weights"}
    )
    found, _ = violations(dataclasses.replace(run, resources=[alias]))
    [rule] = [r for r in RULES if r["type"] == "aws:kms/alias:Alias"]
    assert found == [
        "aws:kms/alias:Alias alias: name 'alias/aws/weights' starts with alias/aws/ "
        f"({rule['source'][:70]})"
    ]


# ----------------------------------------------------------------- 1. load balancer names
def test_load_balancers_and_target_groups_are_named_within_32(
    runs: dict[str, OfflineRun],
) -> None:
    named_runs = 0
    for run in runs.values():
        names = [r.inputs.get("name") for t in (LB, TG) for r in of_type(run, t)]
        assert all(isinstance(n, str) and len(n) <= 32 for n in names), names
        assert len(set(names)) == len(names)
        named_runs += bool(names)
    assert named_runs == 3  # the API-only organization (vpc) has no pool
    run = runs["example"]
    served = named(run, TG, "patient-notes-pool-serving").inputs["name"]
    assert served.startswith("patient-notes-pool-serv") and len(served) <= 32


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=120),
    st.sampled_from(["dev", "prod", "a" * 60]),
    st.sampled_from([32, 35, 64]),
)
def test_aws_names_fit_stay_stable_and_differ_per_stack(name: str, stack: str, limit: int) -> None:
    made = aws_name(stack, name, limit)
    assert len(made) <= limit
    assert re.fullmatch(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?", made)
    assert not made.lower().startswith("internal-")
    assert made == aws_name(stack, name, limit)  # deterministic
    assert made != aws_name(stack + "x", name, limit)  # two stacks, two names
    assert aws_name("dev", "internal-notes-pool-lb", 32).startswith("notes-pool-lb-")
    # What replaces the resource changes its name (create-before-delete needs two names).
    assert aws_name(stack, name, limit, ("10.100.0.0/16",)) != aws_name(
        stack, name, limit, ("10.101.0.0/16",)
    )


def test_a_replaced_load_balancer_or_target_group_gets_a_new_name() -> None:
    """Pulumi creates a replacement before it deletes the old resource, and two load balancers
    (or target groups) of one name cannot coexist: a pool whose range or zones change (what
    replaces them) names them anew, and one whose inputs stay keeps its names."""
    from stacks.aws.naming import aws_name as named_for

    lb = named_for("dev", "p-lb", 32, ("10.100.0.0/16", "network", "us-east-1a", "us-east-1b"))
    assert lb == named_for(
        "dev", "p-lb", 32, ("10.100.0.0/16", "network", "us-east-1a", "us-east-1b")
    )
    assert lb != named_for(
        "dev", "p-lb", 32, ("10.101.0.0/16", "network", "us-east-1a", "us-east-1b")
    )
    assert lb != named_for(
        "dev", "p-lb", 32, ("10.100.0.0/16", "network", "us-east-1a", "us-east-1c")
    )


# ---------------------------------------------------- 2. every security group description
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_security_group_description_uses_ec2s_characters(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    allowed = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
    described = [
        r for r in runs[shape].resources
        if r.type.startswith(("aws:ec2/securityGroup", "aws:vpc/securityGroup"))
    ]  # fmt: skip
    assert len(described) >= 6
    for resource in described:
        # Every group and rule says what it admits (a rule's description is optional to AWS).
        assert allowed.fullmatch(resource.inputs.get("description", "")), resource.name
        assert resource.inputs.get("description"), resource.name


# ----------------------------------------------- 3. the Auto Scaling service-linked role
@pytest.mark.parametrize("shape", ["example", "multi_node"])
def test_each_pool_key_waits_for_its_own_autoscaling_role(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    run = runs[shape]
    urns = {r.urn: r for r in run.resources}
    roles = of_type(run, SLR)
    assert roles
    for role in roles:
        pool = role.name.removesuffix("-autoscaling")
        assert role.inputs["awsServiceName"] == "autoscaling.amazonaws.com"
        suffix = role.inputs["customSuffix"]
        assert suffix == aws_name("dev", pool, AUTOSCALING_SUFFIX_LIMIT)
        arn = (
            f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/autoscaling.amazonaws.com/"
            f"{AUTOSCALING_ROLE}_{suffix}"
        )
        key = named(run, KEY, f"{pool}-key")
        # The key's policy names the role, so CreateKey runs after CreateServiceLinkedRole.
        assert role.urn in key.dependencies["policy"]
        principals = {
            json.dumps(s["Principal"]) for s in json.loads(key.inputs["policy"])["Statement"]
        }
        assert json.dumps({"AWS": arn}) in principals
        # Never the account's default role, which may not exist.
        assert f'/{AUTOSCALING_ROLE}"' not in key.inputs["policy"]
        groups = [g for g in of_type(run, GROUP) if g.name.startswith(pool)]
        assert groups and all(g.inputs["serviceLinkedRoleArn"] == arn for g in groups)
        assert all(role.urn in g.dependencies["serviceLinkedRoleArn"] for g in groups)
        assert urns[role.parent].name == pool


def test_two_stacks_in_one_account_get_distinct_autoscaling_roles(
    tmp_path: Path, runs: dict[str, OfflineRun]
) -> None:
    """A second stack of the same workloads (say prod beside dev) creates its own role: the
    suffix carries the stack, so CreateServiceLinkedRole never meets a name already taken."""
    prod = _run(tmp_path, None, stack="prod")
    dev_roles = {r.inputs["customSuffix"] for r in of_type(runs["example"], SLR)}
    prod_roles = {r.inputs["customSuffix"] for r in of_type(prod, SLR)}
    assert len(dev_roles) == len(prod_roles) == 2 and not dev_roles & prod_roles
    dev_names = {r.inputs["name"] for t in (LB, TG) for r in of_type(runs["example"], t)}
    prod_names = {r.inputs["name"] for t in (LB, TG) for r in of_type(prod, t)}
    assert not dev_names & prod_names  # load balancer names are unique per account too


# ----------------------------------------------------------------------- 4. EFA layout
def test_multi_node_nodes_use_one_address_and_efa_only_cards(runs: dict[str, OfflineRun]) -> None:
    run = runs["multi_node"]
    [template] = of_type(run, TEMPLATE)
    cards = default_catalog().instances[template.inputs["instanceType"]].efa_interfaces
    assert template.inputs["instanceType"] == "p5.48xlarge" and cards and cards.value == 32
    layout = [
        (i["networkCardIndex"], i["deviceIndex"], i.get("interfaceType"))
        for i in template.inputs["networkInterfaces"]
    ]
    assert layout[0] == (0, 0, None)  # the ENA primary: the node's one private address
    assert layout[1] == (0, 1, "efa-only")
    assert layout[2:] == [(card, 0, "efa-only") for card in range(1, 32)]
    assert layout == efa_layout(32)
    for interface in template.inputs["networkInterfaces"]:
        assert "associatePublicIpAddress" not in interface
        assert interface["securityGroups"] == ["deep-notes-pool-nodes-id"]
    [single] = of_type(runs["example"], TEMPLATE)[:1]
    assert [
        (i["networkCardIndex"], i["deviceIndex"], i.get("interfaceType"))
        for i in single.inputs["networkInterfaces"]
    ] == [(0, 0, None)]


# ------------------------------------------------------------------ 5. NAT after the IGW
@pytest.mark.parametrize("shape", ["example", "vpc"])
def test_nat_gateways_and_their_addresses_wait_for_the_internet_gateway(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    run = runs[shape]
    [gateway] = of_type(run, "aws:ec2/internetGateway:InternetGateway")
    waiting = of_type(run, "aws:ec2/natGateway:NatGateway") + of_type(run, "aws:ec2/eip:Eip")
    assert len(waiting) == 4
    for resource in waiting:
        assert gateway.urn in resource.depends_on, resource.name


# --------------------------------------------------------------- 6. the weights bucket
def _bucket_policy(run: OfflineRun) -> dict[str, Any]:
    policy = named(run, "aws:s3/bucketPolicy:BucketPolicy", "contract-review-pool-weights")
    document: dict[str, Any] = json.loads(policy.inputs["policy"])
    return document


def test_the_weights_stay_inside_and_the_deployer_keeps_the_bucket(
    runs: dict[str, OfflineRun],
) -> None:
    statements = {s["Sid"]: s for s in _bucket_policy(runs["example"])["Statement"]}
    outside = statements["DenyObjectsOutsideTheVpcEndpoint"]
    assert outside["Condition"]["StringNotEquals"] == {
        "aws:SourceVpce": "contract-review-pool-net-s3-id"
    }
    assert sorted(outside["Action"]) == sorted(OBJECT_ACTIONS)
    # What Pulumi needs from outside the VPC to read, tag, change and delete the bucket and its
    # policy: no statement denies it but the plain-HTTP one.
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                   "s3:GetBucketTagging", "s3:PutBucketTagging", "s3:DeleteBucket",
                   "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration"):  # fmt: skip
        assert action not in outside["Action"] and "s3:*" not in outside["Action"]
    assert statements["DenyPlainHttp"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _bucket_findings(run: OfflineRun, project_root: Path) -> list[str]:
    plan = read_plan(project_root / "dev" / "plans" / "dev" / "plan.json")
    report = verify(graph_from_offline(run), Expectations.of(plan, default_catalog()))
    return [f.message for f in report.failures() if f.rule == "buckets"]


def test_verify_passes_the_bucket_and_fails_one_open_to_object_reads(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path, None)
    assert _bucket_findings(run, tmp_path) == []
    policy = named(run, "aws:s3/bucketPolicy:BucketPolicy", "contract-review-pool-weights")
    document = json.loads(policy.inputs["policy"])
    for statement in document["Statement"]:
        if statement["Sid"] == "DenyObjectsOutsideTheVpcEndpoint":
            statement["Action"] = ["s3:PutBucketTagging"]  # restricted, but not the objects
    broken = replaced(run, policy, policy=json.dumps(document))
    [message] = _bucket_findings(broken, tmp_path)
    assert message == (
        "the bucket policy does not deny s3:GetObject, s3:PutObject, s3:DeleteObject outside "
        "the VPC endpoint"
    )
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] == "DenyPlainHttp"]
    broken = replaced(run, policy, policy=json.dumps(document))
    assert _bucket_findings(broken, tmp_path) == [
        "the bucket policy does not deny access outside the VPC endpoint"
    ]


# ------------------------------------------------------------------ 7. the flow-log role
@pytest.mark.parametrize("shape", ["example", "vpc"])
def test_flow_log_roles_trust_only_this_accounts_flow_logs(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    run = runs[shape]
    roles = [r for r in of_type(run, "aws:iam/role:Role") if r.name.endswith("-flow-logs")]
    assert roles
    for role in roles:
        [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:vpc-flow-log/*"},
        }
        policy = named(run, "aws:iam/rolePolicy:RolePolicy", role.name)
        statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        # DescribeLogGroups takes no resource ARN: alone, on "*"; the rest on the one group.
        assert statements["DescribeLogGroups"]["Action"] == "logs:DescribeLogGroups"
        assert statements["DescribeLogGroups"]["Resource"] == "*"
        group = statements["WriteTheFlowLogGroup"]
        assert "logs:DescribeLogGroups" not in group["Action"]
        assert all(r.startswith(f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:") for r in group["Resource"])


def test_verify_still_passes_the_iam_rule(tmp_path: Path) -> None:
    run = _run(tmp_path, None)
    plan = read_plan(tmp_path / "dev" / "plans" / "dev" / "plan.json")
    report = verify(graph_from_offline(run), Expectations.of(plan, default_catalog()))
    assert [f for f in report.failures() if f.rule in ("iam", "buckets")] == []


# ------------------------------------------------------------- 9. parliament on every policy
# Mock ARNs are "arn:aws:<service>:<region>:<account>:<name>"; parliament checks each action's
# resources against the formats the Service Authorization Reference documents, so they are
# written in those formats before linting.
ARN_FORMATS = {
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:us-east-1:{account}:log-group:{name}",
    "aws:secretsmanager/secret:Secret": (
        "arn:aws:secretsmanager:us-east-1:{account}:secret:{name}-AbCdEf"
    ),
    "aws:kms/key:Key": "arn:aws:kms:us-east-1:{account}:key/{name}-key-id",
    "aws:ecr/repository:Repository": "arn:aws:ecr:us-east-1:{account}:repository/{name}",
}  # fmt: skip
# Findings of medium severity or higher accepted beyond tests/test_stacks.py's, with why.
MORE_ACCEPTED = {
    # Amazon ECR, "Private registry authentication": a node pulls its image with a registry
    # token; the action takes no resource (ecr:GetAuthorizationToken on "*").
    ("RegistryLogin", "CREDENTIALS_EXPOSURE"),
    # The node reads the pool's own serving API key from Secrets Manager, by its ARN; parliament
    # reports every secretsmanager:GetSecretValue as credential exposure.
    ("ReadTheApiKey", "CREDENTIALS_EXPOSURE"),
}


def _accepted(finding: tuple[str, str, str, str, Any]) -> bool:
    _, path, sid, issue, detail = finding
    if path == "assumeRolePolicy" and issue == "CREDENTIALS_EXPOSURE":
        # sts:AssumeRole in a trust policy says who may assume the role; it grants nothing.
        return True
    return (sid, issue) in MORE_ACCEPTED or accepted(sid, issue, detail)


def _realistic(run: OfflineRun) -> dict[str, str]:
    mock = "arn:aws:{service}:us-east-1:{account}:{name}"
    services = {"cloudwatch": "logs"}
    found = {}
    for resource in run.resources:
        if resource.type in ARN_FORMATS:
            module = resource.type.split(":")[1].split("/")[0]
            old = mock.format(service=services.get(module, module), account=ACCOUNT_ID,
                              name=resource.name)  # fmt: skip
            found[old] = ARN_FORMATS[resource.type].format(account=ACCOUNT_ID, name=resource.name)
    return found


def _policies(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON policy document among a resource's inputs, by input path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _policies(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _policies(item, f"{path}[{index}]")
    elif isinstance(value, str) and value.startswith("{") and '"Statement"' in value:
        yield path, json.loads(value)


def policy_findings(run: OfflineRun) -> tuple[list[tuple[str, str, str, str, Any]], set[str]]:
    """(resource, input, Sid, issue, detail) of every finding of medium severity or higher,
    each statement linted on its own; and the (type, input) pairs that held policies."""
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

    override_config(
        str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    )
    arns = _realistic(run)
    pattern = re.compile("|".join(re.escape(a) for a in sorted(arns, key=len, reverse=True))
                         + r"(?=[\":/])")  # fmt: skip
    found, holders = [], set()
    for resource in run.resources:
        for path, document in _policies(resource.inputs):
            holders.add(f"{resource.type} {path}")
            for statement in document["Statement"]:
                text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
                text = pattern.sub(lambda m: arns[m.group(0)], text)
                # Bedrock model versions (…-v1:0): see tests/test_stacks.py _MODEL_VERSION.
                text = re.sub(r"(:bedrock:[^\"]*?/[^\":/]+):(\d+)\"", r'\1-v\2"', text)
                if path == "assumeRolePolicy":
                    # A trust policy has no Resource (the role is the resource, IAM JSON policy
                    # reference, "Resource"); parliament calls that malformed and stops, so the
                    # role stands in as "*" and the actions, principal and conditions are linted.
                    text = text.replace('"Action":', '"Resource": "*", "Action":', 1)
                policy = analyze_policy_string(text, include_community_auditors=True)
                for finding in map(enhance_finding, policy.findings):
                    # A misspelt action is only LOW to parliament, and a policy that says
                    # something else than meant: reported too.
                    if finding.severity in ("MEDIUM", "HIGH", "CRITICAL") or finding.issue in (
                        "UNKNOWN_ACTION",
                        "UNKNOWN_PREFIX",
                    ):
                        sid = statement.get("Sid", "")
                        found.append((resource.name, path, sid, finding.issue, finding.detail))
    return found, holders


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_policy_the_stacks_write_passes_parliament(
    shape: str, runs: dict[str, OfflineRun]
) -> None:
    found, holders = policy_findings(runs[shape])
    unexpected = sorted({(f[0], f[1], f[2], f[3]) for f in found if not _accepted(f)})
    assert unexpected == []
    # Trust policies and role and managed policies are linted, not only resource policies.
    assert {"aws:iam/role:Role assumeRolePolicy", "aws:kms/key:Key policy"} <= holders
    if shape != "vpc":
        assert "aws:iam/rolePolicy:RolePolicy policy" in holders
        assert "aws:s3/bucketPolicy:BucketPolicy policy" in holders


def test_parliament_finds_a_role_policy_that_escalates(runs: dict[str, OfflineRun]) -> None:
    run = runs["example"]
    policy = named(run, "aws:iam/rolePolicy:RolePolicy", "contract-review-pool-node")
    document = json.loads(policy.inputs["policy"])
    document["Statement"].append(
        {"Sid": "Escalate", "Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"],
         "Resource": "*"}
    )  # fmt: skip
    found, _ = policy_findings(replaced(run, policy, policy=json.dumps(document)))
    assert any(f[2] == "Escalate" and f[3] == "PRIVILEGE_ESCALATION" for f in found), found
    trust = named(run, "aws:iam/role:Role", "contract-review-pool-net-flow-logs")
    document = json.loads(trust.inputs["assumeRolePolicy"])
    document["Statement"][0]["Action"] = "sts:AssumeRol"
    found, _ = policy_findings(replaced(run, trust, assumeRolePolicy=json.dumps(document)))
    assert any(f[0] == trust.name and f[3] == "UNKNOWN_ACTION" for f in found), found


# ------------------------------------------------------------ long names, shortened stably
def test_long_workload_names_get_names_aws_accepts(tmp_path: Path) -> None:
    """A 63-character workload name makes 68-character pool names: auto-names of buckets,
    roles and DNS Firewall pieces would pass their limits, so those get aws_name's short form."""
    text = workload_yaml(name="w" * 63, task="chat", data="regulated", model="llama-3.1-8b")
    run = _run(tmp_path, text)
    found, checked = violations(run)
    assert found == [] and checked > 100
    bucket = named(run, "aws:s3/bucket:Bucket", "w" * 63 + "-pool-weights")
    assert bucket.inputs["bucket"] == aws_name("dev", bucket.name, 63).lower()
    # Short logical names keep their auto-names (and the golden previews their resources).
    example = _run(tmp_path / "example", None)
    assert (
        "bucket"
        not in named(example, "aws:s3/bucket:Bucket", "contract-review-pool-weights").inputs
    )


# A 40-character workload called from a VPC of this account, on a 27-character stack: its
# pool's name, 99 characters, is over ACM's 64 for a certificate's domain name.
LONG_NAMES = workload_yaml(
    name="claims-summarization-for-regulated-notes",
    task="chat",
    data="regulated",
    model="llama-3.1-8b",
    consumers=(
        "[{cidr: 10.60.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, "
        "subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]}]"
    ),
)
LONG_STACK = "production-eu-west-payments"


def test_a_long_pool_and_stack_name_get_a_certificate_acm_accepts(tmp_path: Path) -> None:
    """ACM refuses a domain name (the common name) over 64 characters: the certificate gets a
    short common name and the name callers use as a subject alternative name, which TLS
    clients check (RFC 6125 6.4.4), so the name in the consumer VPC's zone, its record, the
    endpoint URL and the certificate still agree."""
    run = _run(tmp_path, LONG_NAMES, stack=LONG_STACK)
    found, checked = violations(run)
    assert found == [] and checked > 100
    [(pool, given)] = run.outputs["pools"].items()
    dns = given["dns_name"]
    assert dns == f"{pool}.{LONG_STACK}.ai-infra-planner.internal" and len(dns) == 99
    assert given["endpoint"] == f"https://{dns}:8000/v1"
    [certificate] = of_type(run, CERTIFICATE)
    common = certificate.inputs["domainName"]
    assert len(common) <= 64 and common.endswith(".ai-infra-planner.internal")
    assert common.startswith("claims-summarization-for-")
    assert certificate.inputs["subjectAlternativeNames"] == [dns]
    # Callers in the VPC resolve that very name: the zone and its record.
    [zone] = of_type(run, "aws:route53/zone:Zone")
    [record] = of_type(run, "aws:route53/record:Record")
    assert zone.inputs["name"] == record.inputs["name"] == dns
    # The listener serves this certificate.
    [listener] = of_type(run, "aws:lb/listener:Listener")
    arn = f"arn:aws:acm:us-east-1:{ACCOUNT_ID}:{certificate.name}"
    assert listener.inputs["certificateArn"] == arn


def test_a_pool_moved_to_another_range_names_its_balancer_and_target_group_anew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example planned twice, the second time with its pools from another range (its VPCs,
    and so their load balancers and target groups, are replaced): every one of them gets a new
    name, so the replacement can exist beside the old one until Pulumi deletes it."""
    names = []
    for pools in ("10.100.0.0/16", "10.120.0.0/16"):
        project = tmp_path / pools.split("/")[0]
        project.mkdir()
        shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
        shutil.copy(REPO / "__main__.py", project / "__main__.py")
        monkeypatch.chdir(project)
        example = (REPO / "examples" / "workloads.yaml").read_text()
        text = example.replace("pools: 10.100.0.0/16", f"pools: {pools}")
        assert (text != example) == (pools != "10.100.0.0/16")
        config = plan_project(project, text)
        capsys.readouterr()
        run = run_program(project, "dev", config)
        names.append({r.name: r.inputs["name"] for t in (LB, TG) for r in of_type(run, t)})
    assert names[0].keys() == names[1].keys() and names[0]
    assert all(names[0][k] != names[1][k] for k in names[0])


def test_user_data_is_gzipped_deterministically_and_reads_back(runs: dict[str, OfflineRun]) -> None:
    """The stacks gzip the user data (cloud-init uncompresses it) so the script has room under
    EC2's 16 KB; the bytes depend on the text only (gzip's mtime set to 0), and what cloud-init
    reads back is the rendered cloud-config."""
    from planner.verification.rules.secrets import user_data_text
    from stacks.aws.nodes import encode_user_data

    assert encode_user_data("#cloud-config\n") == encode_user_data("#cloud-config\n")
    templates = [
        r for run in runs.values() for r in of_type(run, "aws:ec2/launchTemplate:LaunchTemplate")
    ]
    assert templates
    for template in templates:
        raw = base64.b64decode(template.inputs["userData"])
        text = user_data_text(template.inputs["userData"])
        assert raw[:2] == b"\x1f\x8b" and text.startswith("#cloud-config")
        assert len(raw) < len(text.encode()) / 2 and len(raw) <= 16384
