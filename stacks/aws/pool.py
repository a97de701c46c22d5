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

The component builds its parts in named steps, each from the module of its part: the key
(stacks/aws/kms.py), the weights bucket (weights.py), the network (network.py), the API key and
the nodes' role (identity.py), the nodes (nodes.py), the load balancer (load_balancer.py) and
the endpoint service (endpoint_service.py). Every resource is the component's child, named as
before the split, so a deployed pool sees no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from planner import names
from planner.planfile import Pool
from stacks.addressing import ConsumerVpc, WorkloadCost, service_dns_name
from stacks.aws.endpoint_service import publish
from stacks.aws.identity import autoscaling_role, node_profile, pool_api_key
from stacks.aws.kms import kms_key
from stacks.aws.load_balancer import (
    load_balancer,
    pool_certificate,
    serving_groups,
    serving_listener,
)
from stacks.aws.lookups import (
    INTERFACE_ENDPOINT,
    POOL_NAME,
    Lookups,
    one_subnet_per_zone,
    private_dns_on,
    subnet_zones,
)
from stacks.aws.network import NODE_ENDPOINT_SERVICES, PrivateNetwork, PrivateNetworkArgs
from stacks.aws.nodes import (
    launch_template,
    multi_node,
    node_groups,
    node_zones,
    placement_group,
    user_data,
)
from stacks.aws.weights import gateway_endpoint_policy, keep_to_endpoint, weights_bucket
from stacks.settings import SERVING_PORT

# The nodes read the serving API key at boot: Secrets Manager is reached through an interface
# endpoint like the other services a node needs.
POOL_ENDPOINT_SERVICES = (*NODE_ENDPOINT_SERVICES, "secretsmanager")


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
    # The serving container's environment besides its API key (vllm.yaml `environment`).
    serve_env: dict[str, str]
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
    # The zones of its network, offering its instance type (stacks/aws/lookups.py pool_zones);
    # None: the region's first two.
    zones: list[str] | None = None
    # Its workloads: each gets a policy its callers' role attaches to read the API key.
    workloads: Sequence[WorkloadCost] = field(default_factory=tuple)


