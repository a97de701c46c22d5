"""The planner's vocabulary: the kinds a workloads file and the catalog both speak of (tasks,
model tiers, data classes, perimeters, purchase options, availability). The catalog's data files
are keyed by them and the workloads file's schema takes them, so they live below both."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    classification = "classification"
    extraction = "extraction"
    faq = "faq"
    rag_qa = "rag_qa"
    summarization = "summarization"
    chat = "chat"
    code_assistant = "code_assistant"
    code_generation = "code_generation"
    multi_step_reasoning = "multi_step_reasoning"
    synthesis = "synthesis"
    legal_analysis = "legal_analysis"
    financial_analysis = "financial_analysis"


class Tier(StrEnum):
    small = "small"
    capable = "capable"
    frontier = "frontier"


class DataClass(StrEnum):
    public = "public"
    internal = "internal"
    confidential = "confidential"
    regulated = "regulated"


class Perimeter(StrEnum):
    contractual = "contractual"
    private_link = "private_link"
    technical = "technical"


class Pricing(StrEnum):
    on_demand = "on_demand"
    spot = "spot"
    savings_1yr = "savings_1yr"
    savings_3yr = "savings_3yr"


class Ownership(StrEnum):
    """How a cluster site's node is paid for (issue 16): bought hardware, not rented by a
    purchase option of EC2's. `owned`: already bought (power, hosting and staff a month);
    `bought`: a purchase priced as its capital over the amortization horizon besides."""

    owned = "owned"
    bought = "bought"


# What a pool's nodes are paid as: a purchase option of EC2's, or a cluster's bought hardware.
PaidAs = Pricing | Ownership


class Availability(StrEnum):
    standard = "standard"
    high = "high"
