"""A self-hosted inference pool: GPU nodes serving one open-weights model in a private network.

One component per pool of the plan. Everything a node touches stays inside its VPC: weights from
the pool's own bucket through the S3 gateway endpoint, the serving image from the pool's private
ECR repository through interface endpoints, logs to a log group encrypted with the pool's key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from planner.model import Pool
from planner.render import template_environment
from stacks.common import assumed_by, guarded, kms_key, policy_json
from stacks.network import PrivateNetwork, PrivateNetworkArgs
from stacks.settings import SERVING_PORT, Lookups

# vLLM flags for each weight precision of the catalog.
PRECISION_FLAGS = {
    "bf16": " --dtype bfloat16",
    "fp8": " --quantization fp8",
    "int4": " --quantization awq",
}
ROOT_VOLUME_GB = 200
DATA_VOLUME_GB = 2000


@dataclass
class InferencePoolArgs:
    pool: Pool
    consumers: list[str]
    cidr: str
    lookups: Lookups
    tags: dict[str, str]
    protect: bool
    image_tag: str
    weights_uploader_arn: str | None = None
    efa_interfaces: int = 1


def render_user_data(**context: object) -> str:
    return template_environment().get_template("cloud-init.yaml.j2").render(**context)


class InferencePool(pulumi.ComponentResource):
    """Nodes, network, weights bucket, image repository and load balancer of one pool."""

    def __init__(
        self, name: str, args: InferencePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ai-infra-planner:index:InferencePool", name, None, opts)
        pool, lookups, tags = args.pool, args.lookups, args.tags
        child = pulumi.ResourceOptions(parent=self)
        partition = lookups.partition
        multi_node = pool.pipeline_parallel > 1

        self.key = kms_key(
            f"{name}-key",
            f"ai-infra-planner pool {pool.name}: weights, volumes, logs",
            lookups,
            tags,
            args.protect,
            self,
            services=["logs", "autoscaling"],
        )

        # Weights bucket: versioned, encrypted with the pool's key, never public.
        self.bucket = aws.s3.Bucket(f"{name}-weights", tags=tags, opts=guarded(args.protect, self))
        aws.s3.BucketVersioning(
            f"{name}-weights",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
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
                s3_endpoint_policy=s3_policy,
            ),
            opts=child,
        )
        s3_endpoint = self.network.s3_endpoint
        assert s3_endpoint is not None

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
                self.bucket.arn, self.key.arn, self.repository.arn, self.log_group.arn
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
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{label}-consumer-{index}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=SERVING_PORT,
                    to_port=SERVING_PORT,
                    cidr_ipv4=cidr,
                    description=f"serving port from consumer {cidr}",
                    tags=tags,
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-lb-to-nodes",
            security_group_id=self.lb_security_group.id,
            ip_protocol="tcp",
            from_port=SERVING_PORT,
            to_port=SERVING_PORT,
            referenced_security_group_id=self.node_security_group.id,
            description="to the nodes' serving port and health check",
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
            self.bucket.bucket, self.repository.repository_url, self.log_group.name
        ).apply(
            lambda values: base64.b64encode(
                render_user_data(
                    pool=pool.name,
                    model=pool.model,
                    precision=pool.precision,
                    precision_flags=PRECISION_FLAGS[pool.precision],
                    tensor_parallel=pool.tensor_parallel,
                    pipeline_parallel=pool.pipeline_parallel,
                    nodes_per_replica=pool.pipeline_parallel,
                    efa=multi_node,
                    region=lookups.region,
                    bucket=values[0],
                    weights_prefix=f"weights/{pool.weights}",
                    image=f"{values[1]}:{args.image_tag}",
                    registry=registry,
                    port=SERVING_PORT,
                    election_key=f"ray/{pool.name}/head",
                    log_group=values[2],
                ).encode()
            ).decode()
        )
        # When a replica spans nodes, one EFA interface per network card of the instance.
        cards = args.efa_interfaces if multi_node else 1
        interfaces = [
            aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                network_card_index=card,
                device_index=0 if card == 0 else 1,
                interface_type="efa" if multi_node else None,
                associate_public_ip_address="false",
                delete_on_termination="true",
                security_groups=[self.node_security_group.id],
            )
            for card in range(cards)
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
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                volume("/dev/sda1", ROOT_VOLUME_GB),
                volume("/dev/sdb", DATA_VOLUME_GB),
            ],
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
            internal=True,
            load_balancer_type="network",
            subnets=[subnet.id for subnet in self.network.subnets],
            security_groups=[self.lb_security_group.id],
            tags=tags,
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-serving",
            port=SERVING_PORT,
            protocol="TCP",
            target_type="instance",
            vpc_id=self.network.vpc.id,
            health_check={
                "protocol": "HTTP",
                "path": "/health",
                "port": str(SERVING_PORT),
                "interval": 30,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=tags,
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-serving",
            load_balancer_arn=self.load_balancer.arn,
            port=SERVING_PORT,
            protocol="TCP",
            default_actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=tags,
            opts=child,
        )

        # A replica that spans nodes is a group of its own (its nodes form one Ray cluster, in
        # one placement group and zone); single-node replicas share one group over both zones.
        if multi_node:
            groups = [
                (f"{name}-replica-{index}", pool.pipeline_parallel)
                for index in range(pool.nodes // pool.pipeline_parallel)
            ]
            subnets = [self.network.subnets[0].id]
        else:
            groups = [(f"{name}-nodes", pool.nodes)]
            subnets = [subnet.id for subnet in self.network.subnets]
        self.groups = [
            aws.autoscaling.Group(
                group_name,
                desired_capacity=size,
                min_size=size,
                max_size=size,
                vpc_zone_identifiers=subnets,
                placement_group=placement_group.id if placement_group else None,
                launch_template={"id": self.launch_template.id, "version": "$Latest"},
                target_group_arns=[self.target_group.arn],
                # Workers of a multi-node replica do not serve; only the head passes the
                # load balancer's check, so those groups judge health by EC2 status.
                health_check_type="EC2" if multi_node else "ELB",
                health_check_grace_period=1800,
                tags=[
                    {"key": key, "value": value, "propagate_at_launch": True}
                    for key, value in sorted(tags.items())
                ],
                opts=child,
            )
            for group_name, size in groups
        ]
        self.endpoint = self.load_balancer.dns_name.apply(
            lambda dns: f"http://{dns}:{SERVING_PORT}/v1"
        )
        self.monthly_cost_usd = pulumi.Output.from_input(pool.monthly_cost_usd)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "weights_bucket": self.bucket.bucket,
                "repository_url": self.repository.repository_url,
                "monthly_cost_usd": self.monthly_cost_usd,
            }
        )


def _bucket_policy(bucket_arn: str, endpoint_id: str, uploader_arn: str | None) -> str:
    """Deny plain HTTP, and deny every access not through the pool's VPC endpoint (but for the
    one principal allowed to upload weights, when the stack names one)."""
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
                "Sid": "DenyOutsideTheVpcEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": not_through_endpoint,
            },
        ]
    )


def _node_policy(
    bucket_arn: str, key_arn: str, repository_arn: str, log_group_arn: str, *, multi_node: bool
) -> str:
    statements: list[dict[str, object]] = [
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
                "Sid": "ElectTheRayHead",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/ray/*",
            }
        )
    return policy_json(statements)
