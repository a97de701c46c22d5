"""`planner verify`: a clean generated graph passes; every fault injected into it is reported,
with the rule and, for the perimeter, a witness path."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pulumi.runtime import rpc

from planner.catalog import default_catalog
from planner.cli import main
from planner.graph.offline import run_program
from planner.graph.preview import run_preview
from planner.graph.resources import Graph, Resource, graph_from_offline
from planner.planfile import Consumer, Plan, read_plan
from planner.render.verify_report import render_json, render_text
from planner.verification.aws_network import Network
from planner.verification.aws_types import (
    DNS_ASSOCIATION,
    DNS_CONFIG,
    DNS_DOMAIN_LIST,
    DNS_RULE,
    ENDPOINT,
    ENDPOINT_ACCEPTER,
    ENDPOINT_SERVICE,
    FIREWALL,
    IGW,
    LAUNCH_TEMPLATE,
    NAT,
    PEERING,
    ROUTE,
    ROUTE_TABLE,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SUBNET,
    TGW_ATTACHMENT,
    VPC,
)
from planner.verification.expectations import Expectations
from planner.verification.registry import (
    RULES,
    Finding,
    Report,
    Status,
    Subject,
    WorkloadVerdict,
)
from planner.verification.rules.secrets import keys_in as _keys_in
from planner.verification.rules.secrets import user_data_text
from planner.verification.run import verify, verify_program
from tests.conftest import EXAMPLE, workload_yaml
from tests.fake_keys import KINDS, fake_key
from tests.test_stacks import CANARY, MULTI_NODE, VPC_CONSUMERS, plan_project

POOL = "patient-notes-pool"
STACK = "urn:pulumi:dev::ai-infra-planner::test"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Graph, Plan, dict[str, Any]]:
    """The example, planned one workload at a time (every kind of network), run under mocks."""
    project = tmp_path_factory.mktemp("verify")
    repo = Path(__file__).resolve().parent.parent
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((repo / name).read_text())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        config = plan_project(project, None)
        config["ai-infra-planner:openai_api_key"] = CANARY
        run = run_program(project, "dev", config, secret_keys=["ai-infra-planner:openai_api_key"])
    return graph_from_offline(run), read_plan(project / "plans/dev/plan.json"), run.outputs


def check(graph: Graph, plan: Plan, outputs: dict[str, Any] | None = None) -> Report:
    return verify(graph, Expectations.of(plan, default_catalog()), outputs)


def find(graph: Graph, type_: str, name: str) -> Resource:
    [found] = [r for r in graph.resources.values() if r.type == type_ and r.name == name]
    return found


def changed(graph: Graph, resource: Resource, **inputs: Any) -> Graph:
    new = dataclasses.replace(resource, inputs={**resource.inputs, **inputs})
    return Graph({**graph.resources, resource.urn: new})


def added(
    graph: Graph,
    type_: str,
    name: str,
    inputs: dict[str, Any],
    deps: dict[str, list[Resource]] | None = None,
) -> Graph:
    urn = f"{STACK}${type_}::{name}"
    resource = Resource(
        urn, type_, name, inputs, {k: tuple(r.urn for r in v) for k, v in (deps or {}).items()}
    )
    return Graph({**graph.resources, urn: resource})


def perimeter_failures(report: Report, subject: str) -> list[Any]:
    [found] = [s for s in report.subjects if s.name == subject]
    return found.failures


def rule_failures(report: Report, rule: str) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in report.findings if f.rule == rule]


def route_out(graph: Graph, table: str, cidr: str, key: str, target: Resource) -> Graph:
    return added(
        graph,
        ROUTE,
        f"injected-{key}",
        {"destinationCidrBlock": cidr, key: "x-id"},
        {"routeTableId": [find(graph, ROUTE_TABLE, table)], key: [target]},
    )


def pool_vpc(graph: Graph) -> Resource:
    return find(graph, VPC, f"{POOL}-net-vpc")


def way_in_failures(report: Report) -> list[Finding]:
    return [f for f in report.failures() if f.rule == "way-in"]


def test_clean_generated_stacks_pass(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    """Nothing gets out of the example's networks (DNS included), and every consumer gets in:
    the pools publish endpoint services, Bedrock's endpoint sits in the consumer's VPC, and the
    consumer in another account is allowed by the pool's endpoint service."""
    graph, plan, outputs = clean
    report = check(graph, plan, outputs)
    assert report.failures() == [] and report.passed
    assert way_in_failures(report) == []
    perimeters = {s.name: s.perimeter for s in report.subjects}
    assert perimeters == {
        "pool contract-review-pool": "technical",
        f"pool {POOL}": "technical",
        "endpoint bedrock-link-vpc-0a1b2c3d4e5f60718-bedrock-runtime": "private_link",
        "network api-egress": "contractual",
    }
    assert all(s.passed for s in report.subjects)
    [pool] = [s for s in report.subjects if s.name == f"pool {POOL}"]
    # The component that blocks each way out is named.
    assert any("routes nothing out of the VPC" in b for b in pool.blocks)
    assert any("has no internet, egress-only, NAT" in b for b in pool.blocks)
    assert any(
        b.startswith(f"DNS: vpc {POOL}-net-vpc's resolver answers only") for b in pool.blocks
    )
    [egress] = [s for s in report.subjects if s.name == "network api-egress"]
    assert any("only through firewall api-egress-firewall" in b for b in egress.blocks)


@pytest.mark.parametrize(
    ("key", "type_", "kind"),
    [
        ("gatewayId", IGW, "internet gateway"),
        ("natGatewayId", NAT, "NAT gateway"),
        ("vpcPeeringConnectionId", PEERING, "peering connection"),
        (
            "transitGatewayId",
            "aws:ec2transitgateway/transitGateway:TransitGateway",
            "transit gateway",
        ),
        ("gatewayId", "aws:ec2/vpnGateway:VpnGateway", "VPN gateway"),
    ],
)
def test_a_route_out_of_a_technical_pool_is_found_with_its_path(
    clean: tuple[Graph, Plan, dict[str, Any]], key: str, type_: str, kind: str
) -> None:
    graph, plan, _ = clean
    vpc = pool_vpc(graph)
    subnet = find(graph, SUBNET, f"{POOL}-net-private-us-east-1a")
    graph = added(
        graph,
        type_,
        "way-out",
        {"vpcId": "v", "subnetId": "s"},
        {"vpcId": [vpc], "subnetId": [subnet]},
    )
    target = find(graph, type_, "way-out")
    graph = route_out(graph, f"{POOL}-net-private", "0.0.0.0/0", key, target)
    failures = perimeter_failures(check(graph, plan), f"pool {POOL}")
    assert failures, kind
    [failure, *_] = failures
    assert f"reaches {'an' if kind[0] in 'aeiou' else 'a'} {kind}" in failure.message
    assert failure.witness[-1].startswith(target.label)
    assert any(hop.startswith(f"routeTable {POOL}-net-private") for hop in failure.witness)
    assert any(hop.startswith("route to") for hop in failure.witness)
    # The other pool is untouched.
    assert perimeter_failures(check(graph, plan), "pool contract-review-pool") == []


