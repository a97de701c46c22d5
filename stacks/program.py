"""Wire a plan into components: one pool per self-hosted pool, one access per API provider, the
network boundary per perimeter, and the stack's budget."""

from __future__ import annotations

import pulumi

from planner.catalog import Catalog, InferenceProfile
from planner.planfile.schema import Plan, ProviderAccess, WorkloadPlan
from stacks.addressing import WorkloadCost, consumer_places, consumers_of, cost_tags
from stacks.aws.api_access import ApiAccess, ApiAccessArgs, bedrock_model_arns
from stacks.aws.budget import CostBudget, CostBudgetArgs
from stacks.aws.egress import AttachedVpc, EgressNetwork, EgressNetworkArgs
from stacks.aws.lookups import Lookups, pool_zones
from stacks.aws.naming import fit_autonames
from stacks.aws.pool import InferencePool, InferencePoolArgs
from stacks.aws.private_link import PrivateLinkNetwork, PrivateLinkNetworkArgs
from stacks.boot import boot_time
from stacks.serving import serve_args
from stacks.settings import StackSettings


def build_stack(plan: Plan, catalog: Catalog, settings: StackSettings, lookups: Lookups) -> None:
    stack = settings.stack
    # Names AWS would refuse as too long (long workload names) are shortened, stably.
    pulumi.runtime.register_stack_transformation(fit_autonames(stack))
    by_name = {w.name: w for w in plan.workloads}
    components: dict[str, pulumi.Output[float]] = {}
    # Network Access Analyzer scopes, by network: what to analyze after `pulumi up`.
    scopes: dict[str, pulumi.Output[str]] = {}
    # How callers reach each pool (URL, CA, key ARN, endpoint service, other accounts' command).
    pools: dict[str, dict[str, object]] = {}
    authorities: dict[str, pulumi.Output[str]] = {}  # each pool's CA certificate, to trust
    # What each workload's callers need to call it (stack output `workloads`).
    callers: dict[str, dict[str, object]] = {}

    def workload_costs(names: list[str]) -> list[WorkloadCost]:
        return [
            WorkloadCost(
                name,
                by_name[name].monthly_cost_usd,
                cost_tags(stack, "workload", name, by_name[name].monthly_cost_usd),
            )
            for name in names
        ]

    for pool in plan.pools:
        consumers = sorted({c.cidr for name in pool.workloads for c in by_name[name].consumers})
        vpcs, accounts = consumer_places([c for n in pool.workloads for c in by_name[n].consumers])
        efa = catalog.instances[pool.instance_type].efa_interfaces
        boot = boot_time(catalog, pool)
        component = InferencePool(
            pool.name,
            InferencePoolArgs(
                pool=pool,
                consumers=consumers,
                cidr=pool.cidr,  # allocated at plan time (planner/inputs/networks.py)
                lookups=lookups,
                tags=cost_tags(
                    stack, "pool", pool.name, pool.monthly_cost_usd, pool.perimeter.value
                ),
                protect=settings.protect,
                image_tag=settings.serving_image_tag,
                serve_args=serve_args(pool, catalog),
                health_check_grace_s=boot.grace_s,
                s3_download_gbps=boot.download_gbps,
                # Unset, the deploying principal may upload the weights (README).
                weights_uploader_arn=settings.weights_uploader_arn or lookups.deployer_arn,
                efa_interfaces=int(efa.value) if efa else 1,
                consumer_vpcs=vpcs,
                consumer_accounts=accounts,
                zones=pool_zones(
                    lookups, pool.name, pool.instance_type, pool.capacity_reservation_zone
                ),
                workloads=workload_costs(pool.workloads),
            ),
        )
        pools[pool.name] = component.connection()
        for name in pool.workloads:
            callers[name] = {
                "kind": "pool",
                "pool": pool.name,
                "endpoint": component.endpoint,
                "dns_name": component.dns_name,
                "endpoint_service_name": component.endpoint_service.service_name,
                "model": component.served_model,
                "api_key_secret_arn": component.api_key_secret.arn,
                "policy_arn": component.access_policies[name].arn,
            }
        authorities[pool.name] = component.ca_certificate
        components[pool.name] = component.monthly_cost_usd
        scopes[pool.name] = component.network.access_scope.id

    bedrock_ids = {
        api_id: api.bedrock_model_id
        for api_id, api in catalog.api_models.items()
        if api.bedrock_model_id
    }
    profiles = {
        api_id: api.inference_profile
        for api_id, api in catalog.api_models.items()
        if api.bedrock_model_id and api.inference_profile
    }
    for access in plan.providers:
        workloads = workload_costs(access.workloads)
        share = round(sum(w.monthly_cost_usd for w in workloads), 2)
        tags = cost_tags(
            stack,
            "provider",
            access.provider,
            share,
            "private_link" if access.private_link else None,
        )
        access_component = ApiAccess(
            f"{access.provider}-access",
            ApiAccessArgs(
                access=access,
                workloads=workloads,
                provider_model_ids=bedrock_ids,
                lookups=lookups,
                tags=tags,
                protect=settings.protect,
                api_key=settings.api_keys.get(access.provider),
                inference_profiles=profiles,
            ),
        )
        components[f"{access.provider}-access"] = access_component.monthly_cost_usd
        for name in access.workloads:
            callers[name] = _api_consumer(
                access, by_name[name], access_component, bedrock_ids, profiles, lookups
            )
        if access.private_link:
            link = PrivateLinkNetwork(
                f"{access.provider}-link",
                PrivateLinkNetworkArgs(
                    cidr=plan.networks["private_link"],
                    lookups=lookups,
                    catalog=catalog,
                    model_arns=bedrock_model_arns(lookups, access.models, bedrock_ids, profiles),
                    workloads=workloads,
                    consumers=consumers_of(by_name[name] for name in access.workloads),
                    tags=tags,
                    protect=settings.protect,
                ),
            )
            components[f"{access.provider}-link"] = link.monthly_cost_usd
            if link.network is not None:
                scopes[f"{access.provider}-link"] = link.network.access_scope.id

    egress = [a for a in plan.providers if not a.private_link]
    if egress:
        names = [name for access in egress for name in access.workloads]
        share = round(sum(by_name[name].monthly_cost_usd for name in names), 2)
        network = EgressNetwork(
            "api-egress",
            EgressNetworkArgs(
                cidr=plan.networks["egress"],
                lookups=lookups,
                catalog=catalog,
                hosts=sorted({host for access in egress for host in access.hosts}),
                workloads=workload_costs(names),
                tags=cost_tags(stack, "network", "api-egress", share, "contractual"),
                protect=settings.protect,
                attached=AttachedVpc.of(consumers_of(by_name[name] for name in names)),
            ),
        )
        components["api-egress"] = network.monthly_cost_usd

    CostBudget(
        f"{stack}-budget",
        CostBudgetArgs(
            stack=stack,
            monthly_limit_usd=plan.totals.monthly_cost_usd,
            subscriber_email=settings.budget_email,
            tags=cost_tags(stack, "stack", stack, plan.totals.monthly_cost_usd),
            activate_tag=settings.activate_cost_tag,
        ),
    )

    pulumi.export("monthly_cost_usd", plan.totals.monthly_cost_usd)
    pulumi.export("workload_monthly_cost_usd", {w.name: w.monthly_cost_usd for w in plan.workloads})
    pulumi.export("placements", {w.name: w.placement for w in plan.workloads})
    pulumi.export("component_monthly_cost_usd", components)
    pulumi.export("network_access_scopes", scopes)
    pulumi.export("pools", pools)
    pulumi.export("pool_ca_certificates", authorities)
    pulumi.export("workloads", {name: callers[name] for name in sorted(callers)})


