"""The workloads file's `sites` (issue 16): where self-hosted pools may run, checked as the
Kubernetes API server checks its names (kubernetes.io, "Labels and Selectors" and "Object Names
and IDs", Syntax and character set), and a Kubernetes site's node priced as bought hardware."""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import default_catalog
from planner.catalog.vocabulary import Pricing
from planner.errors import PlannerError
from planner.inputs.loader import LoadedWorkloads, load_workloads, parse_workloads
from planner.inputs.sites import (
    AWS_NLB_NEEDS,
    AWS_NLB_SUBNETS,
    AwsSite,
    KubernetesSite,
    LoadBalancer,
    label_key_problem,
    label_value_problem,
)
from planner.planfile import Plan
from planner.planning.build import build_plan
from planner.planning.context import Context
from planner.planning.figures import FigureBook
from planner.planning.optimize import Demand, overfull, solve, units_for
from planner.targets.kubernetes import KubernetesTarget
from tests.test_optimize import CONTEXT as OPTIMIZER_CONTEXT

# The site's internal load balancer: the AWS Load Balancer Controller's NLB with what the
# plan's assumptions need (ip targets, the caller's address kept, its health checks admitted).
LOAD_BALANCER = """\
    load_balancer:
      annotations:
        service.beta.kubernetes.io/aws-load-balancer-scheme: internal
        service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
        service.beta.kubernetes.io/aws-load-balancer-target-group-attributes:
          preserve_client_ip.enabled=true
        service.beta.kubernetes.io/aws-load-balancer-subnets: llm-dc1-a, llm-dc1-b
      class: service.k8s.aws/nlb
      dns_suffix: llm.dc1.internal
      health_check_cidrs: [10.250.0.0/24]
"""
# The NLB's subnets, by Name tag (planner/inputs/sites.py AWS_NLB_SUBNETS).
SUBNETS = {AWS_NLB_SUBNETS: "llm-dc1-a, llm-dc1-b"}
SITE = (
    """
  - name: dc1
    kind: kubernetes
    context: dc1-admin
    gpu: h100
    gpus_per_node: 8
    nodes: 4
    node_selector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    storage_class: fast-nvme
    weights_source: s3://models.internal/weights
    cost:
      owned: true
      power_kw_per_node: 7.0
      usd_per_kwh: 0.12
      pue: 1.3
      hosting_usd_per_node_month: 600
"""
    + LOAD_BALANCER
    + """  - name: aws
    kind: aws
"""
)
WORKLOADS = """
workloads:
  - name: notes
    task: summarization
    data: regulated
    monthly_tokens: {input: 6B, output: 1.2B}
    consumers: [{cidr: 10.50.0.0/16}]
"""


def _load(tmp_path: Path, sites: str) -> object:
    path = tmp_path / "workloads.yaml"
    path.write_text(f"organization: acme\nregion: us-east-1\nsites:{sites}{WORKLOADS}")
    return load_workloads(path, default_catalog())


def _problems(tmp_path: Path, sites: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(PlannerError) as raised:
        _load(tmp_path, sites)
    return [(p.field, p.line, p.message) for p in raised.value.problems]


def test_the_issue_s_sites_load(tmp_path: Path) -> None:
    loaded = _load(tmp_path, SITE)
    sites = loaded.spec.sites  # type: ignore[attr-defined]
    assert [(s.name, s.kind) for s in sites] == [("dc1", "kubernetes"), ("aws", "aws")]
    assert sites[0].node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


@pytest.mark.parametrize(
    ("old", "new", "field", "at", "says"),
    [
        ("gpu: h100", "gpu: a100", "sites[0].gpu", "gpu:", "unknown GPU 'a100'"),
        ("storage_class: fast-nvme", "storage_class: Fast_NVMe", "sites[0].storage_class",
         "storage_class:", "not a StorageClass name"),
        ("weights_source: s3://models.internal/weights",
         "weights_source: https://huggingface.co/meta-llama", "sites[0].weights_source",
         "weights_source:", "not an s3:// URL"),
        ("{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}", '{"-x/gpu": "a b"}',
         "sites[0].node_selector", "node_selector:", "its prefix '-x' is not a DNS subdomain"),
        ("kind: kubernetes", "kind: openstack", "sites[0].kind", "kind: openstack",
         "unknown kind 'openstack': one of 'aws', 'kubernetes'"),
        ("name: dc1", "name: DC_1", "sites[0].name", "name: DC_1", "is not a DNS label"),
        ("nodes: 4", "nodes: 0", "sites[0].nodes", "nodes:", "must be at least 1"),
        ("owned: true", "owned: true\n      amortization_months: 36", "sites[0].cost",
         "owned: true", "amortization_months price a purchase"),
        ("name: aws", "name: dc1", "sites[1].name", "name: dc1\n    kind: aws",
         "duplicate site name 'dc1'"),
        ("context: dc1-admin", "context: dc1-admin\n    colour: blue", "sites[0].colour",
         "colour:", "unknown field"),
        # Tolerations as the API takes them (kubernetes pkg/apis/core/validation
        # validateTolerations).
        ("storage_class:", "tolerations: [{key: -gpu, operator: Exists}]\n    storage_class:",
         "sites[0].tolerations[0].key", "tolerations:", "starting and ending with"),
        ("storage_class:", "tolerations: [{value: x, effect: NoSchedule}]\n    storage_class:",
         "sites[0].tolerations[0]", "tolerations:", "operator must be Exists when key is left"),
        ("storage_class:",
         "tolerations: [{key: gpu, operator: Exists, value: x}]\n    storage_class:",
         "sites[0].tolerations[0]", "tolerations:", "value must be left out when operator is"),
        ("storage_class:", "tolerations: [{key: gpu, value: a b}]\n    storage_class:",
         "sites[0].tolerations[0]", "tolerations:", "'a b'"),
        ("storage_class:",
         "tolerations: [{key: gpu, operator: Exists, effect: NoAdmit}]\n    storage_class:",
         "sites[0].tolerations[0].effect", "tolerations:", "NoSchedule"),
        ("storage_class:",
         "tolerations: [{key: gpu, operator: Lt, value: '5'}]\n    storage_class:",
         "sites[0].tolerations[0].operator", "tolerations:", "Exists"),
    ],
)  # fmt: skip
def test_each_bad_site_field_is_named_with_its_line(
    tmp_path: Path, old: str, new: str, field: str, at: str, says: str
) -> None:
    assert old in SITE
    sites = SITE.replace(old, new)
    problems = _problems(tmp_path, sites)
    assert len(problems) == 1, problems
    (found_field, found_line, message) = problems[0]
    assert (found_field, says in message) == (field, True), problems
    # The line of the field in the file: organization and region come before `sites:`.
    assert found_line == 2 + sites[: sites.index(at)].count("\n") + 1


def test_the_gpu_nodes_taints_the_site_tolerates_reach_the_plan() -> None:
    """sites[].tolerations: the taints that keep other workloads off the GPU nodes, which the
    pools' pods must tolerate or stay Pending; the plan records them as the pods' spec takes
    them (stacks/kubernetes/workload.py puts them there; validated against the API's schema
    in tests/test_kubernetes_stack.py)."""
    tolerated = _spill_file(4).replace(
        "    storage_class:",
        "    tolerations:\n"
        "      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}\n"
        "      - {key: dedicated, value: llm}\n"
        "    storage_class:",
    )
    [site] = _plan(tolerated, "per-workload").sites
    assert site.tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "llm"},
    ]
    [plain] = _plan(_spill_file(4), "per-workload").sites
    assert plain.tolerations == []


