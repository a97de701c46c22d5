"""The Pulumi components, run for real through __main__.py under Pulumi's mocks."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi.runtime import rpc

from planner.catalog import default_catalog
from planner.cli import main
from planner.graph.offline import ACCOUNT_ID, OfflineRun, Registered, run_program
from planner.planfile import read_plan
from planner.verification.rules.secrets import user_data_text
from stacks.addressing import certificate_names, dns_label, service_dns_name
from tests.conftest import EXAMPLE, workload_yaml

CANARY = "sk-canary-7f3e9a1b-do-not-leak"

# DeepSeek V3.2 on H100s only: its FP8 weights need two p5.48xlarge nodes a replica (one
# p5en.48xlarge would hold them and, by the throughput model, serve for less).
MULTI_NODE = "assumptions:\n  instance_types: [p5.48xlarge]\n" + workload_yaml(
    name="deep-notes",
    task="chat",
    data="regulated",
    model="deepseek-v3.2",
    monthly_tokens="{input: 30B, output: 6B}",
    consumers='["10.60.0.0/16"]',
    capacity_reservation_id="cr-0123456789abcdef0",
    capacity_reservation_zone="us-east-1a",
)


# An organization whose consumers name their VPCs (and one another account).
VPC_CONSUMERS = """\
organization: acme
region: us-east-1
workloads:
  - name: ticket-triage
    task: classification
    data: confidential
    monthly_tokens: {input: 2B, output: 50M}
    consumers:
      - cidr: 10.20.0.0/16
        vpc: vpc-0a1b2c3d4e5f60718
        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]
      - cidr: 10.22.0.0/16
        account: "111122223333"
  - name: support-faq
    task: faq
    data: internal
    monthly_tokens: {input: 400M, output: 80M}
    consumers:
      - cidr: 10.20.0.0/16
        vpc: vpc-0a1b2c3d4e5f60718
        subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]
  - name: code-review
    task: code_generation
    data: internal
    monthly_tokens: {input: 1.2B, output: 150M}
    consumers:
      - cidr: 10.40.0.0/16
        vpc: vpc-0c1d2e3f4a5b60720
        subnets: [subnet-0c1d2e3f4a5b60720, subnet-0d1e2f3a4b5c60721]
    request: {input_tokens: 60000, output_tokens: 2000}
"""


def plan_project(
    project: Path, text: str | None, stack: str = "dev", strategy: str = "per-workload"
) -> dict[str, str]:
    """Plan into the project. Per workload by default: the example then uses every kind of
    component (its optimal plan moves the Bedrock workloads into shared pools)."""
    (project / "examples").mkdir(exist_ok=True)
    target = project / "examples" / "workloads.yaml"
    if text is None:
        shutil.copy(EXAMPLE, target)
    else:
        target.write_text(text)
    assert main(["plan", "examples/workloads.yaml", "--stack", stack, "--strategy", strategy]) == 0
    return {"ai-infra-planner:plan": f"plans/{stack}/plan.json", "aws:region": "us-east-1"}


@pytest.fixture
def example_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, None)
    config["ai-infra-planner:openai_api_key"] = CANARY
    config["ai-infra-planner:budget_email"] = "finops@example.com"
    capsys.readouterr()
    return run_program(project, "dev", config, secret_keys=["ai-infra-planner:openai_api_key"])


@pytest.fixture
def multi_node_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, MULTI_NODE)
    capsys.readouterr()
    return run_program(project, "dev", config)


def of_type(run: OfflineRun, token: str) -> list[Registered]:
    return [r for r in run.resources if r.type == token]


def descendants(run: OfflineRun, component: Registered) -> list[Registered]:
    children: dict[str, list[Registered]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)
    found: list[Registered] = []
    stack = [component.urn]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.urn)
    return found


def component(run: OfflineRun, token: str, name: str) -> Registered:
    [match] = [r for r in run.resources if r.type == token and r.name == name]
    return match


def plain(value: Any) -> Any:
    """Inputs with secrets unwrapped, for searching."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


OUT_OF_VPC = {
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
    "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
    "aws:ec2/vpnGateway:VpnGateway",
    "aws:ec2/route:Route",
    "aws:ec2/eip:Eip",
}


def test_technical_pools_have_no_way_out(example_run: OfflineRun) -> None:
    plan_pools = ["contract-review-pool", "patient-notes-pool"]
    for name in plan_pools:
        pool = component(example_run, "ai-infra-planner:index:InferencePool", name)
        inside = descendants(example_run, pool)
        assert inside, name
        assert not [r.type for r in inside if r.type in OUT_OF_VPC]
        for subnet in [r for r in inside if r.type == "aws:ec2/subnet:Subnet"]:
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
        vpcs = [r for r in inside if r.type == "aws:ec2/vpc:Vpc"]
        assert len(vpcs) == 1
        zones = {r.inputs["availabilityZone"] for r in inside if r.type == "aws:ec2/subnet:Subnet"}
        assert len(zones) >= 2
        assert [r for r in inside if r.type == "aws:ec2/flowLog:FlowLog"]
        services = {
            r.inputs["serviceName"].rsplit(".", 1)[-1]
            for r in inside
            if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"
        }
        assert {"s3", "ssm", "logs", "dkr"} <= services
        # Nothing on the nodes calls STS, so there is no STS endpoint.
        assert "sts" not in services


