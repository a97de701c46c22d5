"""Consumers named by namespace (issue 16: "ingress allowed on the serving port only from the
consumers (ipBlock of their CIDRs, or namespaces they name)"): `{namespace: team-a, site: dc1}`
is the pods of namespace team-a of the Kubernetes site dc1. Loaded (each bad form named with its
field and line), planned only on that site (never on AWS or an API; a full site is reported,
not spilled), recorded in the plan, admitted by the pool's NetworkPolicy by the namespace's
name label, and verified: a selector wider than the consumers' namespaces fails open-ingress,
and the namespace consumer's way in is proven through the rule that admits it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from planner.catalog import default_catalog
from planner.errors import PlannerError
from planner.graph.resources import Graph
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Consumer, Plan, read_plan
from planner.planfile.place_checks import consumer_problems
from planner.planning import crossover
from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations
from planner.verification.kubernetes_network import way_in
from planner.verification.kubernetes_pods import NAMESPACE_NAME, NETWORK_POLICY, named_namespace
from planner.verification.kubernetes_pods import pool_view as kubernetes_pool_view
from planner.verification.registry import Subject, WorkloadVerdict
from planner.verification.run import verify
from planner.verification.ways_in import prove_ways_in
from stacks.kubernetes import network_policy
from tests.test_kubernetes_stack import CLUSTERS, SITE, _run, by_kind, manifests, validate
from tests.test_kubernetes_verify import (
    Case,
    _case,
    changed,
    check,
    failures,
    namespace,
    pool_subject,
)
from tests.test_policy import violations
from tests.test_sites import _plan, _spill_file

TEAM_A = "{namespace: team-a, site: dc1}"


def _file(consumers: str, sites: str = SITE, extra: str = "") -> str:
    return (
        sites
        + f"""\
  - name: triage
    task: classification
    data: regulated
    monthly_tokens: {{input: 20B, output: 500M}}
    consumers: {consumers}
{extra}"""
    )


def _problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(PlannerError) as raised:
        parse_workloads(text, "workloads.yaml", default_catalog())
    return [(p.field, p.line, p.message) for p in raised.value.problems]


# --- Loading.


def test_a_namespace_of_a_site_is_a_consumer_beside_ranges() -> None:
    spec = parse_workloads(_file(f"[{TEAM_A}, 10.20.0.0/16]"), "workloads.yaml", default_catalog())
    namespaced, ranged = spec.workloads[0].consumers
    assert (namespaced.namespace, namespaced.site, namespaced.cidr) == ("team-a", "dc1", None)
    assert (ranged.cidr, ranged.namespace, ranged.site) == ("10.20.0.0/16", None, None)


# The `consumers:` line of _file's workload (1-based).
CONSUMERS_LINE = _file("[]").splitlines().index("    consumers: []") + 1


@pytest.mark.parametrize(
    ("consumer", "field", "words"),
    [
        (
            "{namespace: Team_A, site: dc1}",
            "workloads[0].consumers[0].namespace",
            "'Team_A' is not a Kubernetes namespace name, a DNS label",
        ),
        (
            f"{{namespace: {'a' * 64}, site: dc1}}",
            "workloads[0].consumers[0].namespace",
            "is not a Kubernetes namespace name, a DNS label: at most 63",
        ),
        (
            "{namespace: team-a}",
            "workloads[0].consumers[0]",
            "namespace team-a needs the site (a Kubernetes site of `sites`)",
        ),
        (
            "{namespace: team-a, site: dc2}",
            "workloads[0].consumers[0].site",
            "'dc2' is not a Kubernetes site of the file; its Kubernetes sites are: dc1",
        ),
        (
            "{namespace: team-a, site: aws}",
            "workloads[0].consumers[0].site",
            "'aws' is not a Kubernetes site of the file (aws is AWS: a namespace is in a cluster)",
        ),
        (
            "{cidr: 10.20.0.0/16, namespace: team-a, site: dc1}",
            "workloads[0].consumers[0]",
            "give cidr (the callers' range) or namespace with site",
        ),
        (
            "{site: dc1}",
            "workloads[0].consumers[0]",
            "give cidr (the callers' range) or namespace with site",
        ),
        (
            "{cidr: 10.20.0.0/16, site: dc1}",
            "workloads[0].consumers[0]",
            "site goes with namespace",
        ),
        (
            "{namespace: team-a, site: dc1, account: '111122223333'}",
            "workloads[0].consumers[0]",
            "vpc, subnets and account go with a cidr",
        ),
    ],
)
def test_each_bad_namespace_consumer_is_named_with_its_line(
    consumer: str, field: str, words: str
) -> None:
    [(where, line, message)] = _problems(_file(f"[{consumer}]"))
    assert where == field
    assert line == CONSUMERS_LINE
    assert words in message


def test_a_workload_s_namespaces_are_on_one_site() -> None:
    dc1 = SITE[SITE.index("  - name: dc1") : SITE.index("  - name: aws")]
    sites = SITE.replace("workloads:\n", dc1.replace("name: dc1", "name: dc2") + "workloads:\n")
    [(where, _, message)] = _problems(_file(f"[{TEAM_A}, {{namespace: team-b, site: dc2}}]", sites))
    assert where == "workloads[0].consumers[1].site"
    assert "site dc2, but consumers[0] names site dc1: one workload's namespaces" in message


def test_a_file_without_a_kubernetes_site_names_none() -> None:
    text = "organization: acme\nregion: us-east-1\nworkloads:\n" + _file(f"[{TEAM_A}]", sites="")
    [(where, _, message)] = _problems(text)
    assert where == "workloads[0].consumers[0].site"
    assert "the file names no Kubernetes site" in message


# --- Planning.

SMALL = """\
  - name: tags
    task: classification
    data: internal
    monthly_tokens: {{input: 20M, output: 1M}}
    consumers: [{consumer}]
