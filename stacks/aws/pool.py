"""A self-hosted inference pool: GPU nodes serving one open-weights model in a private network.

One component per pool of the plan. Everything a node touches stays inside its VPC: weights from
the pool's own bucket through the S3 gateway endpoint, the serving image from the pool's private
ECR repository and the serving API key from Secrets Manager through interface endpoints, logs to a
log group encrypted with the pool's key.

The way in is a service, not a network: the pool's Network Load Balancer is published as a VPC
endpoint service (PrivateLink) that only this account and the consumers' accounts may connect to,
each connection accepted. PrivateLink adds no route to the pool's VPC, and only a consumer can open
a connection, so the no-way-out perimeter holds; peering or a transit gateway would add routes and
are not used. Callers speak TLS to the load balancer (a certificate from the pool's AWS Private
CA), the load balancer TLS to the nodes, and vLLM requires the pool's API key.
"""

from __future__ import annotations

import base64
import gzip
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from planner import names
from planner.planfile.schema import Pool
from planner.templating import base_environment
from stacks.addressing import ConsumerVpc, WorkloadCost, dns_label, service_dns_name
from stacks.aws.identity import assumed_by, autoscaling_role, policy_json, secret_read_policy
from stacks.aws.kms import kms_key
from stacks.aws.lookups import Lookups, subnet_zones
from stacks.aws.naming import aws_name
from stacks.aws.network import NODE_ENDPOINT_SERVICES, PrivateNetwork, PrivateNetworkArgs
from stacks.boot import backoff_figures, lease_figures, lifecycle_figures
from stacks.settings import SERVING_PORT, guarded

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
# The leases' keys, ray/<pool>/replica-<n>/head, in the pool's weights bucket.
LEASE_ROOT = "ray/"
# The nodes read the serving API key at boot: Secrets Manager is reached through an interface
# endpoint like the other services a node needs.
POOL_ENDPOINT_SERVICES = (*NODE_ENDPOINT_SERVICES, "secretsmanager")
# TLS 1.3 and 1.2 with the restricted (forward-secret, AES-GCM) cipher list. Set explicitly: a TLS
# listener created through the API otherwise gets ELBSecurityPolicy-2016-08, which still accepts
# TLS 1.0 ("Security policies for your Network Load Balancer", Elastic Load Balancing guide,
# docs.aws.amazon.com/elasticloadbalancing/latest/network/describe-ssl-policies.html, read
# 2026-12). With a TLS 1.3 policy the hop to the targets uses ELBSecurityPolicy-TLS13-1-0-2021-06
# (same guide), and the node's server (Python's ssl defaults) accepts TLS 1.2 and 1.3 only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
API_KEY_LENGTH = 48
# Load balancer and target group names: at most 32 characters (planner/data/aws_limits.yaml).
NAME_LIMIT = 32


@dataclass
class InferencePoolArgs:
    pool: Pool
    consumers: list[str]
    cidr: str
    lookups: Lookups
    tags: dict[str, str]
    protect: bool
    image_tag: str
    # What follows `vllm serve /weights` on every node (stacks/serving.py).
    serve_args: list[str]
    # From stacks/boot.py: the grace before a new node's health checks count, and the rate its
    # S3 client aims at (the rate the grace was computed for).
    health_check_grace_s: int
    s3_download_gbps: float
    weights_uploader_arn: str | None = None
    efa_interfaces: int = 1
    # Where the callers run: VPCs of this account (the stack connects them) and other accounts
    # (allowed to connect; they create their own endpoint).
    consumer_vpcs: Sequence[ConsumerVpc] = field(default_factory=tuple)
    consumer_accounts: Sequence[str] = field(default_factory=tuple)
    # The zones of its network, offering its instance type (stacks/settings.py pool_zones);
    # None: the region's first two.
    zones: list[str] | None = None
    # Its workloads: each gets a policy its callers' role attaches to read the API key.
    workloads: Sequence[WorkloadCost] = field(default_factory=tuple)