def _api_consumer(
    access: ProviderAccess,
    workload: WorkloadPlan,
    component: ApiAccess,
    bedrock_ids: dict[str, str],
    profiles: dict[str, InferenceProfile],
    lookups: Lookups,
) -> dict[str, object]:
    """What a caller of a cloud API workload needs: for Bedrock the id to call (the inference
    profile's where Bedrock serves the model only through one) and the runtime's name, which
    the interface endpoint's private DNS answers in the consumers' VPCs; for a contractual API
    the provider's hosts (reached through the egress firewall) and the secret holding its key.
    Each with the policy its callers' role attaches. ARNs only, never a key."""
    policy = component.policies[workload.name].arn
    if access.secret_config_key is None:
        model_id = bedrock_ids[workload.model]
        profile = profiles.get(workload.model)
        return {
            "kind": "bedrock",
            "provider": access.provider,
            "model_id": profile.id if profile else model_id,
            "endpoint_dns_name": f"bedrock-runtime.{lookups.region}.{lookups.dns_suffix}",
            "policy_arn": policy,
        }
    assert component.secret is not None  # a provider with a key has its secret
    return {
        "kind": "api",
        "provider": access.provider,
        "hosts": list(access.hosts),
        "api_key_secret_arn": component.secret.arn,
        "policy_arn": policy,
    }