"""


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_pods_of_a_site_are_served_on_that_site_only(strategy: str) -> None:
    """A small internal workload an API serves cheapest goes to the site when its callers are
    the site's pods: neither an API nor an EC2 pool can be connected to them."""
    alone = _spill_file(4)[: _spill_file(4).index("workloads:\n") + len("workloads:\n")]
    plain = _plan(alone + SMALL.format(consumer="10.40.0.0/16"), strategy)
    [tags] = plain.workloads
    assert tags.placement == "cloud_api"  # the precondition: its callers by range, an API's
    plan = _plan(alone + SMALL.format(consumer=TEAM_A), strategy)
    [tags] = plan.workloads
    assert tags.placement == "self_hosted" and tags.pool is not None
    assert next(p for p in plan.pools if p.name == tags.pool).site == "dc1"
    economics = tags.answers.volume_economics
    assert economics.options and all(o.id.endswith("/dc1") for o in economics.options)
    assert (
        "only options on site dc1 were admitted: its consumers are the pods of namespace "
        "team-a on site dc1, which an API or an EC2 pool cannot reach" in economics.reason
    )
    assert [c.text() for c in tags.consumers] == ["namespace team-a on site dc1"]


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_pods_of_a_site_take_its_nodes_before_workloads_that_may_go_elsewhere(
    strategy: str,
) -> None:
    """One node: notes (first in the file, callers by range) would take it; tags, whose callers
    are the site's pods, gets it, and notes goes to AWS or an API with the site_full warning."""
    plan = _plan(_spill_file(1) + SMALL.format(consumer=TEAM_A), strategy)
    [tags] = [w for w in plan.workloads if w.name == "tags"]
    assert next(p for p in plan.pools if p.name == tags.pool).site == "dc1"
    assert sum(p.nodes for p in plan.pools if p.site == "dc1") <= 1
    [notes] = [w for w in plan.workloads if w.name == "notes"]
    assert notes.pool is None or next(p for p in plan.pools if p.name == notes.pool).site == "aws"
    if strategy == "per-workload":
        assert [w.code for w in notes.warnings if w.code == "site_full"] == ["site_full"]


def test_a_full_site_cannot_spill_pods_it_serves_and_says_so() -> None:
    pinned = SMALL.format(consumer=TEAM_A) + "    model: deepseek-v3.2\n"
    with pytest.raises(PlannerError) as raised:
        _plan(_spill_file(1) + pinned, "per-workload")
    [problem] = raised.value.problems
    assert problem.field == "workloads[2]"
    # Nothing is bound to the site before it: the site's size is why (review of issue 16).
    assert problem.message.startswith("site dc1 has only 1 GPU node(s), and no option ")
    assert "no option of this workload fits them (self_hosted/deepseek-v3.2/dc1 needs 2)" in (
        problem.message
    )
    assert "its consumers are the pods of namespace team-a on site dc1, so it cannot go to AWS" in (
        problem.message
    )


def test_an_api_pinned_for_pods_of_a_site_is_an_error_naming_the_pin() -> None:
    pinned = SMALL.format(consumer=TEAM_A) + "    model: claude-haiku-4.5\n"
    with pytest.raises(PlannerError) as raised:
        _plan(_spill_file(4) + pinned, "per-workload")
    [problem] = raised.value.problems
    assert problem.field == "workloads[2].model"
    assert (
        "its consumers are the pods of namespace team-a on site dc1, which only a self-hosted "
        "pool on site dc1 reaches; the pinned model claude-haiku-4.5 is an API" in problem.message
    )