def test_aws_is_one_site(tmp_path: Path) -> None:
    problems = _problems(tmp_path, SITE + "  - name: aws2\n    kind: aws\n")
    assert [(f, "AWS is already a site (sites[1])" in m) for f, _, m in problems] == [
        ("sites[2].kind", True)
    ]


def test_a_purchase_needs_a_server_price_the_catalog_has_or_the_file_gives(
    tmp_path: Path,
) -> None:
    bought = SITE.replace("owned: true", "owned: false")
    _load(tmp_path, bought)  # 8 x h100: the catalog prices an HGX H100 server
    odd = bought.replace("gpus_per_node: 8", "gpus_per_node: 4").replace(
        "    cost:\n", "    cpus_per_node: 64\n    memory_gib_per_node: 512\n    cost:\n"
    )  # the node's own figures given: the catalog has none of a 4-GPU node either
    problems = _problems(tmp_path, odd)
    assert [(f, "no price of a server of 4 x h100" in m) for f, _, m in problems] == [
        ("sites[0].cost.owned", True)
    ]
    _load(tmp_path, odd.replace("owned: false", "owned: false\n      capital_usd_per_node: 150000"))


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("nvidia.com/gpu.product", True),
        ("gpu", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("example.com/" + "b" * 63, True),
        ("Example.com/gpu", False),  # a prefix is lowercase
        ("/gpu", False),
        ("gpu-", False),
        ("x/y/z", False),
    ],
)
def test_label_keys_as_kubernetes_checks_them(key: str, ok: bool) -> None:
    assert (label_key_problem(key) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), ("NVIDIA-H100-80GB-HBM3", True), ("a" * 64, False), ("a b", False), ("-a", False)],
)
def test_label_values_as_kubernetes_checks_them(value: str, ok: bool) -> None:
    assert (label_value_problem(value) is None) is ok


def _site(**cost: object) -> KubernetesSite:
    return KubernetesSite.model_validate(
        {
            "name": "dc1",
            "kind": "kubernetes",
            "context": "dc1-admin",
            "gpu": "h100",
            "gpus_per_node": 8,
            "nodes": 4,
            "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "storage_class": "fast-nvme",
            "weights_source": "s3://models.internal/weights",
            "cost": cost,
        }
    )


def test_an_owned_node_costs_power_and_hosting() -> None:
    catalog = default_catalog()
    hours = catalog.pricing.hours_per_month.value
    target = KubernetesTarget(
        _site(owned=True, power_kw_per_node=7.0, usd_per_kwh=0.12, pue=1.3,
              hosting_usd_per_node_month=600),
        index=0,
    )  # fmt: skip
    node = target.node_cost(catalog)
    assert node.basis.power_usd == pytest.approx(7.0 * 1.3 * 0.12 * hours)
    assert node.basis.capital_month_usd == 0
    assert node.monthly_usd == pytest.approx(7.0 * 1.3 * 0.12 * hours + 600)
    cited = {c.key: c for c in target.price_figures(catalog, target.offers(catalog, None)[0], None)}  # type: ignore[arg-type]
    assert cited["site.dc1.pue"].source == "set in the workloads file: sites[0].cost.pue"
    (cost,) = target.purchase_costs(catalog, target.offers(catalog, None)[0], 3, None)  # type: ignore[arg-type]
    assert (cost.option, cost.monthly_usd) == ("owned", round(3 * round(node.monthly_usd, 2), 2))


def test_a_purchase_adds_capital_over_the_horizon_from_the_catalog_where_the_file_is_silent() -> (
    None
):
    catalog = default_catalog()
    hardware = catalog.pricing.hardware
    hours = catalog.pricing.hours_per_month.value
    target = KubernetesTarget(_site(owned=False), index=2)
    node = target.node_cost(catalog)
    server = hardware.servers["p5.48xlarge"].capital_usd.value
    assert node.basis.capital_month_usd == pytest.approx(server / hardware.horizon_months.value)
    power = hardware.power_kw.value * hardware.pue.value * hardware.usd_per_kwh.value * hours
    assert node.monthly_usd == pytest.approx(
        power + hardware.hosting_usd_per_node_month.value + node.basis.capital_month_usd
    )
    sources = {t.cited.key: t.cited.source for t in node.terms}
    assert sources["site.dc1.capital_usd_per_node"].startswith("HGX H100 8-GPU server")
    assert sources["site.dc1.hosting_usd_per_node_month"].startswith("colocation")
    # The file's horizon, then the assumptions', then the catalog's.
    assert KubernetesTarget(_site(owned=False), 2, amortization_months=36).node_cost(
        catalog
    ).basis.capital_month_usd == pytest.approx(server / 36)
    assert KubernetesTarget(
        _site(owned=False, amortization_months=24), 2, amortization_months=36
    ).node_cost(catalog).basis.capital_month_usd == pytest.approx(server / 24)


def test_a_site_node_s_formula_shows_each_term() -> None:
    catalog = default_catalog()
    target = KubernetesTarget(
        _site(owned=False, capital_usd_per_node=300000, amortization_months=36, pue=1.2,
              power_kw_per_node=7, usd_per_kwh=0.1, hosting_usd_per_node_month=500),
        index=0,
    )  # fmt: skip
    offer = target.offers(catalog, None)[0]  # type: ignore[arg-type]
    (cost,) = target.purchase_costs(catalog, offer, 2, None)
    hours = catalog.pricing.hours_per_month.value
    power = 7 * 1.2 * 0.1 * hours
    node = power + 500 + 300000 / 36
    assert cost.option == "buy"
    assert cost.formula == (
        f"2 x (7 kW x PUE 1.2 x 0.1 USD/kWh x {hours:,.0f} h = {power:,.2f} USD power + "
        f"500.00 USD hosting + 300,000 USD / 36 months = {300000 / 36:,.2f} USD capital = "
        f"{node:,.2f} USD a node-month) = {2 * round(node, 2):,.2f} USD"
    )
    rate = target.node_rate(catalog, offer, Pricing.spot)  # bought hardware: any option
    assert rate.usd_per_hour == pytest.approx(node / hours)
    assert rate.basis.startswith("7 kW x PUE 1.2")
    assert target.pool_fixed_cost(catalog, None).formula.endswith(  # type: ignore[arg-type]
        "network and security nothing of its own in this stack = 0.00 USD"
    )


