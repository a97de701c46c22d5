"""A pool's way to its nodes: the security groups of the serving path, the internal Network Load
Balancer, the pool's own certificate authority and the listener's certificate, and the target
group that forwards TLS to the nodes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from planner.planfile import Pool
from stacks.addressing import certificate_names, dns_label
from stacks.aws.naming import aws_name
from stacks.aws.network import PrivateNetwork
from stacks.aws.nodes import multi_node
from stacks.boot import termination_figures
from stacks.settings import SERVING_PORT, guarded

# TLS 1.3 and 1.2 with the restricted (forward-secret, AES-GCM) cipher list. Set explicitly: a TLS
# listener created through the API otherwise gets ELBSecurityPolicy-2016-08, which still accepts
# TLS 1.0 ("Security policies for your Network Load Balancer", Elastic Load Balancing guide,
# docs.aws.amazon.com/elasticloadbalancing/latest/network/describe-ssl-policies.html, read
# 2026-12). With a TLS 1.3 policy the hop to the targets uses ELBSecurityPolicy-TLS13-1-0-2021-06
# (same guide), and the node's server (Python's ssl defaults) accepts TLS 1.2 and 1.3 only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
# Load balancer and target group names: at most 32 characters (planner/data/aws_limits.yaml).
NAME_LIMIT = 32


def serving_port_from(
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


@dataclass(frozen=True)
class ServingGroups:
    load_balancer: aws.ec2.SecurityGroup
    nodes: aws.ec2.SecurityGroup


def serving_groups(
    name: str,
    pool: Pool,
    network: PrivateNetwork,
    s3_endpoint: aws.ec2.VpcEndpoint,
    *,
    consumers: list[str],
    cidr: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> ServingGroups:
    """The load balancer admits the consumers; the nodes admit the consumers (the NLB keeps
    client addresses) and the load balancer, and reach only the VPC and S3."""
    child = pulumi.ResourceOptions(parent=parent)
    balancer = aws.ec2.SecurityGroup(
        f"{name}-lb",
        vpc_id=network.vpc.id,
        description=f"{pool.name} load balancer: serving port from the consumers",
        tags=tags,
        opts=child,
    )
    nodes = aws.ec2.SecurityGroup(
        f"{name}-nodes",
        vpc_id=network.vpc.id,
        description=f"{pool.name} nodes: serving port from consumers and load balancer",
        tags=tags,
        opts=child,
    )
    for index, consumer in enumerate(consumers):
        for group, label in ((balancer, "lb"), (nodes, "nodes")):
            serving_port_from(f"{name}-{label}-consumer-{index}", group, consumer, tags, child)
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-lb-to-nodes",
        security_group_id=balancer.id,
        ip_protocol="tcp",
        from_port=SERVING_PORT,
        to_port=SERVING_PORT,
        referenced_security_group_id=nodes.id,
        description="to the serving port and health check of the nodes",
        tags=tags,
        opts=child,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-nodes-from-lb",
        security_group_id=nodes.id,
        ip_protocol="tcp",
        from_port=SERVING_PORT,
        to_port=SERVING_PORT,
        referenced_security_group_id=balancer.id,
        description="serving port and health check from the load balancer",
        tags=tags,
        opts=child,
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-nodes-to-vpc",
        security_group_id=nodes.id,
        ip_protocol="-1",
        cidr_ipv4=cidr,
        description="inside the VPC only: endpoints, other nodes",
        tags=tags,
        opts=child,
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-nodes-to-s3",
        security_group_id=nodes.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        prefix_list_id=s3_endpoint.prefix_list_id,
        description="HTTPS to S3 through the gateway endpoint",
        tags=tags,
        opts=child,
    )
    if multi_node(pool):
        # NCCL over EFA needs all traffic between the nodes of a replica.
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nodes-from-nodes",
            security_group_id=nodes.id,
            ip_protocol="-1",
            referenced_security_group_id=nodes.id,
            description="Ray, NCCL and EFA between the nodes of a replica",
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nodes-to-nodes",
            security_group_id=nodes.id,
            ip_protocol="-1",
            referenced_security_group_id=nodes.id,
            description="Ray, NCCL and EFA between the nodes of a replica",
            tags=tags,
            opts=child,
        )
    return ServingGroups(balancer, nodes)


def load_balancer(
    name: str,
    stack: str,
    network: PrivateNetwork,
    security_group: aws.ec2.SecurityGroup,
    *,
    cidr: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.lb.LoadBalancer:
    return aws.lb.LoadBalancer(
        f"{name}-lb",
        # Auto-names (logical name and 7 random characters) pass the 32-character limit of
        # load balancer and target group names (planner/data/aws_limits.yaml). What replaces
        # it is in the name: the network (its range) and the zones of its subnets (removing
        # a subnet from a Network Load Balancer recreates it: hashicorp/terraform-provider-aws
        # pull request 33205 allows only adding them).
        name=aws_name(stack, f"{name}-lb", NAME_LIMIT, (cidr, "network", *network.zones)),
        internal=True,
        # An endpoint service fronts a Network (or Gateway) Load Balancer only.
        load_balancer_type="network",
        subnets=[subnet.id for subnet in network.subnets],
        security_groups=[security_group.id],
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
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class PoolCertificate:
    authority: aws.acmpca.CertificateAuthority
    # What callers trust (the `ca_certificate` output).
    ca_certificate: pulumi.Output[str]
    # The listener's.
    certificate: aws.acm.Certificate


def pool_certificate(
    name: str,
    pool: Pool,
    dns_name: str,
    *,
    partition: str,
    tags: dict[str, str],
    protect: bool,
    parent: pulumi.Resource,
) -> PoolCertificate:
    """The pool's own root CA in AWS Private CA, and the listener's certificate issued from
    it by ACM (which renews it). One CA per pool: a caller trusts exactly the pool it calls,
    and the CA is priced as one of the pool's pieces (operations.yaml). Its private key never
    leaves AWS Private CA's HSMs; callers add the CA certificate (the `ca_certificate`
    output) to their trust store."""
    child = pulumi.ResourceOptions(parent=parent)
    authority = aws.acmpca.CertificateAuthority(
        f"{name}-ca",
        type="ROOT",
        # ACM cannot issue from a short-lived-mode CA (AWS Private CA guide, "CA modes").
        usage_mode="GENERAL_PURPOSE",
        certificate_authority_configuration={
            "key_algorithm": "RSA_2048",
            "signing_algorithm": "SHA256WITHRSA",
            "subject": {
                "common_name": dns_label(f"{pool.name}-ca"),
                "organization": "ai-infra-planner",
            },
        },
        permanent_deletion_time_in_days=30,
        tags=tags,
        opts=guarded(protect, parent),
    )
    root = aws.acmpca.Certificate(
        f"{name}-ca-root",
        certificate_authority_arn=authority.arn,
        certificate_signing_request=authority.certificate_signing_request,
        signing_algorithm="SHA256WITHRSA",
        template_arn=f"arn:{partition}:acm-pca:::template/RootCACertificate/V1",
        validity={"type": "YEARS", "value": "10"},
        opts=child,
    )
    installed = aws.acmpca.CertificateAuthorityCertificate(
        f"{name}-ca-root",
        certificate_authority_arn=authority.arn,
        certificate=root.certificate,
        certificate_chain=root.certificate_chain,
        opts=child,
    )
    # ACM issues and renews the listener's certificate only with these three permissions.
    permission = aws.acmpca.Permission(
        f"{name}-ca-acm",
        certificate_authority_arn=authority.arn,
        principal="acm.amazonaws.com",
        actions=["IssueCertificate", "GetCertificate", "ListPermissions"],
        opts=child,
    )
    # A name over ACM's 64-character common name goes in as a subject alternative name, with a
    # short common name (stacks/addressing.py certificate_names). Names that fit are requested
    # as before, without alternative names: adding any would replace their certificates.
    common_name, alternative_names = certificate_names(dns_name)
    certificate = aws.acm.Certificate(
        f"{name}-serving",
        domain_name=common_name,
        subject_alternative_names=alternative_names or None,
        certificate_authority_arn=authority.arn,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[installed, permission]),
    )
    return PoolCertificate(authority, root.certificate, certificate)


@dataclass(frozen=True)
class Serving:
    target_group: aws.lb.TargetGroup
    listener: aws.lb.Listener


def serving_listener(
    name: str,
    stack: str,
    network: PrivateNetwork,
    balancer: aws.lb.LoadBalancer,
    certificate: aws.acm.Certificate,
    *,
    cidr: str,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> Serving:
    """The listener, TLS with the pool's certificate, forwarding to the nodes. TLS again from
    the load balancer to the nodes: vLLM serves HTTPS with a certificate each node makes at
    first boot (the load balancer does not validate target certificates, so a node needs no
    CA; the hop is encrypted all the same)."""
    child = pulumi.ResourceOptions(parent=parent)
    target_group = aws.lb.TargetGroup(
        f"{name}-serving",
        # A new VPC (its range), port, protocol or target type replaces a target group.
        name=aws_name(
            stack,
            f"{name}-serving",
            NAME_LIMIT,
            (cidr, str(SERVING_PORT), "TLS", "instance"),
        ),
        port=SERVING_PORT,
        protocol="TLS",
        target_type="instance",
        vpc_id=network.vpc.id,
        # A node leaving (scale-in, a refresh) keeps its connections this long, while its Auto
        # Scaling group waits before terminating it: the NLB's own time to stop sending it new
        # ones, then the requests it took finish (stacks/boot.py TerminationFigures; 0-3600 s,
        # AWS's default 300: ELB API, target group attribute deregistration_delay.timeout_seconds).
        deregistration_delay=termination_figures().nlb_serve_on_s,
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
    listener = aws.lb.Listener(
        f"{name}-serving",
        load_balancer_arn=balancer.arn,
        port=SERVING_PORT,
        protocol="TLS",
        certificate_arn=certificate.arn,
        ssl_policy=TLS_POLICY,
        default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
        tags=tags,
        opts=child,
    )
    return Serving(target_group, listener)
