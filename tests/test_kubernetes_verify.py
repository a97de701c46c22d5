"""`planner verify` for pools on a Kubernetes site (issue 16, "Verification and validation"): the
Kubernetes network model (planner/verification/kubernetes_network.py) over the graph of the real
program run under mocks for a plan with a site, unchanged (it passes, saying what blocks each way
out and proving each consumer's way in) and changed as the issue lists (each fails, with its
rule and a witness): the deny policy removed, an egress ipBlock of 0.0.0.0/0 added, hostNetwork
set, a NodePort Service added, the consumer ipBlock widened; and a kind the model does not know
selecting the pool's pods, a public load balancer, egress the stack config does not name."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.catalog import default_catalog
from planner.cli.app import main
from planner.graph.resources import UNKNOWN, Graph, Resource, graph_from_offline
from planner.planfile import Plan, read_plan
from planner.verification import kubernetes_network, kubernetes_pods
from planner.verification.expectations import Expectations
from planner.verification.kubernetes_pods import (
    DEPLOYMENT,
    LEADER_WORKER_SET,
    NETWORK_POLICY,
    SERVICE,
)
from planner.verification.registry import Finding, Report, Status, Subject
from planner.verification.run import verify
from stacks.kubernetes import network_policy
from tests.test_kubernetes_stack import CLUSTERS, MULTI, SINGLE, _run
from tests.test_policy import violations

Case = tuple[Graph, Plan]
# The weights' store credentials as a stack config holds them: encrypted, which verify --stack
# passes on as a placeholder (planner/graph/preview.py stack_config).
STORE_SECRETS = {
    f"ai-infra-planner:dc1_weights_{key}": {"secure": "v1:placeholder"}
    for key in ("access_key_id", "secret_access_key")
}
# A PEM private key's header, built here so the repository holds none (test_verify.py).
KEY_HEADER = "-----BEGIN " + "PRIVATE KEY-----"


def _case(project: Path, text: str) -> Case:
    run = _run(project, text)
    return graph_from_offline(run), read_plan(project / "plans/dev/plan.json")


@pytest.fixture
def single(project: Path, capsys: pytest.CaptureFixture[str]) -> Case:
    case = _case(project, SINGLE)
    capsys.readouterr()
    return case


@pytest.fixture
def multi(project: Path, capsys: pytest.CaptureFixture[str]) -> Case:
    case = _case(project, MULTI)
    capsys.readouterr()
    return case


def check(case: Case, clusters: object = CLUSTERS) -> Report:
    graph, plan = case
    return verify(graph, Expectations.of(plan, default_catalog(), clusters=clusters))


def pool_subject(report: Report) -> Subject:
    [subject] = [s for s in report.subjects if s.name.startswith("pool ")]
    return subject


def changed(graph: Graph, type_: str, name: str, change: Callable[[dict[str, Any]], None]) -> Graph:
    """The graph with one resource's inputs changed (the resource found by type and k8s name)."""
    resources = []
    found = 0
    for resource in graph.resources.values():
        if resource.type == type_ and resource.inputs["metadata"]["name"] == name:
            inputs = copy.deepcopy(resource.inputs)
            change(inputs)
            resource = dataclasses.replace(resource, inputs=inputs)
            found += 1
        resources.append(resource)
    assert found == 1
    return Graph.of(resources)


def removed(graph: Graph, type_: str, name: str) -> Graph:
    kept = [r for r in graph.resources.values()
            if not (r.type == type_ and r.inputs["metadata"]["name"] == name)]  # fmt: skip
    assert len(kept) == len(graph.resources) - 1
    return Graph.of(kept)


def added(graph: Graph, type_: str, name: str, inputs: dict[str, Any]) -> Graph:
    urn = f"urn:pulumi:dev::ai-infra-planner::{type_}::{name}"
    return Graph.of([*graph.resources.values(), Resource(urn, type_, name, inputs, {})])


def namespace(case: Case) -> str:
    graph, _ = case
    [ns] = graph.of_type(kubernetes_pods.NAMESPACE)
    return str(ns.inputs["metadata"]["name"])


def failures(report: Report, rule: str) -> list[Finding]:
    return report.rule_failures(rule)


