"""A plan against the workloads file it was made from (input_problems): the plan copies some of
the file's values (each workload's name, task, data class, consumers and monthly tokens, the
organization, the region, the Kubernetes sites, the capacity reservations), and the stack and
verify read the plan's copies. A plan whose hash matches the file but whose copies were edited
(a workload's data class lowered, so a weaker perimeter passes) is refused here, each
difference naming the plan's field, the workload and the file's value."""

from __future__ import annotations

from typing import Any

from planner.errors import Problem
from planner.inputs.sites import KubernetesSite
from planner.inputs.workloads import Workload, WorkloadsFile
from planner.planfile.plan import ClusterSite, Plan
from planner.planfile.workload import Consumer, WorkloadPlan


def input_problems(plan: Plan, spec: WorkloadsFile, workloads_file: str) -> list[Problem]:
    """Every value the plan copies from the workloads file that differs from the file's."""
    problems: list[Problem] = []

    def differs(field: str, found: Any, expected: Any, whose: str = "") -> None:
        if found != expected:
            problems.append(
                Problem(
                    field,
                    f"{found!r}, but {workloads_file} gives {whose}{expected!r}: the plan is "
                    f"not what was planned from it; plan again with `planner plan`",
                )
            )

    differs("organization", plan.organization, spec.organization)
    differs("region", plan.region, spec.region)
    differs("workloads", len(plan.workloads), len(spec.workloads), "a count of workloads of ")
    if len(plan.workloads) == len(spec.workloads):
        for index, (planned, given) in enumerate(zip(plan.workloads, spec.workloads, strict=True)):
            _workload(f"workloads[{index}]", planned, given, differs)
    members = {w.name: w for w in spec.workloads}
    for index, pool in enumerate(plan.pools):
        # A pool's nodes go into its workloads' capacity reservation (planning/pools.py).
        reservations = sorted(
            {
                (w.capacity_reservation_id, w.capacity_reservation_zone)
                for name in pool.workloads
                if (w := members.get(name)) is not None and w.capacity_reservation_id
            }
        )
        expected = reservations[0] if len(reservations) == 1 else (None, None)
        if len(reservations) <= 1:
            found = (pool.capacity_reservation_id, pool.capacity_reservation_zone)
            differs(
                f"pools[{index}].capacity_reservation_id",
                found,
                expected,
                "its workloads' reservation and zone ",
            )
    sites = [site for site in spec.sites or [] if isinstance(site, KubernetesSite)]
    differs("sites", [s.name for s in plan.sites], [s.name for s in sites], "the sites ")
    if len(plan.sites) == len(sites):
        for index, (site, given_site) in enumerate(zip(plan.sites, sites, strict=True)):
            for name, value in _site_values(given_site).items():
                differs(f"sites[{index}].{name}", _planned_site_value(site, name), value)
    return problems


def _workload(at: str, planned: WorkloadPlan, given: Workload, differs: Any) -> None:
    differs(f"{at}.name", planned.name, given.name)
    whose = f"{given.name}'s "
    differs(f"{at}.task", planned.task, given.task.value, whose)
    differs(f"{at}.data", planned.data, given.data.value, whose)
    planned_consumers = [_consumer(c) for c in planned.consumers]
    given_consumers = [_consumer(Consumer.of(c)) for c in given.consumers]
    differs(f"{at}.consumers", len(planned_consumers), len(given_consumers), f"{whose}count ")
    if len(planned_consumers) == len(given_consumers):
        for number, (found, expected) in enumerate(
            zip(planned_consumers, given_consumers, strict=True)
        ):
            differs(f"{at}.consumers[{number}]", found, expected, whose)
    economics = planned.answers.volume_economics
    differs(
        f"{at}.answers.volume_economics.monthly_input_tokens",
        economics.monthly_input_tokens,
        given.monthly_tokens.input,
        whose,
    )
    differs(
        f"{at}.answers.volume_economics.monthly_output_tokens",
        economics.monthly_output_tokens,
        given.monthly_tokens.output,
        whose,
    )


def _consumer(consumer: Consumer) -> dict[str, Any]:
    """A consumer's given parts, as the message shows them."""
    return {
        key: value
        for key, value in (
            ("cidr", consumer.cidr),
            ("vpc", consumer.vpc),
            ("subnets", list(consumer.subnets)),
            ("account", consumer.account),
            ("namespace", consumer.namespace),
            ("site", consumer.site),
        )
        if value
    }


def _site_values(site: KubernetesSite) -> dict[str, Any]:
    """What build.py's _cluster_sites copies of a site as it is, by the plan's field."""
    balancer = site.load_balancer
    return {
        "name": site.name,
        "context": site.context,
        "gpu": site.gpu,
        "gpus_per_node": site.gpus_per_node,
        "nodes": site.nodes,
        "node_selector": dict(site.node_selector),
        "tolerations": [toleration.manifest() for toleration in site.tolerations],
        "storage_class": site.storage_class,
        "weights_source": site.weights_source,
        "load_balancer": None
        if balancer is None
        else {
            "annotations": dict(balancer.annotations),
            "load_balancer_class": balancer.load_balancer_class,
            "dns_suffix": balancer.dns_suffix,
            "health_check_cidrs": list(balancer.health_check_cidrs),
        },
    }


def _planned_site_value(site: ClusterSite, name: str) -> Any:
    if name == "load_balancer":
        return None if site.load_balancer is None else site.load_balancer.model_dump()
    return getattr(site, name)
