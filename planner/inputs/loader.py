"""Read a workloads file: YAML -> pydantic model, every problem reported by field path and line.

The file is parsed once into a node tree: the repeated-key check, the values and the line of every
problem all come from that one tree, so reporting a thousand problems costs what reporting one does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from planner.catalog import Catalog
from planner.errors import PlannerError, Problem
from planner.inputs.lines import LineIndex, Loc, field_path, loader_of, repeated_keys
from planner.inputs.messages import as_written, did_you_mean, message
from planner.inputs.sites import HEALTH_CHECKS_INSIDE, AwsSite, KubernetesSite, Site
from planner.inputs.workloads import (
    Assumptions,
    Network,
    Workload,
    WorkloadsFile,
)


@dataclass(frozen=True)
class LoadedWorkloads:
    path: Path
    spec: WorkloadsFile
    sha256: str
    lines: LineIndex = LineIndex(None)  # noqa: RUF009 (a frozen dataclass: one shared empty index is safe)


_Part = typing.TypeVar("_Part", bound=BaseModel)


@dataclass(frozen=True)
class _Parts:
    """What of a workloads file passed the schema: all of it once it passes, else each part that
    does, so that the rules below still run and one run reports every problem."""

    region: str | None
    assumptions: Assumptions
    network: Network | None
    # (index in the file, workload) for every workload that passed
    workloads: list[tuple[int, Workload]]
    # (index in the file, site) for every site that passed
    sites: list[tuple[int, AwsSite | KubernetesSite]] = field(default_factory=list)
    # Field paths the schema refused (their parts stand at their defaults here).
    refused: tuple[Loc, ...] = ()

    @classmethod
    def of(cls, spec: WorkloadsFile) -> _Parts:
        return cls(
            spec.region,
            spec.assumptions,
            spec.network,
            list(enumerate(spec.workloads)),
            list(enumerate(spec.sites or [])),
        )

    def was_refused(self, loc: Loc) -> bool:
        return any(loc[: len(bad)] == bad or bad[: len(loc)] == loc for bad in self.refused)


def _valid_parts(raw: dict[Any, Any], errors: list[Any]) -> _Parts:
    """The parts of a file the schema refused that pass on their own: the region, each
    assumption, the network, and each workload."""
    refused = tuple(tuple(error["loc"]) for error in errors)
    # Every path that holds a refused field: one set lookup per part, however many errors.
    holding = {bad[:length] for bad in refused for length in range(1, len(bad) + 1)}

    def failed(loc: Loc) -> bool:
        return loc in holding

    def fields_that_pass(key: str) -> dict[Any, Any]:
        given = raw.get(key, {})
        if not isinstance(given, dict):
            return {}
        return {name: value for name, value in given.items() if not failed((key, name))}

    def passing(model: type[_Part], value: Any) -> _Part | None:
        # A part with no error of its own passes; were one still refused, its rules would not run.
        try:
            return model.model_validate(value)
        except ValidationError:
            return None

    region = raw.get("region")
    assumptions = passing(Assumptions, fields_that_pass("assumptions")) or Assumptions()
    network = None if failed(("network",)) else passing(Network, raw.get("network", {}))
    workloads = []
    items = raw.get("workloads")
    for index, item in enumerate(items if isinstance(items, list) else []):
        workload = None if failed(("workloads", index)) else passing(Workload, item)
        if workload is not None:
            workloads.append((index, workload))
    sites = []
    given = raw.get("sites")
    for index, item in enumerate(given if isinstance(given, list) else []):
        site = None if failed(("sites", index)) else passing(_SiteOf, {"site": item})
        if site is not None:
            sites.append((index, site.site))
    return _Parts(
        region if isinstance(region, str) and not failed(("region",)) else None,
        assumptions,
        network,
        workloads,
        sites,
        refused,
    )


class _SiteOf(BaseModel):
    """One site alone, to check it apart from the file (a site is a union of kinds)."""

    site: Site


def _semantic_problems(parts: _Parts, catalog: Catalog, lines: LineIndex) -> list[Problem]:
    problems: list[Problem] = []

    def report(loc: Loc, message: str) -> None:
        problems.append(Problem(field_path(loc), message, lines.line(loc)))

    regions = catalog.regions
    priced = regions.priced.regions
    region, assumptions = parts.region, parts.assumptions
    if region is not None and region not in regions.aws.regions:
        report(
            ("region",),
            f"{region!r} is not an AWS region{did_you_mean(region, regions.aws.regions)}"
            f" (planner/data/regions.yaml lists them, from {regions.aws.source})",
        )
    if assumptions.serving_efficiency is not None:
        # Its old meaning (a share of a benchmark ceiling) would derate the throughput model,
        # which already derives what serving reaches, a second time.
        report(
            ("assumptions", "serving_efficiency"),
            "serving_efficiency is no longer an assumption: what a node serves comes from the "
            "throughput model at each workload's request shape and user_output_tps, within the "
            "fit's stated error (docs/cost-model.md); remove it, and set user_output_tps or "
            "utilization instead",
        )
    price_region = assumptions.price_region
    if price_region is not None and price_region not in priced:
        report(
            ("assumptions", "price_region"),
            f"the catalog has no prices for {price_region!r}{did_you_mean(price_region, priced)};"
            f" it has prices for {', '.join(priced)}",
        )
    elif region is None or parts.was_refused(("assumptions", "price_region")):
        pass  # the schema's message says what is wrong with either
    elif price_region is not None and region in priced and price_region != region:
        report(
            ("assumptions", "price_region"),
            f"the catalog has prices for {region} itself: remove price_region",
        )
    elif price_region is None and region in regions.aws.regions and region not in priced:
        report(
            ("region",),
            f"the catalog has no prices for {region} (only for {', '.join(priced)}): set "
            f"assumptions.price_region: {priced[0]} to plan at those prices instead (the plan "
            "will say so), or choose a priced region",
        )

    private = catalog.private_consumers
    network = parts.network
    if network is not None:
        _network_problems(network, private, report)
    instance_types = sorted(catalog.instances)
    for position, instance_type in enumerate(assumptions.instance_types or []):
        if instance_type not in catalog.instances:
            report(
                ("assumptions", "instance_types", position),
                f"unknown instance type {instance_type!r}; the catalog has: "
                f"{', '.join(instance_types)}{did_you_mean(instance_type, instance_types)}",
            )
    _site_problems(parts, catalog, report)
    known_models = [*catalog.models, *catalog.api_models]
    # A VPC's endpoints (one per service, with private DNS) go in one set of subnets, and a
    # subnet is in one VPC: the file must say the same wherever it names them.
    vpc_subnets: dict[str, tuple[tuple[str, ...], str]] = {}
    subnet_vpc: dict[str, tuple[str, str]] = {}
    for index, workload in parts.workloads:
        for position, consumer in enumerate(workload.consumers):
            if consumer.vpc is None:
                continue
            loc = ("workloads", index, "consumers", position)
            subnets = tuple(sorted(consumer.subnets))
            first = vpc_subnets.setdefault(consumer.vpc, (subnets, field_path(loc)))
            if first[0] != subnets:
                report(
                    (*loc, "subnets"),
                    f"{consumer.vpc} is given subnets {', '.join(first[0])} at {first[1]}: "
                    "name the same subnets wherever a VPC is named (its endpoints go in them)",
                )
            for subnet in subnets:
                where = subnet_vpc.setdefault(subnet, (consumer.vpc, field_path(loc)))
                if where[0] != consumer.vpc:
                    report(
                        (*loc, "subnets"),
                        f"{subnet} is in {where[0]} at {where[1]}: a subnet is in one VPC",
                    )
    first_seen: dict[str, int] = {}
    for index, workload in parts.workloads:
        if workload.name in first_seen:
            report(
                ("workloads", index, "name"),
                f"duplicate workload name {workload.name!r} "
                f"(first used by workloads[{first_seen[workload.name]}])",
            )
        first_seen.setdefault(workload.name, index)
        _reservation_problems(parts, index, workload, report)
        if workload.model is not None and workload.model not in known_models:
            report(
                ("workloads", index, "model"),
                f"unknown model {workload.model!r}; the catalog has: "
                f"{', '.join(sorted(known_models))}{did_you_mean(workload.model, known_models)}",
            )
        _namespace_problems(parts, index, workload, report)
        if workload.data in private.data_classes:
            for position, consumer in enumerate(workload.consumers):
                # A namespace's pods call from inside their cluster: no range to check.
                if consumer.cidr is not None and not private.is_private(consumer.cidr):
                    report(
                        ("workloads", index, "consumers", position),
                        f"{consumer.cidr} is not a private range, and {workload.data.value} "
                        f"data may only be called from private ones ({', '.join(private.ranges)})",
                    )
    return problems


def _namespace_problems(
    parts: _Parts, index: int, workload: Workload, report: typing.Callable[[Loc, str], None]
) -> None:
    """A consumer named by namespace names a Kubernetes site of the file, and one workload's
    namespaces are all of one site: its pool runs there, where its callers are."""
    clusters = [site.name for _, site in parts.sites if isinstance(site, KubernetesSite)]
    first: tuple[str, int] | None = None
    for position, consumer in enumerate(workload.consumers):
        if consumer.site is None:
            continue
        loc = ("workloads", index, "consumers", position, "site")
        if consumer.site not in clusters:
            if parts.was_refused(("sites",)):
                continue  # the sites' own errors say what is wrong there
            others = [s.name for _, s in parts.sites if not isinstance(s, KubernetesSite)]
            report(
                loc,
                f"{consumer.site!r} is not a Kubernetes site of the file"
                + (
                    f" ({consumer.site} is AWS: a namespace is in a cluster)"
                    if consumer.site in others
                    else ""
                )
                + (
                    f"; its Kubernetes sites are: {', '.join(clusters)}"
                    f"{did_you_mean(consumer.site, clusters)}"
                    if clusters
                    else "; the file names no Kubernetes site (`sites`, kind: kubernetes)"
                ),
            )
            continue
        if first is None:
            first = (consumer.site, position)
        elif consumer.site != first[0]:
            report(
                loc,
                f"site {consumer.site}, but consumers[{first[1]}] names site {first[0]}: one "
                "workload's namespaces are on one site (its pool runs there, beside its "
                "callers)",
            )


def _site_problems(
    parts: _Parts, catalog: Catalog, report: typing.Callable[[Loc, str], None]
) -> None:
    """Site names are unique, AWS is named at most once, and a cluster's GPU is one the
    catalog's instance types have: the throughput model knows each of those (their bandwidth
    and memory price what a node serves; the catalog's load checks gpus.yaml has them)."""
    gpus = sorted({instance.gpu for instance in catalog.instances.values()})
    first: dict[str, int] = {}
    aws: int | None = None
    for index, site in parts.sites:
        if site.name in first:
            report(
                ("sites", index, "name"),
                f"duplicate site name {site.name!r} (first used by sites[{first[site.name]}])",
            )
        first.setdefault(site.name, index)
        if isinstance(site, AwsSite):
            if aws is not None:
                report(
                    ("sites", index, "kind"),
                    f"AWS is already a site (sites[{aws}]): the file's region is its one region",
                )
            aws = index if aws is None else aws
        elif site.gpu not in gpus:
            report(
                ("sites", index, "gpu"),
                f"unknown GPU {site.gpu!r}; the catalog's GPUs are: {', '.join(gpus)}"
                f"{did_you_mean(site.gpu, gpus)}",
            )
        elif (
            not site.cost.owned
            and site.cost.capital_usd_per_node is None
            and catalog.server_price(site.gpu, site.gpus_per_node) is None
        ):
            report(
                ("sites", index, "cost", "owned"),
                f"the catalog has no price of a server of {site.gpus_per_node} x {site.gpu} "
                "to price buying one: give capital_usd_per_node",
            )
        if (
            isinstance(site, KubernetesSite)
            and site.gpu in gpus
            and catalog.node_resources.server(site.gpu, site.gpus_per_node) is None
        ):
            for field in ("cpus_per_node", "memory_gib_per_node"):
                if getattr(site, field) is None:
                    report(
                        ("sites", index, field),
                        f"the catalog has no node of {site.gpus_per_node} x {site.gpu} to size "
                        f"a pool's pods from: give {field} (its pods hold whole nodes)",
                    )
            # The catalog's power and hosting figures are those of its 8-GPU servers
            # (pricing.yaml hardware.power_kw, hosting_usd_per_node_month: a DGX H100's draw
            # and 10.2 kW): another node would be priced as one (an outside review: a 2-GPU
            # node at 7 kW and 1,999 USD of hosting a month).
            for field in ("power_kw_per_node", "hosting_usd_per_node_month"):
                if getattr(site.cost, field) is None:
                    report(
                        ("sites", index, "cost", field),
                        f"the catalog's {field} is an 8-GPU server's, and it has no node of "
                        f"{site.gpus_per_node} x {site.gpu}: give {field}",
                    )
        if isinstance(site, KubernetesSite) and site.load_balancer is not None:
            # The pools admit these beside their consumers: the organization's own network.
            for position, cidr in enumerate(site.load_balancer.health_check_cidrs):
                problem = catalog.private_consumers.range_problem(cidr, HEALTH_CHECKS_INSIDE)
                if problem:
                    at = ("sites", index, "load_balancer", "health_check_cidrs", position)
                    report(at, problem)