def render_user_data(**context: object) -> str:
    return base_environment().get_template("cloud-init.yaml.j2").render(**context)


def encode_user_data(text: str) -> str:
    """User data for a launch template: gzip-compressed (cloud-init uncompresses gzip content:
    cloud-init docs, "User-data formats"), so the script stays far within EC2's 16 KB ("User
    data is limited to 16 KB, in raw form, before it is base64-encoded", EC2 User Guide;
    planner/data/aws_limits.yaml), then base64 as the launch template takes it. mtime 0 keeps
    the bytes the same for the same text (deterministic output)."""
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def endpoint_command(service_name: str, region: str) -> str:
    """What a consumer in another account runs to make its endpoint (then asks for acceptance)."""
    return (
        f"aws ec2 create-vpc-endpoint --region {region} --vpc-endpoint-type Interface "
        f"--service-name {service_name} --vpc-id <your-vpc-id> --subnet-ids <your-subnet-ids> "
        f"--security-group-ids <a-group-admitting-tcp-{SERVING_PORT}-from-your-callers> "
        "--no-private-dns-enabled"
    )


class InferencePool(pulumi.ComponentResource):
    """Nodes, network, weights bucket, image repository and load balancer of one pool."""

    def __init__(
        self, name: str, args: InferencePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.INFERENCE_POOL, name, None, opts)
        pool, lookups, tags = args.pool, args.lookups, args.tags
        child = pulumi.ResourceOptions(parent=self)
        partition = lookups.partition
        multi_node = pool.pipeline_parallel > 1
        stack = pulumi.get_stack()
        # What callers name in a request (vLLM's --served-model-name, templates/cloud-init) and
        # where the weights go: for the stack outputs.
        self.served_model = pool.model
        self.weights_prefix = f"weights/{pool.weights}"

        # The key names the pool's Auto Scaling role, so the role comes first (stacks/common.py).
        self.autoscaling_role = autoscaling_role(stack, name, tags, self)
        self.key = kms_key(
            f"{name}-key",
            f"ai-infra-planner pool {pool.name}: weights, volumes, logs",
            lookups,
            tags,
            args.protect,
            self,
            services=["logs", "autoscaling"],
            autoscaling_role_arn=self.autoscaling_role.arn,
        )

        # Weights bucket: versioned, encrypted with the pool's key, never public.
        self.bucket = aws.s3.Bucket(f"{name}-weights", tags=tags, opts=guarded(args.protect, self))
        versioning = aws.s3.BucketVersioning(
            f"{name}-weights",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        # Versioning keeps every version a write replaces: the Ray heads' leases, rewritten every
        # LEASE_RENEW_S seconds per replica, would pile up forever. One lifecycle configuration
        # per bucket (pulumi-aws BucketLifecycleConfiguration: a second one fights the first),
        # after the versioning it acts on (as pulumi-aws's versioned-bucket example does).
        lifecycle = lifecycle_figures()
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-weights",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "expire-replaced-leases",
                    "status": "Enabled",
                    "filter": {"prefix": LEASE_ROOT},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": lifecycle.lease_noncurrent_days
                    },
                },
                {
                    # An interrupted upload of a checkpoint leaves parts billed as storage.
                    # An empty filter: the whole bucket (pulumi-aws docs, "Specifying an empty
                    # filter").
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "filter": {},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": lifecycle.abort_multipart_days
                    },
                },
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-weights",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-weights",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )

        # The S3 gateway endpoint reaches the weights bucket and ECR's layer bucket, nothing else.
        layer_bucket = f"arn:{partition}:s3:::prod-{lookups.region}-starport-layer-bucket/*"
        s3_policy = self.bucket.arn.apply(
            lambda arn: policy_json(
                [
                    {
                        "Sid": "WeightsBucketOnly",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                        "Resource": [arn, f"{arn}/*"],
                    },
                    {
                        "Sid": "EcrImageLayers",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": layer_bucket,
                    },
                ]
            )
        )
        self.network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                cidr=args.cidr,
                lookups=lookups,
                kms_key_arn=self.key.arn,
                tags=tags,
                interface_services=POOL_ENDPOINT_SERVICES,
                s3_endpoint_policy=s3_policy,
                zones=args.zones,
                # The load balancer also goes where this account's consumer endpoints are:
                # PrivateLink serves a subnet only in a zone the load balancer is in.
                extra_zones=tuple(
                    subnet_zones(lookups, [s for vpc in args.consumer_vpcs for s in vpc.subnets])
                ),
            ),
            opts=child,
        )
        s3_endpoint = self.network.s3_endpoint
        assert s3_endpoint is not None
        self.zone_ids = {zone: lookups.zone_ids.get(zone, "") for zone in self.network.zones}

        uploader = args.weights_uploader_arn
        aws.s3.BucketPolicy(
            f"{name}-weights",
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, s3_endpoint.id).apply(
                lambda values: _bucket_policy(values[0], values[1], uploader)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        self.repository = aws.ecr.Repository(
            f"{name}-serving",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
            tags=tags,
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-serving",
            retention_in_days=365,
            kms_key_id=self.key.arn,
            tags=tags,
            opts=child,
        )

        # The serving API key: generated by the stack, kept in Secrets Manager under the pool's
        # key, read by the nodes at boot with their role. It never appears in user data, tags,
        # outputs or logs; in the Pulumi state it is a secret (encrypted by the stack's secrets
        # provider).
        api_key = random.RandomPassword(
            f"{name}-api-key",
            length=API_KEY_LENGTH,
            special=False,
            opts=guarded(args.protect, self),
        )
        self.api_key_secret = aws.secretsmanager.Secret(
            f"{name}-api-key",
            description=f"vLLM API key of pool {pool.name}: callers send it as a bearer token",
            kms_key_id=self.key.arn,
            recovery_window_in_days=30,
            tags=tags,
            opts=guarded(args.protect, self),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-api-key",
            secret_id=self.api_key_secret.id,
            secret_string=api_key.result,
            opts=guarded(args.protect, self),
        )
        # Per workload, what its callers' role attaches to read the key (and decrypt it through
        # Secrets Manager only): the stack attaches it to nothing, the callers' roles are theirs.
        self.access_policies = {
            workload.name: aws.iam.Policy(
                f"{workload.name}-pool-access",
                description=f"{workload.name}: read the API key of pool {pool.name}, only that",
                policy=pulumi.Output.all(self.api_key_secret.arn, self.key.arn).apply(
                    lambda values: secret_read_policy(values[0], values[1], lookups)
                ),
                tags=workload.tags,
                opts=child,
            )
            for workload in args.workloads
        }

        role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=assumed_by("ec2.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-node-ssm",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-node",
            role=role.id,
            policy=pulumi.Output.all(
                self.bucket.arn,
                self.key.arn,
                self.repository.arn,
                self.log_group.arn,
                self.api_key_secret.arn,
            ).apply(lambda values: _node_policy(*values, multi_node=multi_node)),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(f"{name}-node", role=role.name, tags=tags, opts=child)

        # Security groups: the load balancer admits the consumers; the nodes admit the consumers
        # (the NLB keeps client addresses) and the load balancer, and reach only the VPC and S3.
        self.lb_security_group = aws.ec2.SecurityGroup(
            f"{name}-lb",
            vpc_id=self.network.vpc.id,
            description=f"{pool.name} load balancer: serving port from the consumers",
            tags=tags,
            opts=child,
        )
        self.node_security_group = aws.ec2.SecurityGroup(
            f"{name}-nodes",
            vpc_id=self.network.vpc.id,
            description=f"{pool.name} nodes: serving port from consumers and load balancer",
            tags=tags,
            opts=child,
        )
        for index, cidr in enumerate(args.consumers):
            for group, label in (
                (self.lb_security_group, "lb"),
                (self.node_security_group, "nodes"),
            ):
                _serving_port_from(f"{name}-{label}-consumer-{index}", group, cidr, tags, child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-lb-to-nodes",
            security_group_id=self.lb_security_group.id,
            ip_protocol="tcp",
            from_port=SERVING_PORT,
            to_port=SERVING_PORT,
            referenced_security_group_id=self.node_security_group.id,
            description="to the serving port and health check of the nodes",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nodes-from-lb",
            security_group_id=self.node_security_group.id,
            ip_protocol="tcp",
            from_port=SERVING_PORT,
            to_port=SERVING_PORT,
            referenced_security_group_id=self.lb_security_group.id,
            description="serving port and health check from the load balancer",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nodes-to-vpc",
            security_group_id=self.node_security_group.id,
            ip_protocol="-1",
            cidr_ipv4=args.cidr,
            description="inside the VPC only: endpoints, other nodes",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nodes-to-s3",
            security_group_id=self.node_security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            prefix_list_id=s3_endpoint.prefix_list_id,
            description="HTTPS to S3 through the gateway endpoint",
            tags=tags,
            opts=child,
        )
        if multi_node:
            # NCCL over EFA needs all traffic between the nodes of a replica.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nodes-from-nodes",
                security_group_id=self.node_security_group.id,
                ip_protocol="-1",
                referenced_security_group_id=self.node_security_group.id,
                description="Ray, NCCL and EFA between the nodes of a replica",
                tags=tags,
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-nodes-to-nodes",
                security_group_id=self.node_security_group.id,
                ip_protocol="-1",
                referenced_security_group_id=self.node_security_group.id,
                description="Ray, NCCL and EFA between the nodes of a replica",
                tags=tags,
                opts=child,
            )

        placement_group = None
        if multi_node:
            placement_group = aws.ec2.PlacementGroup(
                f"{name}-cluster", strategy="cluster", tags=tags, opts=child
            )

        registry = f"{lookups.account_id}.dkr.ecr.{lookups.region}.{lookups.dns_suffix}"
        user_data = pulumi.Output.all(
            self.bucket.bucket,
            self.repository.repository_url,
            self.log_group.name,
            self.api_key_secret.arn,
        ).apply(
            lambda values: encode_user_data(
                render_user_data(
                    pool=pool.name,
                    model=pool.model,
                    precision=pool.precision,
                    serve_flags=shlex.join(args.serve_args),
                    tensor_parallel=pool.tensor_parallel,
                    pipeline_parallel=pool.pipeline_parallel,
                    nodes_per_replica=pool.pipeline_parallel,
                    region=lookups.region,
                    bucket=values[0],
                    weights_prefix=f"weights/{pool.weights}",
                    image=f"{values[1]}:{args.image_tag}",
                    registry=registry,
                    port=SERVING_PORT,
                    election_prefix=f"{LEASE_ROOT}{pool.name}",
                    replica_tag=REPLICA_TAG,
                    lease=LEASE,
                    backoff=backoff_figures(),
                    fast_storage=FAST_STORAGE,
                    s3_target_gbps=f"{args.s3_download_gbps:g}",
                    log_group=values[2],
                    api_key_secret=values[3],
                )
            )
        )
        interfaces = [
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                network_card_index=card,
                device_index=device,
                interface_type=kind,
                delete_on_termination="true",
                security_groups=[self.node_security_group.id],
            )
            for card, device, kind in efa_layout(args.efa_interfaces if multi_node else 0)
        ]

        def volume(device: str, size: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
            return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=device,
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    encrypted="true",
                    kms_key_id=self.key.arn,
                    volume_type="gp3",
                    volume_size=size,
                ),
            )

        self.launch_template = aws.ec2.LaunchTemplate(
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
                instance_metadata_tags="enabled" if multi_node else "disabled",
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
            opts=child,
        )

        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-lb",
            # Auto-names (logical name and 7 random characters) pass the 32-character limit of
            # load balancer and target group names (planner/data/aws_limits.yaml). What replaces
            # it is in the name: the network (its range) and the zones of its subnets (removing
            # a subnet from a Network Load Balancer recreates it: hashicorp/terraform-provider-aws
            # pull request 33205 allows only adding them).
            name=aws_name(
                stack, f"{name}-lb", NAME_LIMIT, (args.cidr, "network", *self.network.zones)
            ),
            internal=True,
            # An endpoint service fronts a Network (or Gateway) Load Balancer only.
            load_balancer_type="network",
            subnets=[subnet.id for subnet in self.network.subnets],
            security_groups=[self.lb_security_group.id],
            # PrivateLink traffic is held to the security group's rules too, evaluated against
            # the callers' own addresses ("Update the security groups for your Network Load
            # Balancer", Elastic Load Balancing guide, read 2026-12); "on" is the default, set so
            # that nobody turns it off unseen.
            enforce_security_group_inbound_rules_on_private_link_traffic="on",
            # Each load balancer node forwards to the nodes in every zone: a multi-node replica,
            # a capacity reservation and the consumers' zones leave zones without nodes, and
            # with cross-zone off (a Network Load Balancer's default) "each load balancer node
            # distributes traffic across only the registered targets in its Availability Zone"
            # ("Cross-zone load balancing for target groups", Network Load Balancers guide).
            # EC2 data transfer between zones is charged by usage (not in the plan).
            enable_cross_zone_load_balancing=True,
            tags=tags,
            opts=child,
        )
        self.dns_name = service_dns_name(pool.name, stack)
        self.certificate = self._certificate(name, args, self.dns_name)
        # TLS again from the load balancer to the nodes: vLLM serves HTTPS with a certificate
        # each node makes at first boot (the load balancer does not validate target
        # certificates, so a node needs no CA; the hop is encrypted all the same).
        self.target_group = aws.lb.TargetGroup(
            f"{name}-serving",
            # A new VPC (its range), port, protocol or target type replaces a target group.
            name=aws_name(
                stack,
                f"{name}-serving",
                NAME_LIMIT,
                (args.cidr, str(SERVING_PORT), "TLS", "instance"),
            ),
            port=SERVING_PORT,
            protocol="TLS",
            target_type="instance",
            vpc_id=self.network.vpc.id,
            health_check={
                "protocol": "HTTPS",
                "path": "/health",
                "port": str(SERVING_PORT),
                "interval": 30,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=tags,
            opts=child,
        )
        self.listener = aws.lb.Listener(
            f"{name}-serving",
            load_balancer_arn=self.load_balancer.arn,
            port=SERVING_PORT,
            protocol="TLS",
            certificate_arn=self.certificate.arn,
            ssl_policy=TLS_POLICY,
            default_actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=tags,
            opts=child,
        )
        self._publish(name, args)

        # A replica that spans nodes is a group of its own (its nodes form one Ray cluster, in
        # one placement group and zone); single-node replicas share one group over both zones.
        # A capacity reservation is used only in its own zone: every node goes there.
        by_zone = dict(zip(self.network.zones, self.network.subnets, strict=True))
        self.node_zones = (
            [pool.capacity_reservation_zone]
            if pool.capacity_reservation_zone
            else self.network.service_zones[:1]
            if multi_node
            else list(self.network.service_zones)
        )
        subnets = [by_zone[zone].id for zone in self.node_zones]
        # Each replica group's nodes carry its number (REPLICA_TAG): one Ray head per group.
        if multi_node:
            groups = [
                (f"{name}-replica-{index}", pool.pipeline_parallel, {REPLICA_TAG: str(index)})
                for index in range(pool.nodes // pool.pipeline_parallel)
            ]
        else:
            groups = [(f"{name}-nodes", pool.nodes, {})]
        self.groups = [
            aws.autoscaling.Group(
                group_name,
                desired_capacity=size,
                min_size=size,
                max_size=size,
                vpc_zone_identifiers=subnets,
                placement_group=placement_group.id if placement_group else None,
                launch_template={"id": self.launch_template.id, "version": "$Latest"},
                service_linked_role_arn=self.autoscaling_role.arn,
                target_group_arns=[self.target_group.arn],
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
                health_check_grace_period=args.health_check_grace_s,
                tags=[
                    {"key": key, "value": value, "propagate_at_launch": True}
                    for key, value in sorted({**tags, **group_tags}.items())
                ],
                opts=child,
            )
            for group_name, size, group_tags in groups
        ]
        self.endpoint = f"https://{self.dns_name}:{SERVING_PORT}/v1"
        self.monthly_cost_usd = pulumi.Output.from_input(pool.monthly_cost_usd)
        self.register_outputs(
            {
                **self.connection(),
                "ca_certificate": self.ca_certificate,
                "weights_bucket": self.bucket.bucket,
                "repository_url": self.repository.repository_url,
                "monthly_cost_usd": self.monthly_cost_usd,
            }
        )

    def connection(self) -> dict[str, object]:
        """What a caller needs, for the stack outputs: the URL, where the API key is (its ARN,
        never its value), and for each other account the endpoint service and the command that
        makes its endpoint. The CA certificate to trust is an output of its own (known only
        once AWS Private CA has signed it)."""
        return {
            "endpoint": self.endpoint,
            "dns_name": self.dns_name,
            # The name vLLM serves the model under (--served-model-name): the `model` of a
            # request.
            "model": self.served_model,
            "api_key_secret_arn": self.api_key_secret.arn,
            # Per workload, the policy its callers' role attaches to read that key.
            "access_policy_arns": {
                workload: policy.arn for workload, policy in sorted(self.access_policies.items())
            },
            "endpoint_service_name": self.endpoint_service.service_name,
            # Another account's endpoint waits for the owner: `aws ec2
            # accept-vpc-endpoint-connections --service-id <this> --vpc-endpoint-ids <theirs>`.
            "endpoint_service_id": self.endpoint_service.id,
            "account_endpoint_commands": self.account_commands,
            # Where the serving image and the weights go before the nodes can serve.
            "repository_url": self.repository.repository_url,
            "weights_uri": self.bucket.bucket.apply(
                lambda bucket: f"s3://{bucket}/{self.weights_prefix}/"
            ),
            "node_zones": self.node_zones,
            # The zones of its load balancer, by name and AZ ID: a consumer's endpoint subnets
            # must lie in them (PrivateLink refuses a subnet in a zone the service is not in).
            "zones": self.zone_ids,
        }

    def _certificate(
        self, name: str, args: InferencePoolArgs, dns_name: str
    ) -> aws.acm.Certificate:
        """The pool's own root CA in AWS Private CA, and the listener's certificate issued from
        it by ACM (which renews it). One CA per pool: a caller trusts exactly the pool it calls,
        and the CA is priced as one of the pool's pieces (operations.yaml). Its private key never
        leaves AWS Private CA's HSMs; callers add the CA certificate (the `ca_certificate`
        output) to their trust store."""
        child = pulumi.ResourceOptions(parent=self)
        partition = args.lookups.partition
        self.certificate_authority = aws.acmpca.CertificateAuthority(
            f"{name}-ca",
            type="ROOT",
            # ACM cannot issue from a short-lived-mode CA (AWS Private CA guide, "CA modes").
            usage_mode="GENERAL_PURPOSE",
            certificate_authority_configuration={
                "key_algorithm": "RSA_2048",
                "signing_algorithm": "SHA256WITHRSA",
                "subject": {
                    "common_name": dns_label(f"{args.pool.name}-ca"),
                    "organization": "ai-infra-planner",
                },
            },
            permanent_deletion_time_in_days=30,
            tags=args.tags,
            opts=guarded(args.protect, self),
        )
        root = aws.acmpca.Certificate(
            f"{name}-ca-root",
            certificate_authority_arn=self.certificate_authority.arn,
            certificate_signing_request=self.certificate_authority.certificate_signing_request,
            signing_algorithm="SHA256WITHRSA",
            template_arn=f"arn:{partition}:acm-pca:::template/RootCACertificate/V1",
            validity={"type": "YEARS", "value": "10"},
            opts=child,
        )
        installed = aws.acmpca.CertificateAuthorityCertificate(
            f"{name}-ca-root",
            certificate_authority_arn=self.certificate_authority.arn,
            certificate=root.certificate,
            certificate_chain=root.certificate_chain,
            opts=child,
        )
        # ACM issues and renews the listener's certificate only with these three permissions.
        permission = aws.acmpca.Permission(
            f"{name}-ca-acm",
            certificate_authority_arn=self.certificate_authority.arn,
            principal="acm.amazonaws.com",
            actions=["IssueCertificate", "GetCertificate", "ListPermissions"],
            opts=child,
        )
        self.ca_certificate = root.certificate
        return aws.acm.Certificate(
            f"{name}-serving",
            domain_name=dns_name,
            certificate_authority_arn=self.certificate_authority.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[installed, permission]),
        )

    def _publish(self, name: str, args: InferencePoolArgs) -> None:
        """The load balancer as an endpoint service, its allowed principals, and an interface
        endpoint with a private name in each consumer VPC of this account."""
        child = pulumi.ResourceOptions(parent=self)
        lookups, tags = args.lookups, args.tags
        self.endpoint_service = aws.ec2.VpcEndpointService(
            f"{name}-service",
            acceptance_required=True,
            network_load_balancer_arns=[self.load_balancer.arn],
            supported_ip_address_types=["ipv4"],
            tags={**tags, "Name": f"{name}-service"},
            opts=child,
        )
        accounts = sorted({lookups.account_id, *args.consumer_accounts})
        for account in accounts:
            aws.ec2.VpcEndpointServiceAllowedPrinciple(
                f"{name}-allow-{account}",
                vpc_endpoint_service_id=self.endpoint_service.id,
                principal_arn=f"arn:{lookups.partition}:iam::{account}:root",
                opts=child,
            )
        self.consumer_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        for consumer in args.consumer_vpcs:
            self.consumer_endpoints[consumer.vpc] = self._connect(name, args, consumer)
        self.account_commands = {
            account: self.endpoint_service.service_name.apply(
                lambda service: endpoint_command(service, lookups.region)
            )
            for account in sorted(set(args.consumer_accounts))
        }

    def _connect(
        self, name: str, args: InferencePoolArgs, consumer: ConsumerVpc
    ) -> aws.ec2.VpcEndpoint:
        child = pulumi.ResourceOptions(parent=self)
        tags, pool = args.tags, args.pool
        prefix = f"{name}-{consumer.vpc}"
        group = aws.ec2.SecurityGroup(
            prefix,
            vpc_id=consumer.vpc,
            description=f"{pool.name} endpoint: serving port from the consumers",
            tags=tags,
            opts=child,
        )
        for index, cidr in enumerate(consumer.cidrs):
            _serving_port_from(f"{prefix}-consumer-{index}", group, cidr, tags, child)
        endpoint = aws.ec2.VpcEndpoint(
            prefix,
            vpc_id=consumer.vpc,
            service_name=self.endpoint_service.service_name,
            vpc_endpoint_type="Interface",
            subnet_ids=list(consumer.subnets),
            security_group_ids=[group.id],
            # The service's own private DNS needs a public domain verified by a TXT record
            # ("Manage DNS names for VPC endpoint services", AWS PrivateLink guide,
            # docs.aws.amazon.com/vpc/latest/privatelink/manage-dns-names.html, read 2026-12);
            # a private hosted zone in the consumer VPC, with an alias to the endpoint, names it
            # without any public record.
            private_dns_enabled=False,
            tags={**tags, "Name": prefix},
            opts=child,
        )
        # The service requires acceptance; an endpoint this stack makes is accepted by it.
        aws.ec2.VpcEndpointConnectionAccepter(
            prefix,
            vpc_endpoint_id=endpoint.id,
            vpc_endpoint_service_id=self.endpoint_service.id,
            opts=child,
        )
        zone = aws.route53.Zone(
            prefix,
            name=self.dns_name,
            comment=f"{pool.name} through its interface endpoint in {consumer.vpc}",
            vpcs=[{"vpc_id": consumer.vpc}],
            tags=tags,
            opts=child,
        )
        # An alias to the endpoint's regional DNS name ("Routing traffic to an interface VPC
        # endpoint", Route 53 developer guide).
        # A created interface endpoint always has its regional entry first.
        entries = endpoint.dns_entries
        aws.route53.Record(
            prefix,
            zone_id=zone.zone_id,
            name=self.dns_name,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=entries.apply(lambda e: (e[0].dns_name or "") if e else ""),
                    zone_id=entries.apply(lambda e: (e[0].hosted_zone_id or "") if e else ""),
                    evaluate_target_health=True,
                )
            ],
            opts=child,
        )
        return endpoint


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


