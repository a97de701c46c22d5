"""The Kubernetes target's stack (issue 16), run for real under Pulumi's mocks for a workloads
file with a Kubernetes site: what it registers, and every manifest validated against the
Kubernetes API's own schemas (kubernetes-validate, Kubernetes 1.37) and the LeaderWorkerSet
against its CRD's published schema (tests/data/leaderworkerset-v0.10.0.schema.json)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import jsonschema
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi import RunError
from pulumi.runtime import rpc

from planner.catalog import default_catalog
from planner.graph.offline import OfflineRun, run_program
from planner.inputs.loader import load_workloads
from planner.inputs.sites import label_key_problem, label_value_problem
from planner.planfile import Plan, read_plan
from planner.planning.build import build_plan
from stacks.boot import (
    COPY_RETRY,
    boot_figures,
    pod_ready_s,
    pod_startup_s,
    ray_wait_s,
    readiness_gate_s,
    termination_figures,
    weights_gb,
)
from stacks.kubernetes.labels import cost_annotations, cost_labels, label_value
from stacks.kubernetes.namespace import KUBERNETES_VERSION, namespace_manifest
from stacks.kubernetes.tls import sha256
from stacks.kubernetes.workload import (
    CERTIFICATE_ANNOTATION,
    LWS_API_VERSION,
    copy_script,
    pod_spec,
    serving_manifest,
    shape,
)
from stacks.settings import ClusterSettings, read_clusters
from stacks.targets import pool_target
from tests.fake_keys import fake_key
from tests.test_sites import LOAD_BALANCER
from tests.test_stacks import plain, plan_project

DATA = Path(__file__).parent / "data"
# A PEM private key's header, built here so the repository holds none (test_verify.py).
KEY_HEADER = "-----BEGIN " + "PRIVATE KEY-----"
LWS_SCHEMA = json.loads((DATA / "leaderworkerset-v0.10.0.schema.json").read_text())
# kubernetes-validate's schemas of the Kubernetes minor the namespace's Pod Security labels pin.
SCHEMA_VERSION = f"{KUBERNETES_VERSION}.0"

SITE = (
    """\
organization: acme
region: us-east-1
sites:
  - name: dc1
    kind: kubernetes
    context: dc1-admin
    gpu: h100
    gpus_per_node: 8
    nodes: 4
    node_selector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
    storage_class: fast-nvme
    weights_source: s3://models.internal/weights
    cost: {owned: true}
"""
    + LOAD_BALANCER
    + """  - name: aws
    kind: aws
workloads:
"""
)
# One small workload: a single-node pool of eight one-GPU replicas (a Deployment).
SINGLE = (
    SITE
    + """\
  - name: triage
    task: classification
    data: regulated
    monthly_tokens: {input: 20B, output: 500M}
    consumers: [{cidr: 10.20.0.0/16}]
"""
)
# Frontier-tier work the site serves with a pipelined replica across two nodes (a
# LeaderWorkerSet), and a cheaper AWS-side workload beside it.
MULTI = (
    SITE
    + """\
  - name: notes
    task: summarization
    data: regulated
    monthly_tokens: {input: 6B, output: 1.2B}
    consumers: [{cidr: 10.50.0.0/16}]
  - name: contracts
    task: legal_analysis
    data: regulated
    monthly_tokens: {input: 300M, output: 30M}
    consumers: [{cidr: 10.30.0.0/16}]
    request: {input_tokens: 30000, output_tokens: 3000}
"""
)
# A PEM bundle of the right framing, built here; its body is no real certificate (the settings
# check the framing and the base64, not the DER).
STORE_CA = (
    "-----BEGIN CERTIFICATE-----\n"
    + base64.b64encode(b"the organization's own CA, a stand-in " * 3).decode()
    + "\n-----END CERTIFICATE-----\n"
)


# The stack settings of the site, as the stack reads them from `clusters` (no secrets): a store
# under the organization's own name, so with its CA.
CLUSTERS = {
    "dc1": {
        "registry": "registry.acme.internal/ai",
        "weights_copy_image": "registry.acme.internal/ai/amazon/aws-cli:2.27.0",
        "weights_endpoint": "https://models.internal",
        "weights_cidr": "10.9.0.0/24",
        "weights_ca": STORE_CA,
    }
}
SETTINGS = ClusterSettings(**CLUSTERS["dc1"])


def _run(project: Path, text: str, clusters: object = CLUSTERS) -> OfflineRun:
    config = plan_project(project, text, strategy="optimal")
    config["ai-infra-planner:clusters"] = json.dumps(clusters)
    config["ai-infra-planner:dc1_weights_access_key_id"] = fake_key("aws", 16)
    config["ai-infra-planner:dc1_weights_secret_access_key"] = fake_key(
        "aws", 17
    )  # any secret string: its shape is not checked
    secrets = [
        "ai-infra-planner:dc1_weights_access_key_id",
        "ai-infra-planner:dc1_weights_secret_access_key",
    ]
    return run_program(project, "dev", config, secret_keys=secrets)


@pytest.fixture
def single_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    run = _run(project, SINGLE)
    capsys.readouterr()
    # Its plan kept apart: a test taking both runs shares one project directory.
    shutil.copy(project / "plans/dev/plan.json", project / "single.plan.json")
    return run


@pytest.fixture
def multi_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    run = _run(project, MULTI)
    capsys.readouterr()
    shutil.copy(project / "plans/dev/plan.json", project / "multi.plan.json")
    return run


@pytest.fixture(scope="module")
def cluster_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """The single-node plan, made once for the module (no stack run)."""
    path = tmp_path_factory.mktemp("cluster") / "workloads.yaml"
    path.write_text(SINGLE)
    catalog = default_catalog()
    return build_plan(load_workloads(path, catalog), catalog, "dev", "workloads.yaml", "optimal")


def _whole(value: Any) -> Any:
    """The registered inputs as a manifest: numbers come back from the mocks as floats."""
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def manifests(run: OfflineRun) -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object the stack registers, by resource type and name. A secret's
    values (the generated API key) are unknown until deployed: a placeholder stands in."""
    found = {}
    for r in run.resources:
        if r.type.startswith("kubernetes:") and r.custom:
            manifest = _whole(r.inputs)
            if manifest["kind"] == "Secret" and not isinstance(manifest["stringData"], dict):
                manifest["stringData"] = {"key": "unknown until deployed"}
            found[(r.type, r.name)] = manifest
    return found


def by_kind(run: OfflineRun, kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests(run).values() if m["kind"] == kind]