# --- Planning onto a site: its nodes are shared by every pool placed there.


def _spill_file(nodes: int) -> str:
    return f"""
organization: acme
region: us-east-1
sites:
  - name: dc1
    kind: kubernetes
    context: dc1-admin
    gpu: h100
    gpus_per_node: 8
    nodes: {nodes}
    node_selector: {{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
    storage_class: fast-nvme
    weights_source: s3://models.internal/weights
    cost: {{owned: true}}
{LOAD_BALANCER}  - name: aws
    kind: aws
workloads:
  - name: notes
    task: summarization
    data: regulated
    monthly_tokens: {{input: 6B, output: 1.2B}}
    consumers: [{{cidr: 10.50.0.0/16}}]
  - name: contracts
    task: legal_analysis
    data: regulated
    monthly_tokens: {{input: 300M, output: 30M}}
    consumers: [{{cidr: 10.30.0.0/16}}]
    request: {{input_tokens: 30000, output_tokens: 3000}}
"""


def _plan(text: str, strategy: str) -> Plan:
    catalog = default_catalog()
    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest()
    )
    return build_plan(loaded, catalog, "dev", "workloads.yaml", strategy)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_a_full_site_spills_to_aws_and_says_what_it_costs(strategy: str) -> None:
    plan = _plan(_spill_file(1), strategy)
    on_site = [p for p in plan.pools if p.site == "dc1"]
    assert sum(p.nodes for p in on_site) <= 1
    assert all(p.instance_type == "dc1" for p in on_site)
    assert all(p.site == "aws" for p in plan.pools if p.instance_type.startswith("p5"))
    contracts = next(w for w in plan.workloads if w.name == "contracts")
    (warning,) = [w for w in contracts.warnings if w.code == "site_full"]
    assert warning.message.startswith("site dc1 has only 1 GPU node(s) and ")
    assert "decided alone, the workload goes to self_hosted/deepseek-v3.2/p5" in warning.message
    pool = next(p for p in plan.pools if "contracts" in p.workloads)
    assert pool.site == "aws"
    if strategy == "per-workload":  # notes alone is cheapest on the owned node
        notes = next(p for p in plan.pools if p.workloads == ["notes"])
        assert (notes.site, notes.nodes) == ("dc1", 1)


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_a_site_with_room_takes_every_pool(strategy: str) -> None:
    plan = _plan(_spill_file(4), strategy)
    assert {p.site for p in plan.pools} == {"dc1"}
    assert sum(p.nodes for p in plan.pools) <= 4
    assert not [w for p in plan.workloads for w in p.warnings if w.code == "site_full"]
    # Their callers by range are outside the cluster, reached through its load balancer: not
    # "callers inside the stack's own network", as an EC2 pool's would be.
    assert not [w for p in plan.workloads for w in p.warnings if w.code == "consumers_inside"]


def test_a_workload_only_a_full_site_serves_is_an_error_naming_it() -> None:
    text = _spill_file(1).replace("  - name: aws\n    kind: aws\n", "")
    text = text.replace(
        "    request: {input_tokens: 30000",
        "    model: deepseek-v3.2\n    request: {input_tokens: 30000",
    )
    with pytest.raises(PlannerError) as raised:
        _plan(text, "per-workload")
    (problem,) = raised.value.problems
    assert problem.field == "workloads[1]"
    assert "site dc1 has 0 of its 1 GPU nodes left" in problem.message


def _site_context(nodes: int) -> Context:
    """The optimizer tests' settings (tests/test_optimize.py), with a site of these nodes."""
    site = _site(owned=True).model_copy(update={"nodes": nodes})
    return Context(
        catalog=default_catalog(),
        settings=replace(OPTIMIZER_CONTEXT.settings, sites=(site, AwsSite(name="aws", kind="aws"))),
        book=FigureBook(),
        region="us-east-1",
    )


SITE_CONTEXT = _site_context(2)
# One and two nodes a unit on the two-node site, and one EC2 node.
SITE_CANDIDATES = {
    key: SITE_CONTEXT.by_option[key]
    for key in (
        "self_hosted/llama-4-scout/dc1",
        "self_hosted/deepseek-v3.2/dc1",
        "self_hosted/llama-4-scout/p5.48xlarge",
    )
}


@st.composite
def site_demands(draw: st.DrawFn) -> list[Demand]:
    found = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        keys = draw(st.lists(st.sampled_from(sorted(SITE_CANDIDATES)), unique=True, max_size=3))
        apis = draw(st.dictionaries(st.sampled_from(["openai"]), st.floats(0, 150_000), max_size=1))
        if not keys and not apis:
            apis = {"openai": 1_000.0}
        loads = {
            key: (draw(st.floats(0, 2.5)), 0.0, draw(st.sampled_from([0.0, 0.6]))) for key in keys
        }
        found.append(Demand(f"w{index}", apis, loads, draw(st.sampled_from([1, 2]))))
    return found


def _site_brute_force(items: list[Demand]) -> float:
    """Every assignment, those that overfill the site left out (inf: none fits)."""
    best = float("inf")
    for assignment in itertools.product(*([*sorted(d.candidates), *sorted(d.apis)] for d in items)):
        total, groups = 0.0, {}
        for demand, chosen in zip(items, assignment, strict=True):
            if chosen in demand.apis:
                total += demand.apis[chosen]
            else:
                groups.setdefault(chosen, []).append(demand)
        units = {
            key: units_for([d.candidates[key] for d in group], max(d.min_units for d in group))
            for key, group in groups.items()
        }
        if overfull(units, SITE_CANDIDATES):
            continue
        total += sum(
            n * SITE_CANDIDATES[k].unit_monthly_usd + SITE_CANDIDATES[k].fixed_usd
            for k, n in units.items()
        )
        best = min(best, total)
    return best


