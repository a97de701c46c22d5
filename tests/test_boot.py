"""A GPU node boots and keeps serving: the rendered cloud-init user data, checked by cloud-init's
own schema and run with stand-in commands, the serving unit's restarts, the weights' uploader and
fast storage, the health-check grace, and the Ray head's lease per replica group."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.catalog import Catalog, default_catalog
from planner.cli import main
from planner.graph.offline import ACCOUNT_ID, OfflineRun, Registered, run_program
from planner.planfile import Plan, read_plan
from planner.verification.rules.secrets import user_data_text
from stacks.aws.nodes import FAST_STORAGE, LEASE_TTL_S, REPLICA_TAG
from stacks.boot import backoff_figures, boot_time, lease_figures, termination_figures
from stacks.serving import serve_args
from tests.conftest import REPO
from tests.test_stacks import MULTI_NODE, of_type, plan_project

DEPLOYER = (
    f"arn:aws:iam::{ACCOUNT_ID}:user/offline"  # the offline caller (planner/graph/offline.py)
)
BOOT_DATA_FILE = yaml.safe_load((REPO / "planner/data/boot.yaml").read_text())
BOOT_DATA = BOOT_DATA_FILE["boot"]

# DeepSeek V3.2 (671 GB in FP8) over two p5.48xlarge nodes a replica, several replicas.
REPLICAS = MULTI_NODE
LEASE = lease_figures()


@pytest.fixture
def example_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, None)
    capsys.readouterr()
    return run_program(project, "dev", config)


@pytest.fixture
def replicas_run(project: Path, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    config = plan_project(project, REPLICAS)
    capsys.readouterr()
    return run_program(project, "dev", config)


def templates(run: OfflineRun) -> dict[str, Registered]:
    return {t.name: t for t in of_type(run, "aws:ec2/launchTemplate:LaunchTemplate")}


def user_data(template: Registered) -> str:
    """The script as cloud-init reads it (the launch template holds it gzipped, base64)."""
    return user_data_text(template.inputs["userData"])


def written(text: str) -> dict[str, str]:
    """The files the user data writes, by path."""
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}


def groups_of(run: OfflineRun, pool: str) -> list[Registered]:
    return [g for g in of_type(run, "aws:autoscaling/group:Group") if g.name.startswith(pool)]


def plan_of(project: Path) -> Plan:
    return read_plan(project / "plans/dev/plan.json")


# --- 1. Who may upload the weights --------------------------------------------------------------


def _applies(statement: dict[str, Any], action: str, context: dict[str, str]) -> bool:
    """Whether a Deny statement of a bucket policy matches a request (the operators the stacks
    use; an operator this does not know counts as matching, so the test errs towards failing)."""
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if not any(re.fullmatch(a.replace("*", ".*"), action) for a in actions):
        return False
    for operator, pairs in statement.get("Condition", {}).items():
        for key, expected in pairs.items():
            values = [expected] if isinstance(expected, str) else expected
            have = context.get(key)
            if operator == "Bool":
                matched = have in values
            elif operator in ("StringNotEquals", "ArnNotEquals", "ArnNotLike"):
                matched = have not in values
            elif operator in ("StringEquals", "ArnEquals", "ArnLike"):
                matched = have in values
            elif operator.endswith("IfExists"):
                matched = have is None or have not in values
            else:
                matched = True
            if not matched:
                return False
    return True


def test_the_deployer_may_upload_weights_when_no_uploader_is_set(
    example_run: OfflineRun, project: Path
) -> None:
    # Unset `weights_uploader_arn` left nobody able to write weights/: every node then waited on
    # an empty prefix. The principal running `pulumi up` is the default uploader.
    upload = {"aws:SecureTransport": "true", "aws:PrincipalArn": DEPLOYER}
    for policy in of_type(example_run, "aws:s3/bucketPolicy:BucketPolicy"):
        statements = json.loads(policy.inputs["policy"])["Statement"]
        denied = [
            s["Sid"]
            for s in statements
            if s["Effect"] == "Deny" and _applies(s, "s3:PutObject", upload)
        ]
        assert denied == [], policy.name
        # ... and nobody else from outside the endpoint.
        stranger = {**upload, "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT_ID}:user/someone"}
        assert any(
            s["Effect"] == "Deny" and _applies(s, "s3:PutObject", stranger) for s in statements
        ), policy.name
    # A named uploader replaces the deployer.
    uploader = f"arn:aws:iam::{ACCOUNT_ID}:role/weights-upload"
    config = {
        "ai-infra-planner:plan": "plans/dev/plan.json",
        "aws:region": "us-east-1",
        "ai-infra-planner:weights_uploader_arn": uploader,
    }
    for policy in of_type(run_program(project, "dev", config), "aws:s3/bucketPolicy:BucketPolicy"):
        text = policy.inputs["policy"]
        assert uploader in text and DEPLOYER not in text


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/Admin/alice",  # a session: never a PrincipalArn
        "weights-uploader",
        f"arn:aws:iam::{ACCOUNT_ID}:group/uploaders",
    ],
)
def test_an_uploader_that_is_no_principal_arn_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], arn: str
) -> None:
    plan_project(project, None)
    stack = project / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + f"  ai-infra-planner:weights_uploader_arn: {arn}\n")
    capsys.readouterr()
    before = sorted(p for p in project.rglob("*") if p.is_file())
    assert main(["preview", "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml" in err and "weights_uploader_arn" in err and arn in err
    assert "Traceback" not in err
    assert sorted(p for p in project.rglob("*") if p.is_file()) == before


# --- 2, 4. The serving unit ------------------------------------------------------------------


def unit_sections(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def test_serving_is_a_restarting_systemd_unit(example_run: OfflineRun) -> None:
    # systemd.service(5) (freedesktop.org/software/systemd/man/latest/systemd.service.html):
    # Restart=on-failure restarts a unit whose process exits non-zero; RestartSec= is the sleep
    # before a restart (RestartSteps=, a growing delay, needs systemd 254: the Ubuntu 22.04 AMI
    # has 249, so the script backs off itself, test_a_node_that_cannot_start_backs_off).
    # systemd.unit(5): StartLimitIntervalSec= belongs in [Unit], and 0 disables start rate
    # limiting, so the unit never gives up on a missing image or weights. systemd.exec(5):
    # EnvironmentFile= sets the file's variables in the process's environment.
    for name, template in templates(example_run).items():
        text = user_data(template)
        files = written(text)
        unit = unit_sections(files["/etc/systemd/system/serve.service"])
        assert unit["Unit"]["StartLimitIntervalSec"] == "0", name
        assert "docker.service" in unit["Unit"]["Requires"]
        service = unit["Service"]
        assert service["Restart"] == "on-failure"
        assert int(service["RestartSec"]) == backoff_figures().first_s
        assert "RestartSteps" not in service and "RestartMaxDelaySec" not in service
        assert service["ExecStart"] == "/opt/serve/start.sh"
        assert service["EnvironmentFile"] == "/opt/serve/env"
        assert unit["Install"]["WantedBy"] == "multi-user.target"
        runcmd = yaml.safe_load(text)["runcmd"]
        assert ["systemctl", "enable", "--now", "--no-block", "serve.service"] in runcmd
        assert ["/opt/serve/start.sh"] not in runcmd  # no longer a one-off boot command
        start = files["/opt/serve/start.sh"]
        assert "set -a\nsource /opt/serve/env\nset +a" in start
        # A single node needs no instance tag from the metadata (replicas do): none shown there.
        assert template.inputs["metadataOptions"]["instanceMetadataTags"] == "disabled"


def test_a_stopping_node_finishes_the_requests_it_serves(
    example_run: OfflineRun, replicas_run: OfflineRun
) -> None:
    """An instance terminated (scale-in, a refresh) leaves its target group first: its Auto
    Scaling group deregisters it and waits out the target group's deregistration delay (the
    scale-in activity "WaitingForELBConnectionDraining"), in which the NLB stops sending it new
    connections (about 3 minutes) and then the requests it took finish (the drain). So that
    delay is set from those figures; then systemd stops the unit, `docker stop` sends SIGTERM
    to vLLM itself (the script execs it), on which vLLM 0.33.0 aborts what is left (no
    --shutdown-timeout: its drain holds only for one engine, perhaps not on Ray;
    stacks/serving.py), and kills it after the exit allowance; systemd waits longer than
    `docker stop`."""
    ending = termination_figures()
    groups = of_type(example_run, "aws:lb/targetGroup:TargetGroup")
    delay = ending.nlb_deregistration_s + ending.drain_s
    assert groups and all(g.inputs["deregistrationDelay"] == delay == 300 for g in groups)
    # What the ELB API takes (target group attribute deregistration_delay.timeout_seconds:
    # 0-3600 seconds).
    assert 0 <= delay <= 3600
    for name, template in templates(example_run).items():
        text = user_data(template)
        assert "--shutdown-timeout" not in text, name
        files = written(text)
        service = unit_sections(files["/etc/systemd/system/serve.service"])["Service"]
        stop = service["ExecStop"].split()
        assert stop == ["-/usr/bin/docker", "stop", "--time", str(ending.exit_s), "vllm"], name
        assert int(stop[3]) < int(service["TimeoutStopSec"]), name
        assert '"exec $SERVE"' in files["/opt/serve/start.sh"], name
    # A multi-node replica's head execs vLLM after its Ray head and its wait for the nodes.
    for name, template in templates(replicas_run).items():
        script = written(user_data(template))["/opt/serve/start.sh"]
        assert "&& exec $SERVE --distributed-executor-backend ray" in script, name


def test_a_node_out_of_its_target_group_still_serves_before_it_ends(
    example_run: OfflineRun, replicas_run: OfflineRun
) -> None:
    """The target group lets a node with no connection go at once (ELB: "immediately completes
    the deregistration process"), while the NLB may send it new ones for 3 minutes more; and
    a multi-node replica's workers take no connection at all, so without more they ended at
    once, under their head's requests. Each group's termination hook keeps every instance
    running, out of the target group, for the NLB's time and the drain, then lets the group
    terminate it (CONTINUE); pulumi's wait for a group's deletion holds that wait, and the hook
    goes with its group rather than before it."""
    ending = termination_figures()
    assert ending.node_hold_s == ending.nlb_deregistration_s + ending.drain_s == 300
    for run in (example_run, replicas_run):
        groups = of_type(run, "aws:autoscaling/group:Group")
        hooks = of_type(run, "aws:autoscaling/lifecycleHook:LifecycleHook")
        assert groups and len(hooks) == len(groups)
        by_group = {hook.deleted_with: hook for hook in hooks}
        for group in groups:
            hook = by_group[group.urn]
            assert hook.inputs["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
            assert hook.inputs["heartbeatTimeout"] == ending.node_hold_s
            assert hook.inputs["defaultResult"] == "CONTINUE"
            # Nothing completes the action early: no notification target, no role.
            assert "notificationTargetArn" not in hook.inputs and "roleArn" not in hook.inputs
            assert group.urn in hook.dependencies["autoscalingGroupName"], group.name
            # The provider's own 10 minutes, which held the deregistration and the
            # termination, and the hook's 5.
            assert group.delete_timeout == "15m", group.name
    # A multi-node replica is a group of its own: every one of its nodes, workers too, waits.
    assert len(of_type(replicas_run, "aws:autoscaling/group:Group")) >= 2


# --- 3. The health-check grace ---------------------------------------------------------------


def expected_grace(catalog: Catalog, model: str, precision: str, instance_type: str) -> int:
    """From the figures alone: size at the instance's S3 rate, loaded, started, with margin."""
    size = (
        catalog.models[model].total_params_b.value
        * catalog.precisions[precision].bytes_per_param.value
    )
    rate = catalog.instances[instance_type].s3_download_gbps
    assert rate is not None
    seconds = (
        size * 8 / rate.value
        + size / BOOT_DATA["weights_load_gb_per_s"]["value"]
        + BOOT_DATA["engine_start_s"]["value"]
    ) * BOOT_DATA["margin"]["value"]
    return math.ceil(seconds / 60) * 60


def test_every_instance_type_has_its_boot_figures(catalog: Catalog) -> None:
    for name, instance in catalog.instances.items():
        for figure in (instance.s3_download_gbps, instance.instance_store_gb):
            assert figure is not None and figure.value > 0 and figure.source, name
    for figure in BOOT_DATA.values():
        assert figure["value"] > 0 and figure["source"] and figure["date"]


def test_the_grace_covers_download_and_load_of_the_examples_pools(
    example_run: OfflineRun, project: Path, catalog: Catalog
) -> None:
    plan = plan_of(project)
    assert plan.pools
    for pool in plan.pools:
        grace = expected_grace(catalog, pool.model, pool.precision, pool.instance_type)
        assert boot_time(catalog, pool).grace_s == grace
        for group in groups_of(example_run, pool.name):
            assert group.inputs["healthCheckGracePeriod"] == grace, group.name
        # The weights fit the instance store they are staged on.
        store = catalog.instances[pool.instance_type].instance_store_gb
        assert store is not None and boot_time(catalog, pool).weights_gb < store.value


def test_the_grace_of_a_700_gb_model_covers_its_download(
    replicas_run: OfflineRun, project: Path, catalog: Catalog
) -> None:
    [pool] = plan_of(project).pools
    boot = boot_time(catalog, pool)
    assert 650 <= boot.weights_gb <= 720  # DeepSeek V3.2 in FP8
    rate = catalog.instances[pool.instance_type].s3_download_gbps
    assert rate is not None
    floor = boot.weights_gb * 8 / rate.value + boot.weights_gb / 1.0
    groups = groups_of(replicas_run, pool.name)
    assert groups
    for group in groups:
        grace = group.inputs["healthCheckGracePeriod"]
        assert grace == expected_grace(catalog, pool.model, pool.precision, pool.instance_type)
        # 30 minutes, the old fixed grace, is less than this node needs.
        assert grace > floor and grace > 1800


# --- 5. Fast storage, no idle volume --------------------------------------------------------


def test_no_data_volume_sits_unused(example_run: OfflineRun, replicas_run: OfflineRun) -> None:
    # The 2 TB gp3 volume was attached to every node, never formatted nor mounted, and not
    # priced: the weights go on the instance store, so the node has its root volume only.
    for run in (example_run, replicas_run):
        for name, template in templates(run).items():
            devices = [m["deviceName"] for m in template.inputs["blockDeviceMappings"]]
            assert devices == ["/dev/sda1"], name
            env = written(user_data(template))["/opt/serve/env"]
            assert f"WEIGHTS_DIR={FAST_STORAGE}/weights/" in env


# --- 7. cloud-init's own schema --------------------------------------------------------------


def cloud_init() -> str:
    found = shutil.which("cloud-init")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("cloud-init is not installed: .ci/run installs Debian's cloud-init")
        pytest.skip("cloud-init is not installed here (apt-get install cloud-init)")
    return found


def validate(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return subprocess.run(
        [cloud_init(), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_user_data_passes_cloud_inits_schema(
    example_run: OfflineRun, replicas_run: OfflineRun, tmp_path: Path
) -> None:
    checked = 0
    for run in (example_run, replicas_run):
        for name, template in templates(run).items():
            result = validate(tmp_path, name, user_data(template))
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            assert "Valid cloud-config" in result.stdout
            checked += 1
    assert checked == 3


def test_cloud_inits_schema_catches_a_broken_user_data(
    example_run: OfflineRun, tmp_path: Path
) -> None:
    text = user_data(templates(example_run)["contract-review-pool-nodes"])
    broken = text.replace('permissions: "0755"', "permissions: 755")
    assert broken != text
    result = validate(tmp_path, "broken", broken)
    assert result.returncode != 0
    assert "permissions" in result.stdout + result.stderr


# --- 6. Multi-node: one head per replica group ----------------------------------------------


def test_each_replica_group_has_its_own_head(replicas_run: OfflineRun, project: Path) -> None:
    [pool] = plan_of(project).pools
    assert pool.pipeline_parallel == 2
    groups = groups_of(replicas_run, pool.name)
    assert len(groups) == pool.nodes // pool.pipeline_parallel >= 2
    numbers = []
    for group in groups:
        [tag] = [t for t in group.inputs["tags"] if t["key"] == REPLICA_TAG]
        assert tag["propagateAtLaunch"] is True
        numbers.append(tag["value"])
    assert len(set(numbers)) == len(groups)
    [template] = templates(replicas_run).values()
    # The node reads its group's tag from the instance metadata.
    assert template.inputs["metadataOptions"]["instanceMetadataTags"] == "enabled"
    # Keys readable there: letters, digits and + - = . , _ : @ ("Tag your Amazon EC2
    # resources", EC2 User Guide, tag restrictions: no spaces or /, not only . or .., not _index).
    keys = {t["key"] for g in groups for t in g.inputs["tags"]}
    for spec in template.inputs["tagSpecifications"]:
        keys |= set(spec["tags"])
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9+\-=.,_:@]+", key) and key not in (".", "..", "_index")
    env = written(user_data(template))["/opt/serve/env"]
    assert f"ELECTION_PREFIX=ray/{pool.name}\n" in env and f"LEASE_TTL={LEASE_TTL_S}\n" in env


# --- 8. The start script, run with stand-in commands -----------------------------------------

# The stand-in `aws` answers as the AWS CLI does: a service error exits 254 with "An error
# occurred (<Code>) when calling the <Operation> operation: ..." on stderr, a failure before any
# answer (no connection, a read timeout) exits 255 ("Command line return codes in the AWS CLI",
# AWS CLI User Guide). Each write gets a new ETag, as S3 gives objects encrypted with SSE-KMS
# (the weights bucket's default) ETags that are no MD5 of their data ("Checking object
# integrity", S3 User Guide). Faults to inject: lines "<operation> <fault>" in $FAKE_S3/.faults,
# each taken by the next call of that operation: `503` (S3 throttles: SlowDown), `offline` (no
# connection) or, for put-object, `lost` (the write lands, its answer does not). With
# $FAKE_CLOCK, writes are stamped with the node's stand-in clock.
AWS_STANDIN = '''\
#!{python}
"""Stand-in aws: records each call (and its region) and keeps S3 in a directory."""
import hashlib, json, os, shutil, sys, time
from datetime import datetime, timezone
from pathlib import Path
argv = sys.argv[1:]
s3 = Path(os.environ["FAKE_S3"])
with open(os.environ["CALLS"], "a") as log:
    log.write(json.dumps(["aws", *argv, {{"AWS_REGION": os.environ.get("AWS_REGION")}}]) + "\\n")
def opt(name):
    return argv[argv.index(name) + 1] if name in argv else None
def etag(path):
    stamp = str(path.stat().st_mtime_ns).encode()
    return '"' + hashlib.md5(path.read_bytes() + stamp).hexdigest() + '"'
def now():
    clock = os.environ.get("FAKE_CLOCK")
    return float(Path(clock).read_text()) if clock and Path(clock).exists() else time.time()
def fail(status, message):
    sys.stderr.write("\\n" + message + "\\n")
    sys.exit(status)
def service_error(code, operation, message):
    fail(254, f"An error occurred ({{code}}) when calling the {{operation}} operation: {{message}}")
def fault():
    faults = s3 / ".faults"
    if len(argv) < 2 or not faults.exists():
        return None
    lines = faults.read_text().splitlines()
    for number, line in enumerate(lines):
        name, _, kind = line.partition(" ")
        if name == argv[1]:
            faults.write_text("".join(f + "\\n" for f in lines[:number] + lines[number + 1 :]))
            return kind
    return None
def injected(kind, operation):
    url = "https://" + str(opt("--bucket")) + ".s3.amazonaws.com/" + str(opt("--key"))
    if kind == "503":
        fail(254, f"An error occurred (SlowDown) when calling the {{operation}} operation"
             " (reached max retries: 2): Please reduce your request rate.")
    if kind == "offline":
        fail(255, f'Could not connect to the endpoint URL: "{{url}}"')
    if kind == "lost":
        fail(255, f'Read timeout on endpoint URL: "{{url}}"')
kind = fault()
if argv[:2] == ["secretsmanager", "get-secret-value"]:
    print("stand-in-api-key")
elif argv[:2] == ["ecr", "get-login-password"]:
    print("stand-in-password")
elif argv[0] == "configure":
    pass
elif argv[:2] == ["s3", "sync"]:
    source = s3 / argv[-2].removeprefix("s3://")
    if source.is_dir():
        shutil.copytree(source, argv[-1], dirs_exist_ok=True)
elif argv[:2] == ["s3api", "get-object"]:
    injected(kind, "GetObject")
    path = s3 / opt("--bucket") / opt("--key")
    if not path.exists():
        service_error("NoSuchKey", "GetObject", "The specified key does not exist.")
    shutil.copy(path, argv[argv.index(opt("--key")) + 1])
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()
    print(etag(path) + "\\t" + modified)
elif argv[:2] == ["s3api", "put-object"]:
    if kind != "lost":
        injected(kind, "PutObject")
    path = s3 / opt("--bucket") / opt("--key")
    refused = "At least one of the pre-conditions you specified did not hold"
    if opt("--if-none-match") == "*" and path.exists():
        service_error("PreconditionFailed", "PutObject", refused)
    if opt("--if-match") is not None and (not path.exists() or etag(path) != opt("--if-match")):
        service_error("PreconditionFailed", "PutObject", refused)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(opt("--body"), path)
    os.utime(path, (now(), now()))
    injected(kind, "PutObject")
    print(etag(path))
else:
    fail(252, "stand-in aws: unexpected call " + " ".join(argv))
'''

RECORD = """\
#!{python}
import json, os, sys
open(os.environ["CALLS"], "a").write(json.dumps(sys.argv[1:]) + "\\n")
"""

RECORDER = """\
#!/bin/bash
# Stand-in {name}: records its arguments.
"$(dirname "$0")/.record" {name} "$@"
{body}
"""


STANDINS = {
    # `docker run` returns at once; with DOCKER_RUN_HOOK, it runs the hook, then serves until
    # `docker stop` (which notes the stand-in clock's time) or until DOCKER_SERVE_UNTIL holds (at
    # most a minute); then it leaves $HOME/served for whatever the hook started.
    "docker": textwrap.dedent("""\
        case "$1" in
          login) cat >/dev/null;;
          stop) cat "$FAKE_CLOCK" > "$HOME/stopped";;
          run)
            [ -n "${DOCKER_RUN_HOOK:-}" ] || exit 0
            eval "$DOCKER_RUN_HOOK"
            trap 'touch "$HOME/served"' EXIT
            for _ in $(seq 600); do
              [ -e "$HOME/stopped" ] && exit 143
              [ -n "${DOCKER_SERVE_UNTIL:-}" ] && eval "$DOCKER_SERVE_UNTIL" && exit 0
              /bin/sleep 0.1
            done;;
        esac"""),
    "systemctl": "",
    "curl": textwrap.dedent("""\
        case "$*" in
          *api/token*) echo stand-in-token;;
          *meta-data/local-ipv4) echo "$FAKE_IP";;
          *meta-data/tags/instance/*) echo "$FAKE_REPLICA";;
          *) exit 22;;
        esac"""),
    "ip": 'echo "2: ens32    inet $FAKE_IP/20 brd 10.0.15.255 scope global dynamic ens32"',
    "openssl": textwrap.dedent("""\
        while [ $# -gt 0 ]; do
          case "$1" in -keyout|-out) touch "$2"; shift;; esac; shift
        done"""),
    "hostname": "echo ip-10-0-0-5",
    # The AMI has mounted the instance store when $FAKE_MOUNTED is set.
    "mountpoint": '[ -n "$FAKE_MOUNTED" ]',
    "lsblk": textwrap.dedent("""\
        echo "/dev/nvme0n1 Amazon Elastic Block Store"
        echo "/dev/nvme1n1 Amazon EC2 NVMe Instance Storage"
        echo "/dev/nvme2n1 Amazon EC2 NVMe Instance Storage\""""),
    "mdadm": 'case "$1" in --assemble) exit 1;; esac',
    "blkid": "exit 2",
    "mkfs.xfs": "",
    "mount": "",
    # Time passes by the stand-in clock ($FAKE_CLOCK, seconds since the epoch): `sleep N` moves
    # it N seconds on at once (and yields a moment), `date +%s` reads it.
    "sleep": textwrap.dedent("""\
        echo $(( $(cat "$FAKE_CLOCK") + ${1%.*} )) > "$FAKE_CLOCK.new"
        mv "$FAKE_CLOCK.new" "$FAKE_CLOCK"
        exec /bin/sleep 0.05"""),
    "nvidia-smi": "",
}

# Stand-ins that record nothing.
QUIET = {
    "date": textwrap.dedent("""\
        #!/bin/bash
        if [ "$*" = "+%s" ]; then cat "$FAKE_CLOCK"; else exec /bin/date "$@"; fi
        """),
}


@dataclass
class Boot:
    returncode: int
    stderr: str
    calls: list[list[Any]]
    env: dict[str, str]
    root: Path

    def of(self, command: str, *start: str) -> list[list[Any]]:
        return [c for c in self.calls if c[0] == command and c[1 : 1 + len(start)] == list(start)]

    def run_args(self) -> list[str]:
        [run] = self.of("docker", "run")
        return [str(a) for a in run[1:]]


def boot(
    text: str,
    tmp_path: Path,
    *,
    weights: bool = True,
    ip: str = "10.0.0.5",
    replica: str = "0",
    lease: tuple[str, int, float] | None = None,
    hook: str = "",
    until: str = "",
    mounted: bool = False,
    failures: int = 0,
) -> Boot:
    """Run the user data's start script as systemd would, with stand-in commands on PATH; its
    absolute paths are moved under tmp_path. `lease`: a head lease already in the bucket for
    this replica (address, generation, age in seconds). `hook` runs when the server starts,
    which then serves until `docker stop` or until the shell condition `until` holds."""
    root = tmp_path / f"node-{ip}"
    bin_dir, s3 = root / "bin", tmp_path / "s3"
    bin_dir.mkdir(parents=True)
    files = written(text)

    def moved(content: str) -> str:
        return content.replace("/opt/serve", f"{root}/opt/serve").replace(
            FAST_STORAGE, f"{root}/nvme"
        )

    (root / "opt/serve").mkdir(parents=True)
    if failures:  # earlier starts that failed in a row (the unit's restarts)
        (root / "opt/serve/failures").write_text(f"{failures}\n")
    (root / "opt/serve/env").write_text(moved(files["/opt/serve/env"]))
    script = root / "opt/serve/start.sh"
    script.write_text(moved(files["/opt/serve/start.sh"]))
    env = dict(
        line.split("=", 1) for line in (root / "opt/serve/env").read_text().splitlines() if line
    )
    bucket = env["BUCKET"]
    if weights:
        prefix = s3 / env["WEIGHTS_URI"].removeprefix("s3://")
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "config.json").write_text("{}")
        (prefix / "model-00001-of-00001.safetensors").write_bytes(b"\0" * 8)
    if lease is not None:
        address, generation, age = lease
        key = s3 / bucket / env["ELECTION_PREFIX"] / f"replica-{replica}" / "head"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(f"{address} {generation}\n")
        when = datetime.now(UTC).timestamp() - age
        os.utime(key, (when, when))
    (bin_dir / "aws").write_text(AWS_STANDIN.format(python=sys.executable))
    (bin_dir / ".record").write_text(RECORD.format(python=sys.executable))
    for name, body in STANDINS.items():
        (bin_dir / name).write_text(RECORDER.format(name=name, body=body))
    for name, body in QUIET.items():
        (bin_dir / name).write_text(body)
    clock = root / "clock"
    clock.write_text(f"{int(datetime.now(UTC).timestamp())}\n")
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    calls = root / "calls.jsonl"
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(root),
            "CALLS": str(calls),
            "FAKE_S3": str(s3),
            "FAKE_IP": ip,
            "FAKE_REPLICA": replica,
            "DOCKER_RUN_HOOK": hook,
            "DOCKER_SERVE_UNTIL": until,
            "FAKE_CLOCK": str(clock),
            "FAKE_MOUNTED": "1" if mounted else "",
        },
    )
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    return Boot(result.returncode, result.stderr, recorded, env, root)


