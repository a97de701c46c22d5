"""The plan-file checks hold a plan's cluster sites to what the loader and the planner make of
them (issue 16, review): the site's load balancer as the loader takes it (verify holds the
pools' Services to it), the pods' sizes the stack deploys recomputed from the site's node
figures, and the consumers of a cluster pool as planning admits them. Each tamper is named by
its field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from planner.catalog import default_catalog
from planner.errors import PlannerError
from planner.planfile import Plan, plan_problems, read_plan
from tests.test_site_pricing import Doc, _mixed, _problems, _set
from tests.test_sites import _plan, _spill_file

TEAM_A = "{namespace: team-a, site: dc1}"


def _file_node() -> Plan:
    """notes on a site whose node figures the workloads file sets."""
    text = _spill_file(4).replace(
        "    cost: {owned: true}",
        "    cpus_per_node: 224\n    memory_gib_per_node: 2000\n    cost: {owned: true}",
    )
    return _plan(text, "per-workload")


def _namespaced() -> Plan:
    """notes called by the pods of namespace team-a on a one-node site dc1 (contracts, by
    range, on EC2)."""
    return _plan(_spill_file(1).replace("{cidr: 10.50.0.0/16}", TEAM_A), "per-workload")


def _notes(plan: Plan) -> int:
    return next(i for i, w in enumerate(plan.workloads) if w.name == "notes")


def test_the_plans_the_planner_writes_pass() -> None:
    catalog = default_catalog()
    for plan in (_mixed(), _file_node(), _namespaced()):
        assert plan_problems(plan, catalog) == []
    # The preconditions of the tampers below: notes on the site, by range, the site's figures.
    plan = _mixed()
    assert plan.workloads[_notes(plan)].pool in {p.name for p in plan.pools if p.site == "dc1"}
    assert plan.sites[0].load_balancer is not None
    assert not plan.figures["site.dc1.cpus_per_node"].source.startswith("set in")
    assert (
        _file_node()
        .figures["site.dc1.cpus_per_node"]
        .source.startswith("set in the workloads file")
    )


# --- 1. The site's load balancer, as the loader takes it.

LB = "sites.0.load_balancer"
TARGET = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"


def _without(key: str) -> Callable[[Doc], None]:
    def corrupt(document: Doc) -> None:
        del document["sites"][0]["load_balancer"]["annotations"][key]

    return corrupt


@pytest.mark.parametrize(
    ("corrupt", "field", "says"),
    [
        (_set(LB, {"annotations": {}, "load_balancer_class": None, "dns_suffix": None}),
         "sites[0].load_balancer",
         "give the annotations or the class that make the cluster's load balancer internal"),
        (_set(f"{LB}.annotations", {"Service.Beta/scheme": "internal"}),
         "sites[0].load_balancer.annotations", "its prefix 'Service.Beta' is not a DNS subdomain"),
        (_set(f"{LB}.load_balancer_class", "service.k8s.aws/n lb"),
         "sites[0].load_balancer.load_balancer_class", "not a loadBalancerClass"),
        (_set(f"{LB}.dns_suffix", "llm..internal"),
         "sites[0].load_balancer.dns_suffix", "is not a DNS domain"),
        (_without(TARGET), "sites[0].load_balancer", f"give the annotations {TARGET}: ip"),
        # The NLB's health checks: required, and only from the organization's own ranges.
        (_set(f"{LB}.health_check_cidrs", []), "sites[0].load_balancer",
         "give health_check_cidrs"),
        (_set(f"{LB}.health_check_cidrs", ["8.8.8.0/24"]),
         "sites[0].load_balancer.health_check_cidrs[0]",
         "8.8.8.0/24 is not inside the private ranges"),
    ],
)  # fmt: skip
def test_a_tampered_load_balancer_is_named(
    corrupt: Callable[[Doc], None], field: str, says: str
) -> None:
    found = _problems(_mixed(), corrupt, default_catalog())
    assert list(found) == [field], found
    assert says in found[field] and found[field].endswith("plan again with `planner plan`")


@pytest.mark.parametrize(
    ("toleration", "field", "says"),
    [
        ({"key": "gpu", "operator": "Exists", "value": "x"}, "sites[0].tolerations[0]",
         "value must be left out when operator is Exists"),
        ({"operator": "Equal", "value": "x"}, "sites[0].tolerations[0]",
         "operator must be Exists when key is left out"),
        ({"key": "gpu", "operator": "Exists", "effect": "NoAdmit"},
         "sites[0].tolerations[0].effect", "NoSchedule"),
        ({"key": "gpu", "operator": "Exists", "tolerationSeconds": "30"},
         "sites[0].tolerations[0].tolerationSeconds", "Extra inputs are not permitted"),
        # Valid for the API, but not as the planner writes it (an empty value it leaves out).
        ({"key": "gpu", "operator": "Exists", "value": ""}, "sites[0].tolerations[0]",
         "not as the planner writes it"),
    ],
)  # fmt: skip
def test_a_tampered_toleration_is_named(toleration: dict[str, str], field: str, says: str) -> None:
    """The stack puts a site's tolerations in the pods' spec as plan.json has them: one the
    API refuses would fail every pod at `pulumi up`."""
    found = _problems(_mixed(), _set("sites.0.tolerations", [toleration]), default_catalog())
    assert list(found) == [field], found
    assert says in found[field], found


# --- 2. The pods' sizes the stack deploys, recomputed.


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        # More CPUs than the node can give: the pod is never scheduled.
        ("pod_cpus", 112, "pod_cpus", "112, but the site's node figures make 107"),
        ("pod_memory_mib", 1_900_000, "pod_memory_mib", "1.9e+06, but the site's node figures"),
        ("shm_mib", 1024, "shm_mib", "1024, but the site's node figures make 15360"),
        # The catalog's figures (the file set none): the node is the catalog's server.
        ("cpus_per_node", 224, "cpus_per_node", "224, but the site's node figures make 112"),
        ("memory_gib_per_node", 2048, "memory_gib_per_node", "2048, but the site's node"),
        # A node the catalog has no figures of, which the file did not give either.
        ("gpus_per_node", 4, "cpus_per_node", "the catalog has no node of 4 x h100"),
    ],
)
def test_a_tampered_pod_size_is_named(path: str, value: float, field: str, says: str) -> None:
    catalog, plan = default_catalog(), _mixed()
    found = _problems(plan, _set(f"sites.0.{path}", value), catalog)
    assert f"sites[0].{field}" in found, found
    assert says in found[f"sites[0].{field}"]
    if path != "gpus_per_node":  # it changes the site's cost besides
        assert list(found) == [f"sites[0].{field}"], found


def test_a_node_figure_of_the_file_is_recomputed_from_and_its_figure_held_to_it() -> None:
    catalog, plan = default_catalog(), _file_node()
    assert (plan.sites[0].cpus_per_node, plan.sites[0].pod_cpus) == (224, 219)
    # The file's CPUs lowered without the pod: the pod asks for more than the node has.
    found = _problems(plan, _set("sites.0.cpus_per_node", 112), catalog)
    assert "219, but the site's node figures make 107" in found["sites[0].pod_cpus"]
    assert "224.0, but site dc1's pods rest on 112" in found["figures.site.dc1.cpus_per_node"]

    # A figure the pods rest on, tampered: named by its id.
    def reserve(document: Doc) -> None:
        document["figures"]["site.dc1.kubelet_reserved_cpus"]["value"] = 0.0

    found = _problems(plan, reserve, catalog)
    assert list(found) == ["figures.site.dc1.kubelet_reserved_cpus"], found
    # The site's list of them.
    found = _problems(plan, _set("sites.0.figures", []), catalog)
    assert list(found) == ["sites[0].figures"], found


def test_read_plan_refuses_a_pod_the_node_cannot_hold(tmp_path: Path) -> None:
    plan = _mixed()
    document = json.loads(plan.model_dump_json())
    _set("sites.0.pod_cpus", 112)(document)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(PlannerError) as raised:
        read_plan(path)
    assert [p.field for p in raised.value.problems] == ["sites[0].pod_cpus"]


# --- 3. A cluster pool's consumers, as planning admits them.


def test_a_vpc_or_account_on_a_cluster_pool_s_consumer_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    at = f"workloads.{_notes(plan)}.consumers.0"
    for key, value in (("vpc", "vpc-0123456789abcdef0"), ("account", "111122223333")):
        found = _problems(plan, _set(f"{at}.{key}", value), catalog)
        field = f"workloads[{_notes(plan)}].consumers[0].{key}"
        assert field in found, found
        assert f"{value}, but the workload is served by pool" in found[field]
        assert "which makes no PrivateLink endpoint for a VPC or an account" in found[field]


def test_a_site_without_its_load_balancer_for_callers_by_range_is_named() -> None:
    catalog, plan = default_catalog(), _mixed()
    found = _problems(plan, _set(LB, None), catalog)
    assert list(found) == ["sites[0].load_balancer"], found
    assert (
        f"missing, but workloads[{_notes(plan)}].consumers[0] (10.50.0.0/16) calls pool"
        in found["sites[0].load_balancer"]
    )
    # Without callers by range (pods of the site only), a site needs none.
    assert _problems(_namespaced(), _set(LB, None), catalog) == {}


def test_a_namespace_that_is_not_a_dns_label_is_named() -> None:
    catalog, plan = default_catalog(), _namespaced()
    at = f"workloads.{_notes(plan)}.consumers.0.namespace"
    for bad in ("Team_A", "team-a-", "x" * 64):
        found = _problems(plan, _set(at, bad), catalog)
        assert list(found) == [f"workloads[{_notes(plan)}].consumers[0].namespace"], found
        assert f"{bad!r} is not a namespace name (a DNS label" in next(iter(found.values()))