@settings(max_examples=int(os.environ.get("OPTIMIZE_EXAMPLES", "60")), deadline=None)
@given(site_demands())
def test_the_optimum_keeps_the_site_within_its_nodes(items: list[Demand]) -> None:
    solution = solve(items, SITE_CANDIDATES)
    best = _site_brute_force(items)
    if math.isinf(best):  # nothing fits: the plan says so (planning refuses it)
        assert overfull(solution.units, SITE_CANDIDATES)
        return
    assert not overfull(solution.units, SITE_CANDIDATES)
    assert abs(solution.total_usd - best) <= 1e-6 * max(1.0, solution.total_usd)
    site_nodes = sum(
        n * SITE_CANDIDATES[k].capacity.nodes_per_unit
        for k, n in solution.units.items()
        if SITE_CANDIDATES[k].target.name == "dc1"
    )
    assert site_nodes <= 2


def test_a_plan_states_what_a_cluster_site_must_provide() -> None:
    """Issue 16: the technical perimeter on a cluster rests on what the cluster provides (a CNI
    that enforces NetworkPolicy, DNS that resolves no outside name, no node-level egress): the
    plan states each with its source, in plan.json and plan.md."""
    from planner.render.plan_files import plan_markdown

    catalog = default_catalog()
    plan = _plan(_spill_file(4), "per-workload")
    [site] = plan.sites
    assert [a.split(":")[0] for a in site.assumptions] == [
        "its network plugin (CNI) enforces NetworkPolicy for ingress and egress",
        "the cluster DNS answers the pool's pods no name outside the cluster but the weights' "
        "store's (the host of the stack config's clusters.<site>.weights_endpoint, an address "
        "inside its weights_cidr, which the init step copies the weights from) (CoreDNS "
        "forwarding limited for them, or a DNS-level deny)",
        "its GPU nodes give the pool's traffic no way around the policies",
        # (No ipBlock-from-pods assumption: callers by range are outside the cluster, reached
        # through the load balancer; pods are admitted by their namespace.)
        "its GPU nodes this planner may use (the site's `nodes`) run none of the cluster's other "
        "workloads, only its DaemonSets",
        "each of its GPU nodes has at least the CPUs and memory the plan's pods there request "
        "(sites[].pod_cpus, sites[].pod_memory_mib) allocatable",
        "its GPU nodes carry no taint of effect NoSchedule or NoExecute that the site's "
        "tolerations (sites[].tolerations, which every pod of its pools carries) do not tolerate",
        "the storage class of the weights' volumes (sites[].storage_class) binds a claim where "
        "its pod is scheduled (volumeBindingMode WaitForFirstConsumer",
        # The site has an internal load balancer: what it must do is stated too.
        "the site's load-balancer implementation makes the pools' LoadBalancer Services "
        "internal (an address in the organization's network only) from the annotations and "
        "class the site states (sites[].load_balancer), and the Service's "
        "loadBalancerSourceRanges limit who reaches it",
        "the load balancer sends traffic to the pods' own addresses and honours "
        "allocateLoadBalancerNodePorts",
        "the load balancer keeps the caller's source address up to the pod (externalTrafficPolicy "
        "Local, and client IP preservation where it is a setting",
        # The site names the ranges its load balancer checks the pods from: the pools admit
        # them, so the plan says what else must not be there.
        "the ranges the site gives for the load balancer's health checks "
        "(sites[].load_balancer.health_check_cidrs, which the pools' NetworkPolicies admit on "
        "the serving port beside the consumers) hold the load balancer's own addresses and "
        "nothing else that may call a pool",
        "the load balancer reaches the pods' own addresses",
    ]
    assert all(a.endswith(", 2026-12)") for a in site.assumptions)
    assert len(catalog.cluster_assumptions) + len(catalog.load_balancer_assumptions) + len(
        catalog.health_check_assumptions
    ) == len(site.assumptions)
    markdown = plan_markdown(plan, catalog)
    assert "Pools on the cluster site dc1 (kubeconfig context `dc1-admin`" in markdown
    for assumption in site.assumptions:
        assert f"- {assumption}" in markdown


def test_a_cluster_pool_is_named_owned_not_by_the_plan_s_purchase_option() -> None:
    """A cluster's node is bought hardware: its formula, the pools table and the purchase-option
    lines say owned (or bought), never the plan's on_demand."""
    from planner.render.plan_files import plan_markdown

    plan = _plan(_spill_file(4), "optimal")
    [pool] = plan.pools
    assert (pool.site, [o.option for o in pool.purchase_options]) == ("dc1", ["owned"])
    economics = plan.workloads[0].answers.volume_economics
    chosen = next(o for o in economics.options if o.id == economics.chosen)
    assert " USD/h (owned: 7 kW x PUE " in chosen.formula
    assert "on_demand" not in chosen.formula
    markdown = plan_markdown(plan, default_catalog())
    assert f"| TP {pool.tensor_parallel} x PP {pool.pipeline_parallel} | owned | technical |" in (
        markdown
    )
    assert f"Pool {pool.name} runs on the cluster site dc1, whose nodes are bought hardware, " in (
        markdown
    )
    assert f"| {pool.name} | no price |" not in markdown
    # Review of issue 16: what plan.md says of reaching the pool is the cluster's, not AWS's.
    assert "A pool on a cluster site costs its nodes (bought hardware)" in markdown
    assert "`https://serving.<namespace>.svc.cluster.local:8000/v1`" in markdown
    assert "through AWS PrivateLink only" not in markdown
    assert "trusting the pool's private CA" not in markdown
    assert f"pool {pool.name} {pool.cidr}" not in markdown


def test_a_cluster_pool_s_crossover_is_one_column_of_its_bought_nodes() -> None:
    """Issue 16: where a site's pool beats the API, in one column (bought hardware costs the
    same under every purchase option); the EC2 table's four columns are not printed empty."""
    from planner.render.plan_files import plan_markdown

    text = _spill_file(4)
    head = text[: text.index("workloads:")]
    plan = _plan(
        head + "workloads:\n  - name: support\n    task: faq\n    data: internal\n"
        "    monthly_tokens: {input: 40B, output: 8B}\n    consumers: [{cidr: 10.50.0.0/16}]\n",
        "optimal",
    )
    [pool] = plan.pools
    assert pool.site == "dc1" and pool.crossover
    # One row an API, paid as the site's hardware (owned), never as an EC2 purchase option.
    [row] = [c for c in pool.crossover if c.purchase == "owned"]
    assert {c.purchase for c in pool.crossover} == {"owned"}
    assert row.monthly_tokens is not None
    markdown = plan_markdown(plan, default_catalog())
    assert "| pool (tokens a month now) | against | owned nodes |" in markdown
    assert f"| {pool.name} (" in markdown and f": {row.api_option} | " in markdown
    assert "| pool (tokens a month now) | against | on-demand |" not in markdown