def test_pods_of_a_site_and_callers_in_a_vpc_cannot_share_a_workload() -> None:
    consumers = (
        f"{TEAM_A}, {{cidr: 10.50.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, "
        "subnets: [subnet-0a1b2c3d4e5f60718]}"
    )
    with pytest.raises(PlannerError) as raised:
        _plan(_spill_file(4) + SMALL.format(consumer=consumers), "per-workload")
    [problem] = raised.value.problems
    assert problem.field == "workloads[2].consumers"
    assert "its other consumers (10.50.0.0/16 in vpc-0a1b2c3d4e5f60718) are outside" in (
        problem.message
    )


def test_a_quality_ceiling_on_the_site_says_the_site_is_why() -> None:
    """legal_analysis needs a frontier model; the site serves open models only."""
    text = _spill_file(4).replace("consumers: [{cidr: 10.30.0.0/16}]", f"consumers: [{TEAM_A}]")
    plan = _plan(text, "per-workload")
    [contracts] = [w for w in plan.workloads if w.name == "contracts"]
    [warning] = [w for w in contracts.warnings if w.code == "quality_ceiling"]
    assert " on site dc1, the only place it may be served (its consumers are the pods of " in (
        warning.message
    )


# --- The plan file.


@pytest.fixture
def ns_single(project: Path, capsys: pytest.CaptureFixture[str]) -> Case:
    case = _case(project, _file(f"[{TEAM_A}, {{cidr: 10.20.0.0/16}}]"))
    capsys.readouterr()
    return case


def test_the_plan_records_the_namespace_and_refuses_it_off_its_site(
    ns_single: Case, project: Path
) -> None:
    path = project / "plans/dev/plan.json"
    document = json.loads(path.read_text())
    [triage] = document["workloads"]
    assert triage["consumers"][0] == {
        "cidr": None, "vpc": None, "subnets": [], "account": None,
        "namespace": "team-a", "site": "dc1",
    }  # fmt: skip
    assert "called from namespace team-a on site dc1, 10.20.0.0/16." in (
        (project / "plans/dev/plan.md").read_text()
    )
    schema = json.loads((Path(__file__).parents[1] / "schema/plan.schema.json").read_text())
    assert {"namespace", "site"} <= set(schema["$defs"]["Consumer"]["properties"])
    # Tampered: the namespace on a site the plan does not have, then beside a range.
    for change, field, words in (
        ({"site": "dc9"}, "workloads[0].consumers[0].site", "'dc9' is not a Kubernetes site"),
        ({"cidr": "10.21.0.0/16"}, "workloads[0].consumers[0]", "exactly one of them"),
    ):
        bad = json.loads(json.dumps(document))
        bad["workloads"][0]["consumers"][0].update(change)
        path.write_text(json.dumps(bad))
        with pytest.raises(PlannerError) as raised:
            read_plan(path)
        assert any(p.field == field and words in p.message for p in raised.value.problems)


def test_a_plan_serving_pods_of_a_site_off_it_is_refused() -> None:
    """The planner never puts such a workload on AWS: a plan file that does is refused."""
    plan = _plan(_spill_file(4).replace("{cidr: 10.50.0.0/16}", TEAM_A), "per-workload")
    assert consumer_problems(plan, default_catalog()) == []
    document = json.loads(plan.model_dump_json())
    [notes] = [w for w in document["workloads"] if w["name"] == "notes"]
    [pool] = [p for p in document["pools"] if p["name"] == notes["pool"]]
    pool["site"] = "aws"
    [problem] = consumer_problems(Plan.model_validate(document), default_catalog())
    assert problem.field == "workloads[0].pool"
    assert (
        f"its consumers are pods of namespace team-a on site dc1, but it is served by pool "
        f"{notes['pool']} on site aws" in problem.message
    )


# --- The stack.


def test_the_allow_policy_admits_the_namespace_by_its_name_label(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(project, _file(f"[{TEAM_A}, {{cidr: 10.20.0.0/16}}]"))
    capsys.readouterr()
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(run, "NetworkPolicy")}
    consumers, _own = policies["serving"]["ingress"]
    assert consumers["from"] == [
        {"ipBlock": {"cidr": "10.20.0.0/16"}},
        {"ipBlock": {"cidr": "10.250.0.0/24"}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}}},
    ]
    assert consumers["ports"] == [{"protocol": "TCP", "port": 8000}]
    for manifest in manifests(run).values():
        validate(manifest)  # kubernetes-validate: the policy with its selector is valid


