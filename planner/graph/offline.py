"""Run the real Pulumi program offline, under Pulumi's mocks, and collect what it registers.

The Pulumi CLI and its provider plugins are not needed: `pulumi.runtime.set_mocks` answers every
resource registration and invoke in-process. This is how the tests exercise `__main__.py`, and it
is what `planner preview` is built on. It is not `pulumi preview`: no provider checks the inputs,
and outputs that only AWS would know (ids, ARNs) are made up from the resource names.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import os
import runpy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from planner import names
from planner.errors import PlannerError
from planner.planfile import Plan

PROJECT = names.PROJECT
ACCOUNT_ID = "123456789012"
AMI_ID = "ami-0123456789abcdef0"


@dataclass(frozen=True)
class Registered:
    """One resource as the engine saw its registration."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    # Every resource it waits for: its property dependencies and its explicit depends_on.
    depends_on: tuple[str, ...] = ()
    # Its ResourceOptions replace_on_changes and delete_before_replace.
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    # Its ResourceOptions deleted_with (the URN of the resource it goes with) and
    # custom_timeouts's delete ("" when unset).
    deleted_with: str = ""
    delete_timeout: str = ""


@dataclass
class OfflineRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    stack_urn: str = ""


InvokeAnswer = Callable[[str, dict[str, Any]], dict[str, Any]]


# The zones the offline region has (getAvailabilityZones below), by suffix: six, as us-east-1
# has ("Regions and Zones", EC2 User Guide), so a consumer VPC may name a subnet in each of up
# to six zones offline as in AWS (an outside review: with three, a fourth subnet wrapped into
# a zone of the first and the stack refused a file AWS takes). Their AZ IDs, in order.
ZONE_SUFFIXES = "abcdef"
ZONE_IDS = (1, 2, 4, 6, 3, 5)


