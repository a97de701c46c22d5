"""A pool's GPU nodes: the launch template (the serving AMI, the nodes' instance profile, their
network interfaces, an encrypted root volume and the cloud-init user data that fetches the weights
and starts vLLM) and the Auto Scaling groups that keep the planned number of nodes running.

The command vLLM runs is built apart, by stacks/serving.py, and the health-check grace by
stacks/boot.py: both hold for any target; this module is how EC2 runs them."""

from __future__ import annotations

import base64
import gzip
import math
import shlex

import pulumi
import pulumi_aws as aws

from planner import names
from planner.planfile import Pool
from planner.templating import base_environment
from stacks.aws.lookups import Lookups
from stacks.aws.network import PrivateNetwork
from stacks.aws.weights import LEASE_ROOT
from stacks.boot import backoff_figures, lease_figures, termination_figures
from stacks.settings import SERVING_PORT

ROOT_VOLUME_GB = 200
# The weights are staged on the instance's local NVMe (instance store), not on an EBS volume.
FAST_STORAGE = "/opt/dlami/nvme"
# A multi-node replica's nodes find their group by this instance tag, read from the instance
# metadata (keys there allow letters, digits and + - = . , _ : @, no "/": "Tag your Amazon EC2
# resources", EC2 User Guide, tag restrictions).
REPLICA_TAG = names.TAG_REPLICA
# The Ray head's lease: renewed every LEASE_RENEW_S seconds, stale after LEASE_TTL_S
# (planner/data/boot.yaml `lease`, checked to keep one head per replica by stacks/boot.py).
LEASE = lease_figures()
LEASE_RENEW_S = LEASE.renew_s
LEASE_TTL_S = LEASE.ttl_s


def multi_node(pool: Pool) -> bool:
    """Whether a replica spans nodes (its pipeline stages on several nodes, one Ray cluster)."""
    return pool.pipeline_parallel > 1


def render_user_data(**context: object) -> str:
    return base_environment().get_template("cloud-init.yaml.j2").render(**context)


def encode_user_data(text: str) -> str:
    """User data for a launch template: gzip-compressed (cloud-init uncompresses gzip content:
    cloud-init docs, "User-data formats"), so the script stays far within EC2's 16 KB ("User
    data is limited to 16 KB, in raw form, before it is base64-encoded", EC2 User Guide;
    planner/data/aws_limits.yaml), then base64 as the launch template takes it. mtime 0 keeps
    the bytes the same for the same text (deterministic output)."""
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def user_data(
    pool: Pool,
    lookups: Lookups,
    *,
    bucket: aws.s3.Bucket,
    repository: aws.ecr.Repository,
    log_group: aws.cloudwatch.LogGroup,
    api_key: aws.secretsmanager.Secret,
    image_tag: str,
    serve_args: list[str],
    serve_env: dict[str, str],
    s3_download_gbps: float,
) -> pulumi.Output[str]:
    """The nodes' cloud-init script (templates/cloud-init.yaml.j2), encoded for the template."""
    registry = f"{lookups.account_id}.dkr.ecr.{lookups.region}.{lookups.dns_suffix}"
    return pulumi.Output.all(
        bucket.bucket,
        repository.repository_url,
        log_group.name,
        api_key.arn,
    ).apply(
        lambda values: encode_user_data(
            render_user_data(
                pool=pool.name,
                model=pool.model,
                precision=pool.precision,
                serve_flags=shlex.join(serve_args),
                serve_env=" ".join(
                    f"--env {shlex.quote(f'{name}={value}')}"
                    for name, value in sorted(serve_env.items())
                ),
                tensor_parallel=pool.tensor_parallel,
                pipeline_parallel=pool.pipeline_parallel,
                nodes_per_replica=pool.pipeline_parallel,
                region=lookups.region,
                bucket=values[0],
                weights_prefix=f"weights/{pool.weights}",
                image=f"{values[1]}:{image_tag}",
                registry=registry,
                port=SERVING_PORT,
                election_prefix=f"{LEASE_ROOT}{pool.name}",
                replica_tag=REPLICA_TAG,
                lease=LEASE,
                backoff=backoff_figures(),
                termination=termination_figures(),
                fast_storage=FAST_STORAGE,
                s3_target_gbps=f"{s3_download_gbps:g}",
                log_group=values[2],
                api_key_secret=values[3],
            )
        )
    )