def test_the_stack_s_sealed_pools_pass_and_say_what_blocks_each_way_out(
    single: Case, multi: Case
) -> None:
    report = check(single)
    assert report.failures() == [] and report.status.value == "PASS"
    subject = pool_subject(report)
    pods = f"pods of Deployment {namespace(single)}/serving (pod template)"
    assert subject.workloads == ["triage"]
    blocks = "\n".join(subject.blocks)
    assert (
        f"{pods}: denied both ways by default (NetworkPolicy {namespace(single)}/default-deny"
        in blocks
    )
    assert (
        "10.9.0.0/24 on TCP 443: the weights' store (stack config clusters.dc1.weights_cidr)"
        in blocks
    )
    assert "cluster DNS (kube-system's kube-dns pods) on UDP 53, TCP 53" in blocks
    assert f"{pods}: ingress only from 10.20.0.0/16 on TCP 8000 (a consumer's range)" in blocks
    assert (
        f"Service {namespace(single)}/serving is an internal LoadBalancer (class "
        "service.k8s.aws/nlb, service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip, "
        "service.beta.kubernetes.io/aws-load-balancer-scheme: internal, "
    ) in blocks
    assert "open to 10.20.0.0/16 only, no node port, externalTrafficPolicy Local" in blocks
    assert any("the cluster enforces NetworkPolicy" in b for b in subject.blocks)
    [triage] = report.workloads
    assert triage.served_by == subject.name
    assert triage.ways_in == [
        "consumer 10.20.0.0/16 (named by its range only) -> Service "
        f"{namespace(single)}/serving (LoadBalancer, port 8000, source range 10.20.0.0/16) -> "
        f"NetworkPolicy {namespace(single)}/serving ingress rule 1 (from 10.20.0.0/16 on TCP "
        f"8000) -> {pods}"
    ]
    # A LeaderWorkerSet: its leader and its workers are held alike, both consumers reach it.
    report = check(multi)
    assert report.failures() == []
    blocks = "\n".join(pool_subject(report).blocks)
    for part in ("leader template", "worker template"):
        assert (
            f"LeaderWorkerSet {namespace(multi)}/serving-group ({part}): denied both ways" in blocks
        )
    assert sorted(len(w.ways_in) for w in report.workloads) == [1, 1]


def test_the_deny_policy_removed_fails_the_perimeter(single: Case) -> None:
    graph, plan = single
    report = check((removed(graph, NETWORK_POLICY, "default-deny"), plan))
    [finding] = failures(report, "perimeter")
    assert "no NetworkPolicy denying by default (Ingress and Egress, no rule)" in finding.message
    assert finding.witness == (
        f"pods of Deployment {namespace(single)}/serving (pod template)",
        f"selected by NetworkPolicy {namespace(single)}/serving",
        "no default deny",
    )
    assert report.workloads[0].name == "triage" and not report.workload_passed(report.workloads[0])


def test_egress_to_everywhere_fails_the_perimeter_and_open_egress(single: Case) -> None:
    graph, plan = single

    def everywhere(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})

    report = check((changed(graph, NETWORK_POLICY, "serving", everywhere), plan))
    [perimeter] = failures(report, "perimeter")
    assert "allows egress to 0.0.0.0/0 on every port: beyond the pool's pods" in perimeter.message
    assert perimeter.witness == (
        f"pods of Deployment {namespace(single)}/serving (pod template)",
        f"NetworkPolicy {namespace(single)}/serving egress rule 4: ipBlock 0.0.0.0/0 (every port)",
        "the internet",
    )
    [open_egress] = failures(report, "open-egress")
    assert open_egress.witness == perimeter.witness