def _network_problems(
    network: Network, private: Any, report: typing.Callable[[Loc, str], None]
) -> None:
    """The stack's networks come from private space, and each start lies inside the space."""
    if not private.is_private(network.space):
        report(
            ("network", "space"),
            f"{network.space} is not private address space: the stack's networks are allocated "
            f"from it ({', '.join(r for r in private.ranges if ':' not in r)})",
        )
    for name in ("pools", "apis"):
        start = ipaddress.IPv4Network(getattr(network, name))
        if not start.subnet_of(ipaddress.IPv4Network(network.space)):
            report(
                ("network", name),
                f"{start} is outside network.space {network.space}: the stack's networks are "
                "allocated from the space",
            )


def _reservation_problems(
    parts: _Parts, index: int, workload: Workload, report: typing.Callable[[Loc, str], None]
) -> None:
    """A capacity reservation is used only in its own availability zone (EC2 User Guide,
    "Launch instances into an existing Capacity Reservation": matching instance type, platform,
    Availability Zone and tenancy), and no pulumi-aws data source reads an On-Demand Capacity
    Reservation's zone: the file names it beside the id."""
    reservation, zone = workload.capacity_reservation_id, workload.capacity_reservation_zone
    loc: Loc = ("workloads", index)
    if reservation is not None and zone is None:
        report(
            (*loc, "capacity_reservation_id"),
            f"{reservation} needs capacity_reservation_zone: the availability zone it is in "
            f"(aws ec2 describe-capacity-reservations --capacity-reservation-ids {reservation} "
            "--query 'CapacityReservations[0].AvailabilityZone'); the nodes launch there",
        )
    if zone is not None and reservation is None:
        report(
            (*loc, "capacity_reservation_zone"),
            "a zone without capacity_reservation_id: name the reservation, or remove the zone",
        )
    if zone is not None and parts.region is not None and zone[:-1] != parts.region:
        report(
            (*loc, "capacity_reservation_zone"),
            f"{zone} is not an availability zone of {parts.region} (the file's region)",
        )
    # A reservation is in one zone: workloads naming the same one (they may share its pool)
    # must agree on where it is.
    earlier = next(
        (
            (number, other)
            for number, other in parts.workloads
            if number < index
            and reservation is not None
            and other.capacity_reservation_id == reservation
            and other.capacity_reservation_zone is not None
        ),
        None,
    )
    if earlier is not None and zone is not None and earlier[1].capacity_reservation_zone != zone:
        report(
            (*loc, "capacity_reservation_zone"),
            f"{zone}, but workloads[{earlier[0]}] ({earlier[1].name}) puts {reservation} in "
            f"{earlier[1].capacity_reservation_zone}: a capacity reservation is in one zone",
        )


