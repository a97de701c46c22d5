"""What every workload's answers share: the catalog, the settings, the figures used, and the
tables computed once from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from planner import costing
from planner.catalog import DATA_ORDER, TIER_ORDER, ApiModel, Catalog
from planner.catalog.vocabulary import DataClass, Perimeter, Task, Tier
from planner.costing import Settings
from planner.inputs.workloads import Workload
from planner.planfile import DataSensitivity, TaskQuality
from planner.planning import candidates
from planner.planning.candidates import SelfHostedCandidate, Shape, ShapeLimits, UnitPrice
from planner.planning.figures import FigureBook, staff_figures
from planner.planning.quotes import ApiQuote, api_quote
from planner.targets import pool_targets


class Entry(NamedTuple):
    """What a workload may be served with, before its admission: ordered by the model's tier
    (TIER_ORDER) and quality rank, and priced only once admitted."""

    tier: int
    rank: int
    subject: SelfHostedCandidate | str  # a self-hosted candidate, or an API model's id
    model_id: str  # the model it serves (the API model's id for an API)


@dataclass
class Context:
    """What every workload's answers share: the catalog, the settings and the figures used, with
    tables computed once from them. Making it builds every self-hosted candidate (which records
    their figures, so the plan cites them all); the other tables are computed on first use.
    Three lookups depend on what the workloads ask, unknown when the context is made, and are
    kept as first computed: a candidate's limits at a request shape, an API's quote at one, and
    the tail of a self-hosted option's formula at a unit count (options.self_hosted_option)."""

    catalog: Catalog
    settings: Settings
    book: FigureBook
    region: str
    # option id -> the candidate, each model at its own precision
    by_option: dict[str, SelfHostedCandidate] = field(init=False)
    self_hosted_entries: list[Entry] = field(init=False)
    # model -> the same model at a lower precision where its own needs several nodes
    lower_precisions: dict[str, list[SelfHostedCandidate]] = field(init=False)
    formula_tails: dict[tuple[str, int], str] = field(init=False, default_factory=dict)
    _shape_limits: dict[tuple[str, Shape], ShapeLimits | None] = field(
        init=False, default_factory=dict
    )
    _api_quotes: dict[tuple[str, int, int], ApiQuote] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        staff_figures(self.catalog, self.settings, self.book)
        built = candidates.every_candidate(self.catalog, self.settings, self.book)
        self.by_option = {c.option_id: c for own in built.own.values() for c in own}
        self.lower_precisions = built.lower_precisions
        models = self.catalog.models
        self.self_hosted_entries = [
            Entry(TIER_ORDER[models[model_id].tier], models[model_id].quality_rank, c, model_id)
            for model_id, own in built.own.items()
            for c in own
        ]

    @cached_property
    def seconds_per_month(self) -> float:
        return self.catalog.pricing.hours_per_month.value * 3600

    @cached_property
    def pool_fixed(self) -> dict[str, costing.FixedCost]:
        """target -> what a pool there pays whatever its size: staff and network pieces."""
        return {
            target.name: target.pool_fixed_cost(self.catalog, self.settings)
            for target in pool_targets(self.settings)
        }

    @cached_property
    def api_fixed(self) -> dict[str, costing.FixedCost]:
        """provider -> the fixed cost of reaching it, standing alone (its boundary and key)."""
        return {
            p: costing.pieces_cost(self.catalog, costing.api_fixed_kinds(self.catalog, p))
            for p in sorted(self.catalog.providers)
        }

    @cached_property
    def model_sizes(self) -> dict[str, float]:
        """Every model's size, self-hosted and API (model_size): ties go to the smaller."""
        return {
            **{m: model_size(self.catalog, "self_hosted", m) for m in self.catalog.models},
            **{
                a: model_size(self.catalog, "cloud_api", a) for a in sorted(self.catalog.api_models)
            },
        }

    @cached_property
    def task_answers(self) -> dict[tuple[Task, Tier | None], TaskQuality]:
        """The first answer for every task, and every tier a workload may ask instead."""
        return {
            (task, quality): task_quality(self.catalog, task, quality)
            for task in self.catalog.tasks
            for quality in (None, *Tier)
        }

    @cached_property
    def data_answers(self) -> dict[DataClass, DataSensitivity]:
        """The second answer for every data class."""
        return {data: data_sensitivity(self.catalog, data) for data in self.catalog.data_classes}

    @cached_property
    def api_entries(self) -> dict[DataClass, list[Entry]]:
        """The API models that may receive each data class within its perimeter."""
        return {
            data: self._api_entries(data, answer.perimeter)
            for data, answer in self.data_answers.items()
        }

    @cached_property
    def unit_prices(self) -> dict[str, list[UnitPrice]]:
        """option id -> a unit's monthly price under every purchase option."""
        return {
            option_id: candidates.unit_prices(self.catalog, candidate)
            for option_id, candidate in self.by_option.items()
        }

    def _api_entries(self, data: DataClass, perimeter: Perimeter) -> list[Entry]:
        entries = []
        for api_id in sorted(self.catalog.api_models):
            api = self.catalog.api_models[api_id]
            if api_allowed(self.catalog, api, data, perimeter, self.region) is None:
                rank = self.catalog.models[api.open_model].quality_rank if api.open_model else 0
                entries.append(Entry(TIER_ORDER[api.tier], rank, api_id, api_id))
        return entries

    def task_quality(self, workload: Workload) -> TaskQuality:
        return self.task_answers[(workload.task, workload.quality)]

    def data_sensitivity(self, workload: Workload) -> DataSensitivity:
        return self.data_answers[workload.data]

    def api_fixed_for(self, provider: str, plain: bool, vpcs: bool) -> costing.FixedCost:
        """A provider's access standing alone, as the stack builds it for these callers: a
        PrivateLink network of its own only for callers given as plain CIDRs, and the egress
        VPC's transit gateway attachment when callers name VPCs (stacks/aws/private_link.py,
        stacks/aws/egress.py)."""
        kinds = costing.api_fixed_kinds(self.catalog, provider)
        if "private_link" in kinds and not plain:
            kinds = tuple(kind for kind in kinds if kind != "private_link")
        if "egress_network" in kinds and vpcs:
            kinds = (*kinds, "egress_transit")
        if kinds == costing.api_fixed_kinds(self.catalog, provider):
            return self.api_fixed[provider]
        return costing.pieces_cost(self.catalog, kinds)

    def shape_limits(self, candidate: SelfHostedCandidate, shape: Shape) -> ShapeLimits | None:
        """candidates.shape_limits, computed once per candidate and request shape."""
        key = (candidate.option_id, shape)
        if key not in self._shape_limits:
            self._shape_limits[key] = candidates.shape_limits(
                candidate, shape, self.settings, self.seconds_per_month
            )
        return self._shape_limits[key]

    def api_quote(self, api_id: str, api: ApiModel, request_in: int, request_out: int) -> ApiQuote:
        """The API's price at one request shape (quotes.api_quote), its figures recorded once."""
        key = (api_id, request_in, request_out)
        if key not in self._api_quotes:
            self._api_quotes[key] = api_quote(
                self.catalog,
                self.settings.price_date,
                self.book,
                api_id,
                api,
                request_in,
                request_out,
            )
        return self._api_quotes[key]


