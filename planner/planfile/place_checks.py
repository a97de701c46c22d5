"""Where a plan puts things, checked: its region and stack name, its consumers' ranges, each
workload's and pool's perimeter, and the network ranges it allocates (none overlapping)."""

from __future__ import annotations

import bisect
import ipaddress
import re

from planner.catalog import Catalog, PrivateConsumers
from planner.catalog.vocabulary import DataClass, Perimeter
from planner.errors import Problem
from planner.inputs.sites import SITE_NAME
from planner.inputs.workloads import NETWORK_PREFIXES
from planner.planfile.plan import API_NETWORK_FOR, Plan, is_stack_name
from planner.planfile.workload import Consumer, WorkloadPlan

# A namespace's name, as the loader checks it (an RFC 1123 DNS label, like a site's name).
SITE_NAME_PATTERN = re.compile(SITE_NAME)


def again(field: str, message: str) -> Problem:
    return Problem(field, f"{message}: plan again with `planner plan`")


def place_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """The region is one AWS has (and the catalog prices, or price_region stands in), and the
    stack is a name, not a path: both name files and resources the stack makes."""
    from planner.inputs.messages import did_you_mean

    found = []
    regions = catalog.regions
    if plan.region not in regions.aws.regions:
        found.append(
            again(
                "region",
                f"{plan.region!r} is not an AWS region"
                + did_you_mean(plan.region, regions.aws.regions),
            )
        )
    elif plan.region not in regions.priced.regions:
        stand_in = plan.assumptions.get("price_region")
        if stand_in not in regions.priced.regions:
            found.append(
                again(
                    "assumptions.price_region",
                    f"the catalog has no prices for {plan.region}, and price_region names none "
                    f"it has ({', '.join(regions.priced.regions)}), found {stand_in!r}",
                )
            )
    if not is_stack_name(plan.stack):
        found.append(
            again("stack", f"{plan.stack!r} is not a stack name (letters, digits, '-', '_', '.')")
        )
    return found


def consumer_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each consumer is a CIDR block (for the data classes that need it, a private one), or a
    namespace of a Kubernetes site of the plan, whose workload a pool on that site serves."""
    private = catalog.private_consumers
    found = []
    sites = {s.name for s in plan.sites}
    pool_site = {p.name: p.site for p in plan.pools}
    for index, w in enumerate(plan.workloads):
        for number, consumer in enumerate(w.consumers):
            if consumer.cidr is None or consumer.namespace is not None:
                found.extend(_namespace_problems(index, number, w, consumer, sites, pool_site))
                continue
            found.extend(_cluster_range_problems(plan, index, number, w, consumer, pool_site))
            at = f"workloads[{index}].consumers[{number}].cidr"
            try:
                network = ipaddress.ip_network(consumer.cidr, strict=True)
            except ValueError as exc:
                found.append(again(at, f"{consumer.cidr!r} is not a CIDR block: {exc}"))
                continue
            if network.prefixlen == 0:
                found.append(again(at, f"{consumer.cidr} admits every address"))
            elif w.data in private.data_classes and not private.is_private(consumer.cidr):
                found.append(
                    again(
                        at,
                        f"{consumer.cidr} is not a private range, and {w.data} data may only "
                        f"be called from private ones ({', '.join(private.ranges)})",
                    )
                )
    return found


def _cluster_range_problems(
    plan: Plan,
    index: int,
    number: int,
    w: WorkloadPlan,
    consumer: Consumer,
    pool_site: dict[str, str],
) -> list[Problem]:
    """A range consumer of a workload a cluster pool serves, as planning admits one
    (planning/decide.py): no VPC or account (a cluster site makes no PrivateLink endpoint for
    them), and the site's internal load balancer its callers come in through."""
    site = next((s for s in plan.sites if w.pool and s.name == pool_site.get(w.pool)), None)
    if site is None:
        return []
    at = f"workloads[{index}].consumers[{number}]"
    found = [
        again(
            f"{at}.{field}",
            f"{value}, but the workload is served by pool {w.pool} on cluster site "
            f"{site.name}, which makes no PrivateLink endpoint for a VPC or an account",
        )
        for field, value in (("vpc", consumer.vpc), ("account", consumer.account))
        if value is not None
    ]
    if site.load_balancer is None:
        number_of_site = plan.sites.index(site)
        found.append(
            again(
                f"sites[{number_of_site}].load_balancer",
                f"missing, but {at} ({consumer.cidr}) calls pool {w.pool} on site {site.name} "
                "from outside the cluster, which only its internal load balancer lets in",
            )
        )
    return found