VPC_CALLERS = (
    "consumers: [{cidr: 10.50.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, "
    "subnets: [subnet-0a1b2c3d4e5f60718]}]"
)


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_callers_in_a_vpc_never_get_a_pool_on_a_cluster_site(strategy: str) -> None:
    """A cluster pool is a ClusterIP Service (no internal load balancer or ingress yet): a
    workload whose callers name a VPC or an account is planned off the site, and says why."""
    text = _spill_file(4).replace("consumers: [{cidr: 10.50.0.0/16}]", VPC_CALLERS)
    plan = _plan(text, strategy)
    notes = next(w for w in plan.workloads if w.name == "notes")
    assert notes.pool is not None
    assert next(p for p in plan.pools if p.name == notes.pool).site == "aws"
    economics = notes.answers.volume_economics
    assert "left out because its callers name a VPC or an account" in economics.reason
    assert "self_hosted/llama-3.3-70b/dc1" in economics.reason
    assert not any(o.id.endswith("/dc1") for o in economics.options)


def test_callers_in_a_vpc_with_only_a_cluster_site_are_an_error_naming_them() -> None:
    text = _spill_file(4).replace("  - name: aws\n    kind: aws\n", "")
    text = text.replace("consumers: [{cidr: 10.50.0.0/16}]", VPC_CALLERS)
    with pytest.raises(PlannerError) as raised:
        _plan(text, "per-workload")
    [problem] = raised.value.problems
    assert problem.field == "workloads[0].consumers"
    assert problem.message.startswith(
        "its callers name a VPC or an account, for which a cluster site makes no PrivateLink "
        "endpoint, and every option allowed runs on one: let the workload use AWS or an API ("
    )


NO_LOAD_BALANCER = LOAD_BALANCER


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_a_site_without_a_load_balancer_gets_no_pool_of_callers_by_range(strategy: str) -> None:
    """Callers given by their range are outside the cluster: a site without an internal load
    balancer cannot be reached by them, so their workloads go to AWS, and say why; with one
    (test_a_site_with_room_takes_every_pool) the same file puts every pool on the site."""
    text = _spill_file(4)
    assert NO_LOAD_BALANCER in text
    plan = _plan(text.replace(NO_LOAD_BALANCER, ""), strategy)
    assert plan.pools and {p.site for p in plan.pools} == {"aws"}
    assert all(
        [w.code for w in p.warnings if w.code == "consumers_inside"] == ["consumers_inside"]
        for p in plan.workloads
    )
    [site] = plan.sites
    assert site.load_balancer is None  # and no load balancer's assumptions are stated
    assert len(site.assumptions) == len(default_catalog().cluster_assumptions)
    for workload in plan.workloads:
        economics = workload.answers.volume_economics
        assert not any(o.id.endswith("/dc1") for o in economics.options)
        assert (
            "left out because its callers are given by their range, outside the cluster, and "
            "the cluster site has no internal load balancer (sites[].load_balancer): "
            "self_hosted/" in economics.reason
        )
    only_site = text.replace(NO_LOAD_BALANCER, "").replace("  - name: aws\n    kind: aws\n", "")
    with pytest.raises(PlannerError) as raised:
        _plan(only_site, "per-workload")
    assert [p.field for p in raised.value.problems] == [
        "workloads[0].consumers", "workloads[1].consumers",
    ]  # fmt: skip
    assert "give the site a load_balancer, or let the workload use AWS or an API" in (
        raised.value.problems[0].message
    )


def test_the_plan_records_a_site_s_load_balancer_and_what_it_must_do() -> None:
    """plan.json sites[] carries the load balancer the stack's Services use, with the three
    assumptions of kubernetes.yaml (internal, no node ports, the source kept); plan.md says
    how callers outside the cluster reach the pool."""
    from planner.render.plan_files import plan_markdown

    catalog = default_catalog()
    plan = _plan(_spill_file(4), "per-workload")
    [site] = plan.sites
    assert site.load_balancer is not None
    assert site.load_balancer.model_dump() == {
        "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": (
                "preserve_client_ip.enabled=true"
            ),
            "service.beta.kubernetes.io/aws-load-balancer-subnets": "llm-dc1-a, llm-dc1-b",
        },
        "load_balancer_class": "service.k8s.aws/nlb",
        "dns_suffix": "llm.dc1.internal",
        "health_check_cidrs": ["10.250.0.0/24"],
    }
    lb = [f"{a.text} ({a.source}, {a.date})" for a in catalog.load_balancer_assumptions]
    assert [a.id for a in catalog.load_balancer_assumptions] == [
        "load_balancer_internal", "load_balancer_no_node_ports", "load_balancer_keeps_source",
    ]  # fmt: skip
    checks = len(catalog.health_check_assumptions)
    assert site.assumptions[-3 - checks : -checks] == lb
    assert len(site.assumptions) == len(catalog.cluster_assumptions) + 3 + checks
    markdown = plan_markdown(plan, catalog)
    assert "through the site's internal load balancer" in markdown
    assert "`https://<namespace>.llm.dc1.internal:8000/v1`" in markdown
    for assumption in lb:
        assert f"- {assumption}" in markdown


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        ("service.beta.kubernetes.io/aws-load-balancer-scheme: internal",
         '"Service.Beta/scheme": internal', "sites[0].load_balancer.annotations",
         "its prefix 'Service.Beta' is not a DNS subdomain"),
        ("class: service.k8s.aws/nlb", "class: service.k8s.aws/n lb",
         "sites[0].load_balancer.class", "not a loadBalancerClass"),
        ("dns_suffix: llm.dc1.internal", "dns_suffix: llm..internal",
         "sites[0].load_balancer.dns_suffix", "is not a DNS domain"),
        ("dns_suffix: llm.dc1.internal", "dns_suffix: llm.dc1.internal\n      scheme: internal",
         "sites[0].load_balancer.scheme", "unknown field"),
        ("      annotations:\n"
         "        service.beta.kubernetes.io/aws-load-balancer-scheme: internal\n"
         "        service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip\n"
         "        service.beta.kubernetes.io/aws-load-balancer-target-group-attributes:\n"
         "          preserve_client_ip.enabled=true\n"
         "        service.beta.kubernetes.io/aws-load-balancer-subnets: llm-dc1-a, llm-dc1-b\n"
         "      class: service.k8s.aws/nlb\n", "", "sites[0].load_balancer",
         "give the annotations or the class that make the cluster's load balancer internal"),
        # The AWS Load Balancer Controller's NLB: ip targets and the caller's address kept, as
        # the plan's load_balancer_assumptions say.
        ("        service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip\n", "",
         "sites[0].load_balancer",
         "give the annotations service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: "
         "ip (the plan assumes"),
        ("aws-load-balancer-nlb-target-type: ip", "aws-load-balancer-nlb-target-type: instance",
         "sites[0].load_balancer", "aws-load-balancer-nlb-target-type: ip (the plan assumes"),
        ("preserve_client_ip.enabled=true", "preserve_client_ip.enabled=false",
         "sites[0].load_balancer",
         "target-group-attributes with preserve_client_ip.enabled=true (the plan assumes"),
        # An NLB checks ip targets from its own addresses: the pools must admit its subnets,
        # and only ranges of the organization's own network.
        ("      health_check_cidrs: [10.250.0.0/24]\n", "", "sites[0].load_balancer",
         "give health_check_cidrs, the ranges of the subnets the load balancer is in"),
        # Those ranges hold the NLB's checks only where the NLB is in the subnets named.
        ("        service.beta.kubernetes.io/aws-load-balancer-subnets: llm-dc1-a, llm-dc1-b\n",
         "", "sites[0].load_balancer",
         "name the NLB's subnets with the annotation "
         "service.beta.kubernetes.io/aws-load-balancer-subnets"),
        ("subnets: llm-dc1-a, llm-dc1-b", "subnets: ' , '", "sites[0].load_balancer",
         "name the NLB's subnets"),
        ("[10.250.0.0/24]", "[0.0.0.0/0]", "sites[0].load_balancer.health_check_cidrs",
         "0.0.0.0/0 is every address"),
        ("[10.250.0.0/24]", "[10.20.0.1/24]", "sites[0].load_balancer.health_check_cidrs",
         "is not a CIDR block"),
        ("[10.250.0.0/24]", "[10.250.0.0/24, 8.8.8.0/24]",
         "sites[0].load_balancer.health_check_cidrs[1]",
         "8.8.8.0/24 is not inside the private ranges"),
    ],
)  # fmt: skip
def test_each_bad_load_balancer_field_is_named_with_its_line(
    tmp_path: Path, old: str, new: str, field: str, says: str
) -> None:
    assert old in LOAD_BALANCER
    given = LOAD_BALANCER.replace(old, new)
    assert LOAD_BALANCER.lstrip("\n") in SITE
    sites = SITE.replace(LOAD_BALANCER.lstrip("\n"), given.lstrip("\n"))
    problems = _problems(tmp_path, sites)
    assert len(problems) == 1, problems
    (found_field, found_line, message) = problems[0]
    assert (found_field, says in message) == (field, True), problems
    # A line of the load_balancer block: organization and region come before `sites:`.
    first = 2 + sites[: sites.index("load_balancer:")].count("\n") + 1
    assert found_line is not None and first <= found_line <= first + given.count("\n"), problems