def efa_layout(cards: int) -> list[tuple[int, int, str | None]]:
    """(network card, device index, interface type) of a node's interfaces.

    One ENA interface (the default type) at card 0, device 0: the node's one private address.
    With EFA (`cards` network cards, a replica spanning nodes), an `efa-only` interface at card
    0, device 1, and one at device 0 of every other card. EFA-only interfaces carry no IP
    address, so a P5 node takes one address of its subnet, not 32 ("Maximize network bandwidth
    on Amazon EC2 instances with multiple network cards", EC2 user guide,
    docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html: "You can't use an
    EFA-only network interface as the primary network interface", then card 0 device 1 and
    device 0 of each further card; its P5 example requests 32 EFA devices and one ENA device).
    No interface asks for a public address: EC2 refuses AssociatePublicIpAddress with more
    than one interface, and the subnets give none."""
    layout: list[tuple[int, int, str | None]] = [(0, 0, None)]
    if cards > 0:
        layout.append((0, 1, "efa-only"))
        layout.extend((card, 0, "efa-only") for card in range(1, cards))
    return layout


def launch_template(
    name: str,
    pool: Pool,
    lookups: Lookups,
    *,
    key_arn: pulumi.Input[str],
    profile: aws.iam.InstanceProfile,
    security_group: aws.ec2.SecurityGroup,
    user_data: pulumi.Input[str],
    efa_interfaces: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.ec2.LaunchTemplate:
    spans_nodes = multi_node(pool)
    interfaces = [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            network_card_index=card,
            device_index=device,
            interface_type=kind,
            delete_on_termination="true",
            security_groups=[security_group.id],
        )
        for card, device, kind in efa_layout(efa_interfaces if spans_nodes else 0)
    ]

    def volume(device: str, size: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
        return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name=device,
            ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                encrypted="true",
                kms_key_id=key_arn,
                volume_type="gp3",
                volume_size=size,
            ),
        )

    return aws.ec2.LaunchTemplate(
        f"{name}-nodes",
        image_id=lookups.ami_id,
        instance_type=pool.instance_type,
        iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
        # Tokens required; hop limit 1 is enough as the serving container uses the host's
        # network namespace, so no extra hop stands between it and the metadata service.
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
            # A multi-node replica's nodes read their group's tag (REPLICA_TAG).
            instance_metadata_tags="enabled" if spans_nodes else "disabled",
        ),
        # The root volume only: the weights live on the instance store (FAST_STORAGE).
        block_device_mappings=[volume("/dev/sda1", ROOT_VOLUME_GB)],
        network_interfaces=interfaces,
        # A reservation the user already holds is used; nothing here buys capacity.
        capacity_reservation_specification=(
            aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=pool.capacity_reservation_id
                )
            )
            if pool.capacity_reservation_id
            else None
        ),
        user_data=user_data,
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
            for kind in ("instance", "volume", "network-interface")
        ],
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def placement_group(
    name: str, pool: Pool, tags: dict[str, str], parent: pulumi.Resource
) -> aws.ec2.PlacementGroup | None:
    """A cluster placement group for the nodes of a multi-node replica (NCCL over EFA)."""
    if not multi_node(pool):
        return None
    return aws.ec2.PlacementGroup(
        f"{name}-cluster", strategy="cluster", tags=tags, opts=pulumi.ResourceOptions(parent=parent)
    )


def node_zones(pool: Pool, network: PrivateNetwork) -> list[str]:
    """The zones of the nodes: a multi-node replica's nodes share one zone (and placement
    group), single-node replicas use both of the network's service zones. A capacity
    reservation is used only in its own zone: every node goes there."""
    return (
        [pool.capacity_reservation_zone]
        if pool.capacity_reservation_zone
        else network.service_zones[:1]
        if multi_node(pool)
        else list(network.service_zones)
    )


