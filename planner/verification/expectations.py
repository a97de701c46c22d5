"""What the plan says each network of the stack may reach, and who calls each workload: the
verifier holds the graph to it (without a plan, only to the rules every stack keeps)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from planner.catalog import Catalog, Provider, default_catalog
from planner.catalog.types import PrivateConsumers
from planner.planfile import ClusterLoadBalancer, Consumer, Plan


@dataclass(frozen=True)
class Expectations:
    """What the plan (when known) says each network may reach."""

    pools: dict[str, tuple[str, list[str], list[str]]]  # name -> (perimeter, workloads, consumers)
    providers: dict[str, list[str]]  # provider -> workloads
    linked: set[str]  # providers reached through PrivateLink
    hosts: list[str]  # the egress firewall's allow-list
    provider_models: list[str]  # provider model ids the PrivateLink endpoint may invoke
    workload_provider: dict[str, str]
    protect: bool = True
    workloads: dict[str, str] = field(default_factory=dict)  # every workload -> its perimeter
    # Workload -> the VPCs its consumers name, where the stack makes their endpoint.
    consumer_vpcs: dict[str, list[str]] = field(default_factory=dict)
    consumers: dict[str, list[Consumer]] = field(default_factory=dict)  # workload -> callers
    # The catalog's PrivateLink providers, by id (known with or without a plan): what an
    # endpoint's service, a policy's model ARNs and invoke actions are matched against.
    links: dict[str, Provider] = field(default_factory=dict)
    # Pool -> the Kubernetes site (of the plan's `sites`) it runs on; a pool not here is EC2's.
    pool_sites: dict[str, str] = field(default_factory=dict)
    # Site -> the in-cluster ranges its pools' pods may reach besides the pool and cluster DNS,
    # by what they are ("the weights' store" -> its CIDR): the stack config's `clusters`
    # (clusters.<site>.weights_cidr, the range the stack's allow policy opens on HTTPS). The
    # plan does not hold them; empty when verify is not given the stack config, and then an
    # egress range is not shown to be allowed (fail closed).
    cluster_ranges: dict[str, dict[str, str]] = field(default_factory=dict)
    # Site -> its internal load balancer as the plan states it (plan.json sites[].load_balancer):
    # a LoadBalancer Service of a pool there passes only with its annotations and class. A site
    # not here (or no plan) has none: every LoadBalancer Service is taken as public.
    site_load_balancers: dict[str, ClusterLoadBalancer] = field(default_factory=dict)
    # Pool -> the namespaces of its site's cluster whose pods its consumers are.
    pool_namespaces: dict[str, list[str]] = field(default_factory=dict)
    # The private ranges (data_classes.yaml private_consumers): no consumer lies beyond them, so
    # without a plan an ingress range beyond them is open.
    private: PrivateConsumers | None = None

    def link_of(self, service_name: str) -> str | None:
        """The PrivateLink provider (its id) whose endpoint service an interface endpoint's
        service name (com.amazonaws.<region>.<service>) is, or None."""
        for provider_id, provider in sorted(self.links.items()):
            if provider.endpoint and service_name.endswith(f".{provider.endpoint.service}"):
                return provider_id
        return None

    def link_service(self, provider_id: str | None) -> str | None:
        """The endpoint service of a PrivateLink provider (None: not one)."""
        provider = self.links.get(provider_id or "")
        return provider.endpoint.service if provider and provider.endpoint else None

    def invoke_actions(self) -> set[str]:
        """The IAM actions, lower-cased, that invoke a model of a catalog provider."""
        return {
            action.lower()
            for provider in self.links.values()
            if provider.invoke
            for action in provider.invoke.actions
        }

    @classmethod
    def of(
        cls,
        plan: Plan | None,
        catalog: Catalog | None,
        protect: bool = True,
        clusters: object = None,
    ) -> Expectations:
        """`clusters`: the stack config's `clusters` (a mapping, or its JSON as the config file
        gives it), when known."""
        links = {
            provider_id: provider
            for provider_id, provider in (catalog.providers.items() if catalog else ())
            if provider.private_link
        }
        if plan is None:
            return cls(
                {}, {}, set(), [], [], {}, protect, links=links,
                cluster_ranges=cluster_ranges(clusters, catalog),
                private=(catalog or default_catalog()).private_consumers,
            )  # fmt: skip
        by_name = {w.name: w for w in plan.workloads}
        pools = {
            p.name: (
                p.perimeter.value,
                list(p.workloads),
                sorted(
                    {
                        c.cidr
                        for n in p.workloads
                        for c in by_name[n].consumers
                        if c.cidr is not None
                    }
                ),
            )
            for p in plan.pools
        }
        providers = {a.provider: list(a.workloads) for a in plan.providers}
        hosts = sorted({h for a in plan.providers if not a.private_link for h in a.hosts})
        models = sorted(
            model_id
            for a in plan.providers
            if a.private_link
            for m in a.models
            if catalog is not None and (model_id := catalog.api_models[m].provider_model_id)
        )
        workload_provider = {w.name: w.provider for w in plan.workloads if w.provider}
        linked = {a.provider for a in plan.providers if a.private_link}
        workloads = {w.name: w.answers.data_sensitivity.perimeter.value for w in plan.workloads}
        vpcs = {w.name: sorted({c.vpc for c in w.consumers if c.vpc}) for w in plan.workloads}
        consumers = {w.name: list(w.consumers) for w in plan.workloads}
        sites = {s.name for s in plan.sites}
        pool_sites = {p.name: p.site for p in plan.pools if p.site in sites}
        balancers = {s.name: s.load_balancer for s in plan.sites if s.load_balancer is not None}
        namespaces = {
            p.name: sorted(
                {c.namespace for n in p.workloads for c in by_name[n].consumers if c.namespace}
            )
            for p in plan.pools
        }
        return cls(
            pools, providers, linked, hosts, models, workload_provider, protect, workloads,
            vpcs, consumers, links, pool_sites, cluster_ranges(clusters, catalog), balancers,
            namespaces,
        )  # fmt: skip


# What a Kubernetes site's pods may reach in the cluster besides their pool and cluster DNS, by
# the stack config key of `clusters.<site>` that states its range (stacks/settings.py
# ClusterSettings; stacks/kubernetes/network_policy.py opens it).
CLUSTER_RANGE_KEYS = {"weights_cidr": "the weights' store"}


def cluster_ranges(clusters: object, catalog: Catalog | None) -> dict[str, dict[str, str]]:
    """The named ranges of each site in the stack config's `clusters` (a mapping or its JSON);
    an entry that is not one gives none (what it would allow is then refused)."""
    if isinstance(clusters, str):
        try:
            clusters = json.loads(clusters)
        except json.JSONDecodeError:
            return {}
    if not isinstance(clusters, Mapping):
        return {}
    private = (catalog or default_catalog()).private_consumers
    found: dict[str, dict[str, str]] = {}
    for site, entry in sorted(clusters.items()):
        if isinstance(entry, Mapping):
            # A range that is no CIDR block inside the private ranges is not named: the egress
            # to it is then not shown allowed (the stack refuses such a config too).
            found[str(site)] = {
                f"{what} (stack config clusters.{site}.{key})": entry[key]
                for key, what in CLUSTER_RANGE_KEYS.items()
                if isinstance(entry.get(key), str) and private.range_problem(entry[key]) is None
            }
    return found