@pytest.mark.parametrize(
    ("annotations", "class_", "ok"),
    [
        # The controller's type annotation instead of its class: the same NLB.
        ({"service.beta.kubernetes.io/aws-load-balancer-type": "external"}, None, False),
        ({"service.beta.kubernetes.io/aws-load-balancer-type": "external", **AWS_NLB_NEEDS},
         None, True),
        # Other attributes beside it are kept.
        ({**AWS_NLB_NEEDS,
          "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":
          "deregistration_delay.timeout_seconds=30, preserve_client_ip.enabled=true"},
         "service.k8s.aws/nlb", True),
        ({"service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"},
         "service.k8s.aws/nlb", False),
        # The legacy type nlb-ip is the same controller's NLB: the same needs.
        ({"service.beta.kubernetes.io/aws-load-balancer-type": "nlb-ip"}, None, False),
        ({"service.beta.kubernetes.io/aws-load-balancer-type": "nlb-ip", **AWS_NLB_NEEDS},
         None, True),
        # Another implementation: its own annotations, none of the AWS controller's needed.
        ({}, "example.com/internal", True),
        ({"networking.example.com/internal": "true"}, None, True),
    ],
)  # fmt: skip
def test_an_aws_nlb_must_target_pods_and_keep_the_caller_s_address(
    annotations: dict[str, str], class_: str | None, ok: bool
) -> None:
    given = {
        "annotations": {**annotations, **SUBNETS},
        "class": class_,
        "health_check_cidrs": ["10.250.0.0/24"],
    }
    if ok:
        assert LoadBalancer.model_validate(given).annotations == given["annotations"]
    else:
        with pytest.raises(ValueError, match="the plan assumes traffic to the pods' own"):
            LoadBalancer.model_validate(given)


@pytest.mark.parametrize(
    ("port", "ok"), [(None, True), ("traffic-port", True), ("8000", False), ("10254", False)]
)
def test_an_aws_nlb_checks_the_pods_on_the_port_their_policy_admits_its_checks_on(
    port: str | None, ok: bool
) -> None:
    """The pools admit health_check_cidrs on the serving port only, the NLB's traffic port: an
    NLB told to check a port by number (the loader does not know which the stack serves on)
    might find every pod unhealthy, and then fail open to all of them."""
    key = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"
    given = {
        "annotations": {**AWS_NLB_NEEDS, **SUBNETS, **({key: port} if port is not None else {})},
        "class": "service.k8s.aws/nlb",
        "health_check_cidrs": ["10.250.0.0/24"],
    }
    if ok:
        assert LoadBalancer.model_validate(given).health_check_cidrs == ["10.250.0.0/24"]
    else:
        with pytest.raises(ValueError, match=f"{key}: {port} makes the NLB check the pods"):
            LoadBalancer.model_validate(given)


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("healthy-threshold", "5", True),
        ("healthy-threshold", " 2 ", False),  # the controller parses it as given
        ("healthy-threshold", "1", False),  # below what a target group takes
        ("healthy-threshold", "11", False),
        ("healthy-threshold", "3.5", False),
        ("healthy-threshold", "\u00b3", False),  # a digit to str.isdigit, not to int()
        ("interval", "300", True),
        ("interval", "4", False),
        ("interval", "ten", False),
    ],
)
def test_an_aws_nlb_health_check_s_count_and_interval_are_whole_numbers_in_range(
    key: str, value: str, ok: bool
) -> None:
    """The stack waits for each pod's readiness gate as long as these say (stacks/boot.py
    readiness_gate_s): the loader takes only what the ELB API would (CreateTargetGroup:
    HealthyThresholdCount 2-10, HealthCheckIntervalSeconds 5-300), a clear error otherwise."""
    annotation = f"service.beta.kubernetes.io/aws-load-balancer-healthcheck-{key}"
    given = {
        "annotations": {**AWS_NLB_NEEDS, **SUBNETS, annotation: value},
        "class": "service.k8s.aws/nlb",
        "health_check_cidrs": ["10.250.0.0/24"],
    }
    if ok:
        assert LoadBalancer.model_validate(given).annotations[annotation] == value
    else:
        with pytest.raises(ValueError, match=f"{annotation}: .* is not a whole number from"):
            LoadBalancer.model_validate(given)