def node_groups(
    name: str,
    pool: Pool,
    *,
    subnets: list[pulumi.Output[str]],
    placement_group: aws.ec2.PlacementGroup | None,
    template: aws.ec2.LaunchTemplate,
    service_linked_role: aws.iam.ServiceLinkedRole,
    target_group: aws.lb.TargetGroup,
    health_check_grace_s: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> list[aws.autoscaling.Group]:
    """A replica that spans nodes is a group of its own (its nodes form one Ray cluster, in
    one placement group and zone); single-node replicas share one group over both zones."""
    # Each replica group's nodes carry its number (REPLICA_TAG): one Ray head per group.
    if multi_node(pool):
        groups = [
            (f"{name}-replica-{index}", pool.pipeline_parallel, {REPLICA_TAG: str(index)})
            for index in range(pool.nodes // pool.pipeline_parallel)
        ]
    else:
        groups = [(f"{name}-nodes", pool.nodes, {})]
    made = [
        aws.autoscaling.Group(
            group_name,
            desired_capacity=size,
            min_size=size,
            max_size=size,
            vpc_zone_identifiers=subnets,
            placement_group=placement_group.id if placement_group else None,
            launch_template={"id": template.id, "version": "$Latest"},
            service_linked_role_arn=service_linked_role.arn,
            target_group_arns=[target_group.arn],
            # EC2 status, not the load balancer's check: a node whose vLLM systemd is
            # restarting fails the check for minutes (the load and the engine's start,
            # stacks/boot.py restart_s), far past the target group's unhealthy window
            # (3 checks 30 s apart), and an ELB-checked group would terminate it and boot a
            # new one that downloads the weights again ("Health checks for instances in an
            # Auto Scaling group", Amazon EC2 Auto Scaling User Guide: with ELB checks an
            # instance the load balancer reports unhealthy is replaced). The load balancer
            # still sends nothing to an unhealthy target. Workers of a multi-node replica
            # never pass the check at all (only the head serves).
            health_check_type="EC2",
            # Long enough to fetch and load the weights (stacks/boot.py).
            health_check_grace_period=health_check_grace_s,
            tags=[
                {"key": key, "value": value, "propagate_at_launch": True}
                for key, value in sorted({**tags, **group_tags}.items())
            ],
            # Deleting a group drains it first (pulumi-aws sets its capacity to 0 and waits
            # for its instances to end, within the provider's default 10 minutes: terraform-
            # provider-aws autoscaling group.go, drainGroup), and each instance now also waits
            # out the termination hook below: the default plus that wait.
            opts=pulumi.ResourceOptions(
                parent=parent,
                custom_timeouts=pulumi.CustomTimeouts(delete=f"{group_delete_minutes()}m"),
            ),
        )
        for group_name, size, group_tags in groups
    ]
    for (group_name, _, _), group in zip(groups, made, strict=True):
        termination_hook(group_name, group, parent)
    return made


# What pulumi-aws waits for a group's deletion unless told otherwise (terraform-provider-aws,
# internal/service/autoscaling/group.go: Timeouts Delete schema.DefaultTimeout(10 *
# time.Minute), within which drainGroup waits for the group's instances to end).
PROVIDER_GROUP_DELETE_MINUTES = 10
# The termination hook's name, one per group (PutLifecycleHook LifecycleHookName: 1-255 of
# [A-Za-z0-9\-_\/], unique within its group: planner/data/aws_limits.yaml).
TERMINATION_HOOK = "serve-on-before-termination"


def group_delete_minutes() -> int:
    """pulumi's wait for a group's deletion: the provider's default, which held its instances'
    deregistration and termination, and the termination hook every instance now waits too."""
    return PROVIDER_GROUP_DELETE_MINUTES + math.ceil(termination_figures().node_hold_s / 60)


def termination_hook(
    group_name: str, group: aws.autoscaling.Group, parent: pulumi.Resource
) -> aws.autoscaling.LifecycleHook:
    """The group's instances, once out of the target group, keep running (Terminating:Wait)
    for node_hold_s before they are terminated: "If the Auto Scaling group is being used with
    Elastic Load Balancing, the terminating instance is first deregistered from the load
    balancer ... The lifecycle hook puts the instance into a wait state (Terminating:Wait)"
    (Amazon EC2 Auto Scaling User Guide, "How lifecycle hooks work"). Nothing completes the
    action, so the wait runs its whole heartbeat timeout (PutLifecycleHook HeartbeatTimeout:
    30-7200 s), and then CONTINUE terminates the instance; no notification target or role is
    needed for that. Without it, a node the target group let go at once (no connection open)
    was terminated while the NLB might still send it a request, and the worker nodes of a
    multi-node replica ended at once, taking down the requests their head was draining.
    deleted_with: when the group itself is deleted, pulumi leaves the hook to go with it
    (Pulumi docs, resource option deletedWith) rather than deleting it first, so the
    draining instances still wait."""
    return aws.autoscaling.LifecycleHook(
        f"{group_name}-ending",
        name=TERMINATION_HOOK,
        autoscaling_group_name=group.name,
        lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
        heartbeat_timeout=termination_figures().node_hold_s,
        default_result="CONTINUE",
        opts=pulumi.ResourceOptions(parent=parent, deleted_with=group),
    )
