"""The Pulumi components, run for real through __main__.py under Pulumi's mocks."""

from __future__ import annotations

import base64
import importlib
import inspect
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from planner.cli import main
from planner.model import read_plan
from planner.offline import OfflineRun, Registered, run_program
from tests.conftest import EXAMPLE, workload_yaml

CANARY = "sk-canary-7f3e9a1b-do-not-leak"

MULTI_NODE = workload_yaml(
    name="deep-notes",
    task="chat",
    data="regulated",
    model="deepseek-v3.2",
    monthly_tokens="{input: 30B, output: 6B}",
    consumers='["10.60.0.0/16"]',
    capacity_reservation_id="cr-0123456789abcdef0",
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
    config["ai-infra-planner:google_api_key"] = CANARY
    config["ai-infra-planner:budget_email"] = "finops@example.com"
    capsys.readouterr()
    return run_program(project, "dev", config, secret_keys=["ai-infra-planner:google_api_key"])


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
        for interface in template.inputs["networkInterfaces"]:
            assert interface["associatePublicIpAddress"] == "false"
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
    return base64.b64decode(template.inputs["userData"]).decode()


def test_user_data_carries_the_parallelism(example_run: OfflineRun) -> None:
    [template] = [
        r for r in of_type(example_run, "aws:ec2/launchTemplate:LaunchTemplate")
        if r.name == "contract-review-pool-nodes"
    ]  # fmt: skip
    text = user_data(template)
    assert text.startswith("#cloud-config\n")
    assert "TENSOR_PARALLEL=8" in text and "PIPELINE_PARALLEL=1" in text
    assert "--tensor-parallel-size $TENSOR_PARALLEL" in text
    assert "--quantization fp8" in text
    assert "WEIGHTS_URI=s3://contract-review-pool-weights/weights/deepseek-ai/DeepSeek-V3.2" in text
    assert "dkr.ecr.us-east-1.amazonaws.com/contract-review-pool-serving:v0.11.0" in text
    assert "ray start" not in text
    assert "--log-driver awslogs" in text and "LOG_GROUP=contract-review-pool-serving" in text


def test_multi_node_pool_runs_ray_over_efa(multi_node_run: OfflineRun) -> None:
    [template] = of_type(multi_node_run, "aws:ec2/launchTemplate:LaunchTemplate")
    text = user_data(template)
    assert "TENSOR_PARALLEL=8" in text and "PIPELINE_PARALLEL=2" in text
    assert "ray start --head" in text and "--distributed-executor-backend ray" in text
    interfaces = template.inputs["networkInterfaces"]
    assert len(interfaces) == 32 and {i["interfaceType"] for i in interfaces} == {"efa"}
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
    assert conditions["DenyOutsideTheVpcEndpoint"] == {
        "StringNotEquals": {"aws:SourceVpce": "contract-review-pool-net-s3-id"}
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
    _, module, name = token.split(":")
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
    # Two nodes, and the pool's staff and network pieces (4,271.78 USD).
    assert pool_key.inputs["tags"]["ai-infra-planner:monthly-usd"] == "84630.18"
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
        ("aws:secretsmanager/secretVersion:SecretVersion", "google-access-api-key")
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
    assert of_type(run, "aws:secretsmanager/secret:Secret")
    assert not of_type(run, "aws:secretsmanager/secretVersion:SecretVersion")
    assert any("pulumi config set --secret google_api_key" in line for line in run.logs)


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
                assert actions == ["ecr:GetAuthorizationToken"], resource.name
    policy = component(example_run, "aws:iam/policy:Policy", "code-review-api-access")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert statements[0]["Resource"] == (
        "arn:aws:secretsmanager:us-east-1:123456789012:google-access-api-key"
    )
    bedrock = component(example_run, "aws:iam/policy:Policy", "ticket-triage-api-access")
    [statement] = json.loads(bedrock.inputs["policy"])["Statement"]
    assert all("llama4-scout" in arn for arn in statement["Resource"])


def test_contractual_egress_goes_through_the_firewall(example_run: OfflineRun) -> None:
    [rule_group] = of_type(example_run, "aws:networkfirewall/ruleGroup:RuleGroup")
    source = rule_group.inputs["ruleGroup"]["rulesSource"]["rulesSourceList"]
    assert source["generatedRulesType"] == "ALLOWLIST"
    assert source["targets"] == ["generativelanguage.googleapis.com"]
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
    # Llama 4 Scout is served only through its US inference profile: the profile, and the model
    # in each of the profile's destination regions (planner/data/api_models.yaml).
    assert statement["Resource"] == [
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "us.meta.llama4-scout-17b-instruct-v1:0",
        *(
            f"arn:aws:bedrock:{region}::foundation-model/meta.llama4-scout-17b-instruct-v1:0"
            for region in ("us-east-1", "us-east-2", "us-west-1", "us-west-2")
        ),
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
    # Usage 3,000 + its key's secret and KMS key 1.40 + the plan's egress network 665.30 (its
    # only user).
    assert costs["google-access"] == 3666.70
    # Per zone (2): NAT 32.85 + address 3.65 + firewall endpoint 288.35; the Secrets Manager
    # endpoint in 2 zones 14.60; key 1.00; the transit gateway attachments of the egress VPC and
    # of code-review's VPC, 36.50 each (not priced by the plan yet: tests/helpers.py).
    assert costs["api-egress"] == 738.30
    # The Bedrock endpoint in the consumers' VPC, 2 subnets; no log key without an own network.
    assert costs["bedrock-link"] == 14.60
    # Usage 120.80 + its share (by usage, with ticket-triage) of the plan's 15.60 Bedrock pieces.
    assert example_run.outputs["workload_monthly_cost_usd"]["support-faq"] == 124.62


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
        # The route table of each consumer subnet the egress path attaches (stacks/egress.py).
        "aws:ec2/getRouteTable:getRouteTable",
    }


def test_component_type_tokens(example_run: OfflineRun) -> None:
    kinds: Callable[[str], int] = lambda token: len(of_type(example_run, token))  # noqa: E731
    assert kinds("ai-infra-planner:index:InferencePool") == 2
    assert kinds("ai-infra-planner:index:ApiAccess") == 2
    assert kinds("ai-infra-planner:index:EgressNetwork") == 1
    assert kinds("ai-infra-planner:index:PrivateLinkNetwork") == 1
    assert kinds("ai-infra-planner:index:CostBudget") == 1


def test_shared_pools_deploy(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The optimal plan of the example shares two pools; each admits all its workloads' callers."""
    config = plan_project(project, None, strategy="optimal")
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    assert plan.strategy == "optimal"
    # Ties go to the smaller model: the small-tier workloads join the Llama 4 Scout pool.
    assert {tuple(p.workloads) for p in plan.pools} == {
        ("contract-review",),
        ("support-faq", "ticket-triage", "patient-notes"),
    }
    run = run_program(project, "dev", config)
    pools = {r.name for r in of_type(run, "ai-infra-planner:index:InferencePool")}
    assert pools == {"deepseek-v3-2-p5en-48xlarge", "llama-4-scout-p5-48xlarge"}
    consumers = {
        r.inputs["cidrIpv4"]
        for r in of_type(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith("llama-4-scout-p5-48xlarge-nodes-consumer-")
    }
    assert consumers == {"10.20.0.0/16", "10.21.0.0/16", "10.50.0.0/16"}
    [key] = [r for r in of_type(run, "aws:kms/key:Key") if r.name.startswith("deepseek")]
    assert key.inputs["tags"]["ai-infra-planner:monthly-usd"] == "50477.86"
    # Only Google's API is left, so there is no PrivateLink network.
    assert not of_type(run, "ai-infra-planner:index:PrivateLinkNetwork")
    assert run.outputs["monthly_cost_usd"] == plan.totals.monthly_cost_usd == 138774.74


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
    assert all("llama4-scout" in arn for arn in statement["Resource"])
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
    # The API boundaries' groups and rules (the pools' are stacks/pool.py's).
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
    assert "may be processed in us-east-1, us-east-2, us-west-1, us-west-2" in text
    plan_project(project, MULTI_NODE)  # plain-CIDR callers: the stack changes nothing of theirs
    assert "What the stack changes" not in (project / "plans/dev/plan.md").read_text()