def test_a_horizon_from_the_assumptions_is_cited_as_the_assumptions() -> None:
    """Review of issue 16: a horizon set in assumptions.amortization_months was cited as the
    site's own cost.amortization_months, a field the file does not set."""
    catalog = default_catalog()
    sources = {
        t.cited.key: t.cited.source
        for t in KubernetesTarget(_site(owned=False), 2, amortization_months=36)
        .node_cost(catalog)
        .terms
    }
    assert sources["site.dc1.amortization_months"] == (
        "set in the workloads file: assumptions.amortization_months"
    )
    own = KubernetesTarget(_site(owned=False, amortization_months=24), 2, amortization_months=36)
    terms = {t.cited.key: t for t in own.node_cost(catalog).terms}
    assert terms["site.dc1.amortization_months"].value == 24
    assert terms["site.dc1.amortization_months"].cited.source == (
        "set in the workloads file: sites[2].cost.amortization_months"
    )


def test_a_cost_range_past_the_site_s_nodes_is_said_to_not_fit() -> None:
    """Review of issue 16: on a two-node site the optimum's pool takes both nodes, and its
    range's high end priced four (the throughput model's unfavourable end); the plan now says
    that end would not fit the site."""
    plan = _plan(_spill_file(2), "optimal")
    [pool] = [p for p in plan.pools if p.site == "dc1"]
    assert pool.nodes <= 2
    warned = [w.message for p in plan.workloads for w in p.warnings if w.code == "site_range"]
    assert warned and all(f"pool {pool.name} would need " in m for m in warned)
    assert all("which has 2 (0 taken by its other pools)" in m for m in warned)
    roomy = _plan(_spill_file(8), "optimal")
    assert not [w for p in roomy.workloads for w in p.warnings if w.code == "site_range"]


def test_a_node_the_catalog_has_no_figures_of_needs_the_file_s(tmp_path: Path) -> None:
    """A pool's pod is sized from its node's CPUs and memory: the catalog knows an 8-GPU DGX
    node of each GPU; another node's figures come from the file, each missing one named."""
    odd = SITE.replace("gpus_per_node: 8", "gpus_per_node: 4")
    problems = _problems(tmp_path, odd)
    assert [(f, "no node of 4 x h100" in m) for f, _, m in problems] == [
        ("sites[0].cpus_per_node", True),
        ("sites[0].memory_gib_per_node", True),
    ]
    given = odd.replace(
        "    cost:\n", "    cpus_per_node: 64\n    memory_gib_per_node: 512\n    cost:\n"
    )
    sites = _load(tmp_path, given).spec.sites  # type: ignore[attr-defined]
    assert (sites[0].cpus_per_node, sites[0].memory_gib_per_node) == (64, 512)


def test_the_kubelet_reserve_is_gke_s_formula() -> None:
    """GKE's published example (the hatemosphere/gke-node-allocatable-memory-calculator README
    reproduces it): a 150 GiB node keeps 9.8577 GiB with the 100 MiB eviction threshold; and
    CPU: 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % above four."""
    from planner.targets.kubernetes_nodes import reserved

    reserve = default_catalog().node_resources.kubelet_reserve
    memory = reserved(150, reserve.memory_gib_tiers) + reserve.eviction_mib / 1024
    assert round(memory, 4) == 9.8577
    assert reserved(1, reserve.cpu_tiers) == pytest.approx(0.06)
    assert reserved(4, reserve.cpu_tiers) == pytest.approx(0.08)
    assert reserved(112, reserve.cpu_tiers) == pytest.approx(0.08 + 108 * 0.0025)


def test_a_pod_is_sized_from_the_file_s_node_or_the_catalog_s() -> None:
    """plan.json's site says what each pool pod holds and the figures it rests on, each the
    file's or the catalog's, as a site's cost figures are; plan.md says it too."""
    from planner.render.plan_files import plan_markdown
    from planner.targets.kubernetes_nodes import reserved

    catalog = default_catalog()
    plan = _plan(_spill_file(4), "per-workload")
    [site] = plan.sites
    cpus = plan.figures["site.dc1.cpus_per_node"]
    assert cpus.value == site.cpus_per_node == 112
    assert str(cpus.source).startswith("NVIDIA DGX H100 datasheet")
    assert site.pod_cpus == 112 - 1 - 4  # 0.35 CPU the kubelet's, 4 the DaemonSets'
    memory = plan.figures["site.dc1.memory_gib_per_node"]
    assert memory.value == site.memory_gib_per_node == 1862
    reserve = catalog.node_resources.kubelet_reserve
    kept = reserved(1862, reserve.memory_gib_tiers) + 100 / 1024
    assert plan.figures["site.dc1.kubelet_reserved_gib"].value == round(kept, 4)
    expected = math.floor((1862 - kept - 16) * 1024)
    assert site.pod_memory_mib == expected and site.shm_mib == 15 * 1024
    assert set(site.figures) <= set(plan.figures)
    markdown = plan_markdown(plan, catalog)
    assert f"Each pod of a pool on dc1 holds a whole node: its 8 GPUs, {site.pod_cpus} CPUs" in (
        markdown
    )
    for key in site.figures:
        assert f"- {key}: " in markdown
    text = _spill_file(4).replace(
        "    cost: {owned: true}", "    cpus_per_node: 224\n    cost: {owned: true}"
    )
    [site] = _plan(text, "per-workload").sites
    assert site.pod_cpus == math.floor(224 - (0.08 + 220 * 0.0025) - 4) == 219
    given = _plan(text, "per-workload").figures["site.dc1.cpus_per_node"]
    assert given.source == "set in the workloads file: sites[0].cpus_per_node"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("memory_gib_per_node", "30", "no more than its 15360 MiB of shared memory"),
        ("cpus_per_node", "4", "4 CPUs leave a pod no whole CPU"),
    ],
)
def test_a_node_too_small_for_a_pod_is_an_error_naming_the_field(
    tmp_path: Path, field: str, value: str, says: str
) -> None:
    text = _spill_file(4).replace(
        "    cost: {owned: true}", f"    {field}: {value}\n    cost: {{owned: true}}"
    )
    path = tmp_path / "workloads.yaml"
    path.write_text(text)
    catalog = default_catalog()
    loaded = load_workloads(path, catalog)
    with pytest.raises(PlannerError) as raised:
        build_plan(loaded, catalog, "dev", "workloads.yaml", "per-workload")
    [problem] = raised.value.problems
    line = text.splitlines().index(f"    {field}: {value}") + 1
    assert (problem.field, problem.line) == (f"sites[0].{field}", line)
    assert says in problem.message