def test_host_network_fails_the_perimeter_for_each_template(multi: Case) -> None:
    graph, plan = multi

    def host(inputs: dict[str, Any]) -> None:
        inputs["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["hostNetwork"] = True

    report = check((changed(graph, LEADER_WORKER_SET, "serving-group", host), plan))
    [finding] = failures(report, "perimeter")
    assert "(hostNetwork): NetworkPolicy does not hold their packets" in finding.message
    assert finding.witness == (
        f"pods of LeaderWorkerSet {namespace(multi)}/serving-group (worker template)",
        "hostNetwork: true (the node's network namespace)",
        "every destination the node reaches",
    )


def test_a_host_port_fails_open_ingress(single: Case) -> None:
    graph, plan = single

    def host_port(inputs: dict[str, Any]) -> None:
        inputs["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 8000

    report = check((changed(graph, DEPLOYMENT, "serving", host_port), plan))
    [finding] = failures(report, "open-ingress")
    assert finding.witness[:2] == ("any address that reaches the node", "hostPort 8000 of vllm")


def _service(ns: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "debug", "namespace": ns},
        "spec": {
            "type": kind,
            "selector": {"ai-infra-planner/pool": "llama-3-1-8b-dc1"},
            "ports": [{"port": 8000, "targetPort": "http"}],
        },
    }


def test_a_node_port_or_load_balancer_service_fails(single: Case) -> None:
    graph, plan = single
    ns = namespace(single)
    report = check((added(graph, SERVICE, "debug", _service(ns, "NodePort")), plan))
    [finding] = failures(report, "open-ingress")
    assert finding.resource == f"Service {ns}/debug"
    assert "is a NodePort Service: it opens the pool's pods" in finding.message
    assert finding.witness == (
        "any address that reaches a node of the cluster",
        f"Service {ns}/debug (NodePort)",
        f"pods of Deployment {ns}/serving (pod template)",
    )
    # A LoadBalancer of no internal annotation or class, open to every address, with node
    # ports and the source rewritten: every one of them is said.
    report = check((added(graph, SERVICE, "debug", _service(ns, "LoadBalancer")), plan))
    public = failures(report, "public-ip")
    assert sorted(f.witness[:2] for f in public) == [
        ("callers beyond the cluster", f"Service {ns}/debug (LoadBalancer) of class None"),
        ("callers beyond the cluster", f"Service {ns}/debug (LoadBalancer) without "
         "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip"),
    ]  # fmt: skip
    assert sorted(f.witness[1] for f in failures(report, "open-ingress")) == [
        f"Service {ns}/debug (LoadBalancer) (no loadBalancerSourceRanges)",
        f"Service {ns}/debug (LoadBalancer): externalTrafficPolicy Cluster",
        f"Service {ns}/debug (LoadBalancer): node ports",
    ]
    # The stack's own Service made a NodePort fails the same way.
    report = check((changed(graph, SERVICE, "serving",
                            lambda i: i["spec"].update(type="NodePort")), plan))  # fmt: skip
    assert [f.resource for f in failures(report, "open-ingress")] == [f"Service {ns}/serving"]


def _serving_changed(case: Case, change: Callable[[dict[str, Any]], None]) -> Case:
    graph, plan = case
    return changed(graph, SERVICE, "serving", change), plan


def _no_scheme(inputs: dict[str, Any]) -> None:
    del inputs["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"]


def _everyone(inputs: dict[str, Any]) -> None:
    inputs["spec"]["loadBalancerSourceRanges"] = ["0.0.0.0/0"]


def _node_ports(inputs: dict[str, Any]) -> None:
    inputs["spec"]["allocateLoadBalancerNodePorts"] = True


def _node_port_type(inputs: dict[str, Any]) -> None:
    inputs["spec"]["type"] = "NodePort"
    for key in ("loadBalancerClass", "loadBalancerSourceRanges", "allocateLoadBalancerNodePorts"):
        del inputs["spec"][key]


def _cluster_policy(inputs: dict[str, Any]) -> None:
    inputs["spec"]["externalTrafficPolicy"] = "Cluster"


def _other_class(inputs: dict[str, Any]) -> None:
    inputs["spec"]["loadBalancerClass"] = "example.com/public-vip"


# Each fault of the pool's own LoadBalancer Service: the rule it breaks and what its message says.
LOAD_BALANCER_FAULTS = [
    (_no_scheme, "public-ip",
     "lacks the annotation(s) that make site dc1's load balancer internal "
     "(service.beta.kubernetes.io/aws-load-balancer-scheme: internal)"),
    (_everyone, "open-ingress",
     "admits 0.0.0.0/0 (loadBalancerSourceRanges), which is not within the consumers' ranges "
     "(10.20.0.0/16)"),
    (_node_ports, "open-ingress",
     "allocates node ports (allocateLoadBalancerNodePorts is not false): the pool's pods answer "
     "on a port of every node"),
    # ...and with no LoadBalancer left, the consumer outside the cluster has no way in either.
    (_node_port_type, "open-ingress", "is a NodePort Service: it opens the pool's pods"),
    (_cluster_policy, "open-ingress",
     "has externalTrafficPolicy Cluster, not Local: a node forwards the load balancer's traffic"),
    (_other_class, "public-ip",
     "is of loadBalancerClass 'example.com/public-vip', not the site's internal "
     "'service.k8s.aws/nlb'"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "rule", "says"), LOAD_BALANCER_FAULTS)
def test_each_way_around_the_internal_load_balancer_fails_verify_and_the_pack(
    single: Case,
    project: Path,
    change: Callable[[dict[str, Any]], None],
    rule: str,
    says: str,
) -> None:
    """Issue 16, exposure: the pool's LoadBalancer Service with the site's internal annotation
    removed, a source range widened to 0.0.0.0/0, node ports allocated, made a NodePort, the
    caller's address given up, or another class: each FAILs in verify and in the policy pack."""
    ns = namespace(single)
    case = _serving_changed(single, change)
    report = check(case)
    [finding] = failures(report, rule)
    assert finding.resource == f"Service {ns}/serving"
    assert says in finding.message
    lost = ["way-in"] if change is _node_port_type else []
    assert [f.rule for f in report.failures()] == [rule, *lost]
    config = {"plan": str(project / "plans/dev/plan.json"), "clusters": CLUSTERS}
    found = violations(case[0], config)
    assert len(found) == 1 + len(lost) and found[0].startswith(f"[{rule}] Service {ns}/serving: ")
    assert says in found[0]


def test_a_load_balancer_the_plan_does_not_state_is_public(single: Case) -> None:
    """The internal settings come from the plan: a plan whose site states no load balancer
    (or no plan) takes the Service as public, and the consumer's way in as absent."""
    graph, plan = single
    bare = plan.model_copy(
        update={"sites": [s.model_copy(update={"load_balancer": None}) for s in plan.sites]}
    )
    report = verify(graph, Expectations.of(bare, default_catalog(), clusters=CLUSTERS))
    [finding] = failures(report, "public-ip")
    assert "the plan states no internal load balancer for site dc1" in finding.message
    # Made a ClusterIP, the Service no longer reaches callers outside the cluster.

    def inside(inputs: dict[str, Any]) -> None:
        _node_port_type(inputs)
        inputs["spec"]["type"] = "ClusterIP"
        del inputs["spec"]["externalTrafficPolicy"]
        del inputs["metadata"]["annotations"]

    report = check(_serving_changed(single, inside))
    assert [f.rule for f in report.failures()] == ["way-in"]
    [way] = report.failures()
    assert "its callers are outside the cluster (a range) and no LoadBalancer Service" in (
        way.message
    )


def _balancer_changed(plan: Plan, **changes: Any) -> Plan:
    """The plan with its sites' load balancers changed so (the sites without one left out)."""
    return plan.model_copy(
        update={
            "sites": [
                s.model_copy(update={"load_balancer": s.load_balancer.model_copy(update=changes)})
                for s in plan.sites
                if s.load_balancer is not None
            ]
        }
    )


def test_a_stated_load_balancer_with_nothing_that_makes_it_internal_is_public(
    single: Case,
) -> None:
    """A plan whose site's load balancer has neither annotations nor a class (the plan-file
    checks refuse it; verify does not lean on them): the Service, whatever it carries, is
    public, as with no load balancer stated."""
    graph, plan = single
    empty = _balancer_changed(plan, annotations={}, load_balancer_class=None)
    report = verify(graph, Expectations.of(empty, default_catalog(), clusters=CLUSTERS))
    [finding] = failures(report, "public-ip")
    assert (
        "the plan states no annotation or class of an internal load balancer for site dc1"
        in finding.message
    )
    assert "internal LoadBalancer ()" not in "\n".join(pool_subject(report).blocks)


def test_the_serving_key_in_plain_text_fails_the_secrets_rule(single: Case) -> None:
    """The pool's TLS key is a Pulumi secret (tests/test_kubernetes_stack.py): handed to the
    TLS Secret in plain text, `secrets` fails naming it, masked to its PEM header."""
    graph, plan = single
    assert failures(check(single), "secrets") == []
    pem = f"{KEY_HEADER}\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"

    def in_plain_text(inputs: dict[str, Any]) -> None:
        inputs["stringData"] = {"tls.crt": "-----BEGIN CERTIFICATE-----", "tls.key": pem}

    report = check(
        (changed(graph, "kubernetes:core/v1:Secret", "serving-tls", in_plain_text), plan)
    )
    [finding] = failures(report, "secrets")
    assert finding.resource.endswith("serving-tls")
    assert f"stringData.tls.key holds a private key, {KEY_HEADER}, in plain text" in (
        finding.message
    )


def test_a_widened_consumer_ip_block_fails_open_ingress(single: Case) -> None:
    graph, plan = single

    def widen(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] = "10.0.0.0/8"

    report = check((changed(graph, NETWORK_POLICY, "serving", widen), plan))
    [finding] = failures(report, "open-ingress")
    assert finding.message.endswith(
        "admits 10.0.0.0/8, which is not within the consumers' ranges (10.20.0.0/16; the load "
        "balancer's health checks: 10.250.0.0/24)"
    )
    assert finding.witness == (
        "10.0.0.0/8",
        f"NetworkPolicy {namespace(single)}/serving ingress rule 1: ipBlock 10.0.0.0/8 (TCP 8000)",
        f"pods of Deployment {namespace(single)}/serving (pod template)",
    )
    # Consumers on another port than the serving one fail too.

    def other_port(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["ports"] = [{"protocol": "TCP", "port": 22}]

    report = check((changed(graph, NETWORK_POLICY, "serving", other_port), plan))
    messages = [f.message for f in failures(report, "open-ingress")]
    assert any("on TCP 22, not only the serving port (8000)" in m for m in messages)
    # ...and the consumer's way in is refused where no rule admits it on the serving port.
    assert [f.rule for w in report.workloads for f in w.failures] == ["way-in"]


def test_the_load_balancer_s_health_checks_are_admitted_and_no_wider(
    single: Case, project: Path
) -> None:
    """An AWS NLB checks ip targets from its own subnets: the policy admits the site's
    health_check_cidrs on the serving port, verify says so, and a wider block, or one the plan
    does not state, fails open-ingress in verify and in the policy pack."""
    graph, plan = single
    [policy] = [
        p for p in graph.of_type(NETWORK_POLICY) if p.inputs["metadata"]["name"] == "serving"
    ]
    assert {"ipBlock": {"cidr": "10.250.0.0/24"}} in policy.inputs["spec"]["ingress"][0]["from"]
    blocks = "\n".join(pool_subject(check(single)).blocks)
    assert "10.250.0.0/24 on TCP 8000 (the load balancer's health checks)" in blocks

    def widen(inputs: dict[str, Any]) -> None:
        [peer] = [
            p for p in inputs["spec"]["ingress"][0]["from"]
            if p.get("ipBlock", {}).get("cidr") == "10.250.0.0/24"
        ]  # fmt: skip
        peer["ipBlock"]["cidr"] = "10.250.0.0/16"

    case = (changed(graph, NETWORK_POLICY, "serving", widen), plan)
    [finding] = failures(check(case), "open-ingress")
    assert "admits 10.250.0.0/16, which is not within the consumers' ranges" in finding.message
    config = {"plan": str(project / "plans/dev/plan.json"), "clusters": CLUSTERS}
    [found] = violations(case[0], config)
    assert found.startswith("[open-ingress] ") and "admits 10.250.0.0/16" in found
    # A plan whose site states no health-check ranges admits none.
    unstated = _balancer_changed(plan, health_check_cidrs=[])
    report = verify(graph, Expectations.of(unstated, default_catalog(), clusters=CLUSTERS))
    [finding] = failures(report, "open-ingress")
    assert finding.message.endswith(
        "admits 10.250.0.0/24, which is not within the consumers' ranges (10.20.0.0/16)"
    )


def test_a_kind_the_model_does_not_know_fails_closed(single: Case) -> None:
    graph, plan = single
    ns = namespace(single)
    cilium = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
    inputs = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "open", "namespace": ns},
        "spec": {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]},
    }
    report = check((added(graph, cilium, "open", inputs), plan))
    [finding] = failures(report, "perimeter")
    assert finding.resource == f"CiliumNetworkPolicy {ns}/open"
    assert f"a {cilium} in the pool's namespace, which the verifier does not model" in (
        finding.message
    )
    assert finding.witness == (f"CiliumNetworkPolicy {ns}/open", f"namespace {ns}",
                               "the pool's pods")  # fmt: skip
    # Outside the namespace, one that selects the pool's pods by their label fails too.
    clusterwide = "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy"
    wide = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": "wide"},
        "spec": {
            "endpointSelector": {"matchLabels": {"ai-infra-planner/pool": "llama-3-1-8b-dc1"}}
        },
    }
    report = check((added(graph, clusterwide, "wide", wide), plan))
    [finding] = failures(report, "perimeter")
    assert "that may select any pod of the cluster" in finding.message
    # So does any other network policy API's, wherever it is and whatever it names: its
    # selectors (`endpointSelector: {}`, Calico's selector strings, an AdminNetworkPolicy's
    # subject, decided before NetworkPolicy) may take the pool's pods without naming them.
    for kind, spec in (
        (clusterwide, {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}),
        (clusterwide, {"endpointSelector": {"matchLabels": {"app": "other"}}}),
        (
            "kubernetes:crd.projectcalico.org/v1:GlobalNetworkPolicy",
            {"selector": "ai-infra-planner/pool == 'llama-3-1-8b-dc1'"},
        ),
        (
            "kubernetes:policy.networking.k8s.io/v1alpha1:AdminNetworkPolicy",
            {"subject": {"namespaces": {}}, "egress": [{"action": "Allow"}]},
        ),
    ):
        other = {"metadata": {"name": "wide"}, "spec": spec}
        [finding] = failures(check((added(graph, kind, "wide", other), plan)), "perimeter")
        assert "that may select any pod of the cluster" in finding.message, kind
    # A component applying manifests the graph does not show, too.
    manifests = {"file": "allow-all.yaml"}
    [finding] = failures(
        check((added(graph, "kubernetes:yaml:ConfigFile", "extra", manifests), plan)),
        "perimeter",
    )
    assert "that may select any pod of the cluster" in finding.message