class InferencePool(pulumi.ComponentResource):
    """Nodes, network, weights bucket, image repository and load balancer of one pool."""

    autoscaling_role: aws.iam.ServiceLinkedRole
    key: aws.kms.Key
    bucket: aws.s3.Bucket
    network: PrivateNetwork
    zone_ids: dict[str, str]
    repository: aws.ecr.Repository
    log_group: aws.cloudwatch.LogGroup
    api_key_secret: aws.secretsmanager.Secret
    access_policies: dict[str, aws.iam.Policy]
    lb_security_group: aws.ec2.SecurityGroup
    node_security_group: aws.ec2.SecurityGroup
    launch_template: aws.ec2.LaunchTemplate
    load_balancer: aws.lb.LoadBalancer
    dns_name: str
    certificate_authority: aws.acmpca.CertificateAuthority
    ca_certificate: pulumi.Output[str]
    certificate: aws.acm.Certificate
    target_group: aws.lb.TargetGroup
    listener: aws.lb.Listener
    endpoint_service: aws.ec2.VpcEndpointService
    consumer_endpoints: dict[str, aws.ec2.VpcEndpoint]
    account_commands: dict[str, pulumi.Output[str]]
    node_zones: list[str]
    groups: list[aws.autoscaling.Group]

    def __init__(
        self, name: str, args: InferencePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.INFERENCE_POOL, name, None, opts)
        pool = args.pool
        # Before anything of the pool is made: each consumer VPC's endpoint (endpoint_service)
        # takes its subnets, one per zone.
        for vpc in args.consumer_vpcs:
            one_subnet_per_zone(
                args.lookups, vpc.vpc, vpc.subnets, vpc.workloads, INTERFACE_ENDPOINT
            )
            private_dns_on(args.lookups, vpc.vpc, vpc.workloads, POOL_NAME)
        stack = pulumi.get_stack()
        # What callers name in a request (vLLM's --served-model-name, templates/cloud-init) and
        # where the weights go: for the stack outputs.
        self.served_model = pool.model
        self.weights_prefix = f"weights/{pool.weights}"

        self._key(name, args, stack)
        s3_endpoint = self._storage_and_network(name, args)
        self._image_and_logs(name, args)
        self._api_key(name, args)
        placement = self._nodes(name, args, s3_endpoint)
        self._way_in(name, args, stack)
        self._node_groups(name, args, placement)

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

    def _key(self, name: str, args: InferencePoolArgs, stack: str) -> None:
        """The pool's key, for weights, volumes and logs. It names the pool's Auto Scaling role,
        so the role comes first (stacks/aws/identity.py autoscaling_role)."""
        self.autoscaling_role = autoscaling_role(stack, name, args.tags, self)
        self.key = kms_key(
            f"{name}-key",
            f"ai-infra-planner pool {args.pool.name}: weights, volumes, logs",
            args.lookups,
            args.tags,
            args.protect,
            self,
            services=["logs", "autoscaling"],
            autoscaling_role_arn=self.autoscaling_role.arn,
        )

    def _storage_and_network(self, name: str, args: InferencePoolArgs) -> aws.ec2.VpcEndpoint:
        """The weights bucket, the private network whose S3 gateway endpoint reaches it, and
        the bucket's policy that keeps its objects to that endpoint (returned)."""
        lookups = args.lookups
        weights = weights_bucket(name, self.key.arn, args.tags, args.protect, self)
        self.bucket = weights.bucket
        self.network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                cidr=args.cidr,
                lookups=lookups,
                kms_key_arn=self.key.arn,
                tags=args.tags,
                interface_services=POOL_ENDPOINT_SERVICES,
                s3_endpoint_policy=gateway_endpoint_policy(self.bucket, lookups),
                zones=args.zones,
                # The load balancer also goes where this account's consumer endpoints are:
                # PrivateLink serves a subnet only in a zone the load balancer is in.
                extra_zones=tuple(
                    subnet_zones(lookups, [s for vpc in args.consumer_vpcs for s in vpc.subnets])
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        s3_endpoint = self.network.s3_endpoint
        assert s3_endpoint is not None
        self.zone_ids = {zone: lookups.zone_ids.get(zone, "") for zone in self.network.zones}
        keep_to_endpoint(name, weights, s3_endpoint, args.weights_uploader_arn, self)
        return s3_endpoint

    def _image_and_logs(self, name: str, args: InferencePoolArgs) -> None:
        """The serving image's private repository and the serving logs, under the pool's key."""
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-serving",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
            tags=args.tags,
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-serving",
            retention_in_days=365,
            kms_key_id=self.key.arn,
            tags=args.tags,
            opts=child,
        )

    def _api_key(self, name: str, args: InferencePoolArgs) -> None:
        api_key = pool_api_key(
            name,
            args.pool.name,
            self.key.arn,
            args.workloads,
            args.lookups,
            args.tags,
            args.protect,
            self,
        )
        self.api_key_secret = api_key.secret
        self.access_policies = api_key.access_policies

    def _nodes(
        self, name: str, args: InferencePoolArgs, s3_endpoint: aws.ec2.VpcEndpoint
    ) -> aws.ec2.PlacementGroup | None:
        """The nodes' role, the security groups of the serving path, and the launch template;
        the cluster placement group (returned) when a replica spans nodes."""
        pool, lookups, tags = args.pool, args.lookups, args.tags
        profile = node_profile(
            name,
            bucket_arn=self.bucket.arn,
            key_arn=self.key.arn,
            repository_arn=self.repository.arn,
            log_group_arn=self.log_group.arn,
            api_key_arn=self.api_key_secret.arn,
            multi_node=multi_node(pool),
            partition=lookups.partition,
            tags=tags,
            parent=self,
        )
        groups = serving_groups(
            name,
            pool,
            self.network,
            s3_endpoint,
            consumers=args.consumers,
            cidr=args.cidr,
            tags=tags,
            parent=self,
        )
        self.lb_security_group = groups.load_balancer
        self.node_security_group = groups.nodes
        placement = placement_group(name, pool, tags, self)
        self.launch_template = launch_template(
            name,
            pool,
            lookups,
            key_arn=self.key.arn,
            profile=profile,
            security_group=self.node_security_group,
            user_data=user_data(
                pool,
                lookups,
                bucket=self.bucket,
                repository=self.repository,
                log_group=self.log_group,
                api_key=self.api_key_secret,
                image_tag=args.image_tag,
                serve_args=args.serve_args,
                serve_env=args.serve_env,
                s3_download_gbps=args.s3_download_gbps,
            ),
            efa_interfaces=args.efa_interfaces,
            tags=tags,
            parent=self,
        )
        return placement

    def _way_in(self, name: str, args: InferencePoolArgs, stack: str) -> None:
        """The load balancer, its TLS listener with the pool's certificate, and the endpoint
        service that publishes it to the consumers."""
        tags = args.tags
        self.load_balancer = load_balancer(
            name,
            stack,
            self.network,
            self.lb_security_group,
            cidr=args.cidr,
            tags=tags,
            parent=self,
        )
        self.dns_name = service_dns_name(args.pool.name, stack)
        certificate = pool_certificate(
            name,
            args.pool,
            self.dns_name,
            partition=args.lookups.partition,
            tags=tags,
            protect=args.protect,
            parent=self,
        )
        self.certificate_authority = certificate.authority
        self.ca_certificate = certificate.ca_certificate
        self.certificate = certificate.certificate
        serving = serving_listener(
            name,
            stack,
            self.network,
            self.load_balancer,
            self.certificate,
            cidr=args.cidr,
            tags=tags,
            parent=self,
        )
        self.target_group = serving.target_group
        self.listener = serving.listener
        published = publish(
            name,
            args.pool.name,
            self.load_balancer,
            self.dns_name,
            args.lookups,
            consumer_vpcs=args.consumer_vpcs,
            consumer_accounts=args.consumer_accounts,
            tags=tags,
            parent=self,
        )
        self.endpoint_service = published.service
        self.consumer_endpoints = published.consumer_endpoints
        self.account_commands = published.account_commands

    def _node_groups(
        self, name: str, args: InferencePoolArgs, placement: aws.ec2.PlacementGroup | None
    ) -> None:
        """The Auto Scaling groups, in the nodes' zones (stacks/aws/nodes.py node_zones)."""
        by_zone = dict(zip(self.network.zones, self.network.subnets, strict=True))
        self.node_zones = node_zones(args.pool, self.network)
        self.groups = node_groups(
            name,
            args.pool,
            subnets=[by_zone[zone].id for zone in self.node_zones],
            placement_group=placement,
            template=self.launch_template,
            service_linked_role=self.autoscaling_role,
            target_group=self.target_group,
            health_check_grace_s=args.health_check_grace_s,
            tags=args.tags,
            parent=self,
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
