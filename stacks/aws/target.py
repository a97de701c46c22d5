"""The AWS EC2 target's stack builder (planner/targets/aws_ec2.py prices it): a pool is an
InferencePool in its own sealed VPC, reached through its endpoint service."""

from __future__ import annotations

from stacks.addressing import consumer_places, cost_tags
from stacks.aws.lookups import pool_zones
from stacks.aws.pool import InferencePool, InferencePoolArgs
from stacks.boot import boot_time
from stacks.pools import BuiltPool, PoolRequest
from stacks.serving import serve_args


def build_pool(request: PoolRequest) -> BuiltPool:
    pool, catalog, settings, lookups = (
        request.pool,
        request.catalog,
        request.settings,
        request.lookups,
    )
    by_name = request.workloads
    # A consumer named by namespace is never an EC2 pool's (the plan places its workload on its
    # site: place_checks.consumer_problems); only ranges reach a pool's network.
    consumers = sorted(
        {c.cidr for n in pool.workloads for c in by_name[n].consumers if c.cidr is not None}
    )
    vpcs, accounts = consumer_places(by_name[n] for n in pool.workloads)
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
                settings.stack, "pool", pool.name, pool.monthly_cost_usd, pool.perimeter.value
            ),
            protect=settings.protect,
            image_tag=settings.serving_image_tag,
            serve_args=serve_args(pool, catalog),
            serve_env=dict(catalog.serving.environment.values),
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
            workloads=request.costs,
        ),
    )
    return BuiltPool(
        connection=component.connection(),
        callers={
            name: {
                "kind": "pool",
                "pool": pool.name,
                "endpoint": component.endpoint,
                "dns_name": component.dns_name,
                "endpoint_service_name": component.endpoint_service.service_name,
                "model": component.served_model,
                "api_key_secret_arn": component.api_key_secret.arn,
                "policy_arn": component.access_policies[name].arn,
            }
            for name in pool.workloads
        },
        ca_certificate=component.ca_certificate,
        monthly_cost_usd=component.monthly_cost_usd,
        access_scope_id=component.network.access_scope.id,
    )