def standard_invokes(
    region: str,
    offerings: Mapping[str, Sequence[str]] | None = None,
    subnets: Mapping[str, str] | None = None,
) -> InvokeAnswer:
    """Answers for the only data sources the program reads, as AWS would give them.
    `offerings`: instance type -> the zones that offer it (default: every zone offers every
    type). `subnets`: a consumer subnet id -> its zone's suffix (default: the first or second
    zone, zones every pool of the default offerings has, by the parity of the id's last hex
    digit, so that subnets numbered in turn, as a VPC's subnets for one endpoint are in the
    examples and tests, are in different zones, as AWS requires of them)."""

    def answer(token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:ec2/getSubnet:getSubnet":
            subnet = str(args.get("id"))
            last = subnet[-1:].lower()
            turn = int(last, 16) if last and last in "0123456789abcdef" else 0
            suffix = (subnets or {}).get(subnet, ZONE_SUFFIXES[turn % 2])
            return {"id": subnet, "availabilityZone": f"{region}{suffix}"}
        if token == "aws:ec2/getVpc:getVpc":
            # A consumer VPC of this account, resolving private names (both DNS attributes on,
            # as a VPC made in the console is; stacks/aws/lookups.py private_dns_on).
            vpc = str(args.get("id"))
            return {"id": vpc, "enableDnsSupport": True, "enableDnsHostnames": True}
        if token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            return _offerings(region, args, offerings)
        if token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                "userId": "AIDAOFFLINE",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{region}{suffix}" for suffix in ZONE_SUFFIXES]
            return {"names": zones, "zoneIds": [f"use1-az{i}" for i in ZONE_IDS], "id": region}
        if token == "aws:ec2/getRouteTable:getRouteTable":
            # A consumer subnet's route table, named after the subnet.
            table = f"rtb-{str(args.get('subnetId')).removeprefix('subnet-')}"
            return {"routeTableId": table, "id": table, "subnetId": args.get("subnetId")}
        if token == "aws:iam/getSessionContext:getSessionContext":
            # An IAM user's ARN passes through as its own issuer.
            arn = args.get("arn")
            return {"arn": arn, "issuerArn": arn, "issuerId": "AIDAOFFLINE", "id": arn}
        if token == "aws:ssm/getParameter:getParameter":
            return {"name": args.get("name"), "value": AMI_ID, "type": "String", "id": "ami"}
        raise KeyError(f"the offline run has no answer for the data source {token}")

    return answer


def plan_subnet_zones(plan: Plan) -> dict[str, str]:
    """For a plan's offline run (`planner preview`, `verify`, `diff`): each consumer VPC's
    subnets in zones of their own, in the order the file gives them (a, b, c, ...), since the
    stack refuses two subnets of one zone for a VPC's endpoint or attachment, and made-up zones
    must not make it refuse a file that may be right. (The file names a VPC's subnets alike
    wherever it names the VPC; the offline region has six zones, as many as AWS's most.)"""
    found: dict[str, str] = {}
    for workload in plan.workloads:
        for consumer in workload.consumers:
            for index, subnet in enumerate(consumer.subnets):
                found.setdefault(subnet, ZONE_SUFFIXES[index % len(ZONE_SUFFIXES)])
    return found


def _offerings(
    region: str, args: dict[str, Any], offerings: Mapping[str, Sequence[str]] | None
) -> dict[str, Any]:
    """DescribeInstanceTypeOfferings by availability zone, for the instance types the filter
    names: one entry per (type, zone) offered, as the data source lists them."""
    if args.get("locationType") != "availability-zone":
        raise KeyError("the offline run answers instance type offerings by availability zone")
    wanted = [
        value
        for entry in args.get("filters") or []
        if entry.get("name") == "instance-type"
        for value in entry.get("values") or []
    ]
    every = [f"{region}{suffix}" for suffix in ZONE_SUFFIXES]
    pairs = [
        (kind, zone)
        for kind in wanted
        for zone in (every if offerings is None else offerings.get(kind, ()))
    ]
    return {
        "instanceTypes": [kind for kind, _ in pairs],
        "locations": [zone for _, zone in pairs],
        "locationTypes": ["availability-zone"] * len(pairs),
        "locationType": "availability-zone",
        "id": region,
    }


def _pem(label: str, name: str) -> str:
    """A PEM block standing for one pulumi_tls output (RFC 7468 framing, made-up content)."""
    body = base64.b64encode(f"offline {label.lower()} of {name}".encode()).decode()
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def tls_outputs(token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs pulumi_tls computes (keys, requests, certificates), made up from the name:
    PEM-framed, so a private key handed on in plain text is seen by the `secrets` rule as a
    real one would be."""
    if token == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": _pem("PRIVATE KEY", name),
            "publicKeyPem": _pem("PUBLIC KEY", name),
            "id": f"{name}-id",
        }
    if token == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": _pem("CERTIFICATE REQUEST", name)}
    if token in (
        "tls:index/selfSignedCert:SelfSignedCert",
        "tls:index/locallySignedCert:LocallySignedCert",
    ):
        return {
            "certPem": _pem("CERTIFICATE", name),
            "validityStartTime": "2026-12-01T00:00:00Z",
            "validityEndTime": "2027-12-01T00:00:00Z",
            "readyForRenewal": False,
        }
    return {}


def computed_outputs(token: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """Outputs only AWS would know (ARNs, DNS names, endpoint ids), made up from the names, so
    that what depends on them can be checked offline."""
    module = token.split(":")[1].split("/")[0]
    service = {"cloudwatch": "logs", "lb": "elasticloadbalancing", "vpc": "ec2"}.get(module, module)
    # Auto-naming gives "<name>-<random suffix>"; offline, the name alone.
    state: dict[str, Any] = {
        "arn": f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}",
        "name": name,
    }
    if token == "aws:s3/bucket:Bucket":
        state.update(bucket=name, arn=f"arn:aws:s3:::{name}")
    elif token == "aws:ecr/repository:Repository":
        state["repositoryUrl"] = f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}"
    elif token == "aws:lb/loadBalancer:LoadBalancer":
        state["dnsName"] = f"{name}.elb.{region}.amazonaws.com"
    elif token == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Gateway":
        state["prefixListId"] = "pl-63a5400a"
    elif token == "aws:ec2/vpcEndpoint:VpcEndpoint":
        dns = f"vpce-{name}.vpce-svc.{region}.vpce.amazonaws.com"
        state["dnsEntries"] = [{"dnsName": dns, "hostedZoneId": "Z7HUB22UULQXV"}]
    elif token == "aws:ec2/vpcEndpointService:VpcEndpointService":
        state["serviceName"] = f"com.amazonaws.vpce.{region}.vpce-svc-{name}"
    elif token == "aws:networkfirewall/firewall:Firewall":
        # One endpoint per subnet mapping (per availability zone), named after its subnet.
        state["firewallStatuses"] = [
            {
                "syncStates": [
                    {
                        "attachments": [
                            {
                                "subnetId": mapping.get("subnetId"),
                                "endpointId": f"vpce-{str(mapping.get('subnetId'))[:-3]}",
                            }
                        ]
                    }
                    for mapping in inputs.get("subnetMappings") or []
                ]
            }
        ]
    elif token == "aws:kms/key:Key":
        state["keyId"] = f"{name}-key-id"
    elif token == "aws:iam/serviceLinkedRole:ServiceLinkedRole":
        # IAM's path for service-linked roles: aws-service-role/<service>/<role name>.
        service = inputs.get("awsServiceName", "")
        role = {"autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling"}.get(service, name)
        if inputs.get("customSuffix"):
            role = f"{role}_{inputs['customSuffix']}"
        state.update(
            name=role, arn=f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/{service}/{role}"
        )
    return state


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, run: OfflineRun, answer: InvokeAnswer, region: str | None) -> None:
        self.run = run
        self.answer = answer
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        # Outputs echo the inputs, as in Pulumi's own unit-testing examples; with a region,
        # also the outputs AWS would compute.
        state = dict(args.inputs)
        if args.typ.startswith("tls:"):
            state = {**tls_outputs(args.typ, args.name, state), **state}
        if self.region is not None:
            state = {**computed_outputs(args.typ, args.name, state, self.region), **state}
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        self.run.invokes.append(args.token)
        return self.answer(args.token, dict(args.args)), []


class _RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping what `pulumi preview` would show of each registration."""

    def __init__(self, mocks_: _Mocks, run: OfflineRun) -> None:
        super().__init__(mocks_)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method, by its name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            self.run.stack_urn = response.urn
            return response
        self.run.resources.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                dependencies={
                    key: sorted(value.urns) for key, value in request.propertyDependencies.items()
                },
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                depends_on=tuple(sorted(request.dependencies)),
                replace_on_changes=tuple(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                deleted_with=request.deletedWith,
                delete_timeout=request.customTimeouts.delete,
            )
        )
        return response


class _LogList(logging.Handler):
    def __init__(self, run: OfflineRun) -> None:
        super().__init__()
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.logs.append(record.getMessage())


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_program(
    project_dir: Path,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str] | None = None,
    answer_invoke: InvokeAnswer | None = None,
    program: Callable[[], None] | None = None,
    computed: bool = True,
) -> OfflineRun:
    """Run project_dir/__main__.py (or `program`) under mocks as the CLI would: cwd is the
    project directory, config comes from the stack, data sources are answered offline.
    computed=False gives plain mocks whose outputs only echo the inputs."""
    if program is None and not (project_dir / "__main__.py").is_file():
        # A Pulumi.yaml without this repository's program beside it (another project, or a
        # copy of the file alone): say so instead of runpy's FileNotFoundError traceback.
        raise PlannerError.single(
            str(project_dir / "__main__.py"),
            "",
            "no such file: the Pulumi program (this repository's __main__.py) must be beside "
            "Pulumi.yaml; run the planner in the ai-infra-planner project",
        )
    run = OfflineRun()
    region = config.get("aws:region", "us-east-1")
    answer = answer_invoke or standard_invokes(region)

    def body() -> None:
        mocks_ = _Mocks(run, answer, region if computed else None)
        logger = logging.getLogger(f"ai-infra-planner.graph.offline.{id(run)}")
        logger.propagate = False
        logger.addHandler(_LogList(run))
        pulumi.runtime.set_mocks(
            mocks_,
            project=PROJECT,
            stack=stack,
            preview=True,
            logger=logger,
            monitor=_RecordingMonitor(mocks_, run),
        )
        pulumi.runtime.set_all_config(dict(config), secret_keys or [])
        root = pulumi.runtime.get_root_resource()

        def main() -> None:
            if program is not None:
                program()
            else:
                runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

        with _working_directory(project_dir):
            _sync_await(run_pulumi_func(main))
        for name, value in getattr(root, "outputs", {}).items():
            run.outputs[name] = _sync_await(pulumi.Output.from_input(value).future())

    # A fresh context: the root stack resource and settings are context variables, so each run
    # gets its own stack instead of adding to the previous run's.
    contextvars.Context().run(body)
    return run