def _strict(schema: Any) -> Any:
    """The CRD's schema as the API server's strict field validation reads it: an object with
    properties and no x-kubernetes-preserve-unknown-fields takes no other field."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    found = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        found["additionalProperties"] = False
    return found


def validate_lws(manifest: dict[str, Any]) -> None:
    jsonschema.validate(manifest, _strict(LWS_SCHEMA["openAPIV3Schema"]))


def validate(manifest: dict[str, Any]) -> None:
    if manifest["apiVersion"] == LWS_API_VERSION:
        validate_lws(manifest)
    else:
        kubernetes_validate.validate(manifest, SCHEMA_VERSION, strict=True)


def test_the_plan_carries_its_kubernetes_sites_and_each_pool_its_target(
    single_run: OfflineRun, project: Path
) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    [site] = plan.sites
    assert (site.name, site.kind, site.context, site.storage_class) == (
        "dc1", "kubernetes", "dc1-admin", "fast-nvme",
    )  # fmt: skip
    assert site.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    [pool] = plan.pools
    assert pool.site == "dc1" and pool_target(plan, pool) == "kubernetes"
    assert pool_target(plan, pool.model_copy(update={"site": "aws"})) == "aws"
    # The EC2 target's resources are absent for a cluster pool: no VPC, no instance group.
    assert not [r for r in single_run.resources if r.type.startswith("aws:ec2/")]


def test_a_single_node_pool_is_a_sealed_deployment(single_run: OfflineRun, project: Path) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = plan.pools
    [namespace] = by_kind(single_run, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    [deployment] = by_kind(single_run, "Deployment")
    assert not by_kind(single_run, "LeaderWorkerSet")
    spec = deployment["spec"]
    # One pod a node, running the node's eight one-GPU replicas as data-parallel engines.
    assert (pool.nodes, pool.replicas_per_node) == (1, 8)
    assert spec["replicas"] == pool.nodes
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    [container] = pod["containers"]
    assert container["image"] == "registry.acme.internal/ai/vllm/vllm-openai:v0.33.0"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(pool.gpus_per_node) == "8"
    command = container["command"]
    assert command[:3] == ["vllm", "serve", "/weights"]
    assert command[command.index("--data-parallel-size") + 1] == "8"
    assert command[command.index("--tensor-parallel-size") + 1] == str(pool.tensor_parallel)
    # HTTPS with the pool's certificate, read from the TLS Secret mounted read-only.
    assert command[command.index("--ssl-keyfile") + 1] == "/secrets/tls.key"
    assert command[command.index("--ssl-certfile") + 1] == "/secrets/tls.crt"
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": "/secrets", "readOnly": True}
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"] == {"secretName": "serving-tls", "defaultMode": 0o440}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= pod_startup_s(
        default_catalog(), pool
    )
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    [copy_step] = pod["initContainers"]
    assert copy_step["image"].startswith("registry.acme.internal/ai/")
    assert copy_step["command"] == ["sh", "-c", copy_script(), "copy-weights"]
    assert copy_step["args"] == [
        f"s3://models.internal/weights/{pool.weights}",
        "https://models.internal",
    ]
    [weights] = [v for v in pod["volumes"] if v["name"] == "weights"]
    claim = weights["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "fast-nvme"
    [svc] = by_kind(single_run, "Service")
    # Its consumer (10.20.0.0/16, by its range) calls from outside the cluster.
    assert svc["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in svc["spec"]["ports"]] == [8000]
    [budget] = by_kind(single_run, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    outputs = single_run.outputs["pools"][pool.name]
    assert outputs["endpoint"] == (
        f"https://serving.{namespace['metadata']['name']}.svc.cluster.local:8000/v1"
    )
    assert outputs["outside_endpoint"] == (
        f"https://{namespace['metadata']['name']}.llm.dc1.internal:8000/v1"
    )
    assert single_run.outputs["workloads"]["triage"]["pool"] == pool.name


def test_network_policies_deny_all_but_the_pool_s_own_paths(single_run: OfflineRun) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(single_run, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = policies["serving"]
    consumers, own = allow["ingress"]
    # The consumers' range, and the range the site's NLB checks the pods' health from.
    assert consumers["from"] == [
        {"ipBlock": {"cidr": "10.20.0.0/16"}},
        {"ipBlock": {"cidr": "10.250.0.0/24"}},
    ]
    assert consumers["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert own["from"] == [{"podSelector": allow["podSelector"]}]
    blocks = [peer["ipBlock"]["cidr"] for rule in allow["egress"] for peer in rule["to"]
              if "ipBlock" in peer]  # fmt: skip
    assert blocks == ["10.9.0.0/24"]  # the weights' store only: never 0.0.0.0/0
    [dns] = [rule for rule in allow["egress"] if rule.get("ports", [{}])[0].get("port") == 53]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_costs_are_labels_kubernetes_takes_and_whole_annotations(
    single_run: OfflineRun, project: Path
) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = plan.pools
    for manifest in manifests(single_run).values():
        labels = manifest["metadata"].get("labels", {})
        assert labels["ai-infra-planner/monthly-usd"] == f"{pool.monthly_cost_usd:.2f}"
        for key, value in labels.items():
            assert label_key_problem(key) is None and label_value_problem(value) is None
    [namespace] = by_kind(single_run, "Namespace")
    assert namespace["metadata"]["annotations"]["ai-infra-planner/pool"] == pool.name
    stack = "s" * 100  # a stack name Pulumi takes but no label value is
    assert label_value_problem(label_value(stack)) is None and len(label_value(stack)) <= 63
    assert label_value(stack) != label_value(stack[:-1] + "t")


def test_a_multi_node_pool_is_a_leader_worker_set(multi_run: OfflineRun, project: Path) -> None:
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.site == "dc1"]
    assert pool.pipeline_parallel > 1
    [lws] = by_kind(multi_run, "LeaderWorkerSet")
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    form = shape(pool)
    assert lws["spec"]["replicas"] == form.replicas
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == form.group_size == 2
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    worker = template["workerTemplate"]["spec"]["containers"][0]
    assert "multi-node-serving.sh leader" in leader["command"][2]
    assert f"--pipeline-parallel-size {pool.pipeline_parallel}" in leader["command"][2]
    assert "multi-node-serving.sh worker" in worker["command"][2]
    # Each pod holds a whole node: the group is the replica's nodes, Ray serving across them.
    for container in (leader, worker):
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(pool.gpus_per_node)
    assert form.pods == pool.nodes and form.replicas == pool.nodes // pool.pipeline_parallel
    assert leader["command"][2].endswith("--distributed-executor-backend ray")
    assert "startupProbe" in leader and "startupProbe" not in worker
    # A pod still copying its weights (Pending) does not restart its group: that waits until
    # all its pods started (and the copy retries within its step: copy_script).
    assert template["restartPolicy"] == "RecreateGroupAfterStart"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert leader[probe]["timeoutSeconds"] == 5
    # Each pod copies the weights before it joins: the pods wait for one another as long as a
    # whole copy may lag (not the script's 300 s), vLLM starts only once the Ray cluster formed,
    # and the leader's startup probe holds the wait besides its own start.
    catalog = default_catalog()
    wait = ray_wait_s(catalog, pool)
    gb = weights_gb(catalog, pool.model, pool.precision)
    assert wait >= gb / boot_figures().cluster_copy_gb_per_s.value > 300
    assert (
        f"--ray_cluster_size=$(LWS_GROUP_SIZE) --ray_init_timeout={wait} && exec vllm serve"
        in (leader["command"][2])
    )
    assert worker["command"][2].endswith(f"--ray_init_timeout={wait}")
    startup = leader["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= pod_startup_s(catalog, pool) + 2 * wait
    [svc] = by_kind(multi_run, "Service")
    assert svc["spec"]["selector"]["ai-infra-planner/role"] == "leader"
    assert template["leaderTemplate"]["metadata"]["labels"]["ai-infra-planner/role"] == "leader"


def test_every_manifest_is_valid_for_the_kubernetes_api(
    single_run: OfflineRun, multi_run: OfflineRun
) -> None:
    checked = []
    for run in (single_run, multi_run):
        for manifest in manifests(run).values():
            validate(manifest)
            checked.append(manifest["kind"])
    assert {"Namespace", "Secret", "NetworkPolicy", "Deployment", "LeaderWorkerSet", "Service",
            "PodDisruptionBudget"} <= set(checked)  # fmt: skip


def test_the_validators_refuse_a_broken_manifest(
    single_run: OfflineRun, multi_run: OfflineRun
) -> None:
    [deployment] = by_kind(single_run, "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["hostNetwork"] = "no"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    unknown = copy.deepcopy(by_kind(single_run, "NetworkPolicy")[0])
    unknown["spec"]["egresss"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(unknown)
    [lws] = by_kind(multi_run, "LeaderWorkerSet")
    wrong = copy.deepcopy(lws)
    wrong["spec"]["leaderWorkerTemplate"]["size"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong)
    typo = copy.deepcopy(lws)
    typo["spec"]["leaderWorkerTemplate"]["workerTemplates"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(typo)
    container = copy.deepcopy(lws)
    worker = container["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    worker["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = "false"
    with pytest.raises(jsonschema.ValidationError):
        validate(container)


def test_the_lws_schema_is_the_published_crd_s() -> None:
    assert LWS_SCHEMA["version"] == "v0.10.0"
    assert LWS_SCHEMA["source"].startswith("https://github.com/kubernetes-sigs/lws/blob/v0.10.0/")
    assert LWS_SCHEMA["api_version"] == LWS_API_VERSION


def test_a_site_without_its_cluster_settings_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RunError, match=r"clusters\.dc1: registry, weights_copy_image"):
        _run(project, SINGLE, clusters={})
    public = {"dc1": {**CLUSTERS["dc1"], "weights_copy_image": "docker.io/amazon/aws-cli:2"}}
    with pytest.raises(RunError, match=r"weights_copy_image.*not in the registry"):
        _run(project, SINGLE, clusters=public)


def test_the_aws_budget_counts_only_what_the_plan_spends_on_aws(
    single_run: OfflineRun, project: Path
) -> None:
    """A pool on a cluster site is bought hardware, with no AWS bill: the AWS budget's limit
    leaves it out, and a stack with nothing on AWS gets no budget (one at the plan's total
    would never alert)."""
    plan = read_plan(project / "plans/dev/plan.json")
    assert {p.site for p in plan.pools} == {"dc1"} and not plan.providers
    assert [r for r in single_run.resources if r.type == "aws:budgets/budget:Budget"] == []


def test_a_mixed_plan_s_budget_is_its_aws_share(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The site's pool and an API workload beside it: the budget is the API's share."""
    faq = (
        "  - name: faq\n    task: faq\n    data: internal\n    model: claude-haiku-5.5\n"
        "    monthly_tokens: {input: 400M, output: 80M}\n    consumers: [{cidr: 10.60.0.0/16}]\n"
    )
    run = _run(project, SINGLE + faq)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    assert plan.providers and {p.site for p in plan.pools} == {"dc1"}
    on_site = sum(p.monthly_cost_usd for p in plan.pools if p.site == "dc1")
    [budget] = [r for r in run.resources if r.type == "aws:budgets/budget:Budget"]
    expected = round(plan.totals.monthly_cost_usd - on_site, 2)
    assert float(budget.inputs["limitAmount"]) == expected
    assert (on_site > 0) and expected < plan.totals.monthly_cost_usd


def test_a_long_workload_name_still_gives_annotation_keys_kubernetes_takes() -> None:
    """Review of issue 16: `ai-infra-planner/workload-monthly-usd.<workload>` passed 63
    characters after the '/' for a workload name of 43 or more (a DNS label may have 63), which
    the API server refuses and the schema check does not see."""
    from stacks.kubernetes.labels import workload_cost_key

    for name in ("triage", "a" * 43, "w" * 63):
        key = workload_cost_key(name)
        assert label_key_problem(key) is None, key
    assert workload_cost_key("triage") == "ai-infra-planner/workload-monthly-usd.triage"
    assert workload_cost_key("a" * 62 + "b") != workload_cost_key("a" * 62 + "c")


def test_a_site_the_plan_puts_no_pool_on_needs_no_cluster_settings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review of issue 16: the stack asked for `clusters.<site>` of every site of the file,
    also one the plan put no pool on (here too small: DeepSeek needs two of its nodes)."""
    text = SITE.replace("    nodes: 4\n", "    nodes: 1\n") + (
        "  - name: notes\n    task: summarization\n    data: regulated\n"
        "    model: deepseek-v3.2\n    monthly_tokens: {input: 6B, output: 1.2B}\n"
        "    consumers: [{cidr: 10.50.0.0/16}]\n"
    )
    config = plan_project(project, text, strategy="optimal")
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    assert [s.name for s in plan.sites] == ["dc1"]
    assert {p.site for p in plan.pools} == {"aws"}
    run = run_program(project, "dev", config)  # no clusters config: none is needed
    assert not [r for r in run.resources if r.type.startswith("kubernetes:")]


def pod_templates(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates of a serving manifest: the Deployment's, or the LWS leader's and
    worker's."""
    if manifest["kind"] == "Deployment":
        return [manifest["spec"]["template"]]
    template = manifest["spec"]["leaderWorkerTemplate"]
    return [template["leaderTemplate"], template["workerTemplate"]]