def test_no_security_group_admits_the_internet(example_run: OfflineRun) -> None:
    for rule in of_type(example_run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule.inputs.get("cidrIpv4") not in ("0.0.0.0/0",)
        assert rule.inputs.get("cidrIpv6") is None
    for group in of_type(example_run, "aws:ec2/securityGroup:SecurityGroup"):
        assert not group.inputs.get("ingress") and not group.inputs.get("egress")


def test_node_security_group_rules(example_run: OfflineRun) -> None:
    pool = component(example_run, "ai-infra-planner:index:InferencePool", "contract-review-pool")
    inside = descendants(example_run, pool)
    rules = {r.name: r.inputs for r in inside if "securityGroup" in r.type and "Rule" in r.type}
    consumer = rules["contract-review-pool-nodes-consumer-0"]
    assert (consumer["cidrIpv4"], consumer["fromPort"], consumer["toPort"]) == (
        "10.30.0.0/16",
        8000,
        8000,
    )
    egress = {n: r for n, r in rules.items() if n.startswith("contract-review-pool-nodes-to")}
    assert egress["contract-review-pool-nodes-to-vpc"]["cidrIpv4"] == "10.100.0.0/16"
    assert egress["contract-review-pool-nodes-to-s3"]["prefixListId"] == "pl-63a5400a"
    assert set(egress) == {"contract-review-pool-nodes-to-vpc", "contract-review-pool-nodes-to-s3"}


def test_launch_template_is_locked_down(example_run: OfflineRun) -> None:
    keys = {r.name: r for r in of_type(example_run, "aws:kms/key:Key")}
    for template in of_type(example_run, "aws:ec2/launchTemplate:LaunchTemplate"):
        pool = template.name.removesuffix("-nodes")
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        # No public address: the subnets give none, and EC2 refuses the parameter with more
        # than one interface (tests/test_deploy_limits.py).
        for interface in template.inputs["networkInterfaces"]:
            assert "associatePublicIpAddress" not in interface
        key_arn = f"arn:aws:kms:us-east-1:123456789012:{pool}-key"
        assert keys[f"{pool}-key"].inputs["enableKeyRotation"] is True
        for mapping in template.inputs["blockDeviceMappings"]:
            assert mapping["ebs"]["encrypted"] == "true"
            assert mapping["ebs"]["kmsKeyId"] == key_arn
        assert template.inputs["imageId"] == "ami-0123456789abcdef0"


def test_nodes_match_the_plan(example_run: OfflineRun, project: Path) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    for pool in plan.pools:
        [template] = [
            r for r in of_type(example_run, "aws:ec2/launchTemplate:LaunchTemplate")
            if r.name == f"{pool.name}-nodes"
        ]  # fmt: skip
        assert template.inputs["instanceType"] == pool.instance_type
        groups = [
            r for r in of_type(example_run, "aws:autoscaling/group:Group")
            if r.name.startswith(pool.name)
        ]  # fmt: skip
        assert sum(g.inputs["desiredCapacity"] for g in groups) == pool.nodes
        for group in groups:
            assert (
                group.inputs["minSize"]
                == group.inputs["maxSize"]
                == group.inputs["desiredCapacity"]
            )


def user_data(template: Registered) -> str:
    """The script as cloud-init reads it (the launch template holds it gzipped, base64)."""
    return user_data_text(template.inputs["userData"])


def test_user_data_carries_the_parallelism(example_run: OfflineRun) -> None:
    [template] = [
        r for r in of_type(example_run, "aws:ec2/launchTemplate:LaunchTemplate")
        if r.name == "contract-review-pool-nodes"
    ]  # fmt: skip
    text = user_data(template)
    assert text.startswith("#cloud-config\n")
    assert "TENSOR_PARALLEL=8" in text and "PIPELINE_PARALLEL=1" in text
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 1 --data-parallel-size 1" in text
    assert "--quantization" not in text  # DeepSeek publishes V3.2 in FP8: loaded as it is
    assert "WEIGHTS_URI=s3://contract-review-pool-weights/weights/deepseek-ai/DeepSeek-V3.2" in text
    assert "dkr.ecr.us-east-1.amazonaws.com/contract-review-pool-serving:v0.33.0" in text
    assert "ray start" not in text
    assert "--log-driver awslogs" in text and "LOG_GROUP=contract-review-pool-serving" in text
    # vLLM's usage statistics off (vllm.yaml `environment`): the server does not try to call out.
    assert "--env DO_NOT_TRACK=1 --env VLLM_NO_USAGE_STATS=1" in text
    assert default_catalog().serving.environment.values == {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }


def test_multi_node_pool_runs_ray_over_efa(multi_node_run: OfflineRun) -> None:
    [template] = of_type(multi_node_run, "aws:ec2/launchTemplate:LaunchTemplate")
    text = user_data(template)
    assert "TENSOR_PARALLEL=8" in text and "PIPELINE_PARALLEL=2" in text
    assert "ray start --head" in text and "--distributed-executor-backend ray" in text
    interfaces = template.inputs["networkInterfaces"]
    # One ENA interface and an EFA-only one on each of the 32 network cards.
    assert len(interfaces) == 33 and [i.get("interfaceType") for i in interfaces][:2] == [
        None,
        "efa-only",
    ]
    [placement] = of_type(multi_node_run, "aws:ec2/placementGroup:PlacementGroup")
    assert placement.inputs["strategy"] == "cluster"
    groups = of_type(multi_node_run, "aws:autoscaling/group:Group")
    assert all(g.inputs["desiredCapacity"] == 2 for g in groups)
    assert all(g.inputs["placementGroup"] == "deep-notes-pool-cluster-id" for g in groups)
    # The capacity reservation the user holds is used; nothing buys capacity.
    target = template.inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target["capacityReservationId"] == "cr-0123456789abcdef0"
    assert not [r for r in multi_node_run.resources if "capacity" in r.type.lower()]


def test_single_node_pools_have_no_placement_group(example_run: OfflineRun) -> None:
    assert not of_type(example_run, "aws:ec2/placementGroup:PlacementGroup")
    for template in of_type(example_run, "aws:ec2/launchTemplate:LaunchTemplate"):
        assert len(template.inputs["networkInterfaces"]) == 1
        assert "capacityReservationSpecification" not in template.inputs


def test_weights_bucket(example_run: OfflineRun) -> None:
    name = "contract-review-pool-weights"
    by_type = {r.type: r for r in example_run.resources if r.name == name}
    block = by_type["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"].inputs
    assert all(block[k] is True for k in (
        "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"
    ))  # fmt: skip
    versioning = by_type["aws:s3/bucketVersioning:BucketVersioning"].inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    sse = by_type[
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ].inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse["sseAlgorithm"] == "aws:kms"
    assert sse["kmsMasterKeyId"] == "arn:aws:kms:us-east-1:123456789012:contract-review-pool-key"
    policy = json.loads(by_type["aws:s3/bucketPolicy:BucketPolicy"].inputs["policy"])
    conditions = {s["Sid"]: s["Condition"] for s in policy["Statement"]}
    assert conditions["DenyPlainHttp"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert conditions["DenyObjectsOutsideTheVpcEndpoint"] == {
        "StringNotEquals": {"aws:SourceVpce": "contract-review-pool-net-s3-id"},
        # No uploader configured: the deploying principal uploads the weights.
        "ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/offline"},
    }
    endpoint = component(
        example_run, "aws:ec2/vpcEndpoint:VpcEndpoint", "contract-review-pool-net-s3"
    )
    resources = {
        r for s in json.loads(endpoint.inputs["policy"])["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }  # fmt: skip
    assert resources == {
        f"arn:aws:s3:::{name}",
        f"arn:aws:s3:::{name}/*",
        "arn:aws:s3:::prod-us-east-1-starport-layer-bucket/*",
    }


def test_budget_equals_the_plans_total(example_run: OfflineRun, project: Path) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    [budget] = of_type(example_run, "aws:budgets/budget:Budget")
    assert float(budget.inputs["limitAmount"]) == plan.totals.monthly_cost_usd
    thresholds = {(n["threshold"], n["notificationType"]) for n in budget.inputs["notifications"]}
    assert {(80, "ACTUAL"), (100, "ACTUAL")} <= thresholds
    assert all(
        n["subscriberEmailAddresses"] == ["finops@example.com"]
        for n in budget.inputs["notifications"]
    )
    assert example_run.outputs["monthly_cost_usd"] == plan.totals.monthly_cost_usd


def _taggable(token: str) -> bool:
    provider, module, name = token.split(":")
    if provider != "aws":  # the API key's random value (pulumi-random) has no tags
        return False
    cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_resource_carries_its_cost(example_run: OfflineRun) -> None:
    checked = 0
    for resource in example_run.resources:
        if not resource.custom or not _taggable(resource.type):
            continue
        checked += 1
        tags = resource.inputs.get("tags")
        if isinstance(tags, list):  # auto-scaling groups: [{key, value, propagateAtLaunch}]
            tags = {tag["key"]: tag["value"] for tag in tags}
        assert tags, resource.name
        assert tags["ai-infra-planner:stack"] == "dev"
        assert float(tags["ai-infra-planner:monthly-usd"]) >= 0
        assert {"ai-infra-planner:pool", "ai-infra-planner:workload",
                "ai-infra-planner:provider", "ai-infra-planner:network",
                "ai-infra-planner:stack"} & set(tags)  # fmt: skip
    assert checked > 50
    pool_key = component(example_run, "aws:kms/key:Key", "patient-notes-pool-key")
    # Thirteen p5.4xlarge nodes, and the pool's staff, network and security pieces.
    assert pool_key.inputs["tags"]["ai-infra-planner:monthly-usd"] == "85045.18"
    groups = [g for g in of_type(example_run, "aws:autoscaling/group:Group")]
    assert all(
        {"key": "ai-infra-planner:pool", "value": g.name.removesuffix("-nodes"),
         "propagateAtLaunch": True} in g.inputs["tags"] for g in groups
    )  # fmt: skip


def _walk(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield str(value)


def test_api_key_canary_lives_only_in_the_secret_version(
    example_run: OfflineRun, project: Path
) -> None:
    holders = [
        r for r in example_run.resources if any(CANARY in text for text in _walk(plain(r.inputs)))
    ]
    assert [(r.type, r.name) for r in holders] == [
        ("aws:secretsmanager/secretVersion:SecretVersion", "openai-access-api-key")
    ]
    # ... and it travels as a secret there.
    [version] = holders
    assert rpc.is_rpc_secret(version.inputs["secretString"])
    assert not any(CANARY in text for text in _walk(example_run.outputs))
    assert not any(CANARY in line for line in example_run.logs)
    for path in (project / "plans").rglob("*"):
        if path.is_file():
            assert CANARY not in path.read_text()


def test_unset_api_key_leaves_the_secret_empty_and_says_how(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plan_project(project, None)
    capsys.readouterr()
    run = run_program(project, "dev", config)
    assert component(run, "aws:secretsmanager/secret:Secret", "openai-access-api-key")
    # The pools' serving keys are the stack's own; only the provider's key waits for config.
    versions = {r.name for r in of_type(run, "aws:secretsmanager/secretVersion:SecretVersion")}
    assert versions == {"contract-review-pool-api-key", "patient-notes-pool-api-key"}
    assert any("pulumi config set --secret openai_api_key" in line for line in run.logs)


def test_iam_policies_are_narrow(example_run: OfflineRun) -> None:
    for resource in example_run.resources:
        if resource.type not in ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy"):
            continue
        for statement in json.loads(resource.inputs["policy"])["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "*" not in actions
            if statement["Resource"] == "*":
                # Actions that take no resource ARN (Service Authorization Reference).
                assert actions in (["ecr:GetAuthorizationToken"], ["logs:DescribeLogGroups"])
    policy = component(example_run, "aws:iam/policy:Policy", "code-review-api-access")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert statements[0]["Resource"] == (
        "arn:aws:secretsmanager:us-east-1:123456789012:openai-access-api-key"
    )
    bedrock = component(example_run, "aws:iam/policy:Policy", "ticket-triage-api-access")
    [statement] = json.loads(bedrock.inputs["policy"])["Statement"]
    assert all("claude-haiku-5-5" in arn for arn in statement["Resource"])


def test_contractual_egress_goes_through_the_firewall(example_run: OfflineRun) -> None:
    [rule_group] = of_type(example_run, "aws:networkfirewall/ruleGroup:RuleGroup")
    source = rule_group.inputs["ruleGroup"]["rulesSource"]["rulesSourceList"]
    assert source["generatedRulesType"] == "ALLOWLIST"
    assert source["targets"] == ["api.openai.com"]
    routes = {r.name: r.inputs for r in of_type(example_run, "aws:ec2/route:Route")}
    for zone in ("us-east-1a", "us-east-1b"):
        # Each zone's callers go to that zone's firewall endpoint, and the way back too.
        endpoint = f"vpce-api-egress-firewall-{zone}"
        assert routes[f"api-egress-private-{zone}-default"]["vpcEndpointId"] == endpoint
        assert routes[f"api-egress-public-{zone}-return-0"]["vpcEndpointId"] == endpoint
        assert routes[f"api-egress-firewall-{zone}-default"]["natGatewayId"] == (
            f"api-egress-nat-{zone}-id"
        )
    [consumer_rule] = [
        r for r in of_type(example_run, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.name == "code-review-consumers-https"
    ]  # fmt: skip
    assert (consumer_rule.inputs["fromPort"], consumer_rule.inputs["toPort"]) == (443, 443)


def test_the_firewall_drops_what_is_not_tls_to_an_allowed_host(example_run: OfflineRun) -> None:
    """Strict rule order with a drop-established default: plain TCP on 443, or TLS to any other
    name, is dropped (AWS Network Firewall Developer Guide, strict evaluation order; the policy's
    stateful default actions are accepted only with STRICT_ORDER, and its rule groups must use
    the same order)."""
    [policy] = of_type(example_run, "aws:networkfirewall/firewallPolicy:FirewallPolicy")
    spec = policy.inputs["firewallPolicy"]
    assert spec["statefulEngineOptions"]["ruleOrder"] == "STRICT_ORDER"
    assert spec["statefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert spec["statelessDefaultActions"] == ["aws:forward_to_sfe"]
    # Under STRICT_ORDER every rule group reference needs a priority.
    assert [r["priority"] for r in spec["statefulRuleGroupReferences"]] == [100]
    [rule_group] = of_type(example_run, "aws:networkfirewall/ruleGroup:RuleGroup")
    assert rule_group.inputs["ruleGroup"]["statefulRuleOptions"]["ruleOrder"] == "STRICT_ORDER"


def test_one_firewall_endpoint_per_zone_with_logs(example_run: OfflineRun) -> None:
    [firewall] = of_type(example_run, "aws:networkfirewall/firewall:Firewall")
    subnets = {r.name: r for r in of_type(example_run, "aws:ec2/subnet:Subnet")}
    mapped = [m["subnetId"].removesuffix("-id") for m in firewall.inputs["subnetMappings"]]
    assert sorted(subnets[name].inputs["availabilityZone"] for name in mapped) == [
        "us-east-1a", "us-east-1b",
    ]  # fmt: skip
    nats = of_type(example_run, "aws:ec2/natGateway:NatGateway")
    assert sorted(n.inputs["subnetId"] for n in nats) == [
        "api-egress-public-us-east-1a-id", "api-egress-public-us-east-1b-id",
    ]  # fmt: skip
    [logging] = of_type(
        example_run, "aws:networkfirewall/loggingConfiguration:LoggingConfiguration"
    )
    assert logging.inputs["firewallArn"].endswith(":api-egress-firewall")
    configs = logging.inputs["loggingConfiguration"]["logDestinationConfigs"]
    assert sorted(c["logType"] for c in configs) == ["ALERT", "FLOW"]
    [group] = [
        r for r in of_type(example_run, "aws:cloudwatch/logGroup:LogGroup")
        if r.name == "api-egress-firewall-logs"
    ]  # fmt: skip
    assert group.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:api-egress-key"
    assert {c["logDestination"]["logGroup"] for c in configs} == {"api-egress-firewall-logs"}
    assert {c["logDestinationType"] for c in configs} == {"CloudWatchLogs"}


def test_private_link_has_no_nat_and_a_narrow_endpoint(example_run: OfflineRun) -> None:
    link = component(example_run, "ai-infra-planner:index:PrivateLinkNetwork", "bedrock-link")
    inside = descendants(example_run, link)
    assert not [r for r in inside if r.type in OUT_OF_VPC]
    # The example's Bedrock callers name their VPC: the endpoint is made there, and no network
    # of its own (the other account's callers make their own endpoint).
    assert not [r for r in inside if r.type == "aws:ec2/vpc:Vpc"]
    [endpoint] = [r for r in inside if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    assert endpoint.name == "bedrock-link-vpc-0a1b2c3d4e5f60718-bedrock-runtime"
    assert endpoint.inputs["privateDnsEnabled"] is True
    [statement] = json.loads(endpoint.inputs["policy"])["Statement"]
    # Claude Haiku 5.5 is served only through inference profiles, the example's through the
    # global one: the profile in this region, the model in this region and the model's
    # region-less ARN (any commercial region; planner/data/api_models.yaml).
    assert statement["Resource"] == [
        "arn:aws:bedrock:::foundation-model/anthropic.claude-haiku-5-5",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "global.anthropic.claude-haiku-5-5",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-5-5",
    ]
    # The IAM policy of its workloads names the same.
    policy = component(example_run, "aws:iam/policy:Policy", "ticket-triage-api-access")
    [invoke] = json.loads(policy.inputs["policy"])["Statement"]
    assert invoke["Resource"] == statement["Resource"]


def test_keys_buckets_and_secrets_are_protected(example_run: OfflineRun) -> None:
    guarded = [
        r for r in example_run.resources
        if r.type in ("aws:kms/key:Key", "aws:s3/bucket:Bucket",
                      "aws:secretsmanager/secret:Secret")
    ]  # fmt: skip
    assert len(guarded) >= 6
    assert all(r.protect and r.retain_on_delete for r in guarded)


def test_a_dev_stack_may_turn_protection_off(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plan_project(project, None)
    config["ai-infra-planner:protect"] = "false"
    capsys.readouterr()
    run = run_program(project, "dev", config)
    keys = of_type(run, "aws:kms/key:Key")
    assert keys and not any(r.protect or r.retain_on_delete for r in keys)


def test_components_expose_their_estimate(example_run: OfflineRun, project: Path) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    costs = example_run.outputs["component_monthly_cost_usd"]
    for pool in plan.pools:
        assert costs[pool.name] == pool.monthly_cost_usd
    # Usage 3,900 (GPT-6.1 Sol) + its key's secret and KMS key 1.40 + the plan's egress
    # network 701.80 (its only user; the egress VPC's attachment included) + its VPC's
    # attachment 36.50.
    assert costs["openai-access"] == 4639.70
    # Per zone (2): NAT 32.85 + address 3.65 + firewall endpoint 288.35; the Secrets Manager
    # endpoint in 2 zones 14.60; key 1.00; the transit gateway attachments of the egress VPC and
    # of code-review's VPC, 36.50 each: the plan's 701.80 and code-review's connection.
    assert (
        costs["api-egress"]
        == 738.30
        == round(
            plan.totals.egress_network_usd
            + sum(c.monthly_cost_usd for c in plan.connections if c.kind == "egress"),
            2,
        )
    )
    # The Bedrock endpoint in the consumers' VPC, 2 subnets; no log key without an own network.
    assert costs["bedrock-link"] == 14.60
    # Usage 80.00 (Claude Haiku 5.5, global profile) + its share (with ticket-triage) of that
    # endpoint, 7.30; no own network.
    assert example_run.outputs["workload_monthly_cost_usd"]["support-faq"] == 87.30


def test_runs_under_plain_echo_mocks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Outputs only AWS knows (ARNs, endpoint ids) stay unknown: the program must not need them."""
    config = plan_project(project, None)
    capsys.readouterr()
    run = run_program(project, "dev", config, computed=False)
    assert len(run.resources) > 100
    assert set(run.invokes) <= {
        "aws:index/getAvailabilityZones:getAvailabilityZones",
        "aws:index/getRegion:getRegion",
        "aws:index/getCallerIdentity:getCallerIdentity",
        "aws:index/getPartition:getPartition",
        "aws:ssm/getParameter:getParameter",
        "aws:iam/getSessionContext:getSessionContext",
        # The route table of each consumer subnet the egress path attaches (stacks/aws/egress.py).
        "aws:ec2/getRouteTable:getRouteTable",
        "aws:ec2/getSubnet:getSubnet",
        # Each consumer VPC's DNS attributes (stacks/aws/lookups.py private_dns_on).
        "aws:ec2/getVpc:getVpc",
        # The zones that offer each pool's instance type (stacks/aws/lookups.py).
        "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings",
    }


def test_component_type_tokens(example_run: OfflineRun) -> None:
    kinds: Callable[[str], int] = lambda token: len(of_type(example_run, token))  # noqa: E731
    assert kinds("ai-infra-planner:index:InferencePool") == 2
    assert kinds("ai-infra-planner:index:ApiAccess") == 2
    assert kinds("ai-infra-planner:index:EgressNetwork") == 1
    assert kinds("ai-infra-planner:index:PrivateLinkNetwork") == 1
    assert kinds("ai-infra-planner:index:CostBudget") == 1


def test_shared_pools_deploy(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The optimal plan of the example shares one pool (DeepSeek V3.2 on two p5en.48xlarge, by
    the throughput model's capacities); it admits all its workloads' callers."""
    config = plan_project(project, None, strategy="optimal")
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    assert plan.strategy == "optimal"
    assert {tuple(p.workloads) for p in plan.pools} == {
        ("support-faq", "contract-review", "ticket-triage", "patient-notes"),
    }
    run = run_program(project, "dev", config)
    pools = {r.name for r in of_type(run, "ai-infra-planner:index:InferencePool")}
    shared = "deepseek-v3-2-p5en-48xlarge"
    assert pools == {shared}
    consumers = {
        r.inputs["cidrIpv4"]
        for r in of_type(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith(f"{shared}-nodes-consumer-")
    }
    assert consumers == {"10.20.0.0/16", "10.30.0.0/16", "10.50.0.0/16", "10.51.0.0/16"}
    [key] = [r for r in of_type(run, "aws:kms/key:Key") if r.name.startswith("deepseek")]
    assert key.inputs["tags"]["ai-infra-planner:monthly-usd"] == "97098.94"
    # The shared pool has one endpoint per consumer VPC (support-faq and ticket-triage share
    # one), and lets patient-notes' other account connect.
    endpoints = {
        r.inputs["vpcId"]
        for r in of_type(run, "aws:ec2/vpcEndpoint:VpcEndpoint")
        if r.name.startswith(f"{shared}-vpc-")
    }
    assert endpoints == {"vpc-0a1b2c3d4e5f60718", "vpc-0c3d4e5f6a7b80912", "vpc-01a2b3c4d5e6f7a8b"}
    service = component(run, SERVICE, f"{shared}-service")
    assert sorted(
        a.inputs["principalArn"] for a in of_type(run, ALLOWED)
        if referenced(run, a, "vpcEndpointServiceId") == [service]
    ) == ["arn:aws:iam::111122223333:root", "arn:aws:iam::123456789012:root"]  # fmt: skip
    # Only OpenAI's API is left, so there is no PrivateLink network.
    assert not of_type(run, "ai-infra-planner:index:PrivateLinkNetwork")
    # Three pool connections (the shared pool's three consumer VPCs), 15.10 USD each, and
    # code-review's VPC attached to the egress path, 36.50 USD.
    assert plan.totals.connections_usd == 81.80
    assert run.outputs["monthly_cost_usd"] == plan.totals.monthly_cost_usd == 101783.94


def test_no_way_out_networks_carry_a_network_access_analyzer_scope(
    example_run: OfflineRun,
) -> None:
    """AWS can confirm the perimeter after `pulumi up`: one scope per pool and PrivateLink
    network, from its own VPC to every destination type that leaves it."""
    scopes = of_type(example_run, "aws:ec2/networkInsightsAccessScope:NetworkInsightsAccessScope")
    vpcs = {r.urn: r.name for r in of_type(example_run, "aws:ec2/vpc:Vpc")}
    sources = sorted(vpcs[s.dependencies["matchPaths"][0]] for s in scopes)
    assert sources == [
        "contract-review-pool-net-vpc", "patient-notes-pool-net-vpc",
    ]  # fmt: skip
    for scope in scopes:
        [path] = scope.inputs["matchPaths"]
        assert set(path["destination"]["resourceStatement"]["resourceTypes"]) >= {
            "AWS::EC2::InternetGateway", "AWS::EC2::VPCPeeringConnection",
            "AWS::EC2::TransitGatewayAttachment", "AWS::EC2::VPNGateway",
        }  # fmt: skip
    assert sorted(example_run.outputs["network_access_scopes"]) == [
        "contract-review-pool", "patient-notes-pool",
    ]  # fmt: skip


# -------------------------------------------------------------- the way in: PrivateLink, TLS, key
# Deploy-time constraints the provider does not check before `pulumi up`, each with its source.
# Security group descriptions: "Up to 255 characters in length. Valid characters: a-z, A-Z, 0-9,
# spaces, and ._-:/()#,@[]+=&;{}!$*" (Amazon EC2 API Reference, CreateSecurityGroup,
# GroupDescription); rule descriptions the same (EC2 API Reference, IpRange, Description). An
# apostrophe ("the nodes' port") fails at `pulumi up`, never before.
GROUP_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
RULE_DESCRIPTION = GROUP_DESCRIPTION
# Security group names: "Up to 255 characters in length. Cannot start with sg-"
# (CreateSecurityGroup, GroupName); Pulumi's auto-name adds "-" and 7 characters.
AUTONAME_SUFFIX = 8
# The TLS security policies a Network Load Balancer's TLS listener accepts that refuse TLS 1.0 and
# 1.1 ("Security policies for your Network Load Balancer", Elastic Load Balancing guide, read
# 2026-12); the API's default, ELBSecurityPolicy-2016-08, is not among them.
NLB_TLS12_POLICIES = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
}
LISTENER = "aws:lb/listener:Listener"
SERVICE = "aws:ec2/vpcEndpointService:VpcEndpointService"
ALLOWED = "aws:ec2/vpcEndpointServiceAllowedPrinciple:VpcEndpointServiceAllowedPrinciple"
ACCEPTER = "aws:ec2/vpcEndpointConnectionAccepter:VpcEndpointConnectionAccepter"
CA = "aws:acmpca/certificateAuthority:CertificateAuthority"


def by_urn(run: OfflineRun) -> dict[str, Registered]:
    return {r.urn: r for r in run.resources}


def referenced(run: OfflineRun, resource: Registered, key: str) -> list[Registered]:
    """The resources an input of `resource` takes its value from (its property dependencies)."""
    urns = by_urn(run)
    return [urns[urn] for urn in resource.dependencies.get(key, [])]


def assert_deployable(run: OfflineRun) -> None:
    """The constraints AWS enforces only at `pulumi up`, on every resource of a run."""
    for group in of_type(run, "aws:ec2/securityGroup:SecurityGroup"):
        assert GROUP_DESCRIPTION.match(group.inputs["description"]), group.name
        assert len(group.name) + AUTONAME_SUFFIX <= 255 and not group.name.startswith("sg-")
    for rule in run.resources:
        if rule.type.startswith("aws:vpc/securityGroup") and "description" in rule.inputs:
            assert RULE_DESCRIPTION.match(rule.inputs["description"]), rule.name
    for listener in of_type(run, LISTENER):
        assert listener.inputs["protocol"] == "TLS", listener.name
        assert listener.inputs["sslPolicy"] in NLB_TLS12_POLICIES
        [certificate] = referenced(run, listener, "certificateArn")
        assert certificate.type == "aws:acm/certificate:Certificate"
    for service in of_type(run, SERVICE):
        assert service.inputs["acceptanceRequired"] is True
        # An endpoint service fronts a Network Load Balancer
        # (EC2 API Reference, CreateVpcEndpointServiceConfiguration).
        [balancer] = referenced(run, service, "networkLoadBalancerArns")
        assert balancer.inputs["loadBalancerType"] == "network"
        assert "gatewayLoadBalancerArns" not in service.inputs
    for ca in of_type(run, CA):
        subject = ca.inputs["certificateAuthorityConfiguration"]["subject"]
        # Subject common name and organization: at most 64 characters (ASN.1 ub-common-name,
        # AWS Private CA API Reference, ASN1Subject).
        assert len(subject["commonName"]) <= 64 and len(subject["organization"]) <= 64
        assert ca.inputs["usageMode"] == "GENERAL_PURPOSE"  # ACM cannot issue from short-lived
    for certificate in of_type(run, "aws:acm/certificate:Certificate"):
        name = certificate.inputs["domainName"]
        # ACM: the domain name (the common name) at most 64 characters (RFC 5280), longer names
        # as subject alternative names of at most 253 (ACM API Reference, RequestCertificate,
        # DomainName and SubjectAlternativeNames); RFC 1035: labels of at most 63 characters.
        alternatives = certificate.inputs.get("subjectAlternativeNames") or []
        assert len(name) <= 64
        for each in [name, *alternatives]:
            assert len(each) <= 253 and all(0 < len(label) <= 63 for label in each.split("."))
            assert re.fullmatch(r"[a-z0-9.-]+", each)


def test_generated_stacks_meet_deploy_time_constraints(
    example_run: OfflineRun, multi_node_run: OfflineRun
) -> None:
    assert_deployable(example_run)
    assert_deployable(multi_node_run)


def test_each_pool_is_an_endpoint_service_for_this_account(example_run: OfflineRun) -> None:
    services = {s.name: s for s in of_type(example_run, SERVICE)}
    assert set(services) == {"contract-review-pool-service", "patient-notes-pool-service"}
    service = services["contract-review-pool-service"]
    [balancer] = referenced(example_run, service, "networkLoadBalancerArns")
    assert balancer.name == "contract-review-pool-lb"
    assert balancer.inputs["enforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "on"
    allowed = [
        a for a in of_type(example_run, ALLOWED)
        if referenced(example_run, a, "vpcEndpointServiceId") == [service]
    ]  # fmt: skip
    # Its consumers are in a VPC of this account: only this account may connect (the example's
    # other account calls ticket-triage, an API workload in this plan).
    assert [a.inputs["principalArn"] for a in allowed] == ["arn:aws:iam::123456789012:root"]
    # Each pool's consumer VPC gets its endpoint, accepted by that pool's service, and a zone.
    consumer_vpcs = {
        "contract-review-pool": "vpc-0c3d4e5f6a7b80912",
        "patient-notes-pool": "vpc-01a2b3c4d5e6f7a8b",
    }
    for pool_name, vpc in consumer_vpcs.items():
        endpoint = component(example_run, "aws:ec2/vpcEndpoint:VpcEndpoint", f"{pool_name}-{vpc}")
        assert endpoint.inputs["vpcId"] == vpc and len(endpoint.inputs["subnetIds"]) == 2
        [accepter] = [
            a for a in of_type(example_run, ACCEPTER)
            if referenced(example_run, a, "vpcEndpointId") == [endpoint]
        ]  # fmt: skip
        assert referenced(example_run, accepter, "vpcEndpointServiceId") == [
            services[f"{pool_name}-service"]
        ]
        zone = component(example_run, "aws:route53/zone:Zone", f"{pool_name}-{vpc}")
        assert zone.inputs["vpcs"] == [{"vpcId": vpc}]
    assert len(of_type(example_run, ACCEPTER)) == 2
    assert len(of_type(example_run, "aws:route53/zone:Zone")) == 2
    # PrivateLink, not a network: nothing in a pool routes or peers out.
    pool = component(example_run, "ai-infra-planner:index:InferencePool", "contract-review-pool")
    assert not [r for r in descendants(example_run, pool) if r.type in OUT_OF_VPC]


def test_the_serving_path_is_tls_end_to_end(example_run: OfflineRun) -> None:
    [listener] = [
        r for r in of_type(example_run, LISTENER) if r.name == "contract-review-pool-serving"
    ]
    assert (listener.inputs["protocol"], listener.inputs["port"]) == ("TLS", 8000)
    assert listener.inputs["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    [certificate] = referenced(example_run, listener, "certificateArn")
    assert certificate.inputs["domainName"] == "contract-review-pool.dev.ai-infra-planner.internal"
    # Issued by the pool's own private CA, once its root certificate is installed and ACM may
    # issue and renew from it.
    [ca] = referenced(example_run, certificate, "certificateAuthorityArn")
    assert ca.name == "contract-review-pool-ca" and ca.inputs["type"] == "ROOT"
    assert ca.protect and ca.retain_on_delete
    [permission] = [
        r for r in of_type(example_run, "aws:acmpca/permission:Permission")
        if r.name == "contract-review-pool-ca-acm"
    ]  # fmt: skip
    assert permission.inputs["principal"] == "acm.amazonaws.com"
    assert set(permission.inputs["actions"]) == {
        "IssueCertificate",
        "GetCertificate",
        "ListPermissions",
    }
    [target_group] = referenced(example_run, listener, "defaultActions")
    assert target_group.inputs["protocol"] == "TLS"
    assert target_group.inputs["healthCheck"]["protocol"] == "HTTPS"
    text = user_data(component(example_run, "aws:ec2/launchTemplate:LaunchTemplate",
                               "contract-review-pool-nodes"))  # fmt: skip
    assert "--ssl-keyfile /secrets/tls.key --ssl-certfile /secrets/tls.crt" in text
    assert target_group.inputs["healthCheck"]["path"] == "/health"
    assert "http://" not in text


def test_the_api_key_is_generated_kept_and_read_only_by_its_pool(
    example_run: OfflineRun,
) -> None:
    secret = component(
        example_run, "aws:secretsmanager/secret:Secret", "contract-review-pool-api-key"
    )
    assert secret.protect and secret.retain_on_delete
    assert (
        secret.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:contract-review-pool-key"
    )
    password = component(example_run, "random:index/randomPassword:RandomPassword",
                         "contract-review-pool-api-key")  # fmt: skip
    assert password.inputs["length"] >= 32 and password.inputs["special"] is False
    [version] = [
        r for r in of_type(example_run, "aws:secretsmanager/secretVersion:SecretVersion")
        if r.name == "contract-review-pool-api-key"
    ]  # fmt: skip
    assert referenced(example_run, version, "secretString") == [password]
    # The node reads its key at boot by the secret's ARN: no value in user data, and the node's
    # role may read that one secret and no other.
    text = user_data(component(example_run, "aws:ec2/launchTemplate:LaunchTemplate",
                               "contract-review-pool-nodes"))  # fmt: skip
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:contract-review-pool-api-key"
    assert f"API_KEY_SECRET={arn}" in text
    assert "--env-file /opt/serve/secrets/vllm.env" in text and "--api-key " not in text
    assert not re.search(r"^\s*set -[a-z]*x", text, re.M) and "umask 077" in text
    policy = component(example_run, "aws:iam/rolePolicy:RolePolicy", "contract-review-pool-node")
    reads = [
        s for s in json.loads(policy.inputs["policy"])["Statement"]
        if "secretsmanager" in json.dumps(s["Action"])
    ]  # fmt: skip
    assert reads == [
        {"Sid": "ReadTheApiKey", "Effect": "Allow",
         "Action": "secretsmanager:GetSecretValue", "Resource": arn}
    ]  # fmt: skip
    # The nodes reach Secrets Manager through their VPC's interface endpoint.
    endpoint = component(example_run, "aws:ec2/vpcEndpoint:VpcEndpoint",
                         "contract-review-pool-net-secretsmanager")  # fmt: skip
    assert endpoint.inputs["privateDnsEnabled"] is True


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=200))
def test_dns_labels_fit_rfc_1035(name: str) -> None:
    label = dns_label(name)
    assert 0 < len(label) <= 63 and re.fullmatch(r"[a-z0-9-]+", label)
    assert not label.startswith("-") and not label.endswith("-")
    if len(name) <= 63 and name.strip("-") == name:
        assert label == name
    full = service_dns_name(name, name)
    assert len(full) <= 253
    # The certificate for it: a common name ACM takes (at most 64) and the name itself among
    # the names a client checks (the subject alternative names, or the common name alone).
    common, alternatives = certificate_names(full)
    assert len(common) <= 64 and common.endswith(".ai-infra-planner.internal")
    assert all(0 < len(label) <= 63 for label in common.split("."))
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", common)
    assert (alternatives or [common]) == [full]
    # Names that fit keep their certificate as it was: the name alone.
    assert (common == full) == (len(full) <= 64)


def test_long_workload_names_still_deploy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 63-character workload name makes a 68-character pool name: its DNS name, CA subject and
    security groups still fit, and its certificate names the DNS name callers use (93
    characters: an alternative name, under a common name ACM takes)."""
    text = workload_yaml(name="w" * 63, task="chat", data="regulated", model="llama-3.1-8b")
    config = plan_project(project, text)
    capsys.readouterr()
    run = run_program(project, "dev", config)
    assert_deployable(run)
    [certificate] = of_type(run, "aws:acm/certificate:Certificate")
    [pool] = run.outputs["pools"].values()
    assert pool["dns_name"].endswith(".dev.ai-infra-planner.internal")
    assert len(pool["dns_name"]) > 64
    assert certificate.inputs["subjectAlternativeNames"] == [pool["dns_name"]]
    assert len(certificate.inputs["domainName"]) <= 64


# An organization whose consumers say where they run: a VPC of this account (the stack connects
# it), another account (it makes its own endpoint), and callers inside the stack's own network.
CONSUMER_VPC = "vpc-0a1b2c3d4e5f60718"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60719"]
CONNECTED = f"""organization: acme
region: us-east-1
workloads:
  - name: claims-notes
    task: chat
    data: regulated
    model: llama-3.1-8b
    monthly_tokens: {{input: 20B, output: 4B}}
    consumers:
      - cidr: 10.20.0.0/16
        vpc: {CONSUMER_VPC}
        subnets: [{", ".join(SUBNETS)}]
      - cidr: 10.22.0.0/16
        account: "111122223333"
  - name: claims-triage
    task: classification
    data: regulated
    model: llama-3.1-8b
    monthly_tokens: {{input: 20B, output: 4B}}
    consumers:
      - cidr: 10.20.0.0/16
        vpc: {CONSUMER_VPC}
        subnets: [{", ".join(SUBNETS)}]
      - 10.70.0.0/16
"""


@pytest.fixture
def connected_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, CONNECTED)
    capsys.readouterr()
    return run_program(project, "dev", config)


# --------------------------------------------------------------------- resource policies, linted

POLICY_HOLDERS = {
    "aws:ec2/vpcEndpoint:VpcEndpoint": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:kms/key:Key": "policy",
}
# Findings of medium or higher severity that are accepted, by statement and issue, with why.
ACCEPTED_FINDINGS = {
    # AWS KMS, "Default key policy": the account root administers the key so that IAM policies
    # can grant its use; without the statement the key becomes unmanageable.
    ("AccountAdministers", "PERMISSIONS_MANAGEMENT_ACTIONS"),
    # Amazon EBS, "Required AWS KMS key policy for use with encrypted volumes" (EC2 Auto Scaling
    # user guide): the Auto Scaling service-linked role creates grants, only for AWS resources
    # (kms:GrantIsForAWSResource), to attach encrypted volumes.
    ("AutoScalingGrantsForEbs", "PERMISSIONS_MANAGEMENT_ACTIONS"),
    # Amazon CloudWatch Logs, "Encrypt log data in CloudWatch Logs using AWS KMS": the documented
    # key policy for the logs service principal conditions on kms:EncryptionContext:aws:logs:arn
    # with ArnLike; parliament knows neither that key for these actions nor its ARN type.
    ("CloudWatchLogsEncrypts", "UNKNOWN_CONDITION_FOR_ACTION"),
    ("CloudWatchLogsEncrypts", "MISMATCHED_TYPE"),
    # Amazon ECR, "Private registry authentication": pulling an image needs
    # ecr:GetAuthorizationToken, a registry token (a credential, as parliament says).
    ("EcrApiActionsOnly", "CREDENTIALS_EXPOSURE"),
    ("EcrDkrActionsOnly", "CREDENTIALS_EXPOSURE"),
}
# Bedrock model ids carry a version after a colon (meta.llama4-scout-17b-instruct-v1:0), which
# parliament 1.6.4 reads as a sixth ARN part; the ARN is the one the Bedrock user guide
# documents. The version's colon is replaced before linting, so the rest of the ARN is still
# checked against the documented formats.
_MODEL_VERSION = re.compile(r"(:bedrock:[^\"]*?/[^\":/]+):(\d+)\"")
# The Service Authorization Reference lists eight alternative resource types for
# bedrock:InvokeModel (foundation model, inference profile, provisioned model, ...), and
# parliament wants a resource of each; a policy naming the planned models passes if only the
# other types are missing, i.e. the models' ARNs match their documented formats.
_MODEL_FORMATS = ("foundation-model/", ":inference-profile/")


def accepted(sid: str, issue: str, detail: Any) -> bool:
    if (sid, issue) in ACCEPTED_FINDINGS:
        return True
    if issue == "RESOURCE_MISMATCH" and sid in ("PlannedModelsOnly", "InvokePlannedModels"):
        formats = [str(item["required_format"]) for item in detail]
        return all(item["action"].startswith("bedrock:Invoke") for item in detail) and not any(
            kind in f for f in formats for kind in _MODEL_FORMATS
        )
    return False


def policy_findings(run: OfflineRun) -> list[tuple[str, str, str, Any]]:
    """(resource, statement Sid, issue, detail) for every finding of medium severity or higher,
    each statement linted on its own so that a finding names its statement."""
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

    override_config(
        str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    )
    found = []
    linted = 0
    for resource in run.resources:
        field = POLICY_HOLDERS.get(resource.type)
        if field is None or not isinstance(resource.inputs.get(field), str):
            continue
        for statement in json.loads(resource.inputs[field])["Statement"]:
            linted += 1
            text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
            text = _MODEL_VERSION.sub(r'\1-v\2"', text)
            policy = analyze_policy_string(text, include_community_auditors=True)
            for finding in map(enhance_finding, policy.findings):
                if finding.severity in ("MEDIUM", "HIGH", "CRITICAL"):
                    found.append(
                        (resource.name, statement.get("Sid", ""), finding.issue, finding.detail)
                    )
    assert linted > 3
    return found


def test_resource_policies_pass_parliament(example_run: OfflineRun) -> None:
    """No endpoint, bucket or key policy the stack writes has a finding of medium severity or
    higher (parliament, with its community auditors: privilege escalation, credentials exposure,
    permissions management), but the accepted ones above."""
    found = policy_findings(example_run)
    unexpected = sorted({(f[0], f[1], f[2]) for f in found if not accepted(f[1], f[2], f[3])})
    assert unexpected == [], unexpected


def test_parliament_finds_full_access_endpoint_policies(example_run: OfflineRun) -> None:
    """The lint is not blind: yesterday's `Action: *` endpoint policy is reported."""
    [endpoint] = [
        r for r in example_run.resources if r.name == "contract-review-pool-net-logs"
    ]  # fmt: skip
    endpoint.inputs["policy"] = json.dumps(
        {
            "Statement": [
                {
                    "Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*",
                    "Action": "*", "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": "123456789012"}},
                }
            ]
        }
    )  # fmt: skip
    issues = {f[2] for f in policy_findings(example_run) if f[0] == endpoint.name}
    assert "PRIVILEGE_ESCALATION" in issues


def test_interface_endpoints_name_their_actions(example_run: OfflineRun) -> None:
    for endpoint in of_type(example_run, "aws:ec2/vpcEndpoint:VpcEndpoint"):
        if endpoint.inputs["serviceName"].startswith("com.amazonaws.vpce."):
            continue  # a pool's endpoint service: AWS services take endpoint policies, it not
        service = endpoint.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1.")
        for statement in json.loads(endpoint.inputs["policy"])["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            assert all("*" not in a for a in actions), endpoint.name
            prefix = {"ecr.api": "ecr", "ecr.dkr": "ecr", "bedrock-runtime": "bedrock"}.get(
                service, service
            )
            if statement["Effect"] == "Allow":
                assert {a.split(":")[0] for a in actions} == {prefix}, endpoint.name


# ------------------------------------------------------- consumers that name their VPC or account

VPC_A, VPC_C = "vpc-0a1b2c3d4e5f60718", "vpc-0c1d2e3f4a5b60720"
SUBNETS_A = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60719"]
SUBNETS_C = ["subnet-0c1d2e3f4a5b60720", "subnet-0d1e2f3a4b5c60721"]


@pytest.fixture
def vpc_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, VPC_CONSUMERS)
    capsys.readouterr()
    return run_program(project, "dev", config)


def test_consumers_in_other_accounts_are_allowed_principals(connected_run: OfflineRun) -> None:
    assert_deployable(connected_run)
    service = component(connected_run, SERVICE, "claims-notes-pool-service")
    allowed = sorted(
        a.inputs["principalArn"] for a in of_type(connected_run, ALLOWED)
        if referenced(connected_run, a, "vpcEndpointServiceId") == [service]
    )  # fmt: skip
    assert allowed == ["arn:aws:iam::111122223333:root", "arn:aws:iam::123456789012:root"]
    other = component(connected_run, SERVICE, "claims-triage-pool-service")
    assert [
        a.inputs["principalArn"] for a in of_type(connected_run, ALLOWED)
        if referenced(connected_run, a, "vpcEndpointServiceId") == [other]
    ] == ["arn:aws:iam::123456789012:root"]  # fmt: skip
    # The other account gets the service name and the command that makes its endpoint.
    connection = connected_run.outputs["pools"]["claims-notes-pool"]
    service_name = "com.amazonaws.vpce.us-east-1.vpce-svc-claims-notes-pool-service"
    assert connection["endpoint_service_name"] == service_name
    assert connection["account_endpoint_commands"] == {
        "111122223333": (
            "aws ec2 create-vpc-endpoint --region us-east-1 --vpc-endpoint-type Interface "
            f"--service-name {service_name} --vpc-id <your-vpc-id> --subnet-ids <your-subnet-ids> "
            "--security-group-ids <a-group-admitting-tcp-8000-from-your-callers> "
            "--no-private-dns-enabled"
        )
    }
    assert (
        connection["endpoint"] == "https://claims-notes-pool.dev.ai-infra-planner.internal:8000/v1"
    )
    assert connection["api_key_secret_arn"].endswith(":claims-notes-pool-api-key")
    assert connection["endpoint_service_id"] == "claims-notes-pool-service-id"
    assert "secretString" not in json.dumps(connected_run.outputs)
    assert connected_run.outputs["pools"]["claims-triage-pool"]["account_endpoint_commands"] == {}


def test_each_consumer_vpc_endpoint_waits_for_this_accounts_permission(
    example_run: OfflineRun, connected_run: OfflineRun
) -> None:
    """An endpoint service is open to no one until a principal is allowed ("By default, your
    endpoint service is not available to service consumers. You must add permissions that
    allow specific AWS principals to create an interface VPC endpoint", AWS PrivateLink guide,
    modify-endpoint-service.html): every interface endpoint the stack makes to a pool's service
    in a consumer VPC waits for the permission of this account on that very service."""
    checked = []
    for run in (example_run, connected_run):
        for endpoint in of_type(run, "aws:ec2/vpcEndpoint:VpcEndpoint"):
            services = referenced(run, endpoint, "serviceName")
            if not services or services[0].type != SERVICE:
                continue  # an AWS service's endpoint (Bedrock's, the pools' own)
            [permission] = [
                a for a in of_type(run, ALLOWED)
                if referenced(run, a, "vpcEndpointServiceId") == services
                and a.inputs["principalArn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
            ]  # fmt: skip
            assert permission.urn in endpoint.depends_on, endpoint.name
            checked.append(endpoint.name)
    # The example's two pools called from a VPC of this account each, CONNECTED's two from one.
    assert sorted(checked) == [
        "claims-notes-pool-vpc-0a1b2c3d4e5f60718",
        "claims-triage-pool-vpc-0a1b2c3d4e5f60718",
        "contract-review-pool-vpc-0c3d4e5f6a7b80912",
        "patient-notes-pool-vpc-01a2b3c4d5e6f7a8b",
    ]


def test_another_accounts_command_waits_for_its_permission(project: Path) -> None:
    """Another account is handed the command that makes its endpoint once its own permission
    is in place: the command's output is made from that permission's id."""
    import pulumi
    import pulumi_aws as aws

    from stacks.aws.endpoint_service import publish
    from stacks.aws.lookups import Lookups

    def program() -> None:
        lookups = Lookups("us-east-1", ACCOUNT_ID, "aws", "amazonaws.com", [], "ami")
        parent = pulumi.ComponentResource("test:index:Pool", "pool")
        balancer = aws.lb.LoadBalancer("pool-lb", load_balancer_type="network")
        published = publish(
            "pool", "pool", balancer, "pool.dev.ai-infra-planner.internal", lookups,
            consumer_vpcs=[], consumer_accounts=["111122223333"], tags={}, parent=parent,
        )  # fmt: skip
        command = published.account_commands["111122223333"]
        waits = pulumi.Output.from_input(command.resources())
        pulumi.export("waits_for", waits.apply(lambda found: sorted(r._name for r in found)))
        pulumi.export("command", command)

    run = run_program(project, "dev", {}, program=program)
    assert "pool-allow-111122223333" in run.outputs["waits_for"]
    assert "pool-allow-123456789012" not in run.outputs["waits_for"]
    assert run.outputs["command"].startswith("aws ec2 create-vpc-endpoint --region us-east-1 ")


def test_a_consumer_vpc_gets_an_accepted_endpoint_with_a_private_name(
    connected_run: OfflineRun,
) -> None:
    prefix = f"claims-notes-pool-{CONSUMER_VPC}"
    endpoint = component(connected_run, "aws:ec2/vpcEndpoint:VpcEndpoint", prefix)
    assert endpoint.inputs["vpcId"] == CONSUMER_VPC
    assert endpoint.inputs["vpcEndpointType"] == "Interface"
    assert endpoint.inputs["subnetIds"] == SUBNETS
    assert endpoint.inputs["privateDnsEnabled"] is False
    # Its service is the pool's endpoint service, its group the consumer's own.
    service = component(connected_run, SERVICE, "claims-notes-pool-service")
    assert referenced(connected_run, endpoint, "serviceName") == [service]
    assert endpoint.inputs["serviceName"] == (
        "com.amazonaws.vpce.us-east-1.vpce-svc-claims-notes-pool-service"
    )
    [group] = referenced(connected_run, endpoint, "securityGroupIds")
    assert group.type == "aws:ec2/securityGroup:SecurityGroup" and group.name == prefix
    assert group.inputs["vpcId"] == CONSUMER_VPC
    rules = [
        r for r in connected_run.resources
        if r.type.startswith("aws:vpc/securityGroup")
        and referenced(connected_run, r, "securityGroupId") == [group]
    ]  # fmt: skip
    assert [
        (r.type.rsplit(":", 1)[1], r.inputs["ipProtocol"], r.inputs["fromPort"],
         r.inputs["toPort"], r.inputs["cidrIpv4"]) for r in rules
    ] == [("SecurityGroupIngressRule", "tcp", 8000, 8000, "10.20.0.0/16")]  # fmt: skip
    # The stack accepts the connection its own endpoint asks for.
    [accepter] = [
        a for a in of_type(connected_run, ACCEPTER)
        if referenced(connected_run, a, "vpcEndpointId") == [endpoint]
    ]  # fmt: skip
    assert referenced(connected_run, accepter, "vpcEndpointServiceId") == [service]
    # The name the certificate carries resolves, in the consumer VPC only, to the endpoint.
    zone = component(connected_run, "aws:route53/zone:Zone", prefix)
    name = "claims-notes-pool.dev.ai-infra-planner.internal"
    assert zone.inputs["name"] == name and zone.inputs["vpcs"] == [{"vpcId": CONSUMER_VPC}]
    record = component(connected_run, "aws:route53/record:Record", prefix)
    assert (record.inputs["name"], record.inputs["type"]) == (name, "A")
    [alias] = record.inputs["aliases"]
    assert alias["name"] == f"vpce-{prefix}.vpce-svc.us-east-1.vpce.amazonaws.com"
    assert referenced(connected_run, record, "aliases") == [endpoint]
    [certificate] = [
        c for c in of_type(connected_run, "aws:acm/certificate:Certificate")
        if c.name == "claims-notes-pool-serving"
    ]  # fmt: skip
    assert certificate.inputs["domainName"] == name
    # Two pools in one consumer VPC: an endpoint and a zone of its own name each.
    zones = [z for z in of_type(connected_run, "aws:route53/zone:Zone")]
    assert sorted(z.inputs["name"] for z in zones) == [
        "claims-notes-pool.dev.ai-infra-planner.internal",
        "claims-triage-pool.dev.ai-infra-planner.internal",
    ]
    # Still no route, peering or gateway anywhere: PrivateLink only.
    assert not [r for r in connected_run.resources if r.type in OUT_OF_VPC]


def test_a_stack_with_consumer_vpcs_verifies_and_previews(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, CONNECTED)
    capsys.readouterr()
    # The plan tells the other account how to make its endpoint.
    markdown = (project / "plans/dev/plan.md").read_text()
    assert (
        "Consumers of claims-notes-pool in account 111122223333 make their own endpoint" in markdown
    )
    assert "Consumers of claims-triage-pool" not in markdown
    assert "https://<pool>.dev.ai-infra-planner.internal:8000/v1" in markdown
    # Each pool's endpoint and zone in the consumer VPC are priced in the plan.
    assert f"| claims-notes-pool | {CONSUMER_VPC} (2 subnets) | claims-notes | 15.10 USD |" in (
        markdown
    )
    assert f"| claims-triage-pool | {CONSUMER_VPC} (2 subnets) | claims-triage | 15.10 USD |" in (
        markdown
    )
    code = main(["verify"])
    out = capsys.readouterr().out
    # Every consumer naming a VPC or an account has its way in; the one named by its range only
    # (10.70.0.0/16, outside the pool's network) has none, and verify says so and nothing else.
    assert code == 1, out
    assert "verification FAILED: 1 failure(s)" in out
    findings = [line for line in out.splitlines() if "cannot reach" in line]
    assert len(findings) == 1, findings
    assert findings[0].strip().startswith("consumer 10.70.0.0/16 (named by its range only)")
    assert "no endpoint is made for it" in findings[0]
    assert main(["preview"]) == 0
    out = capsys.readouterr().out
    # The consumer endpoints are priced by their zones (one interface each), their private
    # zones by the month; the plan prices the same pieces, so the totals agree.
    rows = [line.split() for line in out.splitlines() if f"-pool-{CONSUMER_VPC} " in line]
    assert sorted(row[1] for row in rows) == ["0.50", "0.50", "14.60", "14.60"]
    [row] = [line for line in out.splitlines() if "consumer connections' resources" in line]
    assert "30.20 USD" in row
    assert "  (the plan's total to the cent, and the stack's budget)" in out.splitlines()


@pytest.mark.parametrize(
    ("token", "name", "change"),
    [
        (
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
            "contract-review-pool-lb-to-nodes",
            {"description": "to the nodes' serving port"},
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            "contract-review-pool-lb",
            {"description": "x" * 256},
        ),
        (LISTENER, "contract-review-pool-serving", {"sslPolicy": "ELBSecurityPolicy-2016-08"}),
        (LISTENER, "contract-review-pool-serving", {"protocol": "TCP"}),
        (
            "aws:lb/loadBalancer:LoadBalancer",
            "contract-review-pool-lb",
            {"loadBalancerType": "application"},
        ),
        (SERVICE, "contract-review-pool-service", {"acceptanceRequired": False}),
        (CA, "contract-review-pool-ca", {"usageMode": "SHORT_LIVED_CERTIFICATE"}),
        (
            "aws:acm/certificate:Certificate",
            "contract-review-pool-serving",
            {"domainName": "x" * 64 + ".dev.ai-infra-planner.internal"},
        ),
    ],
)
def test_each_deploy_time_constraint_catches_its_fault(
    example_run: OfflineRun, token: str, name: str, change: dict[str, Any]
) -> None:
    """The checks fail on the inputs AWS would refuse (or, for the policy, weaken)."""
    [target] = [r for r in example_run.resources if r.type == token and r.name == name]
    broken = dataclasses.replace(target, inputs={**target.inputs, **change})
    run = dataclasses.replace(
        example_run, resources=[broken if r is target else r for r in example_run.resources]
    )
    with pytest.raises(AssertionError):
        assert_deployable(run)


def test_bedrock_endpoint_is_made_in_the_consumers_vpc(vpc_run: OfflineRun) -> None:
    endpoints = [
        r for r in of_type(vpc_run, "aws:ec2/vpcEndpoint:VpcEndpoint")
        if r.inputs["serviceName"].endswith(".bedrock-runtime")
    ]  # fmt: skip
    # One endpoint in the one consumer VPC both Bedrock workloads name; none in a VPC of its own
    # (no caller is a plain CIDR), and nothing for the other account, which makes its own.
    [endpoint] = endpoints
    assert endpoint.inputs["vpcId"] == VPC_A
    assert endpoint.inputs["subnetIds"] == SUBNETS_A
    assert endpoint.inputs["privateDnsEnabled"] is True
    [statement] = json.loads(endpoint.inputs["policy"])["Statement"]
    assert all("claude-haiku-5-5" in arn for arn in statement["Resource"])
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": "123456789012"}}
    assert not of_type(vpc_run, "aws:ec2/vpc:Vpc") or all(
        not r.name.startswith("bedrock-link") for r in of_type(vpc_run, "aws:ec2/vpc:Vpc")
    )
    assert "111122223333" not in json.dumps([r.inputs for r in vpc_run.resources])
    # Its security group is in that VPC and admits HTTPS from the consumer's range only.
    [group] = [
        r for r in of_type(vpc_run, "aws:ec2/securityGroup:SecurityGroup")
        if r.name == f"bedrock-link-{VPC_A}"
    ]  # fmt: skip
    assert group.inputs["vpcId"] == VPC_A
    assert endpoint.inputs["securityGroupIds"] == [f"bedrock-link-{VPC_A}-id"]
    rules = [
        r for r in of_type(vpc_run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == f"bedrock-link-{VPC_A}-id"
    ]  # fmt: skip
    assert [(r.inputs["cidrIpv4"], r.inputs["fromPort"], r.inputs["toPort"]) for r in rules] == [
        ("10.20.0.0/16", 443, 443)
    ]
    # Two zones of one interface endpoint, and no key: there is no network of its own to log.
    assert vpc_run.outputs["component_monthly_cost_usd"]["bedrock-link"] == 14.60


def test_consumer_vpcs_attach_to_the_egress_firewall(vpc_run: OfflineRun) -> None:
    """Centralized egress: the consumer's VPC attaches to a transit gateway whose only way for it
    is the egress VPC, where each zone's firewall endpoint sees both directions."""
    [gateway] = of_type(vpc_run, "aws:ec2transitgateway/transitGateway:TransitGateway")
    assert gateway.inputs["defaultRouteTableAssociation"] == "disable"
    assert gateway.inputs["defaultRouteTablePropagation"] == "disable"
    attachments = {
        r.name: r.inputs
        for r in of_type(vpc_run, "aws:ec2transitgateway/vpcAttachment:VpcAttachment")
    }
    assert attachments["api-egress-tgw-consumer-0"]["vpcId"] == VPC_C
    assert attachments["api-egress-tgw-consumer-0"]["subnetIds"] == SUBNETS_C
    assert attachments["api-egress-tgw-egress"]["applianceModeSupport"] == "enable"
    tgw_routes = {r.name: r.inputs for r in of_type(vpc_run, "aws:ec2transitgateway/route:Route")}
    assert tgw_routes["api-egress-tgw-consumers-default"]["destinationCidrBlock"] == "0.0.0.0/0"
    assert tgw_routes["api-egress-tgw-consumers-default"]["transitGatewayAttachmentId"] == (
        "api-egress-tgw-egress-id"
    )
    assert tgw_routes["api-egress-tgw-consumers-blackhole-0-0"]["blackhole"] is True
    assert tgw_routes["api-egress-tgw-egress-consumer-0-0"]["destinationCidrBlock"] == (
        "10.40.0.0/16"
    )
    routes = {r.name: r.inputs for r in of_type(vpc_run, "aws:ec2/route:Route")}
    # What the stack changes in the consumer's VPC: each named subnet's route table sends its
    # default route to the transit gateway.
    for subnet in SUBNETS_C:
        route = routes[f"api-egress-consumer-0-{subnet}-default"]
        assert route["routeTableId"] == f"rtb-{subnet.removeprefix('subnet-')}"
        assert (route["destinationCidrBlock"], route["transitGatewayId"]) == (
            "0.0.0.0/0", "api-egress-tgw-id"
        )  # fmt: skip
    for zone in ("us-east-1a", "us-east-1b"):
        endpoint = f"vpce-api-egress-firewall-{zone}"
        assert routes[f"api-egress-transit-{zone}-default"]["vpcEndpointId"] == endpoint
        # The way back from the NAT gateway to the consumer passes the firewall again, then the
        # transit gateway.
        assert routes[f"api-egress-public-{zone}-return-2"] == {
            "routeTableId": f"api-egress-public-{zone}-id",
            "destinationCidrBlock": "10.40.0.0/16",
            "vpcEndpointId": endpoint,
        }
        assert routes[f"api-egress-firewall-{zone}-to-consumer-0"]["transitGatewayId"] == (
            "api-egress-tgw-id"
        )
    # Attachments are priced: 2 x 36.50 on top of the example's 665.30.
    assert vpc_run.outputs["component_monthly_cost_usd"]["api-egress"] == 738.30
    assert "aws:ec2/getRouteTable:getRouteTable" in vpc_run.invokes


# EC2 API reference, CreateSecurityGroup (GroupDescription) and IpPermission/IpRange
# (Description): "Constraints: Up to 255 characters in length. Valid characters: a-z, A-Z, 0-9,
# spaces, and ._-:/()#,@[]+=&;{}!$*".
_EC2_DESCRIPTION = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}")


@pytest.mark.parametrize("fixture", ["example_run", "vpc_run"])
def test_security_group_descriptions_are_accepted_by_ec2(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    run: OfflineRun = request.getfixturevalue(fixture)
    checked = 0
    # The API boundaries' groups and rules (the pools' are in stacks/aws/load_balancer.py and
    # endpoint_service.py).
    mine = [
        r for token in ("EgressNetwork", "PrivateLinkNetwork")
        for c in of_type(run, f"ai-infra-planner:index:{token}") for r in descendants(run, c)
    ]  # fmt: skip
    for resource in mine:
        if resource.type.startswith(("aws:ec2/securityGroup", "aws:vpc/securityGroup")):
            description = resource.inputs.get("description")
            if description is not None:
                checked += 1
                assert _EC2_DESCRIPTION.fullmatch(description), (resource.name, description)
    assert checked >= 4


def test_vpc_consumer_policies_pass_parliament(vpc_run: OfflineRun) -> None:
    found = policy_findings(vpc_run)
    unexpected = sorted({(f[0], f[1], f[2]) for f in found if not accepted(f[1], f[2], f[3])})
    assert unexpected == [], unexpected


def test_plan_md_says_what_changes_in_the_consumers_vpcs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_project(project, VPC_CONSUMERS)
    capsys.readouterr()
    text = (project / "plans/dev/plan.md").read_text()
    assert f"What the stack changes in the consumers' VPCs ({VPC_A}, {VPC_C})" in text
    assert "resolves to it for the whole VPC" in text
    assert "a default route to the transit gateway" in text
    assert "may be processed in any of 34 commercial regions" in text
    plan_project(project, MULTI_NODE)  # plain-CIDR callers: the stack changes nothing of theirs
    assert "What the stack changes" not in (project / "plans/dev/plan.md").read_text()


def test_plan_md_names_only_the_consumer_vpc_changes_the_plan_makes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head, rest = VPC_CONSUMERS.split("  - name: support-faq")
    code_review = "  - name: code-review" + rest.split("  - name: code-review")[1]
    line = "What the stack changes in the consumers' VPCs"
    bedrock = "for Bedrock, an interface endpoint with private DNS in the named subnets"
    egress = "for the egress allow-list, a transit gateway attachment in the named subnets"

    def sentence() -> str:
        capsys.readouterr()
        text = (project / "plans/dev/plan.md").read_text()
        [found] = [s for s in text.splitlines() if s.startswith(line)]
        return found

    plan_project(project, head)  # ticket-triage alone: Bedrock through PrivateLink
    found = sentence()
    assert found.startswith(f"{line} ({VPC_A}): {bedrock}")
    assert "egress" not in found and "transit gateway" not in found
    plan_project(project, head.split("  - name:")[0] + code_review)  # an OpenAI API alone
    found = sentence()
    assert found.startswith(f"{line} ({VPC_C}): {egress}")
    assert "Bedrock" not in found and "bedrock" not in found
    plan_project(project, VPC_CONSUMERS)  # both, each naming the VPCs it changes
    found = sentence()
    assert f"for Bedrock ({VPC_A}), an interface endpoint" in found
    assert f"for the egress allow-list ({VPC_C}), a transit gateway attachment" in found