def test_the_stack_and_the_verifier_name_namespaces_by_one_label() -> None:
    assert network_policy.NAMESPACE_NAME == NAMESPACE_NAME == "kubernetes.io/metadata.name"
    assert named_namespace({"matchLabels": {NAMESPACE_NAME: "team-a"}}) == "team-a"
    for wider in ({}, {"matchLabels": {"team": "a"}}, {"matchExpressions": []},
                  {"matchLabels": {NAMESPACE_NAME: "team-a", "x": "y"}}):  # fmt: skip
        assert named_namespace(wider) is None


# --- Verify and the policy pack.


def _consumer_peers(inputs: dict[str, Any]) -> list[Any]:
    return list(inputs["spec"]["ingress"][0]["from"])


def test_a_namespace_consumer_s_way_in_is_proven(ns_single: Case) -> None:
    report = check(ns_single)
    assert report.failures() == [] and report.status.value == "PASS"
    ns = namespace(ns_single)
    pods = f"pods of Deployment {ns}/serving (pod template)"
    blocks = "\n".join(pool_subject(report).blocks)
    assert f"{pods}: ingress only from 10.20.0.0/16 on TCP 8000 (a consumer's range); " in blocks
    assert "namespace team-a on TCP 8000 (a consumer's namespace)" in blocks
    [triage] = report.workloads
    assert (
        "consumer namespace team-a (pods of site dc1) -> NetworkPolicy "
        f"{ns}/serving ingress rule 1 (from namespace team-a on TCP 8000) -> Service "
        f"{ns}/serving (LoadBalancer's cluster IP, port 8000) -> {pods}"
    ) in triage.ways_in
    assert len(triage.ways_in) == 2


def _widened(case: Case, peers: list[Any]) -> Any:
    graph, plan = case

    def change(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"] = peers

    return check((changed(graph, NETWORK_POLICY, "serving",
                          change), plan))  # fmt: skip


def test_the_consumer_namespace_widened_to_every_namespace_fails(ns_single: Case) -> None:
    report = _widened(ns_single, [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"namespaceSelector": {}}])
    [finding] = failures(report, "open-ingress")
    assert "admits namespaces all on TCP 8000: an empty namespaceSelector selects every " in (
        finding.message
    )
    assert finding.witness[0] == "namespaces all"
    # The rule no longer admits team-a by name: its way in is refused too.
    [blocked] = failures(report, "way-in")
    assert blocked.resource == "consumer namespace team-a (pods of site dc1)"
    assert "admits namespace team-a on TCP 8000" in blocked.message


def test_another_namespace_added_fails(ns_single: Case) -> None:
    graph, _ = ns_single
    [policy] = [r for r in graph.resources.values() if r.type == NETWORK_POLICY
                and r.inputs["metadata"]["name"] == "serving"]  # fmt: skip
    peers = _consumer_peers(policy.inputs)
    other = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: "team-b"}}}
    report = _widened(ns_single, [*peers, other])
    [finding] = failures(report, "open-ingress")
    assert "admits the pods of namespace team-b, which no consumer names (the consumers' " in (
        finding.message
    )
    assert finding.witness[0] == "namespace team-b"
    assert failures(report, "way-in") == []  # team-a still gets in: only team-b is extra


@pytest.mark.parametrize(
    ("peer", "words"),
    [
        (
            {"namespaceSelector": {"matchLabels": {"team": "a"}}},
            "a namespaceSelector not by the namespace's name",
        ),
        ({"podSelector": {"matchLabels": {"app": "debug"}}}, "neither the pool's own pods"),
        (
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: "team-a"}},
                "podSelector": "every pod",
            },
            "a namespaceSelector not by the namespace's name",
        ),
    ],
)
def test_a_selector_wider_than_the_consumers_fails(
    ns_single: Case, peer: dict[str, Any], words: str
) -> None:
    graph, _ = ns_single
    [policy] = [r for r in graph.resources.values() if r.type == NETWORK_POLICY
                and r.inputs["metadata"]["name"] == "serving"]  # fmt: skip
    report = _widened(ns_single, [*_consumer_peers(policy.inputs), peer])
    [finding] = failures(report, "open-ingress")
    assert words in finding.message