def qos_class(pod: dict[str, Any]) -> str:
    """The QoS class Kubernetes gives a pod of this spec (kubernetes.io, "Pod Quality of Service
    Classes"): Guaranteed when every container, init containers too, has CPU and memory limits
    and requests equal to them (a request left out is its limit); BestEffort when none has any
    CPU or memory request or limit; else Burstable."""
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    guaranteed, any_set = True, False
    for container in containers:
        limits = container.get("resources", {}).get("limits", {})
        requests = container.get("resources", {}).get("requests", {})
        for resource in ("cpu", "memory"):
            any_set = any_set or resource in limits or resource in requests
            limit = limits.get(resource)
            if limit is None or requests.get(resource, limit) != limit:
                guaranteed = False
    return "Guaranteed" if guaranteed else "Burstable" if any_set else "BestEffort"


def serving_of(run: OfflineRun) -> list[dict[str, Any]]:
    return by_kind(run, "Deployment") + by_kind(run, "LeaderWorkerSet")


def test_every_serving_pod_is_guaranteed_and_holds_a_whole_node(
    single_run: OfflineRun, multi_run: OfflineRun, project: Path
) -> None:
    """Every pod template, init step included, requests what it is limited to (Guaranteed
    QoS): the plan's CPUs and memory of a pod on the site and all the node's GPUs, so a pool's
    pods take exactly the nodes it is priced at; /dev/shm is bounded within that memory."""
    checked = 0
    for run, name in ((single_run, "single"), (multi_run, "multi")):
        plan = read_plan(project / f"{name}.plan.json")
        [site] = plan.sites
        [pool] = [p for p in plan.pools if p.site == site.name]
        [manifest] = serving_of(run)
        pods = 0
        for template in pod_templates(manifest):
            pod = template["spec"]
            assert qos_class(pod) == "Guaranteed"
            [copy_step] = pod["initContainers"]
            [container] = pod["containers"]
            whole = {"cpu": str(site.pod_cpus), "memory": f"{site.pod_memory_mib}Mi"}
            assert copy_step["resources"] == {"requests": whole, "limits": whole}
            gpus = {**whole, "nvidia.com/gpu": str(site.gpus_per_node)}
            assert container["resources"] == {"requests": gpus, "limits": gpus}
            [shm] = [v for v in pod["volumes"] if v["name"] == "dshm"]
            assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{site.shm_mib}Mi"}
            assert 0 < site.shm_mib < site.pod_memory_mib
            checked += 1
        if manifest["kind"] == "Deployment":
            pods = manifest["spec"]["replicas"]
        else:
            pods = manifest["spec"]["replicas"] * manifest["spec"]["leaderWorkerTemplate"]["size"]
        assert pods * site.gpus_per_node == pool.nodes * pool.gpus_per_node
    assert checked == 3  # the Deployment's template, the LWS leader's and worker's
    # The pod's share of a node: the node less the kubelet's reserve and the DaemonSets' room.
    figures = plan.figures
    cpus = figures[f"site.{site.name}.cpus_per_node"].value
    reserve = figures[f"site.{site.name}.kubelet_reserved_cpus"].value
    headroom = figures["kubernetes.daemonset_headroom.cpus"].value
    assert site.pod_cpus == math.floor(float(cpus) - float(reserve) - float(headroom))