def serve_command(text: str, env_file: Path) -> str:
    """The SERVE line of the start script, evaluated by bash with the node's environment: the
    vLLM command line exactly as the script passes it, whatever flags it holds."""
    script = written(text)["/opt/serve/start.sh"]
    match = re.search(r'^ *(SERVE=".*?")\n', script, re.MULTILINE | re.DOTALL)
    assert match, "the start script has one SERVE= line"
    program = f'set -a; source {env_file}; set +a\n{match.group(1)}\nprintf %s "$SERVE"'
    return subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True
    ).stdout


def test_a_single_node_boot_serves_what_the_plan_says(
    example_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    plan = plan_of(project)
    for pool in plan.pools:
        text = user_data(templates(example_run)[f"{pool.name}-nodes"])
        node = boot(text, tmp_path / pool.name)
        # The server ran in the foreground and returned: the script fails, so systemd restarts.
        assert node.returncode == 1, node.stderr
        assert "the server stopped" in node.stderr
        # Every AWS call had the region: the env file's variables are exported.
        assert node.of("aws") and all(c[-1]["AWS_REGION"] == plan.region for c in node.of("aws"))
        weights_dir = f"{node.root}/nvme/weights/{pool.model}"
        [sync] = node.of("aws", "s3", "sync")
        assert sync[-3:-1] == [f"s3://{pool.name}-weights/weights/{pool.weights}", weights_dir]
        assert node.of("aws", "configure", "set", "default.s3.preferred_transfer_client", "crt")
        tag = default_catalog().serving.release.tag  # the pinned vLLM release (vllm.yaml)
        image = f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{pool.name}-serving:{tag}"
        assert node.of("docker", "pull", image)
        args = node.run_args()
        assert args[args.index("--entrypoint") + 1 : args.index("--entrypoint") + 4] == [
            "/bin/bash",
            image,
            "-c",
        ]
        assert f"{weights_dir}:/weights:ro" in args
        assert "--rm" in args and "-d" not in args  # foreground: systemd watches the server
        assert "--restart" not in args  # systemd restarts, not docker
        served = serve_command(text, node.root / "opt/serve/env")
        # The container's shell execs vLLM, so `docker stop`'s SIGTERM reaches the server.
        assert args[-1] == f"exec {served}"
        # What docker runs is the plan's command, built apart from the script (stacks/serving.py),
        # with the parallelism, context length and memory share the plan priced.
        assert served == "vllm serve /weights " + shlex.join(serve_args(pool, default_catalog()))
        flags = served.split()
        for flag, value in (
            ("--tensor-parallel-size", pool.tensor_parallel),
            ("--pipeline-parallel-size", pool.pipeline_parallel),
            ("--data-parallel-size", pool.replicas_per_node),
            ("--max-model-len", pool.max_model_len),
            ("--gpu-memory-utilization", pool.gpu_memory_utilization),
        ):
            assert flags[flags.index(flag) + 1] == str(value), (flag, served)
        assert "ray start" not in served
        # The instance store's two disks, striped, formatted and mounted for the weights.
        [create] = node.of("mdadm", "--create")
        assert create[-2:] == ["/dev/nvme1n1", "/dev/nvme2n1"]
        assert node.of("mkfs.xfs", "-f", "/dev/md/weights")
        assert node.of("mount", "/dev/md/weights", f"{node.root}/nvme")
        # The key reached vLLM's env file, not the command line.
        assert "stand-in-api-key" not in json.dumps(node.calls)
        assert (node.root / "opt/serve/secrets/vllm.env").read_text() == (
            "VLLM_API_KEY=stand-in-api-key\n"
        )


def test_a_boot_without_weights_fails_loudly(example_run: OfflineRun, tmp_path: Path) -> None:
    text = user_data(templates(example_run)["contract-review-pool-nodes"])
    node = boot(text, tmp_path, weights=False)
    assert node.returncode == 3
    assert "no weights at s3://contract-review-pool-weights/weights/" in node.stderr
    assert not node.of("docker", "run")  # vLLM never starts on an empty directory


def test_a_node_that_cannot_start_backs_off(example_run: OfflineRun, tmp_path: Path) -> None:
    """Without weights, each failure in a row waits twice as long before the unit's restart
    (RestartSec= adds the first delay): 30, 60, 120, 240, 480 s apart, then 600 s at most; a start
    that runs the server resets the count, and a server that stops is restarted at once."""
    figures = backoff_figures()
    text = user_data(templates(example_run)["contract-review-pool-nodes"])
    waits = []
    for before in range(8):
        node = boot(text, tmp_path / f"n{before}", weights=False, failures=before)
        assert node.returncode == 3, node.stderr
        assert (node.root / "opt/serve/failures").read_text().strip() == str(before + 1)
        [[_, delay]] = node.of("sleep")
        waits.append(int(delay) + figures.first_s)
        assert f"next try in {waits[-1]} s" in node.stderr
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600]
    # With the weights there, the count goes back to zero and the stopped server is not waited on.
    node = boot(text, tmp_path / "served", failures=5)
    assert node.returncode == 1 and "the server stopped" in node.stderr
    assert (node.root / "opt/serve/failures").read_text().strip() == "0"
    assert not node.of("sleep")