def test_egress_the_stack_config_does_not_name_fails_closed(single: Case) -> None:
    """The weights' store's range is the stack config's (clusters.dc1.weights_cidr): without
    it, or with another, the policy's egress to 10.9.0.0/24 is not shown allowed."""
    for clusters in (None, {"dc1": {**CLUSTERS["dc1"], "weights_cidr": "10.8.0.0/24"}}):
        [finding] = failures(check(single, clusters), "perimeter")
        assert "allows egress to 10.9.0.0/24 on TCP 443: beyond the pool's pods" in finding.message
        assert finding.witness[-1] == "10.9.0.0/24: no range named for the site"
    # The config as the stack file gives it (JSON text) serves as the mapping does.
    assert check(single, json.dumps(CLUSTERS)).failures() == []


def test_cluster_dns_is_the_stack_s() -> None:
    assert kubernetes_pods.DNS_NAMESPACE == network_policy.DNS_NAMESPACE
    assert kubernetes_pods.DNS_PODS == network_policy.DNS_PODS
    assert kubernetes_pods.DNS_PORT == network_policy.DNS_PORT


def test_the_policy_pack_runs_the_same_checks(single: Case, project: Path) -> None:
    graph, _ = single
    config = {"plan": str(project / "plans/dev/plan.json"), "clusters": CLUSTERS}
    assert violations(graph, config) == []
    found = violations(removed(graph, NETWORK_POLICY, "default-deny"), config)
    assert len(found) == 1 and found[0].startswith("[perimeter] pods of Deployment")
    assert "no NetworkPolicy denying by default" in found[0] and "(path: " in found[0]


