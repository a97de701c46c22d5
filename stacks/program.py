"""The Pulumi program: a reviewed plan wired into components. One pool per self-hosted pool, one
access per API provider, the network boundary per perimeter, and the stack's budget.

`run` is the one entry point: __main__.py calls it for `pulumi up` (after checking the plan is
fresh), and `planner diff` for a base plan's stack under Pulumi's mocks
(planner/diff/compare.py), so both build the same stack from the same plan. A pool is built by
its deployment target's builder (stacks/targets.py); the API access and network boundaries are
AWS's components (stacks/aws/); what is not AWS's (stacks/addressing.py, serving.py, boot.py) is
shared with the targets to come.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from planner.catalog import Catalog, InferenceProfile, Provider
from planner.planfile import Plan, Pool, ProviderAccess, WorkloadPlan
from stacks.addressing import WorkloadCost, consumers_of, cost_tags, workloads_by_vpc
from stacks.aws.api_access import ApiAccess, ApiAccessArgs, model_arns
from stacks.aws.budget import CostBudget, CostBudgetArgs
from stacks.aws.egress import AttachedVpc, EgressNetwork, EgressNetworkArgs
from stacks.aws.lookups import Lookups, lookup
from stacks.aws.naming import fit_autonames
from stacks.aws.private_link import PrivateLinkNetwork, PrivateLinkNetworkArgs, dns_name
from stacks.pools import PoolRequest
from stacks.settings import StackSettings, read_settings
from stacks.targets import POOL_BUILDERS, pool_site, pool_target


def run(plan: Plan, catalog: Catalog) -> None:
    """The stack of a plan: its settings from the stack config, the account's lookups, the
    components. The plan is read (and checked, where the caller means to) by the caller."""
    providers = [p.provider for p in plan.providers if p.secret_config_key]
    # The sites pools run on: a site of the file that the plan puts no pool on needs no settings.
    used = {pool.site for pool in plan.pools}
    sites = [site.name for site in plan.sites if site.name in used]
    build_stack(plan, catalog, read_settings(pulumi.Config(), providers, sites), lookup())


def build_stack(plan: Plan, catalog: Catalog, settings: StackSettings, lookups: Lookups) -> None:
    # Names AWS would refuse as too long (long workload names) are shortened, stably.
    pulumi.runtime.register_stack_transformation(fit_autonames(settings.stack))
    stack = _Stack(plan, catalog, settings, lookups)
    for pool in plan.pools:
        stack.add_pool(pool)
    for access in plan.providers:
        stack.add_api_access(access)
    stack.add_egress([a for a in plan.providers if not a.private_link])
    stack.add_budget()
    stack.export()


@dataclass
class _Stack:
    """The components of one plan as they are built, and what the stack exports of them."""

    plan: Plan
    catalog: Catalog
    settings: StackSettings
    lookups: Lookups
    # Each component's fixed monthly cost, by name.
    components: dict[str, pulumi.Output[float]] = field(default_factory=dict)
    # Network Access Analyzer scopes, by network: what to analyze after `pulumi up`.
    scopes: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    # How callers reach each pool (URL, CA, key ARN, endpoint service, other accounts' command).
    pools: dict[str, dict[str, object]] = field(default_factory=dict)
    # Each pool's CA certificate, to trust.
    authorities: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    balancers: dict[str, pulumi.Output[str | None]] = field(default_factory=dict)
    # What each workload's callers need to call it (stack output `workloads`).
    callers: dict[str, dict[str, object]] = field(default_factory=dict)
    # The plan's workloads by name.
    by_name: dict[str, WorkloadPlan] = field(init=False)
    # Catalog model id -> the provider's own model id, and its cross-region inference profile
    # if any (the models an `iam_role` provider's policies name by ARN).
    provider_ids: dict[str, str] = field(init=False)
    profiles: dict[str, InferenceProfile] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {w.name: w for w in self.plan.workloads}
        api_models = self.catalog.api_models.items()
        self.provider_ids = {
            api_id: api.provider_model_id for api_id, api in api_models if api.provider_model_id
        }
        self.profiles = {
            api_id: api.inference_profile
            for api_id, api in api_models
            if api.provider_model_id and api.inference_profile
        }

    def workload_costs(self, names: list[str]) -> list[WorkloadCost]:
        return [
            WorkloadCost(
                name,
                self.by_name[name].monthly_cost_usd,
                cost_tags(
                    self.settings.stack, "workload", name, self.by_name[name].monthly_cost_usd
                ),
            )
            for name in names
        ]

    def add_pool(self, pool: Pool) -> None:
        """The pool, built by its target's builder (stacks/targets.py), and what the stack
        exports of it."""
        built = POOL_BUILDERS[pool_target(self.plan, pool)](
            PoolRequest(
                pool=pool,
                site=pool_site(self.plan, pool),
                catalog=self.catalog,
                settings=self.settings,
                lookups=self.lookups,
                workloads={name: self.by_name[name] for name in pool.workloads},
                costs=self.workload_costs(pool.workloads),
            )
        )
        self.pools[pool.name] = built.connection
        self.callers.update(built.callers)
        if built.ca_certificate is not None:
            self.authorities[pool.name] = built.ca_certificate
        if built.load_balancer_address is not None:
            self.balancers[pool.name] = built.load_balancer_address
        self.components[pool.name] = built.monthly_cost_usd
        if built.access_scope_id is not None:
            self.scopes[pool.name] = built.access_scope_id

    def add_api_access(self, access: ProviderAccess) -> None:
        """The provider's access (its key, its workloads' policies) and, for PrivateLink, the
        network boundary its consumers reach it through."""
        settings, lookups, by_name = self.settings, self.lookups, self.by_name
        provider = self.catalog.providers[access.provider]
        workloads = self.workload_costs(access.workloads)
        share = round(sum(w.monthly_cost_usd for w in workloads), 2)
        tags = cost_tags(
            settings.stack,
            "provider",
            access.provider,
            share,
            "private_link" if access.private_link else None,
        )
        component = ApiAccess(
            f"{access.provider}-access",
            ApiAccessArgs(
                access=access,
                provider=provider,
                workloads=workloads,
                provider_model_ids=self.provider_ids,
                lookups=lookups,
                tags=tags,
                protect=settings.protect,
                api_key=settings.api_keys.get(access.provider),
                inference_profiles=self.profiles,
            ),
        )
        self.components[f"{access.provider}-access"] = component.monthly_cost_usd
        for name in access.workloads:
            self.callers[name] = _api_consumer(
                access, provider, by_name[name], component, self.provider_ids, self.profiles,
                lookups,
            )  # fmt: skip
        if not access.private_link:
            return
        assert provider.invoke is not None  # load_catalog: a private_link provider's actions
        link = PrivateLinkNetwork(
            f"{access.provider}-link",
            PrivateLinkNetworkArgs(
                cidr=self.plan.networks["private_link"],
                lookups=lookups,
                catalog=self.catalog,
                provider_id=access.provider,
                provider=provider,
                model_arns=model_arns(
                    lookups, provider.invoke, access.models, self.provider_ids, self.profiles
                ),
                workloads=workloads,
                consumers=consumers_of(by_name[name] for name in access.workloads),
                tags=tags,
                protect=settings.protect,
                vpc_workloads=workloads_by_vpc(by_name[name] for name in access.workloads),
            ),
        )
        self.components[f"{access.provider}-link"] = link.monthly_cost_usd
        if link.network is not None:
            self.scopes[f"{access.provider}-link"] = link.network.access_scope.id

    def add_egress(self, egress: list[ProviderAccess]) -> None:
        """One egress boundary for every contractual provider, if any."""
        if not egress:
            return
        names = [name for access in egress for name in access.workloads]
        share = round(sum(self.by_name[name].monthly_cost_usd for name in names), 2)
        network = EgressNetwork(
            "api-egress",
            EgressNetworkArgs(
                cidr=self.plan.networks["egress"],
                lookups=self.lookups,
                catalog=self.catalog,
                hosts=sorted({host for access in egress for host in access.hosts}),
                workloads=self.workload_costs(names),
                tags=cost_tags(self.settings.stack, "network", "api-egress", share, "contractual"),
                protect=self.settings.protect,
                attached=AttachedVpc.of(self.by_name[name] for name in names),
            ),
        )
        self.components["api-egress"] = network.monthly_cost_usd

    def add_budget(self) -> None:
        """An AWS budget of what the plan spends on AWS: its total less the pools on cluster
        sites (their nodes are bought hardware, no AWS bill); none when nothing is on AWS."""
        stack = self.settings.stack
        clusters = {site.name for site in self.plan.sites}
        on_clusters = [pool for pool in self.plan.pools if pool.site in clusters]
        if len(on_clusters) == len(self.plan.pools) and not self.plan.providers:
            return
        total = round(
            self.plan.totals.monthly_cost_usd - sum(p.monthly_cost_usd for p in on_clusters), 2
        )
        CostBudget(
            f"{stack}-budget",
            CostBudgetArgs(
                stack=stack,
                monthly_limit_usd=total,
                subscriber_email=self.settings.budget_email,
                tags=cost_tags(stack, "stack", stack, total),
                activate_tag=self.settings.activate_cost_tag,
            ),
        )

    def export(self) -> None:
        workloads = self.plan.workloads
        pulumi.export("monthly_cost_usd", self.plan.totals.monthly_cost_usd)
        pulumi.export("workload_monthly_cost_usd", {w.name: w.monthly_cost_usd for w in workloads})
        pulumi.export("placements", {w.name: w.placement for w in workloads})
        pulumi.export("component_monthly_cost_usd", self.components)
        pulumi.export("network_access_scopes", self.scopes)
        pulumi.export("pools", self.pools)
        pulumi.export("pool_ca_certificates", self.authorities)
        pulumi.export("load_balancer_addresses", self.balancers)
        pulumi.export("workloads", {name: self.callers[name] for name in sorted(self.callers)})


def _api_consumer(
    access: ProviderAccess,
    provider: Provider,
    workload: WorkloadPlan,
    component: ApiAccess,
    provider_ids: dict[str, str],
    profiles: dict[str, InferenceProfile],
    lookups: Lookups,
) -> dict[str, object]:
    """What a caller of a cloud API workload needs: for a provider reached with an IAM role
    through PrivateLink (Bedrock; `kind` is the provider's id, whose SDK callers use) the id to
    call (the inference profile's where the provider serves the model only through one) and the
    endpoint's name, which its private DNS answers in the consumers' VPCs; for a contractual
    API (`kind` api) the provider's hosts (reached through the egress firewall) and the secret
    holding its key. Each with the policy its callers' role attaches. ARNs only, never a key."""
    policy = component.policies[workload.name].arn
    if access.secret_config_key is None:
        assert provider.endpoint is not None  # load_catalog: iam_role is reached by PrivateLink
        model_id = provider_ids[workload.model]
        profile = profiles.get(workload.model)
        return {
            "kind": access.provider,
            "provider": access.provider,
            "model_id": profile.id if profile else model_id,
            "endpoint_dns_name": dns_name(lookups, provider.endpoint.service),
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
