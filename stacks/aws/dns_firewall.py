"""DNS is a way out: the Route 53 Resolver DNS Firewall that lets a private network's resolver
answer only the names its endpoints need (stacks/aws/network.py)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

# Route 53 Resolver DNS Firewall. Rule groups associated with a VPC are processed by the
# association's priority, 100-9900 (AssociateFirewallRuleGroup, Route 53 API Reference; AWS's
# own example uses 101); rules inside a group by their priority, lowest first (the provider's
# ResolverFirewallRule docs). The allow-list comes first; the block-all rule after it.
DNS_ASSOCIATION_PRIORITY = 101
DNS_ALLOW_PRIORITY = 100
DNS_BLOCK_PRIORITY = 200
# A domain specification may start with `*` and is 1-255 characters (UpdateFirewallDomains);
# `*` alone matches every name.
DNS_EVERYTHING = "*"


def service_domains(service: str, region: str, account_id: str) -> list[str]:
    """The names a VPC's resolver must answer for one endpoint service (its private DNS names,
    AWS PrivateLink "AWS services" docs): `<service>.<region>.amazonaws.com`, with ECR's two
    exceptions (api.ecr.<region>..., and <account>.dkr.ecr.<region>... for this account's
    registry) and S3's virtual-hosted bucket names, which the gateway endpoint serves."""
    suffix = f"{region}.amazonaws.com"
    if service == "ecr.api":
        return [f"api.ecr.{suffix}"]
    if service == "ecr.dkr":
        return [f"{account_id}.dkr.ecr.{suffix}"]
    if service == "s3":
        # Buckets by name (the weights bucket, ECR's layer bucket): AWS answers them; a query
        # for one carries nothing to a name server outside AWS.
        return [f"s3.{suffix}", f"*.s3.{suffix}"]
    return [f"{service}.{suffix}"]


def vpc_internal_domains(region: str) -> list[str]:
    """The VPC's own host names (ip-10-0-0-1.ec2.internal): answered by the resolver itself."""
    zone = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return [zone, f"*.{zone}"]


def add_dns_firewall(
    name: str, vpc: aws.ec2.Vpc, domains: list[str], tags: dict[str, str], parent: pulumi.Resource
) -> aws.route53.ResolverFirewallRuleGroupAssociation:
    """DNS is a way out: a name the resolver looks up for a node reaches the name's servers.
    The VPC's resolver answers only the names the endpoints need (ALLOW), refuses every other
    (BLOCK `*`, NXDOMAIN, at a later priority) and fails closed when DNS Firewall cannot answer
    (firewall_fail_open DISABLED)."""
    child = pulumi.ResourceOptions(parent=parent)
    allowed = aws.route53.ResolverFirewallDomainList(
        f"{name}-dns-allowed", domains=domains, tags=tags, opts=child
    )
    everything = aws.route53.ResolverFirewallDomainList(
        f"{name}-dns-everything", domains=[DNS_EVERYTHING], tags=tags, opts=child
    )
    group = aws.route53.ResolverFirewallRuleGroup(f"{name}-dns", tags=tags, opts=child)
    aws.route53.ResolverFirewallRule(
        f"{name}-dns-allow-endpoints",
        firewall_rule_group_id=group.id,
        firewall_domain_list_id=allowed.id,
        action="ALLOW",
        priority=DNS_ALLOW_PRIORITY,
        opts=child,
    )
    aws.route53.ResolverFirewallRule(
        f"{name}-dns-block-rest",
        firewall_rule_group_id=group.id,
        firewall_domain_list_id=everything.id,
        action="BLOCK",
        block_response="NXDOMAIN",
        priority=DNS_BLOCK_PRIORITY,
        opts=child,
    )
    aws.route53.ResolverFirewallConfig(
        f"{name}-dns-fail-closed",
        resource_id=vpc.id,
        firewall_fail_open="DISABLED",
        opts=child,
    )
    return aws.route53.ResolverFirewallRuleGroupAssociation(
        f"{name}-dns",
        firewall_rule_group_id=group.id,
        vpc_id=vpc.id,
        priority=DNS_ASSOCIATION_PRIORITY,
        tags=tags,
        opts=child,
    )