def test_planner_verify_passes_the_stack_with_a_site(
    project: Path, single: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    """`planner verify --stack dev` runs the program with the stack config (its clusters) and
    passes the sealed pool."""
    path = project / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["ai-infra-planner:clusters"] = CLUSTERS
    document["config"] |= STORE_SECRETS
    path.write_text(yaml.safe_dump(document))
    assert main(["verify", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "PASS pool llama-3-1-8b-dc1 (technical; workloads triage)" in out
    assert (
        "blocked: pods of Deployment llama-3-1-8b-dc1-dev/serving (pod template): egress only"
        in out
    )
    assert out.rstrip().endswith("verified: no failure")


def test_verify_preview_reads_the_sites_ranges_from_the_preview_or_the_stack(
    project: Path, single: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    """`planner verify --preview` holds a site's pools to the stack config's `clusters` as
    `verify --stack` does: from the preview's own config (`pulumi preview --json` records it;
    `planner preview --json` too), else from the stack's with --stack; with neither, the
    weights' egress is not shown allowed (fail closed), and a FAIL exits 1."""
    path = project / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["ai-infra-planner:clusters"] = CLUSTERS
    document["config"] |= STORE_SECRETS
    path.write_text(yaml.safe_dump(document))
    plan = str(project / "plans/dev/plan.json")
    assert main(["preview", "--stack", "dev", "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert json.loads(preview["config"]["ai-infra-planner:clusters"]) == CLUSTERS
    with_config = project / "with-config.json"
    with_config.write_text(json.dumps(preview))
    assert main(["verify", "--preview", str(with_config), plan]) == 0
    assert capsys.readouterr().out.rstrip().endswith("verified: no failure")

    del preview["config"]
    bare = project / "bare.json"
    bare.write_text(json.dumps(preview))
    assert main(["verify", "--preview", str(bare), plan]) == 1
    out = capsys.readouterr().out
    assert "10.9.0.0/24: no range named for the site" in out
    assert out.rstrip().endswith("verification FAILED: 1 failure(s)")
    assert main(["verify", "--preview", str(bare), "--stack", "dev"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("verified: no failure")

    # The preview's config is what the program ran with: it wins over the stack file's.
    preview["config"] = {"ai-infra-planner:clusters": json.dumps({"dc1": {}})}
    other = project / "other.json"
    other.write_text(json.dumps(preview))
    assert main(["verify", "--preview", str(other), "--stack", "dev"]) == 1
    assert "no range named for the site" in capsys.readouterr().out


def test_a_store_range_outside_the_private_ranges_is_not_named(single: Case) -> None:
    """A stack config naming the whole internet (or any public range) as the weights' store
    does not make the policy's egress there allowed: verify does not take it as the store's
    range, so the sealed pool's egress to it fails (the stack refuses such a config too)."""
    graph, plan = single

    def everywhere(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"][2]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]

    wide = {"dc1": {**CLUSTERS["dc1"], "weights_cidr": "0.0.0.0/0"}}
    report = check((changed(graph, NETWORK_POLICY, "serving", everywhere), plan), wide)
    assert failures(report, "perimeter") and report.status.value == "FAIL"
    # The range as the stack config gives it (private) is named, and passes.
    assert check(single).failures() == []


# --- What the pods' controllers add, and other ways round the model (review of issue 16).
# A Deployment's pods carry pod-template-hash, a LeaderWorkerSet's leaderworkerset.sigs.k8s.io/*
# (kubernetes.io, "Deployments"; kubernetes-sigs/lws), labels their templates do not give.
HASH = "pod-template-hash"


def _deny_unless(key: str, operator: str) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        selector = inputs["spec"]["podSelector"]
        selector.setdefault("matchExpressions", []).append({"key": key, "operator": operator})

    return change


def test_a_deny_that_turns_on_a_label_the_controller_adds_holds_no_pod(single: Case) -> None:
    """`pod-template-hash DoesNotExist` in the default deny's selector: every real pod carries
    that label, so the policy selects none of them, and the pods are open both ways."""
    graph, plan = single
    tampered = changed(graph, NETWORK_POLICY, "default-deny", _deny_unless(HASH, "DoesNotExist"))
    found = [f.message for f in failures(check((tampered, plan)), "perimeter")]
    assert any("no NetworkPolicy denying by default" in m for m in found)


def test_an_allow_that_may_select_the_pods_counts(single: Case, multi: Case) -> None:
    """A policy or Service whose selector turns on labels the controllers add may select the
    pool's pods: what it allows counts (fail closed)."""
    for case, key in ((single, HASH), (multi, "leaderworkerset.sigs.k8s.io/name")):
        graph, plan = case
        ns = namespace(case)
        policy = {
            "metadata": {"name": "extra", "namespace": ns},
            "spec": {
                "podSelector": {"matchExpressions": [{"key": key, "operator": "Exists"}]},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
            },
        }
        report = check((added(graph, NETWORK_POLICY, "extra", policy), plan))
        assert failures(report, "open-egress"), key
    graph, plan = multi
    ns = namespace(multi)
    node_port = {
        "metadata": {"name": "side", "namespace": ns},
        "spec": {
            "type": "NodePort",
            "selector": {"leaderworkerset.sigs.k8s.io/name": "serving-group"},
            "ports": [{"port": 8000, "targetPort": 8000}],
        },
    }
    assert check((added(graph, SERVICE, "side", node_port), plan)).failures()


def test_a_program_made_dns_pod_fails(single: Case) -> None:
    """A Deployment of the program in kube-system labelled as cluster DNS: the pool's egress to
    cluster DNS would reach a pod the program controls."""
    graph, plan = single
    impostor = {
        "metadata": {"name": "dns", "namespace": "kube-system"},
        "spec": {"template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {}}},
    }
    [finding] = failures(check((added(graph, DEPLOYMENT, "dns", impostor), plan)), "perimeter")
    assert "whose pods the pool's DNS egress reaches" in finding.message
    elsewhere = copy.deepcopy(impostor)
    elsewhere["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert check((added(graph, DEPLOYMENT, "dns", elsewhere), plan)).failures() == []


@pytest.mark.parametrize(
    "ports",
    [None, [{"protocol": "UDP", "port": 443}], [{"port": 443, "endPort": 65535}], [{"port": 22}]],
)
def test_the_store_s_range_is_reached_on_https_only(
    single: Case, ports: list[dict[str, Any]] | None
) -> None:
    """Egress to the weights store's range on any port but TCP 443 reaches whatever else
    listens there."""
    graph, plan = single

    def widen(inputs: dict[str, Any]) -> None:
        rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": "10.9.0.0/24"}}]}
        if ports is not None:
            rule["ports"] = ports
        inputs["spec"]["egress"].append(rule)

    tampered = changed(graph, NETWORK_POLICY, "serving", widen)
    [finding] = failures(check((tampered, plan)), "perimeter")
    assert "the store is reached on TCP 443 only" in finding.message
    assert network_policy.HTTPS_PORT == kubernetes_network.STORE_PORT


def test_without_a_plan_an_ingress_range_beyond_the_private_ones_is_open(single: Case) -> None:
    """With no plan, no consumer is known, but none lies outside the private ranges: a range
    beyond them (half the internet, 0.0.0.0/1) is open ingress."""
    graph, _ = single

    def widen(inputs: dict[str, Any]) -> None:
        for cidr in ("0.0.0.0/1", "128.0.0.0/1"):
            inputs["spec"]["ingress"].append(
                {"from": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": 8000}]}
            )

    report = verify(
        changed(graph, NETWORK_POLICY, "serving", widen),
        Expectations.of(None, default_catalog(), clusters=CLUSTERS),
    )
    found = [f.message for f in failures(report, "open-ingress")]
    assert any("0.0.0.0/1" in m for m in found) and any("128.0.0.0/1" in m for m in found)


def test_a_second_namespace_claiming_the_pool_fails(single: Case) -> None:
    graph, plan = single
    [ns] = graph.of_type(kubernetes_pods.NAMESPACE)
    other = copy.deepcopy(ns.inputs)
    other["metadata"]["name"] = "elsewhere"
    [finding] = failures(
        check((added(graph, kubernetes_pods.NAMESPACE, "elsewhere", other), plan)), "perimeter"
    )
    assert "also annotated as this pool's namespace" in finding.message


@pytest.mark.parametrize(
    ("type_", "name", "path"),
    [
        (DEPLOYMENT, "serving", ("spec", "template", "spec", "hostNetwork")),
        (NETWORK_POLICY, "serving", ("spec", "egress")),
        (NETWORK_POLICY, "default-deny", ("spec", "podSelector")),
        (NETWORK_POLICY, "serving", ("metadata", "namespace")),
        (SERVICE, "serving", ("spec", "selector")),
        (SERVICE, "serving", ("spec", "loadBalancerSourceRanges")),
        (DEPLOYMENT, "serving", ("spec", "template", "metadata", "labels")),
    ],
)
def test_a_value_known_only_after_up_is_unknown_not_a_pass(
    single: Case, type_: str, name: str, path: tuple[str, ...]
) -> None:
    """A preview of a new stack holds values known only after `pulumi up`: where the
    perimeter rests on one (host access, rules, selectors, a namespace), the pool is UNKNOWN,
    never PASS, and verify does not crash on it; the serving certificate's digest in the pod
    template, unknown in every first preview, opens nothing and changes nothing."""
    graph, plan = single

    def blank(inputs: dict[str, Any]) -> None:
        node = inputs
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = UNKNOWN

    subject = pool_subject(check((changed(graph, type_, name, blank), plan)))
    assert subject.status is Status.UNKNOWN, subject.failures
    assert any("known only after `pulumi up`" in f.message for f in subject.unknowns)

    def digest_unknown(inputs: dict[str, Any]) -> None:
        inputs["spec"]["template"]["metadata"]["annotations"] = {"x/digest": UNKNOWN}

    passing = pool_subject(check((changed(graph, DEPLOYMENT, "serving", digest_unknown), plan)))
    assert passing.status is Status.PASS