def _namespace_problems(
    index: int,
    number: int,
    w: WorkloadPlan,
    consumer: Consumer,
    sites: set[str],
    pool_site: dict[str, str],
) -> list[Problem]:
    """A namespace consumer: no range beside it, a Kubernetes site of the plan, and its
    workload served by a pool on that site (its callers are that cluster's pods)."""
    at = f"workloads[{index}].consumers[{number}]"
    if consumer.namespace is None or consumer.cidr is not None:
        return [again(at, "give a cidr or a namespace with its site, exactly one of them")]
    if consumer.vpc is not None or consumer.account is not None or consumer.subnets:
        return [
            again(at, "a namespace's pods run in its site's cluster: no vpc, subnets or account")
        ]
    if not SITE_NAME_PATTERN.match(consumer.namespace):
        return [
            again(
                f"{at}.namespace",
                f"{consumer.namespace!r} is not a namespace name (a DNS label: at most 63 "
                "lowercase alphanumerics and '-', starting and ending with an alphanumeric)",
            )
        ]
    if consumer.site not in sites:
        return [again(f"{at}.site", f"{consumer.site!r} is not a Kubernetes site of the plan")]
    if w.pool is None or pool_site.get(w.pool) != consumer.site:
        where = f"pool {w.pool} on site {pool_site.get(w.pool)}" if w.pool else "an API"
        return [
            again(
                f"workloads[{index}].pool",
                f"its consumers are pods of namespace {consumer.namespace} on site "
                f"{consumer.site}, but it is served by {where}",
            )
        ]
    return []


_RANK = {perimeter: rank for rank, perimeter in enumerate(Perimeter)}  # weakest first


def _public_range(private: PrivateConsumers, cidr: str) -> bool:
    """A valid range outside private address space (a malformed one is reported elsewhere)."""
    try:
        return not private.is_private(cidr)
    except ValueError:
        return False


def perimeter_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each workload's perimeter is at least what its data class requires (the catalog's data
    classes, as planning.context.data_sensitivity decides it) and its placement keeps to it; each
    pool's perimeter is at least that of every workload it holds."""
    from planner.inputs.messages import did_you_mean

    found = []
    needs: dict[str, Perimeter] = {}
    for index, w in enumerate(plan.workloads):
        at = f"workloads[{index}]"
        info = catalog.data_classes.get(DataClass(w.data)) if w.data in set(DataClass) else None
        if info is None:
            classes = [c.value for c in DataClass]
            found.append(
                again(
                    f"{at}.data",
                    f"{w.data!r} is not one of {', '.join(classes)}{did_you_mean(w.data, classes)}",
                )
            )
            continue
        stated = w.answers.data_sensitivity.perimeter
        need = max(info.perimeter, stated, key=_RANK.__getitem__)
        needs[w.name] = need
        if _RANK[stated] < _RANK[info.perimeter]:
            found.append(
                again(
                    f"{at}.answers.data_sensitivity.perimeter",
                    f"{stated.value}, but {w.data} data needs {info.perimeter.value}",
                )
            )
        provider = catalog.providers.get(w.provider or "")
        if w.placement == "cloud_api" and provider is not None:
            if need is Perimeter.technical:
                found.append(
                    again(
                        f"{at}.placement",
                        f"cloud_api, but the {need.value} perimeter ({w.data} data) allows no "
                        "cloud API",
                    )
                )
            elif need is Perimeter.private_link and not provider.private_link:
                found.append(
                    again(
                        f"{at}.provider",
                        f"{w.provider} is not reachable through AWS PrivateLink, which "
                        f"{w.data} data needs",
                    )
                )
    private = catalog.private_consumers
    by_name = {w.name: w for w in plan.workloads}
    for index, pool in enumerate(plan.pools):
        # A pool admits every member's callers: where one member's data may only be called from
        # private ranges, that holds for all of them (a mixed pool keeps the strictest perimeter).
        members = [by_name[name] for name in pool.workloads if name in by_name]
        strict = [w.name for w in members if w.data in private.data_classes]
        public = sorted(
            {
                c.cidr
                for w in members
                for c in w.consumers
                if c.cidr is not None and _public_range(private, c.cidr)
            }
        )
        if strict and public:
            found.append(
                again(
                    f"pools[{index}].workloads",
                    f"{', '.join(strict)} may only be called from private ranges, but the pool "
                    f"also admits its other members' public callers {', '.join(public)}",
                )
            )
        weaker = [
            name
            for name in pool.workloads
            if name in needs and _RANK[pool.perimeter] < _RANK[needs[name]]
        ]
        if weaker:
            strongest = max((needs[name] for name in weaker), key=_RANK.__getitem__)
            found.append(
                again(
                    f"pools[{index}].perimeter",
                    f"{pool.perimeter.value}, weaker than {strongest.value}, which "
                    f"{', '.join(weaker)} need(s)",
                )
            )
    return found