def test_the_qos_check_catches_a_pod_that_is_not_guaranteed(single_run: OfflineRun) -> None:
    """The QoS check above is no rubber stamp: each way a pod falls short of Guaranteed."""
    [deployment] = by_kind(single_run, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert qos_class(pod) == "Guaranteed"
    no_init = copy.deepcopy(pod)
    del no_init["initContainers"][0]["resources"]
    assert qos_class(no_init) == "Burstable"
    lower = copy.deepcopy(pod)
    lower["containers"][0]["resources"]["requests"]["memory"] = "1Gi"
    assert qos_class(lower) == "Burstable"
    no_cpu = copy.deepcopy(pod)
    del no_cpu["containers"][0]["resources"]["limits"]["cpu"]
    del no_cpu["containers"][0]["resources"]["requests"]["cpu"]
    assert qos_class(no_cpu) == "Burstable"
    gpus_only = copy.deepcopy(pod)  # the pods before issue 16's review: GPUs alone
    for container in [*gpus_only["initContainers"], *gpus_only["containers"]]:
        container["resources"] = {"limits": {"nvidia.com/gpu": "8"}}
    assert qos_class(gpus_only) == "BestEffort"


@st.composite
def pool_shapes(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    """A pool shape the plan checks accept (planner/planfile/checks.py): GPUs a node; tensor
    parallel within a node; replicas a node where a replica fits one (pipelined within it, one
    replica); or a replica over several whole nodes; nodes whole replicas."""
    gpus = draw(st.sampled_from([1, 2, 4, 6, 8, 16]))
    kind = draw(st.sampled_from(["engines", "pipelined", "nodes"]))
    tensor = draw(st.sampled_from([t for t in (1, 2, 4, 8, 16) if t <= gpus]))
    if kind == "engines":
        pipeline, per_node, span = 1, draw(st.integers(1, gpus // tensor)), 1
    elif kind == "pipelined":
        stages = [p for p in range(2, 9) if tensor * p <= gpus]
        pipeline = draw(st.sampled_from(stages)) if stages else 1
        per_node, span = 1, 1
    else:
        tensor, pipeline, per_node = gpus, draw(st.integers(2, 4)), 1
        span = pipeline
    nodes = span * draw(st.integers(1, 5))
    return gpus, tensor, pipeline, per_node, nodes


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape_of=pool_shapes())
def test_pods_hold_exactly_the_nodes_a_pool_is_priced_at(
    cluster_plan: Plan, shape_of: tuple[int, int, int, int, int]
) -> None:
    """For every pool shape: the serving manifest's pods x GPUs a pod = nodes x GPUs a node,
    each pod a whole node; a node's replicas are engines of one server; a replica spans pods
    only where its GPUs exceed a node's, and then with Ray."""
    gpus, tensor, pipeline, per_node, nodes = shape_of
    catalog = default_catalog()
    [site] = cluster_plan.sites
    [pool] = cluster_plan.pools
    pool = pool.model_copy(
        update={
            "gpus_per_node": gpus,
            "tensor_parallel": tensor,
            "pipeline_parallel": pipeline,
            "replicas_per_node": per_node,
            "nodes": nodes,
        }
    )
    site = site.model_copy(update={"gpus_per_node": gpus})
    manifest = serving_manifest(catalog, pool, site, SETTINGS, "v0.33.0", "ns", {}, {}, {})
    spans = tensor * pipeline > gpus
    assert (manifest["kind"] == "LeaderWorkerSet") == spans
    if spans:
        size = manifest["spec"]["leaderWorkerTemplate"]["size"]
        pods = manifest["spec"]["replicas"] * size
        assert size * gpus >= tensor * pipeline
    else:
        pods = manifest["spec"]["replicas"]
    templates = pod_templates(manifest)
    for template in templates:
        [container] = template["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
        assert qos_class(template["spec"]) == "Guaranteed"
    assert pods * gpus == nodes * gpus
    command = " ".join(templates[0]["spec"]["containers"][0]["command"])
    engines = int(command.split("--data-parallel-size ")[1].split()[0])
    assert engines == (1 if spans else per_node) and engines * tensor * pipeline <= max(
        gpus, tensor * pipeline
    )
    assert ("--distributed-executor-backend ray" in command) == spans
    validate(manifest)


def test_a_pool_of_part_replicas_is_refused(cluster_plan: Plan) -> None:
    """A plan whose nodes are not whole replicas (a hand-edited plan) would leave a node idle
    or a group short: the stack refuses it, naming the pool."""
    pool = cluster_plan.pools[0].model_copy(
        update={"tensor_parallel": 8, "pipeline_parallel": 2, "replicas_per_node": 1, "nodes": 3}
    )
    with pytest.raises(ValueError, match=r"pool .*: 3 nodes are not whole replicas of 2 nodes"):
        shape(pool)
    assert shape(pool.model_copy(update={"nodes": 4})).pods == 4


def test_callers_outside_the_cluster_get_an_internal_load_balancer(
    single_run: OfflineRun, project: Path
) -> None:
    """Issue 16, exposure: the pool's Service is a LoadBalancer with the site's internal
    annotations and class, open only to the consumers' ranges, keeping the caller's address
    (externalTrafficPolicy Local) and opening no node port (allocateLoadBalancerNodePorts
    false); kubernetes-validate takes it (test_every_manifest_is_valid_for_the_kubernetes_api)."""
    plan = read_plan(project / "plans/dev/plan.json")
    [site] = plan.sites
    assert site.load_balancer is not None
    [svc] = by_kind(single_run, "Service")
    assert svc["metadata"]["annotations"] == site.load_balancer.annotations == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":
            "preserve_client_ip.enabled=true",
        "service.beta.kubernetes.io/aws-load-balancer-subnets": "llm-dc1-a, llm-dc1-b",
    }  # fmt: skip
    spec = svc["spec"]
    assert spec["type"] == "LoadBalancer"
    assert spec["loadBalancerClass"] == "service.k8s.aws/nlb"
    assert spec["loadBalancerSourceRanges"] == ["10.20.0.0/16"]
    assert spec["externalTrafficPolicy"] == "Local"
    assert spec["allocateLoadBalancerNodePorts"] is False
    assert not any("nodePort" in port for port in spec["ports"])
    assert "healthCheckNodePort" not in spec  # Kubernetes allocates it: served by kube-proxy
    validate(svc)


def test_a_pool_with_no_outside_callers_keeps_a_cluster_ip_service() -> None:
    """Without callers outside the cluster (or a site without a load balancer) the Service is
    ClusterIP, with none of the load balancer's fields (the API server refuses them there)."""
    from stacks.kubernetes.service import Outside, service_manifest

    pods = {"ai-infra-planner/pool": "p"}
    inside = service_manifest("ns", {}, pods, 8000)
    assert inside["spec"]["type"] == "ClusterIP"
    assert not {"loadBalancerClass", "loadBalancerSourceRanges", "externalTrafficPolicy",
                "allocateLoadBalancerNodePorts"} & set(inside["spec"])  # fmt: skip
    assert "annotations" not in inside["metadata"]
    validate(inside)
    outside = service_manifest(
        "ns", {}, pods, 8000, Outside({}, "service.k8s.aws/nlb", ["10.1.0.0/16"])
    )
    assert outside["spec"]["type"] == "LoadBalancer" and "annotations" not in outside["metadata"]
    validate(outside)


def _tls(run: OfflineRun, kind: str) -> list[Any]:
    return [r for r in run.resources if r.type == f"tls:index/{kind}"]


def test_the_pods_serve_tls_with_a_certificate_of_the_pool_s_own_ca(
    single_run: OfflineRun, project: Path
) -> None:
    """A CA per pool (key, self-signed CA certificate) signs the serving certificate (key,
    request, locally signed certificate) for the Service's names inside the cluster and
    <namespace>.<dns_suffix>; a kubernetes.io/tls Secret holds it; the CA is a stack output."""
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = plan.pools
    [namespace] = by_kind(single_run, "Namespace")
    ns = namespace["metadata"]["name"]
    keys = {r.name.rsplit("-", 2)[-2]: r for r in _tls(single_run, "privateKey:PrivateKey")}
    assert sorted(keys) == ["ca", "serving"]
    [ca] = _tls(single_run, "selfSignedCert:SelfSignedCert")
    # What callers trust survives a mistaken destroy, as the pool's other keys do; the serving
    # certificate is replaced as it nears its end, so it is not protected.
    assert ca.protect and ca.retain_on_delete and keys["ca"].protect
    assert not keys["serving"].protect
    assert ca.inputs["isCaCertificate"] is True
    assert sorted(ca.inputs["allowedUses"]) == ["cert_signing", "crl_signing"]
    [request] = _tls(single_run, "certRequest:CertRequest")
    assert request.inputs["dnsNames"] == [
        "serving", f"serving.{ns}", f"serving.{ns}.svc", f"serving.{ns}.svc.cluster.local",
        f"{ns}.llm.dc1.internal",
    ]  # fmt: skip
    [signed] = _tls(single_run, "locallySignedCert:LocallySignedCert")
    assert not signed.protect
    assert "server_auth" in signed.inputs["allowedUses"]
    assert signed.inputs["validityPeriodHours"] == 8760
    assert signed.inputs["earlyRenewalHours"] == 720
    [secret] = [m for m in by_kind(single_run, "Secret") if m["type"] == "kubernetes.io/tls"]
    assert secret["metadata"]["name"] == "serving-tls"
    assert secret["stringData"]["tls.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert secret["stringData"]["tls.key"].startswith(KEY_HEADER)
    authority = single_run.outputs["pool_ca_certificates"][pool.name]
    assert authority.startswith("-----BEGIN CERTIFICATE-----")
    assert single_run.outputs["pools"][pool.name]["ca_certificate"] == authority


def test_the_private_keys_stay_secrets(single_run: OfflineRun) -> None:
    """Both private keys reach the resources that take them only as Pulumi secrets, and no
    stack output holds one (verify's `secrets` rule on the key handed on in plain text:
    tests/test_kubernetes_verify.py)."""
    from planner.verification.rules.secrets import keys_in, plaintext_outputs
    from tests.test_stacks import plain

    takes_key = {
        "tls:index/selfSignedCert:SelfSignedCert": "privateKeyPem",
        "tls:index/certRequest:CertRequest": "privateKeyPem",
        "tls:index/locallySignedCert:LocallySignedCert": "caPrivateKeyPem",
    }
    found = 0
    for r in single_run.resources:
        if r.type in takes_key:
            value = r.inputs[takes_key[r.type]]
            assert rpc.is_rpc_secret(value), r.name
            assert keys_in(plain(value)) == [f"a private key, {KEY_HEADER}"]
            found += 1
        if r.type == "kubernetes:core/v1:Secret" and r.inputs["type"] == "kubernetes.io/tls":
            assert rpc.is_rpc_secret(r.inputs["stringData"])  # tls.key with tls.crt
            found += 1
    assert found == 4
    assert plaintext_outputs(plain(single_run.outputs)) == []


class _Config:
    """The two reads read_clusters makes of a stack config: the clusters, and the secrets
    (`secrets`: the ones set, by key; default both of dc1's weights' credentials)."""

    def __init__(self, clusters: object, secrets: dict[str, str] | None = None) -> None:
        self.clusters = clusters
        self.secrets = (
            secrets
            if secrets is not None
            else {
                "dc1_weights_access_key_id": fake_key("aws", 16),
                "dc1_weights_secret_access_key": fake_key("aws", 17),
            }
        )

    def get_object(self, key: str) -> object:
        return self.clusters if key == "clusters" else None

    def get_secret(self, key: str) -> str | None:
        return self.secrets.get(key)


@pytest.mark.parametrize(
    "missing",
    [
        ["dc1_weights_access_key_id"],
        ["dc1_weights_secret_access_key"],
        ["dc1_weights_access_key_id", "dc1_weights_secret_access_key"],
    ],
)
def test_the_weights_store_s_credentials_are_both_required(missing: list[str]) -> None:
    """The init step's copy signs with both keys, and nothing else in the pod can (no instance
    metadata through the policy, no service account token): with one alone the pods would name
    a Secret the stack never made and never start; with neither the copy fails. Refused, naming
    each missing secret."""
    secrets = {
        key: fake_key("aws", 16)
        for key in ("dc1_weights_access_key_id", "dc1_weights_secret_access_key")
        if key not in missing
    }
    with pytest.raises(RunError, match=rf"stack config secret {' and '.join(missing)} missing"):
        read_clusters(cast(Any, _Config(CLUSTERS, secrets)), ["dc1"])


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("weights_cidr", "0.0.0.0/0", "0.0.0.0/0 is not inside the private ranges"),
        ("weights_cidr", "8.8.8.0/24", "8.8.8.0/24 is not inside the private ranges"),
        ("weights_cidr", "10.9.0.0/33", "'10.9.0.0/33' is not a CIDR block"),
        ("weights_cidr", "10.9.0.1/24", "'10.9.0.1/24' is not a CIDR block"),
        ("weights_endpoint", "http://models.internal", "is not an https:// URL on port 443"),
        ("weights_endpoint", "https://minio.internal:9000", "is not an https:// URL on port 443"),
        ("weights_endpoint", "https://", "is not an https:// URL on port 443"),
    ],
)
def test_the_store_s_range_and_endpoint_are_refused_unless_private_and_https(
    key: str, value: str, words: str
) -> None:
    """The weights' store is the only place outside the pool its pods may reach: its range
    must be a CIDR block inside the private ranges (data_classes.yaml private_consumers), or
    the policy would open HTTPS to the internet; its endpoint HTTPS on 443, the one port the
    policy opens (else the init step never reaches it). Each is refused naming the key."""
    config = _Config({"dc1": {**CLUSTERS["dc1"], key: value}})
    with pytest.raises(RunError, match=rf"clusters\.dc1\.{key}: .*{re.escape(words)}"):
        read_clusters(cast(Any, config), ["dc1"])
    # What the tests' sites give passes, and so does the port named explicitly.
    assert read_clusters(cast(Any, _Config(CLUSTERS)), ["dc1"])["dc1"].weights_cidr == "10.9.0.0/24"
    explicit = {"dc1": {**CLUSTERS["dc1"], "weights_endpoint": "https://s3.internal:443"}}
    assert read_clusters(cast(Any, _Config(explicit)), ["dc1"])["dc1"].weights_endpoint == (
        "https://s3.internal:443"
    )


def lws_service_clashes(found: list[dict[str, Any]]) -> list[str]:
    """Each LeaderWorkerSet (namespace/name) a Service the stack makes shares its name with."""
    services = {
        (m["metadata"]["namespace"], m["metadata"]["name"]) for m in found if m["kind"] == "Service"
    }
    return sorted(
        f"{m['metadata']['namespace']}/{m['metadata']['name']}"
        for m in found
        if m["kind"] == "LeaderWorkerSet"
        and (m["metadata"]["namespace"], m["metadata"]["name"]) in services
    )


def test_no_service_takes_the_name_of_a_leader_worker_set(multi_run: OfflineRun) -> None:
    """Issue 16 review: the LWS controller makes a headless Service named after the LWS, and
    leaves alone a Service of that name already there (kubernetes-sigs/lws v0.10.0
    pkg/controllers/leaderworkerset_controller.go CreateHeadlessServiceIfNotExists(..., lws.Name),
    pkg/utils/controller/controller_utils.go); workers reach their leader as
    <lws>-<group>.<lws>.<namespace> (LWS_LEADER_ADDRESS, pkg/utils/pod/pod_utils.go), a name
    only that headless Service gives. So the pool's Service, named `serving` as its certificate
    and callers know it, must not take the LWS's name."""
    found = list(manifests(multi_run).values())
    [lws] = by_kind(multi_run, "LeaderWorkerSet")
    [svc] = by_kind(multi_run, "Service")
    assert svc["metadata"]["name"] == "serving" and lws["metadata"]["name"] == "serving-group"
    assert lws_service_clashes(found) == []
    # The check catches the stack as it was: the LWS named `serving` beside the Service.
    clash = copy.deepcopy(lws)
    clash["metadata"]["name"] = "serving"
    assert lws_service_clashes([*found, clash]) == [f"{lws['metadata']['namespace']}/serving"]


def test_every_container_names_the_user_it_runs_as(
    single_run: OfflineRun, multi_run: OfflineRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pods run as uid 1000, which the vLLM image's /etc/passwd does not name; torch calls
    getpass.getuser() at import, which reads LOGNAME, USER, LNAME and USERNAME before the
    password database (Python docs, getpass.getuser) and fails without them. Every container
    (the init step's too) sets USER and LOGNAME, and getpass.getuser() then answers."""
    import getpass
    import pwd

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises((KeyError, OSError)):  # the pods as they were: no name for their uid
        getpass.getuser()
    checked = 0
    for run in (single_run, multi_run):
        [manifest] = serving_of(run)
        for template in pod_templates(manifest):
            pod = template["spec"]
            assert pod["securityContext"]["runAsUser"] == 1000
            for container in [*pod["initContainers"], *pod["containers"]]:
                env = {e["name"]: e.get("value") for e in container["env"]}
                assert env["USER"] == env["LOGNAME"] == "vllm", container["name"]
                with monkeypatch.context() as scoped:
                    for name in ("USER", "LOGNAME"):
                        scoped.setenv(name, str(env[name]))
                    assert getpass.getuser() == "vllm"
                checked += 1
    assert checked == 6  # 3 templates, each an init step and a server


COST_KEYS = {"ai-infra-planner/monthly-usd", "ai-infra-planner/perimeter"}


def test_pod_templates_carry_no_cost_so_a_price_change_restarts_no_pod(
    single_run: OfflineRun, multi_run: OfflineRun, cluster_plan: Plan
) -> None:
    """A change to a pod template rolls its pods (kubernetes.io, "Deployments": a rollout is
    triggered only by a change of .spec.template; an LWS the same). The cost labels and
    annotations (which change with a price) stay on the Deployment or LWS; its pod templates
    carry the pool's selector, their role and the stack's and pool's names only."""
    for run in (single_run, multi_run):
        [manifest] = serving_of(run)
        assert set(manifest["metadata"]["labels"]) >= COST_KEYS
        assert "ai-infra-planner/monthly-usd" in manifest["metadata"]["annotations"]
        for template in pod_templates(manifest):
            # Labels, and on the serving pods the certificate's digest (never a cost).
            assert set(template["metadata"]) <= {"labels", "annotations"}
            assert set(template["metadata"].get("annotations", {})) <= {CERTIFICATE_ANNOTATION}
            assert set(template["metadata"]["labels"]) == {
                "ai-infra-planner/stack", "ai-infra-planner/pool", "ai-infra-planner/role",
            }  # fmt: skip
            assert not COST_KEYS & set(template["metadata"]["labels"])
        [svc] = by_kind(run, "Service")
        [leader, *_] = pod_templates(manifest)
        assert svc["spec"]["selector"].items() <= leader["metadata"]["labels"].items()
    # A new price changes the Deployment's labels and annotations, never its pod template.
    [pool] = [p for p in cluster_plan.pools if p.site == "dc1"]
    [site] = cluster_plan.sites

    def at(price: float) -> dict[str, Any]:
        labels = cost_labels("dev", "pool", pool.name, price, pool.perimeter.value)
        notes = cost_annotations("dev", "pool", pool.name, price, pool.perimeter.value)
        pods = {"ai-infra-planner/pool": label_value(pool.name)}
        return serving_manifest(
            default_catalog(), pool, site, SETTINGS, "v0.33.0", "ns", pods, labels, notes
        )

    before, after = at(1000.0), at(2000.0)
    assert before["metadata"] != after["metadata"]
    assert before["spec"] == after["spec"]


def test_a_renewed_certificate_replaces_the_serving_pods(
    single_run: OfflineRun, multi_run: OfflineRun, cluster_plan: Plan
) -> None:
    """The certificate a `pulumi up` re-issues reaches the server by new pods: the serving pod
    template carries the SHA-256 of the certificate in the pool's TLS Secret, so a new one
    changes the template and the Deployment or LWS rolls its pods. vLLM's own reload
    (--enable-ssl-refresh) is not used: its watch on the mounted files ends at the first
    renewal (stacks/kubernetes/workload.py CERTIFICATE_ANNOTATION)."""
    for run in (single_run, multi_run):
        [manifest] = serving_of(run)
        [secret] = [m for m in by_kind(run, "Secret") if m["type"] == "kubernetes.io/tls"]
        digest = hashlib.sha256(secret["stringData"]["tls.crt"].encode()).hexdigest()
        [serving, *workers] = pod_templates(manifest)
        assert serving["metadata"]["annotations"] == {CERTIFICATE_ANNOTATION: digest}
        [container] = serving["spec"]["containers"]
        assert "--enable-ssl-refresh" not in " ".join(container["command"])
        # A group's workers need no annotation: a change to the leader's template alone updates
        # the whole group (kubernetes-sigs/lws v0.10.0 pkg/utils/revision/revision_utils.go: a
        # revision is the whole leaderWorkerTemplate).
        assert all("annotations" not in worker["metadata"] for worker in workers)
    assert len(pod_templates(serving_of(multi_run)[0])) == 2
    # Another certificate, another pod template: what makes Kubernetes replace the pods.
    [pool] = [p for p in cluster_plan.pools if p.site == "dc1"]
    [site] = cluster_plan.sites

    def with_certificate(pem: str) -> dict[str, Any]:
        return serving_manifest(
            default_catalog(), pool, site, SETTINGS, "v0.33.0", "ns", {}, {}, {}, sha256(pem)
        )

    before, after = with_certificate("first"), with_certificate("renewed")
    assert before["spec"]["template"] != after["spec"]["template"]
    del before["spec"]["template"]["metadata"]["annotations"]
    del after["spec"]["template"]["metadata"]["annotations"]
    assert before == after


def test_the_service_is_replaced_when_its_load_balancer_class_changes(
    single_run: OfflineRun,
) -> None:
    """spec.loadBalancerClass cannot change once set (kubernetes.io, API reference,
    ServiceSpec): the Service is replaced instead, deleted first as its name is fixed."""
    [service] = [r for r in single_run.resources if r.type == "kubernetes:core/v1:Service"]
    assert service.replace_on_changes == ("spec.loadBalancerClass",)
    assert service.delete_before_replace
    # Nothing else is replaced before its successor exists.
    others = [r for r in single_run.resources if r is not service and r.delete_before_replace]
    assert others == []


# The Pod Security Standards' Restricted policy (kubernetes.io, "Pod Security Standards",
# Restricted, with the Baseline controls it includes): the volume types it allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """Where a pod spec breaks the Restricted policy: host namespaces, privileged containers,
    host ports, hostPath and other volume types outside the allowed ones, privilege escalation,
    running as root (runAsNonRoot true at the pod, or in every container; runAsUser never 0),
    a seccomp profile other than RuntimeDefault or Localhost (at the pod, or every container),
    capabilities not dropping ALL or adding any but NET_BIND_SERVICE."""
    problems = [
        f"spec.{field}" for field in ("hostNetwork", "hostPID", "hostIPC") if pod.get(field)
    ]
    pod_security = pod.get("securityContext") or {}
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    if pod_security.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser 0")
    pod_profile = (pod_security.get("seccompProfile") or {}).get("type")
    if pod_profile is not None and pod_profile not in SECCOMP_ALLOWED:
        problems.append(f"spec.securityContext.seccompProfile {pod_profile}")
    containers = [*(pod.get("initContainers") or []), *pod["containers"]]
    for container in containers:
        name, security = container["name"], container.get("securityContext") or {}
        if security.get("privileged"):
            problems.append(f"{name}: privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation not false")
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{name}: runAsNonRoot not true")
        if security.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        profile = (security.get("seccompProfile") or {}).get("type", pod_profile)
        if profile not in SECCOMP_ALLOWED:
            problems.append(f"{name}: seccompProfile {profile}")
        capabilities = security.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{name}: capabilities add {sorted(added)}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def test_every_pod_template_meets_the_restricted_pod_security_standard(
    single_run: OfflineRun, multi_run: OfflineRun
) -> None:
    """Every pod template (the Deployment's, the LWS leader's and worker's), each container
    and init container, holds to the Restricted policy, so the pool's namespace can enforce it
    (pod-security.kubernetes.io/enforce: restricted)."""
    checked = 0
    for run in (single_run, multi_run):
        [manifest] = serving_of(run)
        for template in pod_templates(manifest):
            pod = template["spec"]
            assert restricted_problems(pod) == [], template["metadata"]["labels"]
            assert len(pod["initContainers"]) == len(pod["containers"]) == 1
            checked += 1
    assert checked == 3


def test_the_restricted_check_catches_each_breach(single_run: OfflineRun) -> None:
    """The check above is no rubber stamp: each control broken is caught, in the init step as
    in the server, and what the policy allows passes."""
    [deployment] = by_kind(single_run, "Deployment")
    good = deployment["spec"]["template"]["spec"]
    assert restricted_problems(good) == []

    def broken(change: Any) -> list[str]:
        pod = copy.deepcopy(good)
        change(pod)
        return restricted_problems(pod)

    def server(pod: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = pod["containers"][0]
        return found

    def init(pod: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = pod["initContainers"][0]
        return found

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert broken(lambda p, f=field: p.update({f: True})) == [f"spec.{field}"]
    assert broken(lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}})) == [
        "volume h: ['hostPath']"
    ]
    assert broken(lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "x"}})) == [
        "volume n: ['nfs']"
    ]
    assert broken(lambda p: server(p)["securityContext"].update(privileged=True)) == [
        "vllm: privileged"
    ]
    assert broken(lambda p: init(p)["securityContext"].pop("allowPrivilegeEscalation")) == [
        "copy-weights: allowPrivilegeEscalation not false"
    ]
    # runAsNonRoot: at the pod suffices; false in a container is caught.
    assert broken(lambda p: init(p)["securityContext"].pop("runAsNonRoot")) == []
    assert broken(lambda p: init(p)["securityContext"].update(runAsNonRoot=False)) == [
        "copy-weights: runAsNonRoot not true"
    ]

    def nowhere_non_root(pod: dict[str, Any]) -> None:
        pod["securityContext"].pop("runAsNonRoot")
        server(pod)["securityContext"].pop("runAsNonRoot")

    assert broken(nowhere_non_root) == ["vllm: runAsNonRoot not true"]
    assert broken(lambda p: server(p)["securityContext"].update(runAsUser=0)) == [
        "vllm: runAsUser 0"
    ]
    assert broken(lambda p: p["securityContext"].update(runAsUser=0)) == [
        "spec.securityContext.runAsUser 0"
    ]
    unconfined = {"seccompProfile": {"type": "Unconfined"}}
    assert broken(lambda p: init(p)["securityContext"].update(unconfined)) == [
        "copy-weights: seccompProfile Unconfined"
    ]
    assert broken(lambda p: p["securityContext"].update(unconfined)) == [
        "spec.securityContext.seccompProfile Unconfined"
    ]
    assert broken(lambda p: init(p)["securityContext"].pop("seccompProfile")) == []
    assert broken(lambda p: server(p)["securityContext"].update(capabilities={})) == [
        "vllm: capabilities do not drop ALL"
    ]
    add = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}
    assert broken(lambda p: server(p)["securityContext"].update(capabilities=add)) == [
        "vllm: capabilities add ['SYS_ADMIN']"
    ]
    bind_only = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert broken(lambda p: server(p)["securityContext"].update(capabilities=bind_only)) == []
    assert broken(lambda p: server(p)["ports"][0].update(hostPort=8000)) == ["vllm: hostPort 8000"]


@pytest.mark.parametrize("text", [SINGLE, MULTI], ids=["deployment", "leaderworkerset"])
def test_pulumi_up_waits_for_the_serving_pods_as_long_as_their_weights_take(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """pulumi-kubernetes calls a Deployment or a Service failed after 10 minutes unless
    customTimeouts say otherwise (its Deployment and Service docs, 4.34.2), and a GPU pod's
    first start (copying, then loading its weights) outlasts that: the serving resource and its
    Service wait one pod's way to serving on a create, and each replica's in turn on an update
    (one at a time: maxUnavailable 1, no surge)."""
    import pulumi
    import pulumi_kubernetes as k8s

    given: dict[str, pulumi.CustomTimeouts | None] = {}

    def spy(cls: type, kind: str) -> type:
        class Spy(cls):  # type: ignore[valid-type,misc]
            def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
                opts = kwargs.get("opts")
                given[kind] = opts.custom_timeouts if opts is not None else None
                super().__init__(name, *args, **kwargs)

        return Spy

    monkeypatch.setattr(k8s.apps.v1, "Deployment", spy(k8s.apps.v1.Deployment, "serving"))
    monkeypatch.setattr(
        k8s.apiextensions, "CustomResource", spy(k8s.apiextensions.CustomResource, "serving")
    )
    monkeypatch.setattr(k8s.core.v1, "Service", spy(k8s.core.v1.Service, "service"))
    run = _run(project, text)
    capsys.readouterr()
    plan = read_plan(project / "plans/dev/plan.json")
    [pool] = [p for p in plan.pools if p.site == "dc1"]
    form = shape(pool)
    catalog = default_catalog()
    # The pool's callers are outside the cluster, through the site's AWS NLB: each pod also
    # waits for the NLB to call it healthy (its readiness gate), 5 minutes for the target's
    # registration and the controller's default 3 checks 10 s apart, in whole minutes.
    [site] = [s for s in plan.sites if s.name == "dc1"]
    gate = readiness_gate_s(site.load_balancer)
    assert gate == 360
    one = pod_ready_s(catalog, pool, form.spans_pods) + gate
    figures = boot_figures()
    copy_s = weights_gb(catalog, pool.model, pool.precision) / figures.cluster_copy_gb_per_s.value
    assert one >= copy_s + pod_startup_s(catalog, pool) > 600
    for kind in ("serving", "service"):
        timeouts = given[kind]
        assert timeouts is not None, kind
        assert timeouts.create == f"{one // 60}m"
        # An update replaces one replica at a time, each after its old pods' grace: behind
        # the NLB, 180 s serving on while the NLB lets go, 120 s of drain, 20 s to exit.
        grace = termination_figures().grace_s(site.load_balancer)
        assert grace == 320
        # A group's workers end only once their leader is gone (lws#956): two graces.
        ends = grace * (2 if form.spans_pods else 1)
        assert timeouts.update == f"{math.ceil((one + ends) * form.replicas / 60)}m"
    # A custom resource is awaited only where it says what for (pulumi-kubernetes
    # ReadyCondition): the LWS, until its controller has seen the spec (observedGeneration,
    # which the provider's jsonpath checks hold to the spec's generation, and whose absence, a
    # controller before LWS v0.9.0, fails the wait rather than passing it on old counts) and
    # every group is updated and ready.
    serving = by_kind(run, "LeaderWorkerSet" if form.spans_pods else "Deployment")
    annotations = serving[0]["metadata"]["annotations"]
    if form.spans_pods:
        assert json.loads(annotations["pulumi.com/waitFor"]) == [
            "jsonpath={.status.observedGeneration}",
            f"jsonpath={{.status.updatedReplicas}}={form.replicas}",
            f"jsonpath={{.status.readyReplicas}}={form.replicas}",
        ]
    else:  # a Deployment has pulumi-kubernetes's own await
        assert "pulumi.com/waitFor" not in annotations
        # Its rollout's progress deadline holds one pod's way to serving, not 600 s, and the
        # old pod's end before it (its grace).
        assert serving[0]["spec"]["progressDeadlineSeconds"] == one + grace


def test_a_pool_behind_an_aws_nlb_turns_ready_only_once_the_nlb_calls_it_healthy(
    single_run: OfflineRun, project: Path
) -> None:
    """A rolling update (a renewed certificate, a new image) ends an old pod once its new one
    is Ready; behind an ip-target NLB the new one is then still "initial" in the target group
    for minutes, and the NLB may be left with no healthy target (AWS Load Balancer Controller
    docs, "Pod readiness gate"). The pool's namespace carries the label that has the controller
    gate each new pod on its target's health, and every wait holds that gate's time."""
    plan = read_plan(project / "plans/dev/plan.json")
    [site] = [s for s in plan.sites if s.name == "dc1"]
    [namespace] = by_kind(single_run, "Namespace")
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    validate(namespace)
    [pool] = [p for p in plan.pools if p.site == "dc1"]
    gate = readiness_gate_s(site.load_balancer)
    [deployment] = by_kind(single_run, "Deployment")
    assert deployment["spec"]["progressDeadlineSeconds"] == (
        pod_ready_s(default_catalog(), pool)
        + gate
        + termination_figures().grace_s(site.load_balancer)
    )
    # The gate's time follows the Service's own health-check annotations, in whole minutes.
    assert site.load_balancer is not None
    prefix = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-"
    slower = site.load_balancer.model_copy(
        update={
            "annotations": {
                **site.load_balancer.annotations,
                f"{prefix}healthy-threshold": "5",
                f"{prefix}interval": "30",
            }
        }
    )
    assert (gate, readiness_gate_s(slower)) == (360, 480)  # 300 + 3 x 10; 300 + 5 x 30
    # A ClusterIP pool (no load balancer) or another implementation's has no gate, and its
    # namespace no label.
    other = site.load_balancer.model_copy(
        update={"annotations": {"example.com/internal": "true"}, "load_balancer_class": None}
    )
    assert readiness_gate_s(None) == readiness_gate_s(other) == 0
    labels = namespace_manifest("ns", {}, {})["metadata"]["labels"]
    assert "elbv2.k8s.aws/pod-readiness-gate-inject" not in labels


def hold_s(container: dict[str, Any]) -> int | None:
    """The seconds a container's preStop sleep holds it (None: no sleep)."""
    hook = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    return int(hook[1]) if hook and hook[0] == "sleep" and len(hook) == 2 else None


def flag(container: dict[str, Any], name: str) -> int | None:
    """A vLLM flag's value in a container's command (None: not given, or not a server)."""
    words = " ".join(container["command"]).split()
    return int(words[words.index(name) + 1]) if "serve" in words and name in words else None


def ending_problems(template: dict[str, Any], closes_s: int) -> list[str]:
    """What in a pod template lets its end drop the requests it took, its callers' paths to it
    taking `closes_s` to close. Each container must keep running, untold (a preStop sleep),
    until those paths have closed and the requests taken before then have finished
    (TerminationFigures.drain_s), as vLLM 0.33.0 aborts them on SIGTERM: its own drain is not
    used (stacks/serving.py: none with several engines, perhaps none on Ray); a worker as long
    as its leader, whose requests run on its GPUs. The sleep must end within the pod's grace period
    (the kubelet kills at its end), and a liveness or startup probe's kill must not sleep it
    out."""
    ending = termination_figures()
    needed = closes_s + ending.drain_s
    spec = template["spec"]
    grace = spec.get("terminationGracePeriodSeconds", 30)  # Kubernetes's default
    found = []
    for container in spec["containers"]:
        name, hold = container["name"], hold_s(container)
        if hold is None:
            found.append(f"{name}: no preStop sleep")
            continue
        if hold < needed:
            found.append(f"{name}: serves on {hold} s, not the {needed} s its requests need")
        if hold + ending.exit_s > grace:
            found.append(
                f"{name}: sleeps {hold} s, leaving less than {ending.exit_s} s of its grace of "
                f"{grace} s"
            )
        serves = "serve" in " ".join(container["command"]).split()
        for probe in ("livenessProbe", "startupProbe") if serves else ():
            if probe not in container:
                found.append(f"{name}: no {probe}")
            elif container[probe].get("terminationGracePeriodSeconds", grace) != ending.exit_s:
                found.append(f"{name}: a {probe} kill is not cut at {ending.exit_s} s")
    return found


def test_a_pod_ends_without_dropping_the_requests_it_serves(
    single_run: OfflineRun, multi_run: OfflineRun, project: Path
) -> None:
    """A rolling update, a drained node or a scale-in ends serving pods. Ended at once, vLLM
    0.33.0 aborts every request in flight, and callers still sent there (an NLB takes about 2
    minutes to let go of an ip target, kube-proxy up to its 30 s resync) find it gone (EKS Best
    Practices Guide, Load Balancing, "Gracefully handle the client requests"). So each
    container keeps serving through a preStop sleep until its paths have closed and then its
    requests have finished, within the pod's grace period; a multi-node worker as long as its
    leader; a probe's kill does not sleep it out; and the server is never told to drain by
    itself, which vLLM 0.33.0 does only with one engine (perhaps not on Ray)."""
    ending = termination_figures()
    plan = read_plan(project / "plans/dev/plan.json")
    [site] = [s for s in plan.sites if s.name == "dc1"]
    assert site.load_balancer is not None
    # Behind the site's AWS NLB: 180 s until it lets go, 120 s of requests, 20 s to exit.
    assert ending.hold_s(site.load_balancer) == 180
    assert ending.serve_on_s(site.load_balancer) == 300
    assert ending.grace_s(site.load_balancer) == 320
    # In the cluster alone (ClusterIP) or behind another load balancer: ECK's 50 s wait.
    other = site.load_balancer.model_copy(
        update={"annotations": {"example.com/internal": "true"}, "load_balancer_class": None}
    )
    assert ending.hold_s(None) == ending.hold_s(other) == 50
    assert ending.grace_s(None) == 190
    kinds = set()
    for run in (single_run, multi_run):
        for workload in by_kind(run, "Deployment") + by_kind(run, "LeaderWorkerSet"):
            kinds.add(workload["kind"])
            templates = pod_templates(workload)
            assert [ending_problems(template, 180) for template in templates] == [[]] * len(
                templates
            )
            for template in templates:
                assert template["spec"]["terminationGracePeriodSeconds"] == 320
                [container] = template["spec"]["containers"]
                assert hold_s(container) == 300
                assert "--shutdown-timeout" not in " ".join(container["command"])
                # The API server refuses a readiness probe's own grace (kubernetes
                # pkg/apis/core/validation: "must not be set for readinessProbes"); the
                # schema alone would not catch it.
                assert "terminationGracePeriodSeconds" not in container.get("readinessProbe", {})
            validate_lws(workload) if workload["kind"] == "LeaderWorkerSet" else validate(workload)
    assert kinds == {"Deployment", "LeaderWorkerSet"}


def test_the_ending_check_catches_each_way_to_drop_requests(
    single_run: OfflineRun, multi_run: OfflineRun
) -> None:
    """Fault injection for ending_problems: each breach is named."""
    [deployment] = by_kind(single_run, "Deployment")
    [server] = pod_templates(deployment)
    [group] = by_kind(multi_run, "LeaderWorkerSet")
    _, worker = pod_templates(group)

    def broken(template: dict[str, Any], change: Any) -> list[str]:
        copied = copy.deepcopy(template)
        change(copied["spec"])
        return ending_problems(copied, 180)

    def no_hook(spec: dict[str, Any]) -> None:
        del spec["containers"][0]["lifecycle"]

    def sleep(seconds: int) -> Any:
        def change(spec: dict[str, Any]) -> None:
            spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1] = str(seconds)

        return change

    def grace(seconds: int | None) -> Any:
        def change(spec: dict[str, Any]) -> None:
            if seconds is None:
                del spec["terminationGracePeriodSeconds"]
            else:
                spec["terminationGracePeriodSeconds"] = seconds

        return change

    def probe_sleeps(spec: dict[str, Any]) -> None:
        del spec["containers"][0]["livenessProbe"]["terminationGracePeriodSeconds"]

    assert broken(server, no_hook) == ["vllm: no preStop sleep"]
    assert broken(server, sleep(180)) == ["vllm: serves on 180 s, not the 300 s its requests need"]
    assert broken(server, grace(319)) == [
        "vllm: sleeps 300 s, leaving less than 20 s of its grace of 319 s"
    ]
    assert broken(server, grace(None)) == [
        "vllm: sleeps 300 s, leaving less than 20 s of its grace of 30 s"
    ]
    assert broken(server, probe_sleeps) == ["vllm: a livenessProbe kill is not cut at 20 s"]

    def startup_299(spec: dict[str, Any]) -> None:
        spec["containers"][0]["startupProbe"]["terminationGracePeriodSeconds"] = 299

    def no_startup(spec: dict[str, Any]) -> None:
        del spec["containers"][0]["startupProbe"]

    assert broken(server, startup_299) == ["vllm: a startupProbe kill is not cut at 20 s"]
    assert broken(server, no_startup) == ["vllm: no startupProbe"]
    assert broken(worker, sleep(180)) == [
        "vllm-worker: serves on 180 s, not the 300 s its requests need"
    ]


@pytest.mark.parametrize("figure", ["drain_s", "endpoints_s", "nlb_deregistration_s", "exit_s"])
def test_termination_figures_are_refused_unless_positive(
    figure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A figure of 0 would end a pod with its requests (or kill it at once): boot.yaml saying so
    fails the stack, not the requests."""
    import stacks.boot as boot

    broken = copy.deepcopy(boot._boot_data())
    broken["termination"][figure] = {"value": 0, "source": "test", "date": "2026-12"}
    monkeypatch.setattr(boot, "_boot_data", lambda: broken)
    boot.termination_figures.cache_clear()
    try:
        with pytest.raises(ValueError, match="termination"):
            boot.termination_figures()
    finally:
        boot.termination_figures.cache_clear()


def test_a_load_balanced_pool_gives_the_address_its_dns_name_points_at(
    single_run: OfflineRun, project: Path
) -> None:
    """The organization points <namespace>.<dns_suffix> at the Service's load balancer: the
    stack output load_balancer_addresses carries its address (unknown in a preview, which gives
    no status), read from the status as the SDK or the API spells it, hostname first."""
    import pulumi_kubernetes as k8s

    from stacks.kubernetes.pool import ingress_address

    [pool] = [p for p in read_plan(project / "plans/dev/plan.json").pools if p.site == "dc1"]
    # Its own stack output, unknown until `pulumi up` (a preview leaves `pools` known).
    assert pool.name in single_run.outputs["pools"]
    assert single_run.outputs["load_balancer_addresses"] is None
    name = "internal-k8s-abc.elb.us-east-1.amazonaws.com"
    api = {"loadBalancer": {"ingress": [{"hostname": name, "ip": "10.250.0.7"}]}}
    assert ingress_address(api) == name
    assert ingress_address({"loadBalancer": {"ingress": [{"ip": "10.250.0.7"}]}}) == "10.250.0.7"
    assert ingress_address({"loadBalancer": {}}) is None and ingress_address(None) is None
    typed = k8s.core.v1.outputs.ServiceStatus(
        load_balancer=k8s.core.v1.outputs.LoadBalancerStatus(
            ingress=[k8s.core.v1.outputs.LoadBalancerIngress(hostname=name)]
        )
    )
    assert ingress_address(typed) == name


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (STORE_CA, True),
        (STORE_CA + STORE_CA, True),  # a chain of two
        ("", False),
        ("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", False),
        (STORE_CA + "-----BEGIN " + "PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", False),
        (42, False),
    ],
)
def test_the_store_s_ca_bundle_is_certificates_only(value: object, ok: bool) -> None:
    """clusters.<site>.weights_ca: one or more PEM certificates and nothing else (never a key
    pasted beside them), refused naming the key."""
    config = _Config({"dc1": {**CLUSTERS["dc1"], "weights_ca": value}})
    if ok:
        assert read_clusters(cast(Any, config), ["dc1"])["dc1"].weights_ca == value
    else:
        with pytest.raises(RunError, match=r"clusters\.dc1\.weights_ca: not a PEM bundle|base64"):
            read_clusters(cast(Any, config), ["dc1"])


def test_a_store_with_the_organization_s_own_ca_is_trusted_by_the_copy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store in the organization's own domain (https://models.internal) has a certificate no
    public CA signed: with clusters.<site>.weights_ca the copy's S3 client trusts that bundle
    (AWS_CA_BUNDLE), mounted read-only from the weights' Secret, its CA key only; a store a
    public CA may certify, without it, gets nothing of the kind."""
    run = _run(project, SINGLE)
    capsys.readouterr()
    [deployment] = by_kind(run, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [copy_step] = pod["initContainers"]
    env = {e["name"]: e for e in copy_step["env"]}
    assert env["AWS_CA_BUNDLE"]["value"] == "/etc/weights-ca/ca.crt"
    assert {"name": "weights-ca", "mountPath": "/etc/weights-ca", "readOnly": True} in (
        copy_step["volumeMounts"]
    )
    [volume] = [v for v in pod["volumes"] if v["name"] == "weights-ca"]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    [secret] = [s for s in by_kind(run, "Secret") if s["metadata"]["name"] == "weights-reader"]
    assert sorted(secret["stringData"]) == [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ca.crt",
    ]  # fmt: skip
    validate(deployment)
    # The serving container mounts none of it.
    assert all(m["name"] != "weights-ca" for m in pod["containers"][0]["volumeMounts"])
    public = {key: value for key, value in CLUSTERS["dc1"].items() if key != "weights_ca"}
    plain_run = _run(
        project, SINGLE, {"dc1": {**public, "weights_endpoint": "https://s3.models.acme.com"}}
    )
    capsys.readouterr()
    [plain_deployment] = by_kind(plain_run, "Deployment")
    plain_pod = plain_deployment["spec"]["template"]["spec"]
    assert all(e["name"] != "AWS_CA_BUNDLE" for e in plain_pod["initContainers"][0]["env"])
    assert all(v["name"] != "weights-ca" for v in plain_pod["volumes"])


# The options vLLM's multi-node helper parses itself, per subcommand (vllm-project/vllm
# examples/online_serving/multi-node-serving.sh, the stored version at commit
# 2584e94bc2b500b84af054a71559f04e60c4aec2, read 2026-12; the release image's own copy was not
# read). Any other option goes to `ray start`, which refuses one it does not know.
MULTI_NODE_OPTIONS = {
    "leader": {"--ray_port", "--ray_cluster_size", "--ray_init_timeout"},
    "worker": {"--ray_address", "--ray_port", "--ray_init_timeout"},
}


def test_the_multi_node_helper_is_called_with_options_it_parses(multi_run: OfflineRun) -> None:
    """The leader and worker commands give the helper only options its subcommand parses (a
    misspelt one would reach `ray start` and stop the pod), each as --name=value."""
    [lws] = by_kind(multi_run, "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    for role, spec in (("leader", "leaderTemplate"), ("worker", "workerTemplate")):
        script = template[spec]["spec"]["containers"][0]["command"][2]
        helper = script.split("&&")[0]
        assert f"multi-node-serving.sh {role} " in helper
        options = re.findall(r"(--[a-z_]+)=", helper)
        assert options and set(options) <= MULTI_NODE_OPTIONS[role], (role, options)
        assert "--ray_init_timeout" in options


FAKE_AWS = """#!/bin/sh
# A stand-in `aws`: records its arguments and fails until its count of failures is spent.
echo "$*" >> "$CALLS"
left=$(cat "$FAILURES")
if [ "$left" -gt 0 ]; then echo $((left - 1)) > "$FAILURES"; exit 255; fi
"""


ATTEMPTS = COPY_RETRY.attempts


@pytest.mark.parametrize("failures", [0, 1, ATTEMPTS - 1, ATTEMPTS, ATTEMPTS + 3])
def test_the_weights_copy_retries_in_place_before_it_fails(tmp_path: Path, failures: int) -> None:
    """The init step's script, run by a real shell with stand-in `aws` and `sleep`: a failed
    sync is tried again in place, so a store's brief outage never fails the step (a restarted
    init container would recreate its LeaderWorkerSet group, every pod's copy included, once
    all started); only when every attempt failed does it exit non-zero, after exactly
    COPY_RETRY.attempts tries, COPY_RETRY.retry_s apart, each bounded by the CLI's timeouts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "sleep").write_text('#!/bin/sh\necho "$1" >> "$SLEPT"\n')
    for tool in ("aws", "sleep"):
        (bin_dir / tool).chmod(0o755)
    (tmp_path / "failures").write_text(str(failures))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(tmp_path / "calls"),
        "FAILURES": str(tmp_path / "failures"),
        "SLEPT": str(tmp_path / "slept"),
    }
    source, endpoint = "s3://models.internal/weights/llama", "https://models.internal"
    done = subprocess.run(
        ["sh", "-c", copy_script(), "copy-weights", source, endpoint],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    calls = (tmp_path / "calls").read_text().splitlines()
    slept = (tmp_path / "slept").read_text().split() if (tmp_path / "slept").exists() else []
    tries = min(failures + 1, ATTEMPTS)
    call = (
        f"s3 sync {source} /weights --only-show-errors --endpoint-url {endpoint} "
        f"--cli-connect-timeout {COPY_RETRY.connect_timeout_s} "
        f"--cli-read-timeout {COPY_RETRY.read_timeout_s}"
    )
    assert calls == [call] * tries
    assert slept == [str(COPY_RETRY.retry_s)] * (tries - 1)
    assert done.returncode == (0 if failures < ATTEMPTS else 1), done.stderr


def test_the_copy_s_retries_are_waited_for(cluster_plan: Plan) -> None:
    """A pod whose copy retries lags by at most every attempt failing after each request waited
    out both of the CLI's timeouts (the copy's env sets how many requests), and the sleeps
    between: the group's Ray wait and `pulumi up`'s wait hold that beside the copy itself, for
    every model at every precision."""
    catalog = default_catalog()
    figures = boot_figures()
    retry = COPY_RETRY
    worst = (
        retry.attempts * retry.requests * (retry.connect_timeout_s + retry.read_timeout_s)
        + (retry.attempts - 1) * retry.retry_s
    )
    [site] = cluster_plan.sites
    [copy_step] = pod_spec(
        catalog, cluster_plan.pools[0], site, SETTINGS, "image", {"name": "vllm"}, 170
    )["initContainers"]
    env = {e["name"]: e.get("value") for e in copy_step["env"]}
    assert env["AWS_MAX_ATTEMPTS"] == str(retry.requests)
    assert env["AWS_RETRY_MODE"] == "standard"
    for model in catalog.models:
        for precision in catalog.precisions:
            pool = cluster_plan.pools[0].model_copy(update={"model": model, "precision": precision})
            copy = weights_gb(catalog, model, precision) / figures.cluster_copy_gb_per_s.value
            lag = (copy + figures.engine_start_s.value) * figures.margin.value
            assert ray_wait_s(catalog, pool) >= lag + worst, (model, precision)
            assert pod_ready_s(catalog, pool) >= copy * figures.margin.value + worst


@pytest.mark.parametrize(
    ("endpoint", "own_ca"),
    [
        ("https://models.internal", True),
        ("https://s3.dc1.corp", True),
        ("https://minio", True),  # one label: an internal name
        ("https://models.home.arpa", True),
        ("https://10.9.0.10", True),
        ("https://[fd00::10]", True),
        ("https://10.9.0.10.", True),  # a trailing dot
        ("https://minio.minio.svc", True),  # a Kubernetes Service's name
        ("https://S3.LAN", True),
        ("https://s3.models.acme.com", False),
        ("https://models.internal.acme.com", False),  # under a public name
        ("https://52.95.110.1", False),
    ],
)
def test_a_store_no_public_ca_certifies_needs_its_ca(endpoint: str, own_ca: bool) -> None:
    """Without weights_ca, a store whose name or address no public CA may certify (CA/Browser
    Forum Baseline Requirements: no Internal Names, no Reserved IP Addresses) is refused: its
    certificate is the organization's own, which the copy would refuse, and the pods would
    never start. A public name passes without it."""
    entry = {key: value for key, value in CLUSTERS["dc1"].items() if key != "weights_ca"}
    config = _Config({"dc1": {**entry, "weights_endpoint": endpoint}})
    if own_ca:
        with pytest.raises(RunError, match=r"clusters\.dc1\.weights_ca missing: no public CA"):
            read_clusters(cast(Any, config), ["dc1"])
        given = _Config({"dc1": {**entry, "weights_endpoint": endpoint, "weights_ca": STORE_CA}})
        assert read_clusters(cast(Any, given), ["dc1"])["dc1"].weights_ca == STORE_CA
    else:
        assert read_clusters(cast(Any, config), ["dc1"])["dc1"].weights_ca is None


TOLERATIONS = (
    "    tolerations:\n"
    "      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}\n"
    "      - {key: dedicated, value: llm, effect: NoExecute}\n"
)


def test_the_pods_tolerate_the_taints_the_site_names(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GPU nodes tainted to keep other workloads off take a pool's pods only where they
    tolerate the taints (kubernetes.io, "Taints and Tolerations"): every pod template, a
    group's workers too, carries the site's tolerations, as the API's schema takes them; a site
    naming none adds none."""
    for text in (SINGLE, MULTI):
        tolerated = text.replace("    storage_class:", TOLERATIONS + "    storage_class:")
        run = _run(project, tolerated)
        capsys.readouterr()
        [site] = read_plan(project / "plans/dev/plan.json").sites
        assert len(site.tolerations) == 2
        [manifest] = serving_of(run)
        templates = pod_templates(manifest)
        assert len(templates) == (2 if text is MULTI else 1)
        for template in templates:
            assert template["spec"]["tolerations"] == site.tolerations
        if manifest["kind"] == "Deployment":
            validate(manifest)
        else:
            validate_lws(manifest)
    [manifest] = serving_of(_run(project, SINGLE))
    assert "tolerations" not in pod_templates(manifest)[0]["spec"]


def test_every_serving_container_runs_without_usage_statistics(
    single_run: OfflineRun, multi_run: OfflineRun
) -> None:
    """vLLM's usage statistics off in every container that runs vLLM, a group's workers too
    (vllm.yaml `environment`, as the EC2 nodes' `docker run`: tests/test_stacks.py); not in the
    weights copy, which runs no vLLM."""
    wanted = default_catalog().serving.environment.values
    assert wanted["VLLM_NO_USAGE_STATS"] == "1"
    for run in (single_run, multi_run):
        [manifest] = serving_of(run)
        for template in pod_templates(manifest):
            [container] = template["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert wanted.items() <= env.items(), container["name"]
            [copy_step] = template["spec"]["initContainers"]
            assert "VLLM_NO_USAGE_STATS" not in {e["name"] for e in copy_step["env"]}
