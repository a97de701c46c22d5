"""The perimeter judgement: every network that serves workloads (a subject), where its network
interfaces' packets can go, and whether each place breaks its perimeter. `technical`: nowhere
but VPC endpoints whose policies are narrower than full access; `private_link`: only the planned
endpoint of its provider (Bedrock's; providers.yaml names each provider's endpoint service);
`contractual`: out only through the firewall's allow-list of the providers' hosts. A passing
network says what blocks each way out. AwsNetworkModel gives these to
planner.verification.verdicts, which matches every workload of the plan with the network that
serves it and its consumers' ways in (planner.verification.ways_in).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from planner import names
from planner.graph.resources import Graph, Resource
from planner.verification.aws_network import EXITS, MODELLED, Network, Reached, Source
from planner.verification.aws_types import (
    EIGW,
    ENDPOINT,
    FIREWALL,
    IGW,
    IGW_ATTACHMENT,
    NAT,
    PEERING,
    SG,
    TGW_ATTACHMENT,
    VGW,
    VPC,
)
from planner.verification.expectations import Expectations
from planner.verification.policies import endpoint_policy_problem, policy_unknown
from planner.verification.registry import Finding, Status, Subject, WorkloadVerdict, unique
from planner.verification.values import article
from planner.verification.ways_in import prove_ways_in

PERIMETER_TAG = names.TAG_PERIMETER


@dataclass(frozen=True)
class AwsNetworkModel:
    """The AWS target's network model for verify (planner.verification.verdicts composes the
    models of every target): its networks are the graph's VPCs that serve workloads, a
    PrivateLink workload whose callers name their VPC is served by the endpoint the stack makes
    there, and a consumer's way in is proven over the AWS network (ways_in.py)."""

    network: Network
    kind: str = "aws"

    def subjects(self, expect: Expectations) -> list[Subject]:
        graph = self.network.graph
        return [_check_subject(self.network, vpc, expect) for vpc in _subject_vpcs(graph, expect)]

    def served_elsewhere(
        self, subjects: list[Subject], workload: str, expect: Expectations
    ) -> Subject | None:
        """The subject of the PrivateLink endpoint in the workload's consumer VPC, if the stack
        makes one (added to `subjects` the first time a workload names it)."""
        endpoint = _consumer_endpoint(self.network.graph, workload, expect)
        if endpoint is None:
            return None
        served = [s for s in subjects if s.name == f"endpoint {endpoint.name}"]
        if served:
            return served[0]
        provider = expect.workload_provider[workload]
        unknown = policy_unknown(endpoint)
        subject = Subject(
            "endpoint",
            f"endpoint {endpoint.name}",
            "private_link",
            [],
            blocks=[
                f"{endpoint.label} sits in the consumer VPC "
                f"{endpoint.inputs.get('vpcId')}: its callers reach "
                f"{expect.links[provider].short_name} through it"
                + ("" if unknown else ", its policy admits only the planned models")
            ],
            provider=provider,
            unknowns=[
                Finding.unknown(
                    "perimeter",
                    endpoint.label,
                    "its policy is known only after `pulumi up`: that it admits only the "
                    "planned models is not proven",
                )
            ]
            if unknown
            else [],
        )
        subjects.append(subject)
        return subject

    def prove_ways_in(
        self, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
    ) -> None:
        prove_ways_in(self.network, expect, verdict, subjects)


def _consumer_endpoint(graph: Graph, workload: str, expect: Expectations) -> Resource | None:
    """A PrivateLink workload whose callers name their VPC is served by the planned endpoint the
    stack makes there (its policy narrow), not by a network of the stack."""
    provider = expect.workload_provider.get(workload)
    service = expect.link_service(provider)
    if provider not in expect.linked or service is None:
        return None
    for endpoint in graph.of_type(ENDPOINT):
        vpc = endpoint.inputs.get("vpcId")
        if (
            vpc in expect.consumer_vpcs.get(workload, [])
            and str(endpoint.inputs.get("serviceName", "")).endswith(f".{service}")
            and endpoint_policy_problem(endpoint, expect) is None
        ):  # an unknown policy serves too: the endpoint-policies rule reports it UNKNOWN
            return endpoint
    return None


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
            provider=provider,
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
        sure: set[str] | None = None  # the ways out with unknown values read as no address
        for place in reached:
            problem = _judge(network, subject, place, expect)
            if problem and problem not in said:  # one witness per way out is enough
                said.add(problem)
                if sure is None:
                    known = network.as_known
                    sure = {
                        judged
                        for other in known.reach(source)[0]
                        if (judged := _judge(known, subject, other, expect))
                    }
                if problem not in sure:
                    # Only a value known only after `pulumi up` (a route's destination, a
                    # rule's address), read as every address, opens it: not proven shut.
                    subject.unknowns.append(
                        Finding(
                            "perimeter",
                            source.label,
                            f"{problem}, if a value known only after `pulumi up` (a route's "
                            "destination, a rule's address) lets it: whether it is shut is not "
                            "proven",
                            tuple(hop.text() for hop in place.path),
                            Status.UNKNOWN,
                        )
                    )
                    continue
                subject.failures.append(
                    Finding(
                        "perimeter", source.label, problem, tuple(hop.text() for hop in place.path)
                    )
                )
            elif (
                problem is None
                and place.kind == "endpoint"
                and place.target is not None
                and policy_unknown(place.target)
            ):
                subject.unknowns.append(
                    Finding.unknown(
                        "perimeter",
                        source.label,
                        f"reaches {place.target.label}, whose policy is known only after "
                        "`pulumi up`: whether it is narrow is not proven",
                    )
                )
        if subject.passed:
            subject.blocks.extend(_blockers(network, vpc, source, reached, blocked))
    subject.blocks = sorted(set(subject.blocks))
    subject.failures = unique(subject.failures)
    subject.unknowns = unique(subject.unknowns)
    return subject


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
        if perimeter == "private_link" and not _own_endpoint(subject, service, expect):
            own = expect.links.get(subject.provider or "")
            return (
                f"reaches {place.target.label} ({service}): a private_link network may reach "
                f"only the planned {own.short_name + ' ' if own else 'PrivateLink provider '}"
                "endpoint"
            )
    return None


def _own_endpoint(subject: Subject, service: str, expect: Expectations) -> bool:
    """The endpoint service is the subject's provider's (any PrivateLink provider's, for a
    network the plan does not tie to one)."""
    if subject.provider is not None:
        own = expect.link_service(subject.provider)
        return own is not None and service.endswith(f".{own}")
    return expect.link_of(service) is not None


def _a(kind: str) -> str:
    if kind == "unmodelled":
        return "a target the verifier does not model"
    return article(kind)


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
        if (
            place.kind == "endpoint"
            and place.target is not None
            and not policy_unknown(place.target)
        ):
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
            EIGW,
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
