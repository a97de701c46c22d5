"""The Kubernetes target's stack builder (planner/targets/kubernetes.py prices it): a pool is a
ClusterPool in its own namespace of the site's cluster, reached through its Service: ClusterIP,
or an internal LoadBalancer where consumers call from outside the cluster."""

from __future__ import annotations

from stacks.kubernetes.pool import ClusterPool, ClusterPoolArgs
from stacks.kubernetes.workload import SECRET_API_KEY
from stacks.pools import BuiltPool, PoolRequest


def build_pool(request: PoolRequest) -> BuiltPool:
    pool, site, settings = request.pool, request.site, request.settings
    if site is None:
        raise ValueError(f"pool {pool.name}: the plan names no Kubernetes site {pool.site!r}")
    by_name = request.workloads
    callers = [c for name in pool.workloads for c in by_name[name].consumers]
    consumers = sorted({c.cidr for c in callers if c.cidr is not None})
    # Consumers given by their range call from outside the cluster (planning admits them on a
    # site with an internal load balancer only; a VPC or an account never reaches a cluster).
    outside = sorted(
        {c.cidr for c in callers if c.cidr is not None and c.vpc is None and c.account is None}
    )
    # Pods of the site's cluster, admitted by their namespace (the plan puts a workload whose
    # consumers name a namespace on that namespace's site only).
    namespaces = sorted({c.namespace for c in callers if c.namespace is not None})
    component = ClusterPool(
        pool.name,
        ClusterPoolArgs(
            pool=pool,
            site=site,
            cluster=settings.clusters[site.name],  # read_settings: one for every plan site
            consumers=consumers,
            outside=outside if site.load_balancer is not None else [],
            image_tag=settings.serving_image_tag,
            protect=settings.protect,
            workloads=request.costs,
            namespaces=namespaces,
        ),
        request.catalog,
    )
    return BuiltPool(
        connection=component.connection(),
        callers={
            name: {
                "kind": "pool",
                "pool": pool.name,
                "endpoint": component.endpoint,
                "dns_name": component.dns_name,
                "outside_endpoint": component.outside_endpoint,
                "model": component.served_model,
                "api_key_secret": f"{component.namespace_name}/{SECRET_API_KEY}",
            }
            for name in pool.workloads
        },
        ca_certificate=component.ca_certificate,
        monthly_cost_usd=component.monthly_cost_usd,
        access_scope_id=None,
        load_balancer_address=component.load_balancer_address,
    )