def test_longest_prefix_match_decides(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    """The nodes may talk to the whole VPC: a more specific route than the local one that
    sends half of it to an internet gateway is a way out; the same route for a range the
    nodes may not reach is not."""
    graph, plan, _ = clean
    vpc = pool_vpc(graph)
    cidr = vpc.inputs["cidrBlock"]
    half = cidr.replace("/16", "/17")
    graph = added(graph, IGW, "igw", {"vpcId": "v"}, {"vpcId": [vpc]})
    gateway = find(graph, IGW, "igw")
    leaking = route_out(graph, f"{POOL}-net-private", half, "gatewayId", gateway)
    failures = perimeter_failures(check(leaking, plan), f"pool {POOL}")
    assert any("nodes of" in f.resource and "internet gateway" in f.message for f in failures)
    outside = route_out(graph, f"{POOL}-net-private", "192.168.0.0/16", "gatewayId", gateway)
    failures = perimeter_failures(check(outside, plan), f"pool {POOL}")
    assert not any("nodes of" in f.resource for f in failures)


def test_a_network_acl_can_block_the_way_out(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    vpc = pool_vpc(graph)
    graph = added(graph, IGW, "igw", {"vpcId": "v"}, {"vpcId": [vpc]})
    graph = route_out(
        graph, f"{POOL}-net-private", "0.0.0.0/0", "gatewayId", find(graph, IGW, "igw")
    )
    assert perimeter_failures(check(graph, plan), f"pool {POOL}")
    subnets = [s for s in graph.of_type(SUBNET) if s.name.startswith(f"{POOL}-net-private")]
    inside_only = [
        {
            "ruleNo": 100,
            "action": "allow",
            "protocol": "-1",
            "fromPort": 0,
            "toPort": 0,
            "cidrBlock": vpc.inputs["cidrBlock"],
        }
    ]
    graph = added(
        graph,
        "aws:ec2/networkAcl:NetworkAcl",
        "inside-only",
        {"vpcId": "v", "subnetIds": ["a", "b"], "egress": inside_only},
        {"vpcId": [vpc], "subnetIds": subnets},
    )
    report = check(graph, plan)
    assert perimeter_failures(report, f"pool {POOL}") == []


@pytest.mark.parametrize("form", ["inline", "separate", "securityGroupRule"])
def test_open_egress_from_gpu_nodes(clean: tuple[Graph, Plan, dict[str, Any]], form: str) -> None:
    graph, plan, _ = clean
    group = find(graph, SG, f"{POOL}-nodes")
    if form == "inline":
        graph = changed(
            graph,
            group,
            egress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}],
        )
    elif form == "separate":
        graph = added(
            graph,
            SG_EGRESS,
            "anywhere",
            {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
            {"securityGroupId": [group]},
        )
    else:
        graph = added(
            graph,
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "anywhere",
            {
                "type": "egress",
                "protocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
                "cidrBlocks": ["0.0.0.0/0"],
            },
            {"securityGroupId": [group]},
        )
    [failure] = rule_failures(check(graph, plan), "open-egress")
    assert f"{POOL}-nodes" in failure and "0.0.0.0/0" in failure


@pytest.mark.parametrize("form", ["inline", "separate"])
def test_open_ingress(clean: tuple[Graph, Plan, dict[str, Any]], form: str) -> None:
    graph, plan, _ = clean
    group = find(graph, SG, f"{POOL}-lb")
    if form == "inline":
        graph = changed(
            graph,
            group,
            ingress=[
                {"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrBlocks": ["0.0.0.0/0"]}
            ],
        )
    else:
        graph = added(
            graph,
            SG_INGRESS,
            "anyone",
            {"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrIpv4": "0.0.0.0/0"},
            {"securityGroupId": [group]},
        )
    failures = rule_failures(check(graph, plan), "open-ingress")
    assert any("admits 0.0.0.0/0" in f for f in failures)


def test_ingress_from_a_stranger_to_a_model_endpoint(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, plan, _ = clean
    graph = added(
        graph,
        SG_INGRESS,
        "stranger",
        {"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrIpv4": "172.16.0.0/12"},
        {"securityGroupId": [find(graph, SG, f"{POOL}-nodes")]},
    )
    [failure] = rule_failures(check(graph, plan), "open-ingress")
    assert "172.16.0.0/12" in failure and "not one of its consumers" in failure


def test_public_addresses(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    subnet = find(graph, SUBNET, f"{POOL}-net-private-us-east-1a")
    template = find(graph, LAUNCH_TEMPLATE, f"{POOL}-nodes")
    interfaces = [
        {**i, "associatePublicIpAddress": "true"} for i in template.inputs["networkInterfaces"]
    ]
    graph = changed(graph, subnet, mapPublicIpOnLaunch=True)
    graph = changed(graph, template, networkInterfaces=interfaces)
    failures = rule_failures(check(graph, plan), "public-ip")
    assert any(subnet.name in f for f in failures)
    assert any(template.name in f and "public addresses" in f for f in failures)


def test_unencrypted_volume_and_imds(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    template = find(graph, LAUNCH_TEMPLATE, f"{POOL}-nodes")
    mappings = template.inputs["blockDeviceMappings"]
    plain = [{**mappings[0], "ebs": {**mappings[0]["ebs"], "encrypted": "false"}}, *mappings[1:]]
    metadata = {**template.inputs["metadataOptions"], "httpTokens": "optional"}
    graph = changed(graph, template, blockDeviceMappings=plain, metadataOptions=metadata)
    report = check(graph, plan)
    assert rule_failures(report, "disks") == [
        f"launchTemplate {POOL}-nodes: volume /dev/sda1 is not encrypted with a customer key"
    ]
    assert rule_failures(report, "imdsv2") == [
        f"launchTemplate {POOL}-nodes: does not require IMDSv2 tokens"
    ]


@pytest.mark.parametrize("compressed", [True, False])
def test_plaintext_keys_in_user_data_tags_and_secret_versions(
    clean: tuple[Graph, Plan, dict[str, Any]], compressed: bool
) -> None:
    """A key in user data is found whether the user data is gzipped (as the stacks write it)
    or plain base64."""
    graph, plan, _ = clean
    openai, anthropic = fake_key("openai-project"), fake_key("anthropic")
    template = find(graph, LAUNCH_TEMPLATE, f"{POOL}-nodes")
    user_data = user_data_text(template.inputs["userData"])
    assert user_data.startswith("#cloud-config")
    raw = f"{user_data}\nexport OPENAI_API_KEY={openai}\n".encode()
    leaked = base64.b64encode(gzip.compress(raw) if compressed else raw).decode()
    graph = changed(graph, template, userData=leaked)
    vpc = pool_vpc(graph)
    graph = changed(graph, vpc, tags={**vpc.tags(), "note": anthropic})
    version = find(graph, "aws:secretsmanager/secretVersion:SecretVersion", "openai-access-api-key")
    graph = changed(graph, version, secretString="plain")
    report = check(graph, plan)
    failures = rule_failures(report, "secrets")
    assert (
        f"launchTemplate {template.name}: userData (decoded) holds an OpenAI project, "
        f"service-account or admin key, sk-proj-…{openai[-4:]} (164 chars), in plain text"
    ) in failures
    assert (
        f"vpc {vpc.name}: tags.note holds an Anthropic API or admin key, "
        f"sk-ant-api03-…{anthropic[-4:]} (108 chars), in plain text"
    ) in failures
    assert any("secretString is not marked secret" in f for f in failures)
    # The keys are named, never printed.
    for text in (render_text(report), render_json(report)):
        assert openai not in text and anthropic not in text
        assert openai[10:30] not in text and anthropic[15:35] not in text
    # The clean run's secret is marked, and its value is nowhere in the graph.
    assert CANARY not in json.dumps([r.inputs for r in clean[0].resources.values()], default=str)


def test_a_key_in_a_stack_output(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, outputs = clean
    key = fake_key("google")
    failures = rule_failures(check(graph, plan, {**outputs, "debug": f"key={key}"}), "secrets")
    assert failures == [
        f"stack output debug: holds a Google API key, AIza…{key[-4:]} (39 chars), in plain text"
    ]


def test_a_key_in_the_plan_file_or_the_log(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    key = fake_key("aws")
    report = verify(
        graph,
        Expectations.of(plan, default_catalog()),
        texts={
            "plan file plan.json": json.dumps({"note": key}),
            "the program's log": "all fine",
        },
    )
    assert rule_failures(report, "secrets") == [
        f"plan file plan.json: holds an AWS access key id, AKIA…{key[-4:]} (20 chars), "
        "in plain text"
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_each_providers_key_shape_is_caught_masked(kind: str) -> None:
    key = fake_key(kind)
    for text in (key, f"export KEY={key}\n", json.dumps({"key": key}), f"'{key}'"):
        [found] = _keys_in(text)
        assert key not in found or kind == "private-key"
        assert found.endswith("-----BEGIN RSA " + "PRIVATE KEY-----" if kind == "private-key"
                              else f"…{key[-4:]} ({len(key)} chars)")  # fmt: skip
    # Cut short or run on into a longer token, it is not that key.
    if kind != "private-key":
        assert _keys_in(key[:-1]) == [] and _keys_in(key + "x") == []


def test_the_repository_holds_no_key() -> None:
    """The detector over every tracked file: the fixtures build their keys at test time."""
    repo = Path(__file__).resolve().parent.parent
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True
    ).stdout.split(b"\0")
    found = {}
    for name in filter(None, files):
        path = repo / name.decode()
        if path.is_file():
            keys = _keys_in(path.read_bytes().decode("utf-8", "replace"))
            if keys:
                found[name.decode()] = keys
    assert found == {}


@pytest.mark.parametrize(
    "name",
    ["risk-code-generation-11", "helpdesk-ticket-summaries", "task-sk-proj-notes",
     "desk-ant-api03-summaries", "ask-" + "0123456789abcdef" * 2],
)  # fmt: skip
def test_workload_names_are_not_keys(name: str) -> None:
    assert _keys_in(name) == []


@given(st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True))
@example("sk-" + "0123456789abcdef" * 2)
@example("x-sk-" + "0123456789abcdef" * 2)
def test_no_workload_name_is_a_key(name: str) -> None:
    """Workload names are lowercase DNS labels (at most 63 characters): the only key shape one
    can have is a DeepSeek key's (sk- and 32 lowercase hex digits) as the whole name; the others
    need uppercase letters, more characters or a fixed marker."""
    deepseek = re.fullmatch(r"sk-[a-f0-9]{32}", name) is not None
    assert (_keys_in(name) != []) == deepseek
    assert (_keys_in(f"workloads: [{name}]") != []) == deepseek


def test_a_consumer_may_read_only_its_own_secret(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, plan, _ = clean
    secret = find(graph, "aws:secretsmanager/secret:Secret", "openai-access-api-key")
    other = dataclasses.replace(
        secret,
        urn=secret.urn + "-openai",
        name="openai-access-api-key",
        inputs={**secret.inputs, "tags": {**secret.tags(), "ai-infra-planner:provider": "openai"}},
    )
    policy = find(graph, "aws:iam/policy:Policy", "code-review-api-access")
    widened = dataclasses.replace(
        policy, deps={**policy.deps, "policy": (*policy.deps["policy"], other.urn)}
    )
    graph = Graph({**graph.resources, other.urn: other, policy.urn: widened})
    [failure] = rule_failures(check(graph, plan), "iam")
    assert "lets code-review read secrets not its own" in failure
    assert "openai-access-api-key" in failure


def test_iam_wildcards_and_foreign_secrets(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    role_policy = find(graph, "aws:iam/rolePolicy:RolePolicy", f"{POOL}-node")
    graph = changed(
        graph,
        role_policy,
        policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    failures = rule_failures(check(graph, plan), "iam")
    assert any(role_policy.name in f and "every action" in f for f in failures)
    assert any("on every resource" in f for f in failures)


def with_node_policy(graph: Graph, *statements: dict[str, Any]) -> Graph:
    role_policy = find(graph, "aws:iam/rolePolicy:RolePolicy", f"{POOL}-node")
    return changed(graph, role_policy, policy=json.dumps({"Statement": list(statements)}))


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("secretsmanager:BatchGetSecretValue",
         "allows secretsmanager:BatchGetSecretValue (reads secret material) on every resource"),
        ("secretsmanager:GetSecretValue",
         "allows secretsmanager:GetSecretValue (reads secret material) on every resource"),
        ("kms:Decrypt", "allows kms:Decrypt (reads secret material) on every resource"),
        ("ssm:GetParametersByPath",
         "allows ssm:GetParametersByPath (reads secret material) on every resource"),
        ("sts:AssumeRole", "allows sts:AssumeRole (assumes roles) on every resource"),
        ("iam:PassRole", "allows iam:PassRole (Permissions management) on every resource"),
        ("ec2:CreateTags", "allows ec2:CreateTags (Tagging) on every resource"),
        ("s3:putobject", "allows s3:PutObject (Write) on every resource"),
        ("s3:Put*", "allows s3:Put* on every resource (`*`), which includes s3:PutAccelerate"),
        ("secretsmanager:*Secret*", "which includes secretsmanager:BatchGetSecretValue"),
        ("s3:GetObjekt", "allows s3:GetObjekt, which is no action AWS defines"),
        ("nosuchservice:Get", "allows nosuchservice:Get, which is no action AWS defines"),
        ("*:GetObject", "allows *:GetObject, which is no action AWS defines"),
    ],
)  # fmt: skip
def test_iam_knows_aws_access_levels(
    clean: tuple[Graph, Plan, dict[str, Any]], action: str, expected: str
) -> None:
    graph, plan, _ = clean
    graph = with_node_policy(graph, {"Effect": "Allow", "Action": action, "Resource": "*"})
    failures = rule_failures(check(graph, plan), "iam")
    assert failures and all(f"rolePolicy {POOL}-node: " in f for f in failures), failures
    assert any(expected in f for f in failures), failures


SECRET_READ = "secretsmanager:GetSecretValue"
INVOKE = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        # An ARN whose resource part is a wildcard names every resource of its kind.
        ({"Effect": "Allow", "Action": SECRET_READ,
          "Resource": "arn:aws:secretsmanager:*:*:secret:*"},
         f"allows {SECRET_READ} (reads secret material) on every resource "
         "(`arn:aws:secretsmanager:*:*:secret:*`)"),
        ({"Effect": "Allow", "Action": SECRET_READ, "Resource": "arn:aws:secretsmanager:*"},
         "(reads secret material) on every resource (`arn:aws:secretsmanager:*`)"),
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::*"]},
         "allows s3:PutObject (Write) on every resource (`arn:aws:s3:::*`)"),
        # NotResource: every resource but the ones named.
        ({"Effect": "Allow", "Action": SECRET_READ,
          "NotResource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:one"},
         "allows on every resource but those NotResource names"),
        ({"Effect": "Allow", "Action": SECRET_READ,
          "NotResource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:one"},
         f"allows {SECRET_READ} (reads secret material) on every resource (NotResource)"),
        # The perimeter allows the planned models only.
        ({"Effect": "Allow", "Action": INVOKE, "Resource": "*"},
         "allows bedrock:InvokeModel (invokes any model) on every resource (`*`)"),
        ({"Effect": "Allow", "Action": "bedrock:InvokeModel",
          "Resource": "arn:aws:bedrock:*::foundation-model/*"},
         "allows bedrock:InvokeModel (invokes any model) on every resource "
         "(`arn:aws:bedrock:*::foundation-model/*`)"),
    ],
)  # fmt: skip
def test_iam_broad_resources(
    clean: tuple[Graph, Plan, dict[str, Any]], statement: dict[str, Any], expected: str
) -> None:
    graph, plan, _ = clean
    report = check(with_node_policy(graph, statement), plan)
    failures = rule_failures(report, "iam")
    assert any(expected in f for f in failures), failures
    assert not report.passed and f"FAIL iam: {RULES['iam'].text}" in render_text(report)


@pytest.mark.parametrize(
    "statement",
    [
        # Read and List actions that hand out no secret, on every resource.
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "s3:ListAllMyBuckets",
                                       "sts:GetCallerIdentity"], "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:List*", "Resource": "*"},
        # Writes and secret reads on a named resource.
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "s3:PutObject"],
         "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:one"},
        # A Deny of anything.
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        # Named resources and name prefixes are not every resource.
        {"Effect": "Allow", "Action": SECRET_READ,
         "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-*"},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:serving:*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::one-bucket/*"},
        {"Effect": "Allow", "Action": INVOKE,
         "Resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5"},
    ],
)  # fmt: skip
def test_iam_passes_what_it_should(
    clean: tuple[Graph, Plan, dict[str, Any]], statement: dict[str, Any]
) -> None:
    graph, plan, _ = clean
    assert rule_failures(check(with_node_policy(graph, statement), plan), "iam") == []


def test_full_access_endpoint_policy(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    endpoint = find(graph, ENDPOINT, f"{POOL}-net-logs")
    full = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
    graph = changed(graph, endpoint, policy=json.dumps(full))
    report = check(graph, plan)
    assert rule_failures(report, "endpoint-policies") == [
        f"vpcEndpoint {endpoint.name}: policy grants full access"
    ]
    failures = perimeter_failures(report, f"pool {POOL}")
    assert any(f"reaches vpcEndpoint {endpoint.name}" in f.message for f in failures)
    assert failures[0].witness[-1] == f"vpcEndpoint {endpoint.name}"


def test_unknown_resource_in_a_sensitive_subnet_fails_closed(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, plan, _ = clean
    subnet = find(graph, SUBNET, f"{POOL}-net-private-us-east-1b")
    graph = added(
        graph,
        "aws:ec2/trafficMirrorTarget:TrafficMirrorTarget",
        "mirror",
        {"networkInterfaceId": "eni"},
        {"networkInterfaceId": [subnet]},
    )
    failures = perimeter_failures(check(graph, plan), f"pool {POOL}")
    assert any(
        "does not model it" in f.message and "trafficMirrorTarget" in f.resource for f in failures
    )


def test_unmodelled_route_target_fails_closed(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    vpc = pool_vpc(graph)
    graph = added(
        graph,
        "aws:ec2/instance:Instance",
        "router",
        {"subnetId": "s"},
        {"subnetId": [find(graph, SUBNET, f"{POOL}-net-private-us-east-1a")]},
    )
    graph = route_out(
        graph,
        f"{POOL}-net-private",
        "0.0.0.0/0",
        "networkInterfaceId",
        find(graph, "aws:ec2/instance:Instance", "router"),
    )
    del vpc
    failures = perimeter_failures(check(graph, plan), f"pool {POOL}")
    assert any("a target the verifier does not model" in f.message for f in failures)


def test_contractual_traffic_must_pass_the_firewall(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    graph, plan, _ = clean
    gateway = find(graph, IGW, "api-egress-igw")
    [direct] = [
        r for r in graph.of_type(ROUTE) if r.name == "api-egress-private-us-east-1a-default"
    ]
    bypass = Graph(
        {
            **graph.resources,
            direct.urn: dataclasses.replace(
                direct,
                inputs={"destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-id"},
                deps={**direct.deps, "gatewayId": (gateway.urn,)},
            ),
        }
    )
    failures = perimeter_failures(check(bypass, plan), "network api-egress")
    assert any("without passing the firewall" in f.message for f in failures)
    [rule_group] = graph.of_type("aws:networkfirewall/ruleGroup:RuleGroup")
    spec = json.loads(json.dumps(rule_group.inputs["ruleGroup"]))
    spec["rulesSource"]["rulesSourceList"]["targets"].append(".example.com")
    widened = changed(graph, rule_group, ruleGroup=spec)
    failures = perimeter_failures(check(widened, plan), "network api-egress")
    assert failures and all(".example.com" in f.message for f in failures)
    assert any(FIREWALL.split("/")[1].split(":")[0] in hop for hop in failures[0].witness)


def test_private_link_reaches_only_the_planned_endpoint(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Callers given as a plain CIDR: the stack's own PrivateLink network holds the endpoint, and
    # no caller lives there, so the way in legitimately fails; the way out is proven all the same.
    config = plan_project(
        project,
        workload_yaml(task="classification", data="confidential", consumers='["10.0.0.0/16"]'),
    )
    capsys.readouterr()
    graph = graph_from_offline(run_program(project, "dev", config))
    plan = read_plan(project / "plans/dev/plan.json")
    report = check(graph, plan)
    [blocked] = report.failures()
    assert blocked.rule == "way-in"
    assert "not in a network of the stack holding 10.0.0.0/16" in blocked.message
    assert perimeter_failures(report, "provider bedrock") == []
    endpoint = find(graph, ENDPOINT, "bedrock-link-bedrock-runtime")
    extra = dataclasses.replace(
        endpoint,
        urn=endpoint.urn + "-s3",
        name="bedrock-link-s3api",
        inputs={**endpoint.inputs, "serviceName": "com.amazonaws.us-east-1.s3"},
    )
    graph2 = Graph({**graph.resources, extra.urn: extra})
    failures = perimeter_failures(check(graph2, plan), "provider bedrock")
    assert any("only the planned Bedrock endpoint" in f.message for f in failures)
    policy = json.loads(endpoint.inputs["policy"])
    policy["Statement"][0]["Resource"].append(
        "arn:aws:bedrock:us-east-1::foundation-model/some.other-model-v1:0"
    )
    graph3 = changed(graph, endpoint, policy=json.dumps(policy))
    failures = perimeter_failures(check(graph3, plan), "provider bedrock")
    assert any("models not planned" in f.message for f in failures)


Mutation = Callable[[Graph], Graph]


@pytest.mark.parametrize(
    ("rule", "mutate", "expected"),
    [
        (
            "key-rotation",
            lambda g: changed(
                g, find(g, "aws:kms/key:Key", f"{POOL}-key"), enableKeyRotation=False
            ),
            "rotation is off",
        ),
        (
            "buckets",
            lambda g: changed(
                g,
                find(
                    g, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{POOL}-weights"
                ),
                blockPublicPolicy=False,
            ),
            "public access not blocked",
        ),
        (
            "buckets",
            lambda g: changed(
                g,
                find(g, "aws:s3/bucketPolicy:BucketPolicy", f"{POOL}-weights"),
                policy=json.dumps({"Statement": []}),
            ),
            "does not deny",
        ),
        (
            "imdsv2",
            lambda g: changed(
                g,
                find(g, LAUNCH_TEMPLATE, f"{POOL}-nodes"),
                metadataOptions={"httpTokens": "required", "httpPutResponseHopLimit": 2},
            ),
            "hop limit 2",
        ),
        (
            "secrets",
            lambda g: Graph(
                {
                    **g.resources,
                    **{
                        s.urn: dataclasses.replace(s, deps={})
                        for s in g.of_type("aws:secretsmanager/secret:Secret")
                    },
                }
            ),
            "not encrypted with a customer key",
        ),
        (
            "buckets",
            lambda g: changed(
                g,
                find(g, "aws:s3/bucketVersioning:BucketVersioning", f"{POOL}-weights"),
                versioningConfiguration={"status": "Suspended"},
            ),
            "versioning is not enabled",
        ),
        (
            "flow-logs",
            lambda g: Graph(
                {u: r for u, r in g.resources.items() if r.name != f"{POOL}-net-flow-log"}
            ),
            "no flow log",
        ),
        (
            "deletion",
            lambda g: Graph(
                {
                    **g.resources,
                    **{
                        r.urn: dataclasses.replace(r, protect=False)
                        for r in g.of_type("aws:kms/key:Key")
                    },
                }
            ),
            "not protected",
        ),
        (
            "deletion",
            lambda g: added(g, "aws:ec2/capacityReservation:CapacityReservation", "buy", {}),
            "capacity reservation",
        ),
    ],
)
def test_each_rule_reports_its_fault(
    clean: tuple[Graph, Plan, dict[str, Any]], rule: str, mutate: Mutation, expected: str
) -> None:
    graph, plan, _ = clean
    failures = rule_failures(check(mutate(graph), plan), rule)
    assert failures and all(expected in f for f in failures), failures


# ----------------------------------------------------------------------------- the command


@pytest.fixture
def planned(project: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    plan_project(project, None)
    capsys.readouterr()
    return project


def _unknown_ids(value: Any) -> Any:
    """What a real `pulumi preview --json` of a new stack shows: ids and anything computed
    from other resources' outputs are unknown."""
    if isinstance(value, dict):
        return {k: _unknown_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown_ids(v) for v in value]
    # A principal's ARN is written in the program (an account number), known at preview.
    if isinstance(value, str) and ("-id" in value or "arn:aws:" in value) and ":root" not in value:
        return rpc.UNKNOWN
    return value


def only_the_way_in_fails(out: str) -> None:
    """Every rule but the way in passes; the way in fails and the run ends FAILED."""
    for rule_id in RULES:
        expected = "FAIL" if rule_id == "way-in" else "PASS"
        assert any(line.startswith(f"{expected} {rule_id}: ") for line in out.splitlines()), rule_id
    assert out.rstrip().splitlines()[-1].startswith("verification FAILED")


def no_rule_fails(out: str, unknown: set[str]) -> None:
    """The rules named are UNKNOWN, every other passes; no line says FAIL, and the run ends
    saying it is not verified (exit status 0: no failure)."""
    for rule_id in RULES:
        expected = "UNKNOWN" if rule_id in unknown else "PASS"
        assert any(line.startswith(f"{expected} {rule_id}: ") for line in out.splitlines()), rule_id
    assert "FAIL" not in out
    assert re.fullmatch(
        r"not verified: no failure; [1-9]\d* check\(s\) unknown \(--fail-on-unknown fails them\)",
        out.rstrip().splitlines()[-1],
    )


def every_rule_passes(out: str) -> None:
    """Every rule passes, the way in included, and the run ends verified."""
    for rule_id in RULES:
        assert any(line.startswith(f"PASS {rule_id}: ") for line in out.splitlines()), rule_id
    assert "FAIL" not in out
    assert out.rstrip().splitlines()[-1] == "verified: no failure"


def test_verify_command_on_the_example_passes(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "PASS patient-notes (technical, pool patient-notes-pool)" in out
    assert "PASS code-review (contractual, network api-egress)" in out
    assert "PASS pool patient-notes-pool (technical; workloads patient-notes)" in out
    assert "  way in: consumer 10.51.0.0/16 (in account 111122223333) -> " in out
    every_rule_passes(out)
    assert main(["verify", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is True
    assert {r for r, found in document["rules"].items() if found["failures"]} == set()
    assert {r["status"] for r in document["rules"].values()} == {"PASS"}
    assert not any(r["unknowns"] for r in document["rules"].values())
    assert document["status"] == "PASS"
    assert {s["perimeter"] for s in document["subjects"]} == {
        "technical",
        "private_link",
        "contractual",
    }


def test_verify_a_preview_file_joined_by_urns(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preview", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    for step in document["steps"]:
        step["newState"]["inputs"] = _unknown_ids(step["newState"]["inputs"])
        # As the engine writes them: `null` where a property has no dependencies.
        step["newState"]["propertyDependencies"]["__provider"] = None
    # The old half of a replacement is not in the stack any more.
    ghost = json.loads(json.dumps(document["steps"][-1]))
    ghost["op"] = "delete-replaced"
    ghost["newState"]["inputs"] = {"mapPublicIpOnLaunch": True}
    ghost["newState"]["type"] = SUBNET
    document["steps"].append(ghost)
    preview = planned / "preview.json"
    preview.write_text(json.dumps(document))
    assert main(["verify", "--preview", str(preview), "plans/dev/plan.json"]) == 0
    out = capsys.readouterr().out
    # Policies built from unknown ARNs: their rules are UNKNOWN, each resource listed with why;
    # every other rule passes, and the run does not read as verified.
    no_rule_fails(out, unknown={"buckets", "iam", "endpoint-policies", "perimeter"})
    # A network whose way out ends at endpoints of unknown policy is UNKNOWN, not PASS, and
    # claims no narrow policy it has not read (review of issue 15).
    assert any(line.startswith("UNKNOWN network api-egress ") for line in out.splitlines())
    assert "whose policy is known only after `pulumi up`: whether it is narrow is not proven" in out
    assert "reaches only endpoints with narrow policies, e.g. api-egress-secretsmanager" not in out
    assert (
        "  unknown: bucket patient-notes-pool-weights: the bucket policy is known only after "
        "`pulumi up`" in out.splitlines()
    )
    assert (
        "  unknown: policy patient-notes-pool-access: the policy is known only after `pulumi up`"
        in out
    )
    # A strict gate on a real preview: the unknowns fail it.
    argv = ["verify", "--preview", str(preview), "plans/dev/plan.json", "--fail-on-unknown"]
    assert main(argv) == 1
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("verification FAILED")

    # A route to an internet gateway in a pool's table, joined only by URNs.
    steps = document["steps"]
    [table] = [
        s
        for s in steps
        if s["urn"].endswith("::patient-notes-pool-net-private")
        and s["newState"]["type"] == ROUTE_TABLE
    ]
    [vpc] = [s for s in steps if s["urn"].endswith("::patient-notes-pool-net-vpc")]
    igw_urn = f"{STACK}$aws:ec2/internetGateway:InternetGateway::igw"
    steps.append(
        {
            "op": "create",
            "urn": igw_urn,
            "newState": {
                "type": IGW,
                "urn": igw_urn,
                "custom": True,
                "inputs": {"vpcId": rpc.UNKNOWN},
                "propertyDependencies": {"vpcId": [vpc["urn"]]},
            },
        }
    )
    route_urn = f"{STACK}$aws:ec2/route:Route::out"
    steps.append(
        {
            "op": "create",
            "urn": route_urn,
            "newState": {
                "type": ROUTE,
                "urn": route_urn,
                "custom": True,
                "inputs": {
                    "routeTableId": rpc.UNKNOWN,
                    "destinationCidrBlock": "0.0.0.0/0",
                    "gatewayId": rpc.UNKNOWN,
                },
                "propertyDependencies": {"routeTableId": [table["urn"]], "gatewayId": [igw_urn]},
            },
        }
    )
    preview.write_text(json.dumps(document))
    assert main(["verify", "--preview", str(preview)]) == 1
    out = capsys.readouterr().out
    assert "FAIL pool patient-notes-pool" in out
    assert "(rule broken: the technical perimeter)" in out
    assert "reaches an internet gateway" in out
    assert "path: " in out and "-> internetGateway igw" in out


# ----------------------------------------------------------------------------- unknowns


def _preview_steps(planned: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`planner preview --json` of the example: every value known."""
    assert main(["preview", "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def _step(document: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    [step] = [
        s
        for s in document["steps"]
        if s["newState"]["type"] == type_ and s["urn"].endswith(f"::{name}")
    ]
    return step


BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
IAM_POLICY = "aws:iam/policy:Policy"
BUCKET_UNKNOWN = (
    "bucket patient-notes-pool-weights: the bucket policy is known only after `pulumi up`"
)


def _verify_preview(
    planned: Path, capsys: pytest.CaptureFixture[str], document: dict[str, Any], *flags: str
) -> tuple[int, str, int, dict[str, Any], int, dict[str, Any]]:
    """Verify the preview in text, JSON and SARIF: each exit status and output."""
    preview = planned / "unknown-preview.json"
    preview.write_text(json.dumps(document))
    argv = ["verify", "--preview", str(preview), "plans/dev/plan.json", *flags]
    code = main(argv)
    text = capsys.readouterr().out
    json_code = main([*argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    sarif_code = main([*argv, "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    return code, text, json_code, report, sarif_code, sarif


def test_a_computed_bucket_policy_is_an_unknown_of_the_buckets_rule(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault injection: a preview whose bucket policy is computed (known only after `pulumi
    up`). The buckets rule is UNKNOWN on that bucket, in the text, the JSON and SARIF (a result
    of kind review); every other rule passes; exit 0, and 1 with --fail-on-unknown."""
    document = _preview_steps(planned, capsys)
    policy = _step(document, BUCKET_POLICY, "patient-notes-pool-weights")
    policy["newState"]["inputs"]["policy"] = rpc.UNKNOWN
    code, text, json_code, report, sarif_code, sarif = _verify_preview(planned, capsys, document)
    assert code == json_code == sarif_code == 0
    no_rule_fails(text, unknown={"buckets"})
    lines = text.splitlines()
    assert f"UNKNOWN buckets: {RULES['buckets'].text} (1 unknown)" in lines
    assert f"  unknown: {BUCKET_UNKNOWN}" in lines
    assert (
        lines[-1] == "not verified: no failure; 1 check(s) unknown (--fail-on-unknown fails them)"
    )
    assert report["passed"] is True and report["status"] == "UNKNOWN"
    assert report["rules"]["buckets"] == {
        "status": "UNKNOWN",
        "failures": [],
        "unknowns": [
            {
                "rule": "buckets",
                "resource": "bucket patient-notes-pool-weights",
                "message": "the bucket policy is known only after `pulumi up`",
                "witness": [],
            }
        ],
    }
    assert {r: v["status"] for r, v in report["rules"].items() if v["status"] != "PASS"} == {
        "buckets": "UNKNOWN"
    }
    [run] = sarif["runs"]
    [result] = run["results"]
    assert (result["ruleId"], result["kind"], result["level"]) == ("buckets", "review", "none")
    assert result["message"]["text"] == f"unknown: {BUCKET_UNKNOWN}"
    assert run["invocations"][0]["executionSuccessful"] is True
    # A result, not a notification of the run (the one there says the project is no repository).
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert not any("known only after" in n["message"]["text"] for n in notes), notes

    # A strict gate: the unknown fails it in every format, and the text says why.
    code, text, json_code, report, sarif_code, sarif = _verify_preview(
        planned, capsys, document, "--fail-on-unknown"
    )
    assert code == json_code == sarif_code == 1
    assert text.splitlines()[-1] == (
        "verification FAILED: no failure; 1 check(s) unknown (--fail-on-unknown)"
    )
    assert report["passed"] is False and report["status"] == "UNKNOWN"
    # SARIF says what the exit status says: under the flag the unknown is a failing result.
    assert [(r["kind"], r["level"]) for r in sarif["runs"][0]["results"]] == [("fail", "error")]


def test_a_computed_iam_policy_is_an_unknown_of_the_iam_rule(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _preview_steps(planned, capsys)
    policy = _step(document, IAM_POLICY, "patient-notes-pool-access")
    policy["newState"]["inputs"]["policy"] = rpc.UNKNOWN
    code, text, json_code, report, sarif_code, sarif = _verify_preview(planned, capsys, document)
    assert code == json_code == sarif_code == 0
    no_rule_fails(text, unknown={"iam"})
    assert (
        "  unknown: policy patient-notes-pool-access: the policy is known only after `pulumi up`"
        in text.splitlines()
    )
    [unknown] = report["rules"]["iam"]["unknowns"]
    assert unknown["resource"] == "policy patient-notes-pool-access"
    assert report["rules"]["iam"]["status"] == report["status"] == "UNKNOWN"
    [result] = sarif["runs"][0]["results"]
    assert (result["ruleId"], result["kind"], result["level"]) == ("iam", "review", "none")
    assert main(["verify", "--preview", "unknown-preview.json", "--fail-on-unknown"]) == 1


def test_a_failure_wins_over_an_unknown(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule with a failure and an unknown is FAIL, listing both; a run with a failure of one
    rule and an unknown of another fails (exit 1 without --fail-on-unknown), the other rule
    still UNKNOWN."""
    document = _preview_steps(planned, capsys)
    policy = _step(document, BUCKET_POLICY, "patient-notes-pool-weights")
    policy["newState"]["inputs"]["policy"] = rpc.UNKNOWN
    versioning = _step(
        document, "aws:s3/bucketVersioning:BucketVersioning", "patient-notes-pool-weights"
    )
    versioning["newState"]["inputs"]["versioningConfiguration"] = {"status": "Suspended"}
    code, text, json_code, report, sarif_code, sarif = _verify_preview(planned, capsys, document)
    assert code == json_code == sarif_code == 1
    lines = text.splitlines()
    assert f"FAIL buckets: {RULES['buckets'].text} (1 finding(s), 1 unknown)" in lines
    assert "  bucket patient-notes-pool-weights: versioning is not enabled" in lines
    assert f"  unknown: {BUCKET_UNKNOWN}" in lines
    assert not any(line.startswith("UNKNOWN") for line in lines)
    assert lines[-1] == "verification FAILED: 1 failure(s)"
    assert report["status"] == report["rules"]["buckets"]["status"] == "FAIL"
    assert (
        len(report["rules"]["buckets"]["failures"])
        == len(report["rules"]["buckets"]["unknowns"])
        == 1
    )
    kinds = sorted((r["kind"], r["level"]) for r in sarif["runs"][0]["results"])
    assert kinds == [("fail", "error"), ("review", "none")]

    # Another rule's failure: the run fails, buckets stays UNKNOWN.
    versioning["newState"]["inputs"]["versioningConfiguration"] = {"status": "Enabled"}
    iam = _step(document, IAM_POLICY, "patient-notes-pool-access")
    iam["newState"]["inputs"]["policy"] = json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    code, text, json_code, report, sarif_code, sarif = _verify_preview(planned, capsys, document)
    assert code == json_code == sarif_code == 1
    lines = text.splitlines()
    assert f"UNKNOWN buckets: {RULES['buckets'].text} (1 unknown)" in lines
    assert any(line.startswith(f"FAIL iam: {RULES['iam'].text} (") for line in lines)
    assert lines[-1].startswith("verification FAILED")
    assert report["status"] == "FAIL" and report["rules"]["buckets"]["status"] == "UNKNOWN"
    assert report["passed"] is False


def test_a_report_keeps_unknowns_out_of_verdicts_that_fail() -> None:
    """A network's or workload's failures are failures: an unknown there would print FAIL with
    no failure behind it. A finding fails or is unknown, never passes."""
    unknown = Finding.unknown("perimeter", "vpc x", "a route known only after `pulumi up`")
    with pytest.raises(ValueError, match="network pool p: an unknown among its failures"):
        Report([Subject("pool", "pool p", "technical", ["w"], [unknown])], [])
    with pytest.raises(ValueError, match="workload w: an unknown among its failures"):
        Report([], [], [WorkloadVerdict("w", "technical", None, [unknown])])
    with pytest.raises(ValueError, match="a finding fails or is unknown"):
        Finding("iam", "policy p", "fine", status=Status.PASS)
    report = Report([], [unknown, Finding("iam", "policy p", "allows *")])
    assert (report.rule_status("perimeter"), report.rule_status("iam")) == ("UNKNOWN", "FAIL")
    assert report.rule_status("dns") == "PASS" and report.status == "FAIL"
    assert report.failures() == [Finding("iam", "policy p", "allows *")]
    assert report.unknowns() == [unknown]
    only_unknown = Report([], [unknown])
    assert only_unknown.passed and only_unknown.passes() and only_unknown.status == "UNKNOWN"
    assert not only_unknown.passes(fail_on_unknown=True)


def test_verify_refuses_a_malformed_preview(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = planned / "bad.json"
    bad.write_text('{"steps": 3}')
    assert main(["verify", "--preview", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: steps: missing" in err


@pytest.mark.parametrize("strategy", ["optimal", "per-workload"])
def test_other_generated_stacks_keep_the_way_out_shut(
    project: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    """Shared pools, and a multi-node pool over EFA (its callers in another account), break no
    rule: `make test` fails if a generated stack breaks one."""
    multi_node = MULTI_NODE.replace(
        'consumers: ["10.60.0.0/16"]',
        f'consumers: [{{cidr: 10.60.0.0/16, account: "{OTHER_ACCOUNT}"}}]',
    )
    assert multi_node != MULTI_NODE
    text = EXAMPLE.read_text() + multi_node.split("workloads:\n", 1)[1]
    plan_project(project, text, strategy=strategy)
    capsys.readouterr()
    code = main(["verify"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS deep-notes (technical, pool " in out
    every_rule_passes(out)


def test_a_self_hosted_private_link_pool_is_held_to_no_way_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pool serving confidential data (perimeter private_link) needs its node endpoints (SSM,
    ECR, logs): a pool is held to the technical property, which satisfies private_link."""
    text = workload_yaml(
        name="hr-notes", task="chat", data="confidential", model="llama-3.1-8b",
        monthly_tokens="{input: 20B, output: 4B}",
    )  # fmt: skip
    plan_project(project, text)
    capsys.readouterr()
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "PASS pool hr-notes-pool (private_link; workloads hr-notes)" in out
    assert "PASS hr-notes (private_link, pool hr-notes-pool)" in out
    every_rule_passes(out)


def test_ipv6_egress_to_an_egress_only_gateway(clean: tuple[Graph, Plan, dict[str, Any]]) -> None:
    graph, plan, _ = clean
    graph = added(graph, SG_EGRESS, "v6", {"ipProtocol": "-1", "cidrIpv6": "::/0"},
                  {"securityGroupId": [find(graph, SG, f"{POOL}-nodes")]})  # fmt: skip
    eigw = "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"
    graph = added(graph, eigw, "eigw", {"vpcId": "v"}, {"vpcId": [pool_vpc(graph)]})
    graph = added(graph, ROUTE, "v6-out",
                  {"destinationIpv6CidrBlock": "::/0", "egressOnlyGatewayId": "x"},
                  {"routeTableId": [find(graph, ROUTE_TABLE, f"{POOL}-net-private")],
                   "egressOnlyGatewayId": [find(graph, eigw, "eigw")]})  # fmt: skip
    report = check(graph, plan)
    failures = perimeter_failures(report, f"pool {POOL}")
    assert any(f.resource.startswith("nodes of") and "egress-only internet gateway" in f.message
               and f.witness[-1] == "egressOnlyInternetGateway eigw" for f in failures)  # fmt: skip
    assert rule_failures(report, "open-egress") == [
        f"securityGroupEgressRule v6: lets GPU nodes of {POOL}-nodes out to ::/0"
    ]


# ----------------------------------------------------------------------------- the rules registry


def _without(g: Graph, type_: str, name: str) -> Graph:
    gone = find(g, type_, name)
    return Graph({u: r for u, r in g.resources.items() if u != gone.urn})


def _igw_route(g: Graph) -> Graph:
    g = added(g, IGW, "way-out", {"vpcId": "v"}, {"vpcId": [pool_vpc(g)]})
    return route_out(g, f"{POOL}-net-private", "0.0.0.0/0", "gatewayId", find(g, IGW, "way-out"))


# One fault per rule, injected into the clean graph: a test fails when a rule is registered
# without one (test_every_rule_has_a_fault).
FAULTS: dict[str, Mutation] = {
    "perimeter": _igw_route,
    "dns": lambda g: _without(g, DNS_ASSOCIATION, f"{POOL}-net-dns"),
    # Needs the way in built (the `reachable` graph): the endpoint service removed.
    "way-in": lambda g: _without(g, ENDPOINT_SERVICE, f"{POOL}-service"),
    "flow-logs": lambda g: Graph(
        {u: r for u, r in g.resources.items() if r.name != f"{POOL}-net-flow-log"}
    ),
    "open-ingress": lambda g: added(
        g,
        SG_INGRESS,
        "anyone",
        {"ipProtocol": "tcp", "cidrIpv4": "0.0.0.0/0"},
        {"securityGroupId": [find(g, SG, f"{POOL}-lb")]},
    ),
    "open-egress": lambda g: added(
        g,
        SG_EGRESS,
        "anywhere",
        {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"},
        {"securityGroupId": [find(g, SG, f"{POOL}-nodes")]},
    ),
    "imdsv2": lambda g: changed(
        g, find(g, LAUNCH_TEMPLATE, f"{POOL}-nodes"), metadataOptions={"httpTokens": "optional"}
    ),
    "public-ip": lambda g: changed(
        g, find(g, SUBNET, f"{POOL}-net-private-us-east-1a"), mapPublicIpOnLaunch=True
    ),
    "disks": lambda g: added(g, "aws:ebs/volume:Volume", "scratch", {"encrypted": False}),
    "buckets": lambda g: changed(
        g,
        find(g, "aws:s3/bucketVersioning:BucketVersioning", f"{POOL}-weights"),
        versioningConfiguration={"status": "Suspended"},
    ),
    "secrets": lambda g: changed(g, pool_vpc(g), tags={"note": fake_key("github")}),
    "key-rotation": lambda g: changed(
        g, find(g, "aws:kms/key:Key", f"{POOL}-key"), enableKeyRotation=False
    ),
    "iam": lambda g: with_node_policy(
        g, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    ),
    "endpoint-policies": lambda g: changed(
        g,
        find(g, ENDPOINT, f"{POOL}-net-logs"),
        policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    ),
    "deletion": lambda g: added(g, "aws:ec2/capacityReservation:CapacityReservation", "buy", {}),
}


def test_every_rule_has_a_fault() -> None:
    assert list(FAULTS) == list(RULES)
    assert all(r.id and r.text and callable(r.check) for r in RULES.values())


@pytest.mark.parametrize("rule_id", list(RULES))
def test_each_rule_fails_on_its_fault(reachable: tuple[Graph, Expectations], rule_id: str) -> None:
    """The rule's own check finds the fault (and nothing on the clean graph, its way in built);
    the whole run fails, prints the rule as FAIL and does not end with `verified`."""
    graph, expect = reachable
    check_of = RULES[rule_id].check
    assert check_of(graph, Network(graph), expect) == []
    faulty = FAULTS[rule_id](graph)
    found = check_of(faulty, Network(faulty), expect)
    assert found and {f.rule for f in found} == {rule_id}
    report = verify(faulty, expect)
    assert not report.passed and report.rule_failures(rule_id)
    text = render_text(report)
    assert any(
        line.startswith(f"FAIL {rule_id}: {RULES[rule_id].text} (") for line in text.splitlines()
    )
    assert text.rstrip().splitlines()[-1].startswith("verification FAILED")
    document = json.loads(render_json(report))
    assert document["passed"] is False and document["rules"][rule_id]["failures"]
    assert document["status"] == document["rules"][rule_id]["status"] == "FAIL"


def test_a_finding_of_an_unregistered_rule_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="'perimetre', which is not registered"):
        Finding("perimetre", "vpc x", "a typo")
    Finding("perimeter", "vpc x", "registered")


def test_a_report_cannot_hold_a_silent_verdict() -> None:
    """A workload served by nothing must carry its failure; one served by a network must name
    a network of the report."""
    with pytest.raises(ValueError, match="served by nothing"):
        Report([], [], [WorkloadVerdict("w", "technical", None)])
    with pytest.raises(ValueError, match="served by unknown"):
        Report([], [], [WorkloadVerdict("w", "technical", "pool p")])


# ----------------------------------------------------------------------------- exit status


def _finding(rule_id: str, text: str) -> Finding:
    return Finding(rule_id, text, text)


def _unknown(rule_id: str, text: str) -> Finding:
    return Finding.unknown(rule_id, text, text)


texts = st.text(max_size=12)  # any characters: line breaks, "FAIL", "PASS" included
findings = st.builds(_finding, st.sampled_from(list(RULES)), texts)
unknowns = st.builds(_unknown, st.sampled_from(list(RULES)), texts)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    subjects = [
        Subject(draw(st.sampled_from(["pool", "provider", "network"])), f"net {name}",
                draw(st.sampled_from(["technical", "private_link", "contractual"])),
                draw(st.lists(texts, max_size=3)), draw(st.lists(findings, max_size=2)),
                draw(st.lists(texts, max_size=2)))
        for name in draw(st.lists(st.sampled_from(["a", "b", "a\nFAIL"]), max_size=3))
    ]  # fmt: skip
    workloads = []
    for name in draw(st.lists(texts, max_size=4)):
        served = draw(st.sampled_from([None, *(s.name for s in subjects)]))
        failures = draw(st.lists(findings, min_size=1 if served is None else 0, max_size=2))
        workloads.append(WorkloadVerdict(name, "technical", served, failures))
    loose = draw(st.lists(findings, max_size=3)) + draw(st.lists(unknowns, max_size=2))
    return Report(subjects, loose, workloads)


def _run_verify(report: Report, *flags: str) -> tuple[int, str, str]:
    # The report stands for a preview with resources (one without is tested on its own).
    with (
        mock.patch("planner.verification.run.verify_preview_file", return_value=report),
        mock.patch("planner.cli.verify._preview_resources", return_value=1),
        contextlib.redirect_stdout(io.StringIO()) as text,
    ):
        code = main(["verify", "--preview", "preview.json", *flags])
    with (
        mock.patch("planner.verification.run.verify_preview_file", return_value=report),
        mock.patch("planner.cli.verify._preview_resources", return_value=1),
        contextlib.redirect_stdout(io.StringIO()) as document,
    ):
        assert main(["verify", "--preview", "preview.json", "--json", *flags]) == code
    return code, text.getvalue(), document.getvalue()


@given(reports())
def test_exit_status_is_1_iff_a_line_says_fail(report: Report) -> None:
    code, text, document = _run_verify(report)
    failed = any(line.startswith("FAIL") for line in text.splitlines())
    assert code == (1 if failed else 0)
    assert json.loads(document)["passed"] is (code == 0)
    unknown = report.unknowns()
    assert text.splitlines()[-1] == (
        f"verification FAILED: {len(report.failures())} failure(s)" if code == 1
        else f"not verified: no failure; {len(unknown)} check(s) unknown (--fail-on-unknown "
        "fails them)" if unknown
        else "verified: no failure"
    )  # fmt: skip
    # Every status line is a verdict the report holds: UNKNOWN only with an unknown behind it.
    assert any(line.startswith("UNKNOWN") for line in text.splitlines()) is bool(
        {f.rule for f in unknown} - {f.rule for f in report.failures()}
    )
    assert json.loads(document)["status"] == (
        "FAIL" if failed else "UNKNOWN" if unknown else "PASS"
    )


@given(reports())
def test_with_fail_on_unknown_exit_status_is_1_iff_a_line_says_fail_or_unknown(
    report: Report,
) -> None:
    code, text, document = _run_verify(report, "--fail-on-unknown")
    failed = any(line.startswith(("FAIL", "UNKNOWN")) for line in text.splitlines())
    assert code == (1 if failed else 0)
    assert json.loads(document)["passed"] is (code == 0)
    last = text.splitlines()[-1]
    assert last.startswith("verification FAILED") if code else last == "verified: no failure"


def test_an_empty_preview_for_a_plan_with_workloads_fails(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A preview with no steps: every workload of the plan is unserved, and that is a failure
    in the exit status, the last line and the JSON, not only in the lines above them."""
    empty = planned / "empty.json"
    empty.write_text(json.dumps({"steps": []}))
    assert main(["verify", "--preview", str(empty), "plans/dev/plan.json"]) == 1
    lines = capsys.readouterr().out.splitlines()
    plan = read_plan(planned / "plans/dev/plan.json")
    unserved = [line for line in lines if line.endswith(": no network of the stack serves it")]
    assert unserved and all(line.startswith("FAIL ") for line in unserved)
    assert (
        "FAIL perimeter: "
        + RULES["perimeter"].text
        + f" ({len(unserved) + len(plan.pools)} finding(s))"
        in lines
    )
    assert lines[-1].startswith("verification FAILED")
    assert main(["verify", "--preview", str(empty), "plans/dev/plan.json", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is False
    assert {w["name"] for w in document["workloads"]} == {w.name for w in plan.workloads}
    assert not any(w["passed"] for w in document["workloads"])


def test_consumers_naming_their_vpcs_pass_verify(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Bedrock workloads are served by the endpoint the stack makes in their consumers' VPC;
    the contractual one by the egress network its VPC attaches to; nothing else gets out. The
    Bedrock consumer in another account fails the way in: its own endpoint is not this stack's,
    so no path to the planned endpoint can be shown (why the example's account consumer calls a
    pool instead)."""
    plan_project(project, VPC_CONSUMERS)
    capsys.readouterr()
    report, _ = verify_program(project, default_catalog(), "dev", None)
    [blocked] = report.failures()
    assert blocked.rule == "way-in", render_text(report)
    assert "its callers are in account 111122223333" in blocked.message
    served = {w.name: w.served_by for w in report.workloads}
    endpoint = "endpoint bedrock-link-vpc-0a1b2c3d4e5f60718-bedrock-runtime"
    assert served == {
        "ticket-triage": endpoint, "support-faq": endpoint, "code-review": "network api-egress",
    }  # fmt: skip


def test_a_consumer_vpc_endpoint_with_a_wide_policy_serves_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, VPC_CONSUMERS)
    capsys.readouterr()
    result = run_preview(project, default_catalog(), "dev", None)
    graph = graph_from_offline(result.run)
    endpoint = find(graph, ENDPOINT, "bedrock-link-vpc-0a1b2c3d4e5f60718-bedrock-runtime")
    wide = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
    report = check(changed(graph, endpoint, policy=json.dumps(wide)), result.plan)
    assert not report.passed
    assert {f.resource for w in report.workloads for f in w.failures} == {
        "workload ticket-triage", "workload support-faq",
    }  # fmt: skip


def test_a_preview_is_checked_against_the_stack_it_names(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--stack NAME` with --preview: the preview must hold what that stack's plan plans (an
    empty one serves none of its workloads); a stack with no config is an error, exit 2."""
    empty = planned / "empty.json"
    empty.write_text(json.dumps({"steps": []}))
    plan = read_plan(planned / "plans/dev/plan.json")
    assert main(["verify", "--preview", str(empty), "--stack", "dev"]) == 1
    lines = capsys.readouterr().out.splitlines()
    unserved = [line for line in lines if line.endswith(": no network of the stack serves it")]
    assert unserved and all(line.startswith("FAIL ") for line in unserved)
    api = [w.name for w in plan.workloads if w.placement == "cloud_api"]
    assert all(any(f" {name} (" in line for line in unserved) for name in api)
    assert lines[-1].startswith("verification FAILED")
    assert main(["verify", "--preview", str(empty), "--stack", "nosuch", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert "Pulumi.nosuch.yaml: no such stack config" in err
    (planned / "Pulumi.noplan.yaml").write_text("config:\n  aws:region: us-east-1\n")
    assert main(["verify", "--preview", str(empty), "--stack", "noplan"]) == 2
    assert "Pulumi.noplan.yaml: config.ai-infra-planner:plan: not set" in capsys.readouterr().err


def test_an_empty_preview_with_no_plan_verifies_nothing(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to check and nothing to check it against: unknown, reported as a failure in the
    exit status, the text and the JSON alike, never as a pass."""
    empty = planned / "empty.json"
    empty.write_text(json.dumps({"steps": []}))
    assert main(["verify", "--preview", str(empty)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # Unknown is a failure: a FAIL line (exit 1 iff a line says FAIL), no PASS.
    assert lines[0].startswith(f"FAIL nothing verified: {empty} declares no resources")
    assert lines[-1] == "verification FAILED: nothing verified"
    assert not any(line.startswith("PASS") or "no failure" in line for line in lines)
    assert main(["verify", "--preview", str(empty), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] is False and document["verified"] == "nothing"
    assert "declares no resources" in document["reason"]


# ----------------------------------------------------------------------------- the way in

CONSUMER_VPC = "vpc-0a1b2c3d4e5f60718"
CONSUMER_SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60719"]
OTHER_ACCOUNT = "111122223333"
TGW = "aws:ec2transitgateway/transitGateway:TransitGateway"


def _consumer_group(g: Graph, name: str, cidr: str, port: int) -> Graph:
    """A security group in the consumer's VPC admitting the consumer's range on one port (the
    VPC is not the stack's: its id is a plain value, not a resource of the graph)."""
    g = added(g, SG, name, {"vpcId": CONSUMER_VPC, "description": "consumers"})
    return added(
        g,
        SG_INGRESS,
        f"{name}-in",
        {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "cidrIpv4": cidr},
        {"securityGroupId": [find(g, SG, name)]},
    )


def _publish_pool(g: Graph, pool: str, cidr: str) -> Graph:
    """What the pool branch builds: the pool's load balancer as a VPC endpoint service with
    acceptance required (this account and the other one allowed), an interface endpoint in the
    consumer's VPC and subnets, its security group, and the accepted connection."""
    balancer = find(g, "aws:lb/loadBalancer:LoadBalancer", f"{pool}-lb")
    g = added(
        g,
        ENDPOINT_SERVICE,
        f"{pool}-service",
        {
            "acceptanceRequired": True,
            "networkLoadBalancerArns": ["lb-arn"],
            "allowedPrincipals": [f"arn:aws:iam::{OTHER_ACCOUNT}:root"],
        },
        {"networkLoadBalancerArns": [balancer]},
    )
    service = find(g, ENDPOINT_SERVICE, f"{pool}-service")
    g = _consumer_group(g, f"{pool}-consumer", cidr, 8000)
    g = added(
        g,
        ENDPOINT,
        f"{pool}-consumer",
        {
            "vpcId": CONSUMER_VPC,
            "vpcEndpointType": "Interface",
            "serviceName": "svc-name",
            "subnetIds": CONSUMER_SUBNETS,
            "privateDnsEnabled": False,
        },
        {"serviceName": [service], "securityGroupIds": [find(g, SG, f"{pool}-consumer")]},
    )
    endpoint = find(g, ENDPOINT, f"{pool}-consumer")
    return added(
        g,
        ENDPOINT_ACCEPTER,
        f"{pool}-consumer",
        {"vpcEndpointId": "x", "vpcEndpointServiceId": "y"},
        {"vpcEndpointId": [endpoint], "vpcEndpointServiceId": [service]},
    )


def _bedrock_in_consumer_vpc(g: Graph, cidr: str) -> Graph:
    """What the apis branch builds: the bedrock-runtime endpoint, planned models only, in the
    consumer's VPC."""
    planned = find(g, ENDPOINT, "bedrock-link-bedrock-runtime")
    g = _consumer_group(g, "bedrock-consumer", cidr, 443)
    return added(
        g,
        ENDPOINT,
        "bedrock-consumer",
        {**planned.inputs, "vpcId": CONSUMER_VPC, "subnetIds": CONSUMER_SUBNETS},
        {"securityGroupIds": [find(g, SG, "bedrock-consumer")]},
    )


def _egress_attached(g: Graph) -> Graph:
    """The consumer's VPC joined to the egress network by a transit gateway, its route table
    sending the traffic there (centralized egress)."""
    g = added(g, TGW, "egress-tgw", {})
    gateway = find(g, TGW, "egress-tgw")
    egress = find(g, VPC, "api-egress-vpc")
    g = added(g, TGW_ATTACHMENT, "consumer-attachment",
              {"vpcId": CONSUMER_VPC, "subnetIds": CONSUMER_SUBNETS, "transitGatewayId": "t"},
              {"transitGatewayId": [gateway]})  # fmt: skip
    g = added(g, TGW_ATTACHMENT, "egress-attachment", {"vpcId": "v", "transitGatewayId": "t"},
              {"vpcId": [egress], "transitGatewayId": [gateway]})  # fmt: skip
    return added(g, ROUTE, "consumer-default",
                 {"routeTableId": "rtb-0a1b2c3d4e5f60718", "destinationCidrBlock": "0.0.0.0/0",
                  "transitGatewayId": "t"},
                 {"transitGatewayId": [gateway]})  # fmt: skip


# The example's names, as the stacks build them.
POOL_VPC = "vpc-01a2b3c4d5e6f7a8b"
POOL_EP = f"{POOL}-{POOL_VPC}"
BEDROCK_EP = f"bedrock-link-{CONSUMER_VPC}-bedrock-runtime"
NAMED_VPC = {"vpc": CONSUMER_VPC, "subnets": tuple(CONSUMER_SUBNETS)}
CALLERS = {
    "patient-notes": [
        Consumer(cidr="10.50.0.0/16", **NAMED_VPC),
        Consumer(cidr="10.22.0.0/16", account=OTHER_ACCOUNT),
    ],
    "contract-review": [Consumer(cidr="10.30.0.0/16", **NAMED_VPC)],
    "ticket-triage": [Consumer(cidr="10.20.0.0/16", **NAMED_VPC)],
    "support-faq": [Consumer(cidr="10.20.0.0/16", **NAMED_VPC)],
    "code-review": [Consumer(cidr="10.40.0.0/16", **NAMED_VPC)],
}


@pytest.fixture(scope="module")
def reachable(clean: tuple[Graph, Plan, dict[str, Any]]) -> tuple[Graph, Expectations]:
    """The example as the issue builds it: consumers that name their VPC (and one another
    account), the pools published through PrivateLink, Bedrock in the consumer's VPC, the
    consumer attached to the egress path."""
    graph, plan, _ = clean
    return graph, Expectations.of(plan, default_catalog())


def test_every_consumer_has_a_way_in(reachable: tuple[Graph, Expectations]) -> None:
    graph, expect = reachable
    report = verify(graph, expect)
    assert report.failures() == [] and report.passed
    ways = {w.name: w.ways_in for w in report.workloads}
    assert ways["patient-notes"] == [
        f"consumer 10.50.0.0/16 (in {POOL_VPC}) -> security group {POOL_EP} "
        f"(tcp 8000 from 10.50.0.0/16) -> vpcEndpoint {POOL_EP} in {POOL_VPC} -> "
        f"vpcEndpointService {POOL}-service -> loadBalancer {POOL}-lb -> listener {POOL}-serving "
        f"(port 8000) -> targetGroup {POOL}-serving -> nodes of {POOL}-nodes",
        f"consumer 10.51.0.0/16 (in account {OTHER_ACCOUNT}) -> its own interface endpoint to "
        f"vpcEndpointService {POOL}-service (account {OTHER_ACCOUNT} makes it; the service owner "
        f"accepts the connection) -> vpcEndpointService {POOL}-service -> loadBalancer {POOL}-lb "
        f"-> listener {POOL}-serving (port 8000) -> targetGroup {POOL}-serving -> nodes of "
        f"{POOL}-nodes",
    ]
    assert ways["ticket-triage"][0].endswith(
        f"-> vpcEndpoint {BEDROCK_EP} (planned models only) -> Bedrock runtime"
    )
    assert ways["code-review"][0].endswith(
        "-> firewall api-egress-firewall (allow-list of the providers' hosts) -> providers' hosts"
    )
    text = render_text(report)
    assert f"  way in: consumer 10.50.0.0/16 (in {POOL_VPC}) -> " in text
    assert json.loads(render_json(report))["workloads"][0]["ways_in"]


@pytest.mark.parametrize(
    ("workload", "mutate", "blocked"),
    [
        (
            "patient-notes",
            lambda g: _without(g, ENDPOINT_SERVICE, f"{POOL}-service"),
            f"no VPC endpoint service publishes loadBalancer {POOL}-lb (PrivateLink)",
        ),
        (
            "patient-notes",
            lambda g: changed(g, find(g, ENDPOINT, POOL_EP), vpcId="vpc-0fedcba987654321"),
            f"vpcEndpoint {POOL_EP} sits in vpc-0fedcba987654321, not in the consumer's {POOL_VPC}",
        ),
        (
            "patient-notes",
            lambda g: changed(
                g, find(g, ENDPOINT, POOL_EP), subnetIds=["subnet-0ffffffffffffffff"]
            ),
            f"vpcEndpoint {POOL_EP} has no interface in the consumer's subnets",
        ),
        (
            "patient-notes",
            lambda g: changed(
                g, find(g, SG_INGRESS, f"{POOL_EP}-consumer-0"), cidrIpv4="10.50.0.0/17"
            ),
            "nothing admits 10.50.0.0/16 on port 8000",
        ),
        (
            "patient-notes",
            lambda g: _without(g, ENDPOINT_ACCEPTER, POOL_EP),
            f"vpcEndpointService {POOL}-service requires acceptance and nothing accepts "
            f"vpcEndpoint {POOL_EP}'s connection",
        ),
        (
            "patient-notes",
            lambda g: _without(
                g,
                "aws:ec2/vpcEndpointServiceAllowedPrinciple:VpcEndpointServiceAllowedPrinciple",
                f"{POOL}-allow-{OTHER_ACCOUNT}",
            ),
            f"vpcEndpointService {POOL}-service does not allow account {OTHER_ACCOUNT} to connect",
        ),
        (
            "patient-notes",
            lambda g: _without(g, "aws:lb/listener:Listener", f"{POOL}-serving"),
            f"loadBalancer {POOL}-lb: no listener forwards to a target group with nodes",
        ),
        (
            "code-review",
            lambda g: _without(
                _without(g, ROUTE, "api-egress-consumer-0-subnet-0e5f6a7b8c9d0a1b2-default"),
                ROUTE,
                "api-egress-consumer-0-subnet-0f6a7b8c9d0e1b2c3-default",
            ),
            "sends its traffic to transitGateway api-egress-tgw",
        ),
        (
            "code-review",
            lambda g: _without(g, TGW_ATTACHMENT, "api-egress-tgw-egress"),
            "transit gateway has no attachment in vpc api-egress-vpc",
        ),
    ],
)
def test_the_first_component_that_blocks_a_consumer_is_named(
    reachable: tuple[Graph, Expectations], workload: str, mutate: Mutation, blocked: str
) -> None:
    graph, expect = reachable
    report = verify(mutate(graph), expect)
    [verdict] = [w for w in report.workloads if w.name == workload]
    assert not report.workload_passed(verdict) and not report.passed
    messages = [f.message for f in verdict.failures if f.rule == "way-in"]
    assert any(blocked in m for m in messages), messages
    text = render_text(report)
    assert f"FAIL {workload} (" in text and "FAIL way-in: " in text


def test_a_bedrock_endpoint_moved_out_of_the_consumer_vpc_serves_nothing(
    reachable: tuple[Graph, Expectations],
) -> None:
    graph, expect = reachable
    moved = changed(graph, find(graph, ENDPOINT, BEDROCK_EP), vpcId="vpc-0fedcba987654321")
    report = verify(moved, expect)
    [verdict] = [w for w in report.workloads if w.name == "ticket-triage"]
    assert [f.message for f in verdict.failures] == ["no network of the stack serves it"]
    assert not report.passed


def test_a_workload_with_no_consumer_fails(reachable: tuple[Graph, Expectations]) -> None:
    graph, expect = reachable
    report = verify(graph, dataclasses.replace(expect, consumers={**CALLERS, "code-review": []}))
    [verdict] = [w for w in report.workloads if w.name == "code-review"]
    assert [f.message for f in verdict.failures] == ["has no consumer: nothing reaches it"]
    assert not report.passed


def test_a_consumer_range_widened_to_everyone_is_open_ingress(
    reachable: tuple[Graph, Expectations],
) -> None:
    """The consumer's range on the service's security groups (the load balancer's, the consumer
    endpoint's) widened to 0.0.0.0/0: admitted, so the way in holds, and open-ingress fails."""
    graph, expect = reachable
    for group in (f"{POOL}-lb-consumer-0", f"{POOL_EP}-consumer-0"):
        widened = changed(graph, find(graph, SG_INGRESS, group), cidrIpv4="0.0.0.0/0")
        report = verify(widened, expect)
        assert [f.rule for f in report.failures()] == ["open-ingress"] * len(report.failures())
        assert any("admits 0.0.0.0/0" in f.message for f in report.failures()), group


# ----------------------------------------------------------------------------- DNS


def _dns_rule(g: Graph, action: str) -> Resource:
    [rule] = [r for r in g.of_type(DNS_RULE)
              if r.name.startswith(POOL) and r.inputs.get("action") == action]  # fmt: skip
    return rule


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (
            lambda g: _without(g, DNS_ASSOCIATION, f"{POOL}-net-dns"),
            "no DNS Firewall rule group is associated with it",
        ),
        (
            lambda g: changed(
                g, find(g, DNS_CONFIG, f"{POOL}-net-dns-fail-closed"), firewallFailOpen="ENABLED"
            ),
            "its DNS Firewall fails open",
        ),
        (
            lambda g: Graph(
                {u: r for u, r in g.resources.items() if u != _dns_rule(g, "BLOCK").urn}
            ),
            "no DNS Firewall rule blocks `*` after its allow-list",
        ),
        (
            lambda g: changed(g, _dns_rule(g, "BLOCK"), action="ALLOW"),
            "lets the resolver look up * (ALLOW): not an AWS service name",
        ),
        (
            lambda g: changed(
                g,
                find(g, DNS_DOMAIN_LIST, f"{POOL}-net-dns-allowed"),
                domains=["ssm.us-east-1.amazonaws.com", "*.amazonaws.com"],
            ),
            "lets the resolver look up *.amazonaws.com (ALLOW): not an AWS service name",
        ),
    ],
)
def test_a_resolver_that_answers_any_name_is_a_way_out(
    clean: tuple[Graph, Plan, dict[str, Any]], mutate: Mutation, why: str
) -> None:
    graph, plan, _ = clean
    report = check(mutate(graph), plan)
    failures = [f for f in perimeter_failures(report, f"pool {POOL}") if f.rule == "dns"]
    assert failures, why
    [failure] = failures
    assert failure.resource == f"vpc {POOL}-net-vpc"
    assert why in failure.message and "the resolver is a way out" in failure.message
    assert failure.witness[1] == f"Route 53 Resolver of vpc {POOL}-net-vpc"
    assert perimeter_failures(report, "pool contract-review-pool") == []
    text = render_text(report)
    assert f"FAIL pool {POOL} (technical" in text and "FAIL dns: " in text


def test_every_private_network_has_a_dns_firewall(
    clean: tuple[Graph, Plan, dict[str, Any]],
) -> None:
    """Each pool's VPC (Bedrock's endpoint sits in the consumer's VPC): an allow-list of exactly its
    endpoints' names, then BLOCK `*`, associated at a priority AWS accepts, failing closed. Limits
    checked against the Route 53 API Reference: AssociateFirewallRuleGroup's Priority is 100-9900; a
    domain specification may start with `*` and is 1-255 characters of A-Z, a-z, 0-9 and `-` besides
    the dots (UpdateFirewallDomains); BlockResponse NODATA | NXDOMAIN | OVERRIDE; a VPC's
    FirewallFailOpen ENABLED | DISABLED (UpdateFirewallConfig)."""
    graph, _, _ = clean
    private = [v for v in graph.of_type(VPC) if v.name != "api-egress-vpc"]
    assert len(private) == 2
    for vpc in private:
        [association] = [a for a in graph.of_type(DNS_ASSOCIATION) if graph.ref(a, "vpcId") is vpc]
        assert 100 <= association.inputs["priority"] <= 9900
        [config] = [c for c in graph.of_type(DNS_CONFIG) if graph.ref(c, "resourceId") is vpc]
        assert config.inputs["firewallFailOpen"] == "DISABLED"
        [group] = graph.refs(association, "firewallRuleGroupId")
        rules = sorted(
            (r for r in graph.of_type(DNS_RULE) if graph.ref(r, "firewallRuleGroupId") is group),
            key=lambda r: r.inputs["priority"],
        )
        assert [r.inputs["action"] for r in rules] == ["ALLOW", "BLOCK"]
        assert rules[1].inputs["blockResponse"] in ("NODATA", "NXDOMAIN")
        lists = [graph.ref(r, "firewallDomainListId") for r in rules]
        assert lists[1] is not None and lists[1].inputs["domains"] == ["*"]
        assert lists[0] is not None
        allowed = lists[0].inputs["domains"]
        for domain in allowed:
            assert re.fullmatch(r"\*?[A-Za-z0-9.-]{1,254}", domain) and len(domain) <= 255
        assert "*.amazonaws.com" not in allowed and "*" not in allowed
        # The endpoints' own names: each interface endpoint of the VPC has its name listed.
        for endpoint in graph.of_type(ENDPOINT):
            if graph.ref(endpoint, "vpcId") is not vpc:
                continue
            service = endpoint.inputs["serviceName"].split("us-east-1.", 1)[1]
            name = {"ecr.api": "api.ecr", "ecr.dkr": "123456789012.dkr.ecr"}.get(service, service)
            assert f"{name}.us-east-1.amazonaws.com" in allowed, (vpc.name, service)


# The example with a plain range among ticket-triage's (Bedrock) callers: the stack builds
# nothing for a range that names no VPC, so that consumer has no way in.
PLAIN_BEDROCK = EXAMPLE.read_text().replace(
    "        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]\n  - name: code-review",
    "        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]\n"
    "      - cidr: 10.21.0.0/16\n  - name: code-review",
)


def test_consumers_that_name_vpcs_and_accounts_get_in_a_plain_bedrock_range_does_not(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the real program under mocks: the consumers that name their VPC or another
    account get a way in (the pool's endpoint service allows the account, Bedrock's endpoint
    sits in the consumer's VPC); a plain range calling Bedrock legitimately fails the way in."""
    assert EXAMPLE.read_text() != PLAIN_BEDROCK
    plan_project(project, PLAIN_BEDROCK)
    capsys.readouterr()
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    for consumer in (
        "10.50.0.0/16 (in vpc-01a2b3c4d5e6f7a8b)",
        f"10.51.0.0/16 (in account {OTHER_ACCOUNT})",
        f"10.20.0.0/16 (in {CONSUMER_VPC})",
    ):
        assert f"  way in: consumer {consumer} -> " in out, consumer
    assert "  consumer 10.21.0.0/16 (named by its range only): cannot reach ticket-triage: " in out
    assert "FAIL ticket-triage (private_link, " in out
    only_the_way_in_fails(out)


@pytest.mark.parametrize("loosened", [["aws:pass"], ["aws:drop", "aws:pass"], []])
def test_the_network_firewalls_default_action_loosened(
    clean: tuple[Graph, Plan, dict[str, Any]], loosened: list[str]
) -> None:
    """The egress firewall's stateless default action, which sends every packet to the
    allow-list (aws:forward_to_sfe), loosened: traffic past it is not held to the hosts."""
    graph, plan, _ = clean
    [policy] = graph.of_type("aws:networkfirewall/firewallPolicy:FirewallPolicy")
    spec = json.loads(json.dumps(policy.inputs["firewallPolicy"]))
    spec["statelessDefaultActions"] = loosened
    failures = perimeter_failures(check(changed(graph, policy, firewallPolicy=spec), plan),
                                  "network api-egress")  # fmt: skip
    assert failures and all(
        f"whose stateless default {loosened} does not send traffic to the allow-list" in f.message
        for f in failures
    )