# The object-level actions a bucket policy keeps to the VPC endpoint: reading, writing and
# deleting weights (Service Authorization Reference, Amazon S3, actions on the `object`
# resource type, and ListBucket, which lists them). Bucket configuration (policy, tags,
# encryption, versioning) stays reachable for the deployer: denying s3:* there would lock
# Pulumi out of the bucket after the first `up`.
OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAttributes",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:RestoreObject",
)


def _serving_port_from(
    name: str,
    group: aws.ec2.SecurityGroup,
    cidr: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.vpc.SecurityGroupIngressRule:
    """A security group admits one consumer range on the serving port, and nothing else."""
    return aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=SERVING_PORT,
        to_port=SERVING_PORT,
        cidr_ipv4=cidr,
        description=f"serving port from consumer {cidr}",
        tags=tags,
        opts=opts,
    )


def _bucket_policy(bucket_arn: str, endpoint_id: str, uploader_arn: str | None) -> str:
    """Deny plain HTTP, and deny reading, writing and deleting objects not through the pool's
    VPC endpoint (but for the one principal allowed to upload weights, when the stack names
    one). The deployer keeps managing the bucket itself from outside the VPC."""
    not_through_endpoint: dict[str, dict[str, str]] = {
        "StringNotEquals": {"aws:SourceVpce": endpoint_id}
    }
    if uploader_arn:
        not_through_endpoint["ArnNotEquals"] = {"aws:PrincipalArn": uploader_arn}
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return policy_json(
        [
            {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyObjectsOutsideTheVpcEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(OBJECT_ACTIONS),
                "Resource": resources,
                "Condition": not_through_endpoint,
            },
        ]
    )


def _node_policy(
    bucket_arn: str,
    key_arn: str,
    repository_arn: str,
    log_group_arn: str,
    api_key_arn: str,
    *,
    multi_node: bool,
) -> str:
    statements: list[dict[str, object]] = [
        {
            # The pool's own API key and no other secret.
            "Sid": "ReadTheApiKey",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": api_key_arn,
        },
        {
            "Sid": "ReadWeights",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [bucket_arn, f"{bucket_arn}/weights/*"],
        },
        {
            "Sid": "UseThePoolKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
        },
        {
            "Sid": "PullTheServingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            "Resource": repository_arn,
        },
        {
            # ECR issues registry tokens for the account; the action takes no resource ARN.
            "Sid": "RegistryLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "WriteServingLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": f"{log_group_arn}:*",
        },
    ]
    if multi_node:
        statements.append(
            {
                # The head's lease, per replica group (templates/cloud-init.yaml.j2).
                "Sid": "ElectTheRayHead",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/ray/*",
            }
        )
    return policy_json(statements)