def test_a_replica_elects_one_head_and_survives_its_loss(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    text = user_data(template)

    # The first node of replica 0 finds no lease: it creates one and is the head.
    head = boot(text, tmp_path / "a", ip="10.0.0.5")
    assert head.returncode == 1, head.stderr
    [create, *_] = head.of("aws", "s3api", "put-object")
    assert create[create.index("--key") + 1] == f"ray/{pool.name}/replica-0/head"
    assert create[create.index("--if-none-match") + 1] == "*"
    args = head.run_args()
    command = args[-1]
    assert command.startswith("ray start --head --port=6379 --node-ip-address=10.0.0.5 ")
    assert command.endswith(
        serve_command(text, head.root / "opt/serve/env") + " --distributed-executor-backend ray"
    )
    assert f"-ge {pool.pipeline_parallel} ]" in command
    # NCCL over EFA (AWS "Get started with EFA and NCCL"), the host's address and interface.
    for setting in (
        "FI_PROVIDER=efa",
        "FI_EFA_USE_DEVICE_RDMA=1",
        "NCCL_SOCKET_IFNAME=ens32",
        "GLOO_SOCKET_IFNAME=ens32",
        "VLLM_HOST_IP=10.0.0.5",
    ):
        assert args[args.index(setting) - 1] == "--env", setting
    assert "/dev/infiniband" in args

    # A second node of the same replica finds the fresh lease: it joins that head.
    joiner = boot(text, tmp_path / "b", ip="10.0.0.6", lease=("10.0.0.5", 1, 10))
    assert joiner.returncode == 1, joiner.stderr
    assert not [c for c in joiner.of("aws", "s3api", "put-object")]
    assert joiner.run_args()[-1] == (
        "ray start --block --address=10.0.0.5:6379 --node-ip-address=10.0.0.6"
    )

    # The head was replaced: its lease went stale. The new node takes it over, conditionally on
    # the ETag it read, with the next generation, and heads the replica.
    stale = LEASE_TTL_S + 60
    successor = boot(text, tmp_path / "c", ip="10.0.0.7", lease=("10.0.0.5", 1, stale))
    [takeover, *_] = successor.of("aws", "s3api", "put-object")
    assert "--if-match" in takeover
    assert successor.run_args()[-1].startswith("ray start --head")
    lease = tmp_path / "c/s3" / f"{pool.name}-weights" / f"ray/{pool.name}/replica-0/head"
    assert lease.read_text().split() == ["10.0.0.7", "2"]

    # Another replica's nodes never join replica 0's head: their lease is their own.
    other = boot(text, tmp_path / "d", ip="10.0.1.5", replica="1", lease=None)
    [create, *_] = other.of("aws", "s3api", "put-object")
    assert create[create.index("--key") + 1] == f"ray/{pool.name}/replica-1/head"
    assert other.run_args()[-1].startswith("ray start --head")


def test_the_stand_in_s3_honours_conditional_writes(tmp_path: Path) -> None:
    # The election relies on S3 conditional writes ("How to prevent object overwrites with
    # conditional writes", Amazon S3 User Guide: If-None-Match * fails when the key exists,
    # If-Match fails when the ETag differs); the stand-in must refuse the same.
    (tmp_path / "bin").mkdir()
    aws = tmp_path / "bin/aws"
    aws.write_text(AWS_STANDIN.format(python=sys.executable))
    aws.chmod(0o755)
    body = tmp_path / "body"
    body.write_text("10.0.0.5 1\n")
    env = {"FAKE_S3": str(tmp_path / "s3"), "CALLS": str(tmp_path / "calls"), "PATH": "/usr/bin"}
    put = [str(aws), "s3api", "put-object", "--bucket", "b", "--key", "k", "--body", str(body)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*put, *extra], capture_output=True, text=True, env=env)

    first = run("--if-none-match", "*")
    assert first.returncode == 0
    refused = "An error occurred (PreconditionFailed) when calling the PutObject operation"
    again = run("--if-none-match", "*")
    assert again.returncode == 254 and refused in again.stderr  # S3's 412, as the CLI shows it
    assert run("--if-match", '"0"').returncode == 254
    etag = first.stdout.strip()
    second = run("--if-match", etag)
    assert second.returncode == 0
    # SSE-KMS: each write has a new ETag, so the first one no longer matches.
    assert second.stdout.strip() != etag and run("--if-match", etag).returncode == 254
    # Injected faults: throttling (a service error, 254) and no connection (255), once each.
    (tmp_path / "s3/.faults").write_text("put-object 503\nput-object offline\n")
    throttled, offline = run(), run()
    assert throttled.returncode == 254 and "(SlowDown)" in throttled.stderr
    assert offline.returncode == 255 and "Could not connect" in offline.stderr
    assert run().returncode == 0
    # A write whose answer is lost lands all the same.
    (tmp_path / "s3/.faults").write_text("put-object lost\n")
    body.write_text("10.0.0.7 2\n")
    assert run().returncode == 255
    assert (tmp_path / "s3/b/k").read_text() == "10.0.0.7 2\n"