def parse_workloads(text: str, file: str, catalog: Catalog) -> WorkloadsFile:
    """The validated file; a PlannerError lists every problem."""
    return parse_with_lines(text, file, catalog)[0]


def parse_with_lines(text: str, file: str, catalog: Catalog) -> tuple[WorkloadsFile, LineIndex]:
    """The validated file and the index of its lines; a PlannerError lists every problem."""
    loader = loader_of(text)
    try:
        root = loader.get_single_node()
        lines = LineIndex(root)
        repeated = repeated_keys(root)
        if repeated:
            raise PlannerError(
                file,
                [
                    Problem(
                        field_path(loc),
                        f"{loc[-1]!r} is given twice in one mapping (lines {first} and "
                        f"{again}); YAML would keep only the last: keep one",
                        again,
                    )
                    for loc, first, again in repeated
                ],
            )
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlannerError.single(file, "", f"malformed YAML: {problem}", line) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise PlannerError.single(file, "", "expected a mapping with organization and workloads")
    try:
        spec = WorkloadsFile.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = []
        for err in errors:
            loc = as_written(raw, tuple(err["loc"]), err["type"])
            problems.append(Problem(field_path(loc), message(err), lines.line(loc)))
        # The rules past the schema still run on the parts that pass it: one run, every problem.
        problems += _semantic_problems(_valid_parts(raw, errors), catalog, lines)
        problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
        raise PlannerError(file, problems) from None
    problems = _semantic_problems(_Parts.of(spec), catalog, lines)
    if problems:
        raise PlannerError(file, problems)
    return spec, lines


def load_workloads(path: Path, catalog: Catalog) -> LoadedWorkloads:
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlannerError.single(file, "", "no such file") from None
    except OSError as exc:
        raise PlannerError.single(file, "", f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError.single(file, "", f"not UTF-8 text ({exc.reason})") from None
    spec, lines = parse_with_lines(text, file, catalog)
    return LoadedWorkloads(
        path=path, spec=spec, sha256=hashlib.sha256(data).hexdigest(), lines=lines
    )
