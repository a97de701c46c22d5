"""How the stack names and places what it makes, whatever the target: the tags that carry the
cost estimate, the DNS names callers use, and the consumers grouped by where they run."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from planner import names
from planner.planfile import Consumer, WorkloadPlan

# The private DNS names callers use: <pool>.<stack>.SERVICE_DOMAIN. `.internal` is the top-level
# domain ICANN reserved for private use (2024), so no public name can ever collide with it.
SERVICE_DOMAIN = "ai-infra-planner.internal"


def cost_tags(
    stack: str, kind: str, name: str, monthly_usd: float, perimeter: str | None = None
) -> dict[str, str]:
    """Tags naming the stack, the workload or pool, its share of the monthly estimate, and
    the perimeter its network is built for (what `planner verify` holds it to)."""
    tags = {
        names.TAG_STACK: stack,
        names.tag(kind): name,
        names.TAG_MONTHLY_USD: f"{monthly_usd:.2f}",
    }
    if perimeter is not None:
        tags[names.TAG_PERIMETER] = perimeter
    return tags


@dataclass
class WorkloadCost:
    """A workload a component serves: its monthly cost, and the tags its own resources carry."""

    name: str
    monthly_cost_usd: float
    tags: dict[str, str]


def dns_label(name: str) -> str:
    """A DNS label (at most 63 characters, RFC 1035) for a name: the name itself when it fits,
    else its start and a hash of the whole (pool names are workload names plus "-pool")."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "x"
    if len(label) <= 63:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{label[:54].rstrip('-')}-{digest}"


def service_dns_name(pool: str, stack: str) -> str:
    """The name callers use for a pool: one per pool and stack, so that two stacks of the same
    workloads file can both connect one consumer VPC (a VPC takes one zone of a name)."""
    return f"{dns_label(pool)}.{dns_label(stack)}.{SERVICE_DOMAIN}"


# ACM refuses a certificate whose domain name, its subject's common name, is longer than 64
# characters, and takes longer names as subject alternative names (ACM API Reference,
# RequestCertificate, DomainName: "In compliance with RFC 5280, the length of the domain name
# (technically, the Common Name) that you provide cannot exceed 64 octets (characters),
# including periods. To add a longer domain name, specify it in the Subject Alternative Name
# field, which supports names up to 253 octets in length"; planner/data/aws_limits.yaml).
COMMON_NAME_LIMIT = 64


def certificate_names(dns_name: str) -> tuple[str, list[str]]:
    """The domain name (the subject's common name) and the subject alternative names of the
    certificate for a name callers use: the name alone when ACM takes it as the common name;
    else a short name under SERVICE_DOMAIN (the name's first label's start and a hash of the
    whole name: one per pool and stack), with the name itself as a subject alternative name.
    A client checks the name it calls against the subject alternative names and, when there
    are any, never against the common name (RFC 6125 section 6.4.4; RFC 9525 drops the
    common name altogether), so callers keep calling the name itself."""
    if len(dns_name) <= COMMON_NAME_LIMIT:
        return dns_name, []
    digest = hashlib.sha256(dns_name.encode()).hexdigest()[:8]
    room = COMMON_NAME_LIMIT - len(f"-{digest}.{SERVICE_DOMAIN}")
    head = dns_name.split(".", 1)[0][:room].rstrip("-")
    return f"{head}-{digest}.{SERVICE_DOMAIN}", [dns_name]


@dataclass(frozen=True)
class ConsumerVpc:
    """Callers in a VPC of this account: the stack makes their interface endpoint there."""

    vpc: str
    subnets: tuple[str, ...]
    cidrs: tuple[str, ...]
    # The workloads whose consumers name it (for errors about it).
    workloads: tuple[str, ...] = ()


def consumer_places(
    workloads: Iterable[WorkloadPlan],
) -> tuple[list[ConsumerVpc], list[str]]:
    """The consumer VPCs of this account (one endpoint each, admitting every CIDR that names
    it) and the other accounts, from a pool's workloads' consumers."""
    workloads = list(workloads)
    vpcs: dict[str, tuple[set[str], set[str]]] = {}
    accounts: set[str] = set()
    for consumer in (c for w in workloads for c in w.consumers):
        if consumer.vpc is not None and consumer.cidr is not None:
            subnets, cidrs = vpcs.setdefault(consumer.vpc, (set(), set()))
            subnets.update(consumer.subnets)
            cidrs.add(consumer.cidr)
        elif consumer.account is not None:
            accounts.add(consumer.account)
    naming = workloads_by_vpc(workloads)
    return [
        ConsumerVpc(vpc, tuple(sorted(subnets)), tuple(sorted(cidrs)), naming[vpc])
        for vpc, (subnets, cidrs) in sorted(vpcs.items())
    ], sorted(accounts)


def workloads_by_vpc(workloads: Iterable[WorkloadPlan]) -> dict[str, tuple[str, ...]]:
    """VPC id -> the names of the workloads whose consumers name it, in the workloads' order."""
    found: dict[str, list[str]] = {}
    for workload in workloads:
        for vpc in dict.fromkeys(c.vpc for c in workload.consumers if c.vpc is not None):
            found.setdefault(vpc, []).append(workload.name)
    return {vpc: tuple(named) for vpc, named in found.items()}


def consumer_vpcs(consumers: Iterable[Consumer]) -> dict[str, tuple[list[str], list[str]]]:
    """The consumers' VPCs in this account: VPC id -> (their CIDRs, their subnets), in order."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for consumer in consumers:
        if consumer.vpc is None:
            continue
        cidrs, subnets = found.setdefault(consumer.vpc, ([], []))
        cidrs.extend(c for c in [consumer.cidr] if c is not None and c not in cidrs)
        subnets.extend(s for s in consumer.subnets if s not in subnets)
    return found


def consumers_of(workloads: Iterable[WorkloadPlan]) -> list[Consumer]:
    """The workloads' consumers, each once, in a stable order."""
    found = {c for w in workloads for c in w.consumers}
    return sorted(
        found,
        key=lambda c: (
            c.cidr or "",
            c.vpc or "",
            c.subnets,
            c.account or "",
            c.namespace or "",
            c.site or "",
        ),
    )