def test_a_diff_warns_of_an_update_that_holds_a_site_s_old_and_new_pools_at_once() -> None:
    """Pulumi makes a renamed pool (or one turned into a LeaderWorkerSet) before it deletes the
    old one at the update's end: `planner diff` warns where the site would hold both past its
    nodes, naming both, and says to deploy in two steps; the same plan again, or a change
    that fits beside the old pool, gives no warning."""
    from planner.diff.compare import replan_warnings

    head = _plan(_spill_file(4), "per-workload")
    [site] = head.sites
    used = sum(p.nodes for p in head.pools if p.site == "dc1")
    assert 2 * used > site.nodes
    assert replan_warnings(head, head) == []
    renamed = head.model_copy(
        update={
            "pools": [
                p.model_copy(update={"name": f"old-{p.name}"}) if p.site == "dc1" else p
                for p in head.pools
            ]
        }
    )
    [(where, code, message)] = replan_warnings(renamed, head)
    new = [p.name for p in head.pools if p.site == "dc1"]
    assert (where, code) == ("dc1", "site_replan")
    assert message.startswith(
        f"this update holds {2 * used} GPU node(s) of site dc1 at once, past its {site.nodes}"
    )
    olds = ", ".join(sorted(f"old-{name}" for name in new))
    assert f"Pulumi makes {', '.join(sorted(new))} before it deletes {olds}" in message
    assert f"first without {olds}, then this plan" in message
    # A pool turning into a LeaderWorkerSet is another resource: the same.
    pool = max((p for p in head.pools if p.site == "dc1"), key=lambda p: p.nodes)
    spanning = head.model_copy(
        update={
            "pools": [
                # Its kind flipped: a Deployment's replica made to span nodes, or the reverse.
                p.model_copy(
                    update={"tensor_parallel": 1, "pipeline_parallel": 1}
                    if p.tensor_parallel * p.pipeline_parallel > p.gpus_per_node
                    else {"pipeline_parallel": 2 * p.gpus_per_node}
                )
                if p.name == pool.name
                else p
                for p in head.pools
            ]
        }
    )
    assert used + pool.nodes > site.nodes
    assert [w[1] for w in replan_warnings(spanning, head)] == ["site_replan"]
    # A bigger site holds both: no warning.
    roomy = head.model_copy(update={"sites": [site.model_copy(update={"nodes": 2 * used})]})
    assert replan_warnings(renamed, roomy) == []


def test_past_a_full_site_the_break_even_hands_the_volume_to_the_api() -> None:
    """A site of 4 GPU nodes beats the API from some volume, but holds only its 4 units: past
    what they serve only the API serves more. The break-even, the pool's crossover and
    `planner crossover` said self-hosting stayed cheaper at any volume (an outside review: up to
    15T tokens a month for a site that holds 1.28T); they now end at the site with a crossing
    to the API, and plan.md's chart draws nothing past it."""
    text = _spill_file(4)
    head = text[: text.index("  - name: aws\n")]
    plan = _plan(
        head + "workloads:\n  - name: notes\n    task: faq\n    data: internal\n"
        "    monthly_tokens: {input: 1250B, output: 250B}\n"
        "    consumers: [{cidr: 10.50.0.0/16}]\n",
        "per-workload",
    )
    [notes] = plan.workloads
    assert notes.placement == "cloud_api"  # it does not fit the site
    break_even = notes.answers.volume_economics.break_even
    assert break_even is not None and break_even.self_hosted_option.endswith("/dc1")
    first, last = break_even.crossings[0], break_even.crossings[-1]
    assert first.cheaper == "self_hosted" and last.cheaper == "cloud_api"
    assert "the site dc1 is full there: its 4 unit(s) serve no more" in break_even.explanation
    # The chart ends at the site's capacity: the workload's own 1.5T is past it.
    assert max(break_even.chart_tokens) == last.monthly_tokens < 1_500_000_000_000
    assert break_even.crossings_up_to_tokens == last.monthly_tokens
    # A unit is a node here: four of them serve the last crossing's volume.
    [option] = [
        o for o in notes.answers.volume_economics.options if o.id == break_even.self_hosted_option
    ]
    assert option.nodes is not None and option.nodes > 4
    # `planner crossover` says the same, naming the site's crossing.
    from planner.planning.crossover import render_table, reports

    catalog = default_catalog()
    body = head + "workloads:\n  - name: notes\n    task: faq\n    data: internal\n"
    body += "    monthly_tokens: {input: 1250B, output: 250B}\n"
    body += "    consumers: [{cidr: 10.50.0.0/16}]\n"
    spec = parse_workloads(body, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(
        Path("workloads.yaml"), spec, hashlib.sha256(body.encode()).hexdigest()
    )
    table = render_table(reports(loaded, catalog, None))
    assert "API from 1.28T (site full)" in table


def test_a_node_the_catalog_does_not_price_needs_its_own_power_and_hosting(
    tmp_path: Path,
) -> None:
    """The catalog's power and hosting figures are an 8-GPU server's (a DGX H100's draw and
    10.2 kW of committed capacity): a node of 2 GPUs was priced as one, 7 kW and 1,999 USD of
    hosting a month, cited as the catalog's (an outside review). Such a site must give both."""
    two = SITE.replace("gpus_per_node: 8", "gpus_per_node: 2").replace(
        "    cost:\n", "    cpus_per_node: 64\n    memory_gib_per_node: 512\n    cost:\n"
    )
    silent = two.replace("      power_kw_per_node: 7.0\n", "").replace(
        "      hosting_usd_per_node_month: 600\n", ""
    )
    problems = _problems(tmp_path, silent)
    assert [(field, message.split(":")[0]) for field, _, message in problems] == [
        (
            "sites[0].cost.power_kw_per_node",
            "the catalog's power_kw_per_node is an 8-GPU server's, and it has no node of 2 x h100",
        ),
        (
            "sites[0].cost.hosting_usd_per_node_month",
            "the catalog's hosting_usd_per_node_month is an 8-GPU server's, and it has no node of "
            "2 x h100",
        ),
    ]
    assert all(line is not None for _, line, _ in problems)
    # Given, they are the site's figures.
    assert _load(tmp_path, two) is not None