def test_a_node_restarts_when_its_replicas_head_changes(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    text = user_data(template)
    lease = f"{tmp_path}/{{}}/s3/{pool.name}-weights/ray/{pool.name}/replica-0/head"
    # While a joiner serves, another node takes the lease over (generation 2): the joiner stops
    # its container, so the unit fails and re-elects, joining the new head.
    takeover = f"printf '10.0.0.9 2\\n' > {lease.format('joiner')}"
    joiner = boot(
        text, tmp_path / "joiner", ip="10.0.0.6", lease=("10.0.0.5", 1, 10), hook=takeover
    )
    # The stopped container's status (143) fails the unit, which systemd restarts.
    assert joiner.returncode == 143
    assert "the head of generation 1 is gone: the lease names 10.0.0.9" in joiner.stderr
    assert joiner.of("docker", "stop", "--time", str(LEASE.stop_s), "vllm")
    # A head whose lease another node took (it was thought gone) stops serving, and restarts.
    head = boot(text, tmp_path / "head", ip="10.0.0.5", hook=takeover.replace("joiner", "head"))
    assert head.returncode == 143
    assert "lease lost: another node holds the lease" in head.stderr
    assert head.of("docker", "stop", "--time", str(LEASE.stop_s), "vllm")
    # Until then it renewed its lease, conditionally on the ETag of its own last write.
    renewals = head.of("aws", "s3api", "put-object")[1:]
    assert renewals and all("--if-match" in call for call in renewals)


# --- 9. The lease rides out transient S3 errors ---------------------------------------------


def lease_path(root: Path, pool: str) -> Path:
    return root / "s3" / f"{pool}-weights" / f"ray/{pool}/replica-0/head"


def faults(root: Path, *lines: str) -> str:
    """A hook that makes the next S3 calls fail, in order (the stand-in aws's .faults file)."""
    text = "".join(line + "\\n" for line in lines)
    return f"printf '{text}' > {root}/s3/.faults"


def calls_of(operation: str, count: int) -> str:
    """A DOCKER_SERVE_UNTIL condition: the node made `count` calls of the S3 operation."""
    return f'[ "$(grep -c \'"{operation}"\' "$CALLS")" -ge {count} ]'


def test_lease_figures_keep_one_head_per_replica() -> None:
    # The invariant the start script states, from boot.yaml's figures.
    assert LEASE.problems() == []
    assert LEASE.head_gone_by_s + LEASE.clock_skew_s < LEASE.ttl_s
    assert LEASE.give_up_s > LEASE.renew_s + 2 * LEASE.call_timeout_s
    # A head that would stop too late, or at its first failed renewal, is refused.
    late = dataclasses.replace(LEASE, give_up_s=LEASE.ttl_s - LEASE.retry_s)
    assert late.problems() and "stale" in late.problems()[0]
    eager = dataclasses.replace(LEASE, give_up_s=LEASE.renew_s)
    assert eager.problems() and "no retry" in eager.problems()[0]


def test_a_head_rides_out_transient_s3_errors(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    # While it serves, S3 throttles one renewal, another lands but its answer is lost, a third
    # finds no network: the head keeps serving and renewing. (The lost answer leaves it an old
    # ETag: S3 refuses the next renewal with 412, and the lease it reads is still its own.)
    hook = faults(tmp_path, "put-object 503", "put-object lost", "put-object offline")
    head = boot(
        user_data(template),
        tmp_path,
        ip="10.0.0.5",
        hook=hook,
        until=calls_of("put-object", 8),
    )
    assert head.returncode == 1, head.stderr  # the server returned by itself, not stopped
    assert "the server stopped" in head.stderr
    assert not head.of("docker", "stop")
    assert "lease lost" not in head.stderr and "not renewed" not in head.stderr
    assert "(SlowDown)" in head.stderr and "Could not connect" in head.stderr
    assert "(PreconditionFailed)" in head.stderr  # the refusal after the lost answer...
    puts = head.of("aws", "s3api", "put-object")
    assert len(puts) >= 8 and all("--if-match" in call for call in puts[1:])
    assert lease_path(tmp_path, pool.name).read_text().split() == ["10.0.0.5", "1"]
    # ... and renewals went on after it: the head took its own lease's ETag.
    last = puts[-1]
    assert last[last.index("--if-match") + 1] != puts[1][puts[1].index("--if-match") + 1]


def test_a_head_that_cannot_renew_stops_before_its_lease_goes_stale(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    # S3 fails every renewal: the head stops serving once it could not renew for give_up_s,
    # before its lease goes stale and another node may take the replica over.
    head = boot(
        user_data(template),
        tmp_path,
        ip="10.0.0.5",
        hook=faults(tmp_path, *["put-object 503"] * 40),
    )
    assert head.returncode == 143, head.stderr
    assert f"lease not renewed for {LEASE.give_up_s} s" in head.stderr
    assert head.of("docker", "stop", "--time", str(LEASE.stop_s), "vllm")
    # By the stand-in clock: the stop came after give_up_s without a renewal (the lease's
    # LastModified is the head's last successful write), and early enough that, with docker's
    # stop time and the clocks' skew, the head is gone before the lease is stale.
    renewed = lease_path(tmp_path, pool.name).stat().st_mtime
    stopped = int((head.root / "stopped").read_text())
    assert (
        LEASE.give_up_s
        <= stopped - renewed
        <= LEASE.give_up_s + LEASE.retry_s + LEASE.call_timeout_s
    )
    assert stopped - renewed + LEASE.stop_s + LEASE.clock_skew_s < LEASE.ttl_s
    # It kept trying in between, every retry_s.
    assert len(head.of("aws", "s3api", "put-object")) > 3


def keep_renewed(root: Path, pool: str) -> str:
    """A hook standing in for a live head: its lease is rewritten (same address and generation)
    at every tick of the joiner's clock, until the joiner's server returns."""
    lease = lease_path(root, pool)
    return (
        '( for _ in $(seq 1200); do [ -e "$HOME/served" ] && break; '
        f'touch -d "@$(cat "$FAKE_CLOCK")" {lease}; /bin/sleep 0.02; done ) >/dev/null 2>&1 &'
    )


def test_a_joiner_rides_out_failed_lease_reads(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    # Two reads of the lease fail (throttled, then no network) while its head lives on: the
    # joiner keeps serving.
    hook = (
        keep_renewed(tmp_path, pool.name)
        + "\n"
        + faults(tmp_path, "get-object 503", "get-object offline")
    )
    joiner = boot(
        user_data(template),
        tmp_path,
        ip="10.0.0.6",
        lease=("10.0.0.5", 1, 10),
        hook=hook,
        until=calls_of("get-object", 6),
    )
    assert joiner.returncode == 1, joiner.stderr
    assert not joiner.of("docker", "stop")
    assert joiner.stderr.count("could not read the lease of replica 0: retrying") == 2
    assert "is gone" not in joiner.stderr


def test_a_joiner_stops_when_the_lease_stays_unreadable_for_its_ttl(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    [template] = templates(replicas_run).values()
    joiner = boot(
        user_data(template),
        tmp_path,
        ip="10.0.0.6",
        lease=("10.0.0.5", 1, 10),
        hook=faults(tmp_path, *["get-object offline"] * 40),
    )
    assert joiner.returncode == 143, joiner.stderr
    assert f"could not be read for {LEASE.ttl_s} s" in joiner.stderr
    assert joiner.of("docker", "stop", "--time", str(LEASE.stop_s), "vllm")
    # Not before: it read the lease when it started (the lease was then 10 s old), and stopped
    # more than ttl_s later by its clock, at the first read after that.
    started = lease_path(tmp_path, pool.name).stat().st_mtime + 10
    stopped = int((joiner.root / "stopped").read_text())
    assert LEASE.ttl_s < stopped - started + 1 <= LEASE.ttl_s + LEASE.renew_s + 1
    failed = joiner.of("aws", "s3api", "get-object")[1:]
    assert len(failed) > LEASE.ttl_s // LEASE.renew_s


# --- 10. The head waits for live Ray nodes only ---------------------------------------------

# Stand-in `ray`, from a nodes file (node id, address, ALIVE or DEAD): `ray list nodes` filters
# and prints as Ray's state CLI does (ray/util/state/state_cli.py: key=value filters, string
# values compared case-insensitively; YAML as yaml.dump(indent=4, explicit_start, sort_keys=False,
# explicit_end); "No resource in the cluster" when none), `ray status` as its autoscaler report
# (ray/autoscaler/_private/util.py format_info_string: live nodes under "Active:", dead ones
# under "Recent failures:").
RAY_STANDIN = """\
#!{python}
import json, os, sys
import yaml
nodes = json.load(open(os.environ["RAY_NODES"]))
argv = sys.argv[1:]
if argv[0] == "start":
    pass
elif argv[:2] == ["list", "nodes"]:
    filters = [argv[i + 1] for i, a in enumerate(argv) if a in ("-f", "--filter")]
    for f in filters:
        key, value = f.split("=", 1)
        nodes = [n for n in nodes if str(n[key]).lower() == value.lower()]
    listed = [
        {{"node_id": n["node_id"], "node_ip": n["node_ip"], "is_head_node": n["head"],
          "state": n["state"], "labels": {{"ray.io/node_id": n["node_id"]}}}}
        for n in nodes
    ]
    if not listed:
        print("No resource in the cluster")
    else:
        print(yaml.dump(listed, indent=4, explicit_start=True, sort_keys=False, explicit_end=True))
elif argv[0] == "status":
    print("======== Autoscaler status: 2026-12-02 03:00:00.000000 ========")
    print("Node status\\n" + "-" * 63 + "\\nActive:")
    for n in nodes:
        if n["state"] == "ALIVE":
            print(" 1 node_" + n["node_id"])
    print("Pending:\\n (no pending nodes)\\nRecent failures:")
    for n in nodes:
        if n["state"] == "DEAD":
            print(" node_" + n["node_id"] + ": NodeTerminated (ip: " + n["node_ip"] + ")")
    print("\\nResources\\n" + "-" * 63 + "\\nUsage:\\n 0.0/384.0 CPU\\n 0.0/16.0 GPU")
else:
    sys.exit("stand-in ray: unexpected call " + " ".join(argv))
"""


def test_the_head_waits_for_live_ray_nodes_only(
    replicas_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    [pool] = plan_of(project).pools
    assert pool.pipeline_parallel == 2
    [template] = templates(replicas_run).values()
    head = boot(user_data(template), tmp_path / "head", ip="10.0.0.5")
    command = head.run_args()[-1]
    # The container's command, run with a stand-in Ray: the head and a worker that died (the
    # node was replaced); the replacement joins after the head has waited twice.
    bin_dir = tmp_path / "ray-bin"
    bin_dir.mkdir()
    nodes = tmp_path / "nodes.json"
    alive = {"node_id": "a1", "node_ip": "10.0.0.5", "head": True, "state": "ALIVE"}
    dead = {"node_id": "d2", "node_ip": "10.0.0.6", "head": False, "state": "DEAD"}
    joined = {"node_id": "c3", "node_ip": "10.0.0.7", "head": False, "state": "ALIVE"}
    nodes.write_text(json.dumps([alive, dead]))
    (bin_dir / "ray").write_text(RAY_STANDIN.format(python=sys.executable))
    (bin_dir / "sleep").write_text(
        textwrap.dedent(f"""\
            #!/bin/bash
            echo >> {tmp_path}/waits
            n=$(wc -l < {tmp_path}/waits)
            [ "$n" -eq 2 ] && printf '%s' '{json.dumps([alive, dead, joined])}' > {nodes}
            [ "$n" -lt 20 ] || kill "$PPID\"""")
    )
    (bin_dir / "vllm").write_text(f"#!/bin/bash\nwc -l < {tmp_path}/waits > {tmp_path}/served\n")
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    (tmp_path / "waits").touch()
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RAY_NODES": str(nodes)},
    )
    assert result.returncode == 0, result.stderr
    # vLLM started once two live nodes were there: after the replacement joined, not when the
    # dead worker still showed in `ray status`.
    assert (tmp_path / "served").read_text().split() == ["2"]
    assert "ray list nodes --filter state=ALIVE" in command


# --- 11. Where the missing weights message points --------------------------------------------


def test_the_missing_weights_message_points_to_a_readme_section(example_run: OfflineRun) -> None:
    script = written(user_data(templates(example_run)["contract-review-pool-nodes"]))[
        "/opt/serve/start.sh"
    ]
    [title] = re.findall(r"README, '([^']+)'", script)
    readme = (REPO / "README.md").read_text()
    headings = re.findall(r"^#+ (.+)$", readme, re.MULTILINE)
    assert title in headings
    # The section says how, where and who: `aws s3 sync` to the weights prefix, by the uploader.
    section = readme.split(f"# {title}\n", 1)[1].split("\n#", 1)[0]
    for needed in ("aws s3 sync", "/weights/<repository>/", "weights_uploader_arn", "pulumi up"):
        assert needed in section, needed


# --- 12. Replaced lease versions expire --------------------------------------------------------


def test_the_weights_bucket_expires_replaced_lease_versions(
    example_run: OfflineRun, replicas_run: OfflineRun
) -> None:
    # The bucket is versioned and each lease renewal replaces a version: without a lifecycle
    # rule, 2880 versions a day per replica stay forever. S3 API Reference: LifecycleRule ID at
    # most 255 characters, Status Enabled or Disabled; NoncurrentVersionExpiration NoncurrentDays
    # and AbortIncompleteMultipartUpload DaysAfterInitiation positive integers.
    figures = BOOT_DATA_FILE["bucket_lifecycle"]
    for run in (example_run, replicas_run):
        buckets = of_type(run, "aws:s3/bucket:Bucket")
        configurations = of_type(
            run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        # One configuration per weights bucket (a second one would fight the first).
        assert sorted(c.name for c in configurations) == sorted(b.name for b in buckets)
        versionings = {
            v.name: v.urn for v in of_type(run, "aws:s3/bucketVersioning:BucketVersioning")
        }
        for configuration in configurations:
            # After the versioning it acts on (pulumi-aws's example for a versioned bucket).
            assert versionings[configuration.name] in configuration.depends_on
            rules = {rule["id"]: rule for rule in configuration.inputs["rules"]}
            leases = rules["expire-replaced-leases"]
            assert leases["status"] == "Enabled"
            assert leases["filter"] == {"prefix": "ray/"}
            days = leases["noncurrentVersionExpiration"]["noncurrentDays"]
            assert days == figures["lease_noncurrent_days"]["value"] == 1
            uploads = rules["abort-incomplete-uploads"]
            assert uploads["status"] == "Enabled" and not uploads.get("filter")
            initiation = uploads["abortIncompleteMultipartUpload"]["daysAfterInitiation"]
            assert initiation == figures["abort_multipart_days"]["value"] == 7
            assert all(len(rule_id) <= 255 for rule_id in rules)
            # Nothing else expires: the weights and the current leases stay.
            assert "expiration" not in leases and "expiration" not in uploads
    # The prefix is where the nodes keep their leases.
    [template] = templates(replicas_run).values()
    env = written(user_data(template))["/opt/serve/env"]
    assert re.search(r"^ELECTION_PREFIX=ray/", env, re.MULTILINE)


def test_an_instance_store_the_ami_mounted_is_used_as_it_is(
    example_run: OfflineRun, project: Path, tmp_path: Path
) -> None:
    """When the AMI already mounted the instance store at the weights' place, the script neither
    builds an array nor formats anything: it syncs the weights there and serves."""
    pool = plan_of(project).pools[0]
    text = user_data(templates(example_run)[f"{pool.name}-nodes"])
    node = boot(text, tmp_path / pool.name, mounted=True)
    assert node.returncode == 1 and "the server stopped" in node.stderr, node.stderr
    assert node.of("mountpoint")
    assert not node.of("mdadm") and not node.of("mkfs.xfs") and not node.of("mount")
    [sync] = node.of("aws", "s3", "sync")
    assert sync[-2] == f"{node.root}/nvme/weights/{pool.model}"
    assert node.run_args()