def test_the_consumer_namespace_on_another_port_fails(ns_single: Case) -> None:
    graph, plan = ns_single

    def other_port(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"].append(
            {
                "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: "team-a"}}}],
                "ports": [{"protocol": "TCP", "port": 22}],
            }
        )

    report = check((changed(graph, NETWORK_POLICY, "serving",
                            other_port), plan))  # fmt: skip
    [finding] = failures(report, "open-ingress")
    assert "admits the consumers' namespace team-a on TCP 22, not only the serving port" in (
        finding.message
    )


def test_a_namespace_consumer_of_another_site_has_no_way_in(ns_single: Case) -> None:
    graph, plan = ns_single
    [pool] = plan.pools
    view = kubernetes_pool_view(graph, pool.name)
    caller = plan.workloads[0].consumers[0]
    path, blocked = way_in(view, Subject("pool", f"pool {pool.name}", "technical", []), caller,
                           "dc2")  # fmt: skip
    assert path == []
    assert blocked is not None and "pods of site dc1's cluster, and the pool runs on site dc2" in (
        blocked
    )


def test_the_policy_pack_fails_a_widened_namespace_selector(ns_single: Case, project: Path) -> None:
    graph, _ = ns_single
    config = {"plan": str(project / "plans/dev/plan.json"), "clusters": CLUSTERS}
    assert violations(graph, config) == []

    def widen(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})

    found = violations(changed(graph, NETWORK_POLICY, "serving", widen), config)
    assert any(
        v.startswith("[open-ingress] pods of Deployment") and "every namespace" in v for v in found
    )


def test_without_the_plan_a_named_namespace_passes_and_every_namespace_fails(
    ns_single: Case,
) -> None:
    """Without a plan the consumers are unknown: a namespace selected by its name passes (as
    an ipBlock short of everything does), `{}` still fails. (The range consumer's internal
    LoadBalancer is public-ip without the plan that states the site's load balancer: its one
    failure.)"""
    graph, _ = ns_single
    expect = Expectations.of(None, default_catalog(), clusters=CLUSTERS)
    assert [f.rule for f in verify(graph, expect).failures()] == ["public-ip"]

    def widen(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})

    report = verify(changed(graph, NETWORK_POLICY, "serving", widen), expect)
    [finding] = failures(report, "open-ingress")
    assert "an empty namespaceSelector selects every namespace of the cluster" in finding.message


def test_pods_of_a_site_have_no_way_into_an_aws_network() -> None:
    """Were a plan to serve such a workload on AWS (read_plan refuses it), the AWS ways in say
    why the pods cannot reach it rather than reading a range they do not have."""
    caller = Consumer(namespace="team-a", site="dc1")
    expect = Expectations.of(None, default_catalog())
    expect.consumers["triage"] = [caller]
    verdict = WorkloadVerdict("triage", "technical", "pool triage-aws")
    subject = Subject("pool", "pool triage-aws", "technical", ["triage"])
    prove_ways_in(Network(Graph.of([])), expect, verdict, [subject])
    [finding] = verdict.failures
    assert finding.resource == "consumer namespace team-a (pods of site dc1)"
    assert (
        "its callers are the pods of namespace team-a of site dc1's cluster: only a pool on that "
        "site admits them, and pool triage-aws is not one" in finding.message
    )
    assert verdict.ways_in == []


def test_the_crossover_says_why_no_api_is_compared() -> None:
    alone = _spill_file(4)[: _spill_file(4).index("workloads:\n") + len("workloads:\n")]
    text = alone + SMALL.format(consumer=TEAM_A)
    catalog = default_catalog()
    loaded = LoadedWorkloads(
        Path("workloads.yaml"),
        parse_workloads(text, "workloads.yaml", catalog),
        hashlib.sha256(text.encode()).hexdigest(),
    )
    table = crossover.render_table(crossover.reports(loaded, catalog, None))
    assert "  none: its consumers are the pods of namespace team-a on site dc1, which no API " in (
        table
    )


def test_an_admission_error_on_the_site_says_the_site_is_why() -> None:
    """No option of the site reaches the per-user speed asked: the error says that only the
    site's options were allowed, and why."""
    fast = SMALL.format(consumer=TEAM_A) + "    user_output_tps: 5000\n"
    with pytest.raises(PlannerError) as raised:
        _plan(_spill_file(4) + fast, "per-workload")
    [problem] = raised.value.problems
    assert problem.field == "workloads[2].user_output_tps"
    assert "no option allowed reaches 5000 output tokens/s a user" in problem.message
    assert problem.message.endswith(
        "(only options on site dc1 are allowed: its consumers are the pods of namespace team-a "
        "on site dc1, which an API or an EC2 pool cannot reach)"
    )