def network_problems(plan: Plan) -> list[Problem]:
    """Every range a valid IPv4 network, the API networks those the providers need, and no two
    of the stack's ranges overlapping each other or a consumer's."""
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

    ranges: list[tuple[str, ipaddress.IPv4Network]] = []
    named = [(f"pools[{i}].cidr", pool.cidr) for i, pool in enumerate(plan.pools)]
    named += [(f"networks.{name}", cidr) for name, cidr in sorted(plan.networks.items())]
    for field_name, cidr in named:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problem(field_name, f"{cidr!r} is not a CIDR block")
            continue
        if not isinstance(network, ipaddress.IPv4Network):
            problem(field_name, f"{cidr} is not an IPv4 range")
            continue
        low, high = NETWORK_PREFIXES
        if not low <= network.prefixlen <= high:
            problem(field_name, f"{cidr} is a /{network.prefixlen}, not /{low} to /{high}")
        ranges.append((field_name, network))
    needed = {API_NETWORK_FOR[access.private_link] for access in plan.providers}
    for name in sorted(needed - set(plan.networks)):
        problem(f"networks.{name}", "missing: a provider of this plan needs it")
    for name in sorted(set(plan.networks) - needed):
        problem(f"networks.{name}", "no provider of this plan needs it")
    # Sorted by address, a range can only overlap ranges that start before its end.
    ranges.sort(key=lambda item: (int(item[1].network_address), item[0]))
    for number, (field_name, network) in enumerate(ranges):
        for other_field, other in ranges[number + 1 :]:
            if other.network_address > network.broadcast_address:
                break
            problem(other_field, f"{other} overlaps {field_name} {network}")
    # The consumers' IPv4 ranges by first address, each with the highest last address up to it:
    # a range overlaps some consumer iff one starting at or before its end reaches its start.
    firsts: dict[tuple[int, int], str] = {}
    for number, w in enumerate(plan.workloads):
        for index, c in enumerate(w.consumers):
            if c.cidr is None:
                continue  # a namespace: no range of its own
            try:
                consumer = ipaddress.ip_network(c.cidr, strict=True)
            except ValueError:
                continue  # consumer_problems reports it
            if isinstance(consumer, ipaddress.IPv4Network):
                span = (int(consumer.network_address), int(consumer.broadcast_address))
                firsts.setdefault(span, f"workloads[{number}].consumers[{index}] {c.cidr}")
    spans = sorted(firsts)
    starts = [low for low, _ in spans]
    reach: list[tuple[int, str]] = []
    for span in spans:
        here = (span[1], firsts[span])
        reach.append(max(reach[-1], here) if reach else here)
    for field_name, network in ranges:
        before = bisect.bisect_right(starts, int(network.broadcast_address))
        if before and reach[before - 1][0] >= int(network.network_address):
            problem(field_name, f"{network} overlaps consumer {reach[before - 1][1]}")
    return problems
