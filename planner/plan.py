"""Build the plan: every workload's three answers, the self-hosted pools, the API access, totals."""

from __future__ import annotations

import hashlib
from datetime import date

from genai_prices import __version__ as genai_prices_version

from planner.answers import Context, FigureBook, Unservable, decide
from planner.catalog import DATA_DIR, Catalog
from planner.costs import Settings
from planner.errors import PlannerError, Problem
from planner.loader import LoadedWorkloads
from planner.model import (
    SCHEMA_VERSION,
    Plan,
    Pool,
    ProviderAccess,
    Totals,
    WorkloadPlan,
)
from planner.workloads import Pricing, WorkloadsFile


def catalog_sha256() -> str:
    """One hash over the catalog's data files, so a plan records which catalog priced it."""
    digest = hashlib.sha256()
    for path in sorted(DATA_DIR.glob("*.yaml")):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    digest.update(f"genai-prices {genai_prices_version}".encode())
    return digest.hexdigest()


def settings_for(catalog: Catalog, spec: WorkloadsFile, book: FigureBook) -> Settings:
    """Catalog defaults, overridden by the workloads file; each recorded with its source."""
    defaults = catalog.defaults
    given = spec.assumptions
    request = given.request
    settings = Settings(
        pricing=given.pricing or Pricing(defaults.pricing.value),
        utilization=given.utilization or defaults.utilization.value,
        serving_efficiency=given.serving_efficiency or defaults.serving_efficiency.value,
        memory_reserve=(
            given.memory_reserve
            if given.memory_reserve is not None
            else defaults.memory_reserve.value
        ),
        request_input_tokens=(
            request.input_tokens if request else int(defaults.request_input_tokens.value)
        ),
        request_output_tokens=(
            request.output_tokens if request else int(defaults.request_output_tokens.value)
        ),
        price_date=given.price_date or date.fromisoformat(defaults.price_date.value),
    )
    overridden = "set in the workloads file (assumptions)"
    for key, unit, value, default in (
        ("utilization", "share of capacity", given.utilization, defaults.utilization),
        (
            "serving_efficiency",
            "share of the benchmark ceiling",
            given.serving_efficiency,
            defaults.serving_efficiency,
        ),
        ("memory_reserve", "share of GPU memory", given.memory_reserve, defaults.memory_reserve),
    ):
        if value is None:
            book.add(f"assumption.{key}", default.value, unit, default.source, default.date)
        else:
            book.add(f"assumption.{key}", value, unit, overridden, "")
    return settings


def build_plan(loaded: LoadedWorkloads, catalog: Catalog, stack: str, workloads_file: str) -> Plan:
    spec = loaded.spec
    book = FigureBook()
    settings = settings_for(catalog, spec, book)
    ctx = Context(catalog=catalog, settings=settings, book=book, region=spec.region)

    workload_plans: list[WorkloadPlan] = []
    pools: list[Pool] = []
    api_users: dict[str, list[tuple[str, str]]] = {}
    problems: list[Problem] = []
    for index, workload in enumerate(spec.workloads):
        try:
            answers, chosen, warnings = decide(ctx, index, workload)
        except Unservable as exc:
            problems.extend(exc.problems)
            continue
        pool_name = None
        if chosen.placement == "self_hosted":
            assert chosen.instance_type and chosen.memory_fit and chosen.nodes and chosen.pricing
            pool_name = f"{workload.name}-pool"
            instance = catalog.instances[chosen.instance_type]
            pools.append(
                Pool(
                    name=pool_name,
                    model=chosen.model,
                    weights=catalog.models[chosen.model].weights,
                    instance_type=chosen.instance_type,
                    nodes=chosen.nodes,
                    gpus_per_node=instance.gpus,
                    precision=chosen.memory_fit.precision,
                    tensor_parallel=chosen.memory_fit.tensor_parallel,
                    pipeline_parallel=chosen.memory_fit.pipeline_parallel,
                    pricing=chosen.pricing,
                    perimeter=answers.data_sensitivity.perimeter,
                    capacity_reservation_id=workload.capacity_reservation_id,
                    monthly_cost_usd=chosen.monthly_cost_usd,
                    workloads=[workload.name],
                )
            )
        else:
            assert chosen.provider is not None
            api_users.setdefault(chosen.provider, []).append((workload.name, chosen.model))
        workload_plans.append(
            WorkloadPlan(
                name=workload.name,
                task=workload.task.value,
                data=workload.data.value,
                consumers=list(workload.consumers),
                placement=chosen.placement,
                model=chosen.model,
                provider=chosen.provider,
                pool=pool_name,
                answers=answers,
                monthly_cost_usd=chosen.monthly_cost_usd,
                warnings=warnings,
            )
        )
    if problems:
        raise PlannerError(str(loaded.path), problems)

    providers = []
    for provider_id in sorted(api_users):
        provider = catalog.providers[provider_id]
        users = api_users[provider_id]
        providers.append(
            ProviderAccess(
                provider=provider_id,
                hosts=[host.format(region=spec.region) for host in provider.hosts],
                private_link=provider.private_link,
                models=sorted({model for _, model in users}),
                # Bedrock is reached with the nodes' IAM role; the others need an API key.
                secret_config_key=None if provider_id == "bedrock" else f"{provider_id}_api_key",
                workloads=[name for name, _ in users],
            )
        )

    # Sum in whole cents so the total equals the workloads' costs to the cent.
    cents = [round(w.monthly_cost_usd * 100) for w in workload_plans]
    self_cents = sum(
        c for c, w in zip(cents, workload_plans, strict=True) if w.placement == "self_hosted"
    )
    total_cents = sum(cents)
    figures = {key: book.figures[key] for key in sorted(book.figures)}
    return Plan(
        schema_version=SCHEMA_VERSION,
        organization=spec.organization,
        stack=stack,
        region=spec.region,
        workloads_file=workloads_file,
        inputs_sha256=loaded.sha256,
        catalog_sha256=catalog_sha256(),
        assumptions={
            "pricing": settings.pricing.value,
            "utilization": settings.utilization,
            "serving_efficiency": settings.serving_efficiency,
            "memory_reserve": settings.memory_reserve,
            "request_input_tokens": settings.request_input_tokens,
            "request_output_tokens": settings.request_output_tokens,
            "price_date": settings.price_date.isoformat(),
            "genai_prices_version": genai_prices_version,
        },
        workloads=workload_plans,
        pools=pools,
        providers=providers,
        totals=Totals(
            monthly_cost_usd=total_cents / 100,
            self_hosted_usd=self_cents / 100,
            cloud_api_usd=(total_cents - self_cents) / 100,
        ),
        figures=figures,
    )