def task_quality(catalog: Catalog, task: Task, quality: Tier | None) -> TaskQuality:
    info = catalog.tasks[task]
    if quality is not None and quality != info.tier:
        return TaskQuality(
            tier=quality,
            reason=f"set to {quality.value} in the workloads file "
            f"(the task {task.value} alone would need {info.tier.value}: {info.reason})",
        )
    return TaskQuality(tier=info.tier, reason=f"{task.value}: {info.reason}")


def data_sensitivity(catalog: Catalog, data: DataClass) -> DataSensitivity:
    info = catalog.data_classes[data]
    return DataSensitivity(perimeter=info.perimeter, reason=info.reason)


def api_allowed(
    catalog: Catalog, api: ApiModel, data: DataClass, perimeter: Perimeter, region: str
) -> str | None:
    """None when the API may serve this workload, else why not."""
    provider = catalog.providers[api.provider]
    profile = api.inference_profile
    if profile is not None and region not in profile.destination_regions:
        return f"served only through the inference profile {profile.id}, not callable in {region}"
    away = [r for r in profile.destination_regions if r != region] if profile else []
    if away and catalog.data_classes[data].stays_in_region:
        return (
            f"{data.value} data stays in {region}, and the inference profile "
            f"{profile.id if profile else ''} may process it in {', '.join(away)}"
        )
    if perimeter is Perimeter.technical:
        return "the technical perimeter allows no cloud API"
    if perimeter is Perimeter.private_link and not provider.private_link:
        return f"{provider.name} is not reachable through AWS PrivateLink"
    if DATA_ORDER[data] > DATA_ORDER[provider.max_data]:
        return f"{provider.name} may receive at most {provider.max_data.value} data"
    return None


def model_size(catalog: Catalog, placement: str, model_id: str) -> float:
    """Parameters of the open model behind an option; closed API models rank as largest."""
    open_model = model_id if placement == "self_hosted" else catalog.api_models[model_id].open_model
    return catalog.models[open_model].total_params_b.value if open_model else float("inf")
