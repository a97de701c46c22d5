"""The workloads file: an organization's AI workloads, as pydantic models (the input contract).

About 510 lines on purpose: the models the published JSON Schema (schema/workloads.schema.json)
is generated from, with the validators that give each bad field its message; sites (sites.py)
and networks (networks.py) already live apart.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from planner.catalog.vocabulary import Availability, DataClass, Pricing, Task, Tier
from planner.inputs.networks import DEFAULT_APIS, DEFAULT_POOLS, DEFAULT_SPACE
from planner.inputs.sites import SITE_NAME, Site
from planner.inputs.strict import Strict as _Strict

_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kKmMbBtT]?)\s*$")
# What the schema admits as a token count written as text (the parser also reads a sign, to
# say that a negative count is wrong rather than unreadable).
TOKENS_PATTERN = r"^\s*\d+(\.\d+)?\s*[kKmMbBtT]?\s*$"

# An availability zone's name: its region's name and a letter (us-east-1a).
ZONE_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$"

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


# --- Bounds of the file's numbers. Past them a number is a typo (a T for an M, .inf), never a
# plan: left in, it overflows the arithmetic (an OverflowError from `ceil(inf)`, an infinite cost)
# or prices a fleet no one could buy. Each bound is in the published schema with its reason, and
# the loader's message repeats the reason.

# Google reported processing about 3.2 quadrillion (3,200T) tokens a month across all of its
# products (Sundar Pichai at Google I/O, May 2026, as reported by Business Insider and The
# Register); one workload of one organization is far below that.
MAX_MONTHLY_TOKENS = 10**16
# The longest context window in the catalog is 10,485,760 tokens (llama-4-scout, models.yaml);
# a longer request is refused by the context-window check with a better message.
MAX_REQUEST_TOKENS = 10**8
# 10,000T a month is 3.8 billion tokens a second on average; a peak is bounded alike.
MAX_PEAK_TOKENS_PER_SECOND = 10**10
MAX_CONCURRENCY = 10**9
# The busiest rate is the average over the utilization: below 1 % a pool idles, and near 0 the
# rate (and the pool) is infinite.
MIN_UTILIZATION = 0.01
# Below one token a second nobody reads (people read several a second); requests in flight are
# the busiest rate over this speed, so a tiny speed means a near-infinite count.
MIN_USER_OUTPUT_TPS = 1
# Published per-user decode speeds reach a few thousand tokens a second on specialized chips;
# a GPU node serves far less.
MAX_USER_OUTPUT_TPS = 10_000
MAX_ENGINEER_USD_PER_MONTH = 10**6
MAX_POOL_FTE = 1_000
MIN_AMORTIZATION_MONTHS = 1
MAX_AMORTIZATION_MONTHS = 240

# Field name -> why its number is bounded (in the schema's descriptions and the loader's
# messages). `input` and `output` are monthly_tokens' fields.
LIMIT_REASONS = {
    "input": "a monthly volume past 10,000T (10^16 tokens) is three times what Google reported "
    "processing across all its products (3,200T a month, May 2026): a typo",
    "output": "a monthly volume past 10,000T (10^16 tokens) is three times what Google reported "
    "processing across all its products (3,200T a month, May 2026): a typo",
    "input_tokens": "a request past 100M tokens is ten times the longest context window of any "
    "model (10M)",
    "output_tokens": "a request past 100M tokens is ten times the longest context window of any "
    "model (10M)",
    "peak_tokens_per_second": "10 billion tokens a second is more than the largest monthly "
    "volume (10,000T) averages",
    "concurrency": "a billion requests at once is more than any service holds",
    "utilization": "a share of capacity from 1 % to 1: below 1 % a pool idles, and the busiest "
    "rate (the average over the utilization) grows without bound",
    "user_output_tps": "one user reads at 1 to 10,000 tokens a second: slower than 1 is slower "
    "than anyone reads (give concurrency for batch work), and no GPU serves one user 10,000",
    "engineer_usd_per_month": "a million USD a month for one engineer is a typo, not a salary",
    "pool_fte": "a thousand engineers to run one pool is a typo",
    "amortization_months": "hardware is written off over 1 month to 20 years (240 months)",
}


def parse_tokens(value: Any) -> int:
    """Accept an int or a string such as '400M', '1.5B', '250k'; reject anything else."""
    if isinstance(value, bool):
        raise ValueError("must be a token count, not true/false")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number of tokens, not {yaml_number(value)}")
        if not value.is_integer():
            raise ValueError(f"must be a whole number of tokens, got {value}")
        number = int(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise ValueError(f"cannot read {value!r} as a token count (use e.g. 400M, 1.5B, 250k)")
        scaled = float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1)
        number = round(scaled)
    else:
        raise ValueError(f"must be a token count, got {type(value).__name__}")
    if number < 0:
        raise ValueError(f"must not be negative, got {value}")
    return number


def yaml_number(value: float) -> str:
    """A number as a YAML file writes it: .inf, -.inf, .nan; a float at its shortest (1e+300,
    0.5); a whole number with thousands separators, or its digit count past 21 digits."""
    if isinstance(value, int):
        digits = len(str(abs(value)))
        return f"{value:,}" if digits <= 21 else f"a {digits}-digit number"
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _tokens_schema(minimum: int, maximum: int, most: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "integer", "minimum": minimum, "maximum": maximum},
            {"type": "string", "pattern": TOKENS_PATTERN},
        ],
        "description": "A token count: an integer, or a number with k, M, B or T "
        f"(400M, 1.5B, 250k); at most {most}.",
    }


# In the schema: an integer, or text such as 400M, 1.5B, 250k (what the README documents), with
# its bound (a pattern cannot bound the text's value: the loader does).
MonthlyTokenCount = Annotated[
    int,
    BeforeValidator(parse_tokens),
    PlainSerializer(int),
    Field(le=MAX_MONTHLY_TOKENS),
    WithJsonSchema(_tokens_schema(0, MAX_MONTHLY_TOKENS, "10,000T")),
]
RequestTokenCount = Annotated[
    int,
    BeforeValidator(parse_tokens),
    PlainSerializer(int),
    Field(gt=0, le=MAX_REQUEST_TOKENS),
    WithJsonSchema(_tokens_schema(1, MAX_REQUEST_TOKENS, "100M")),
]


def _bounded(description: str, field: str) -> str:
    return f"{description} Bounded: {LIMIT_REASONS[field]}."


class MonthlyTokens(_Strict):
    input: MonthlyTokenCount = Field(
        description=_bounded("Prompt tokens a month: an int or 400M, 1.5B, 250k.", "input")
    )
    output: MonthlyTokenCount = Field(
        description=_bounded("Completion tokens a month: an int or 80M, 2B, 500k.", "output")
    )

    @property
    def total(self) -> int:
        return self.input + self.output


class RequestShape(_Strict):
    input_tokens: RequestTokenCount = Field(
        description=_bounded("Prompt tokens of a typical request.", "input_tokens")
    )
    output_tokens: RequestTokenCount = Field(
        description=_bounded("Completion tokens of a typical request.", "output_tokens")
    )


class Assumptions(_Strict):
    """Overrides of the catalog's planning defaults (planner/data/assumptions.yaml)."""

    pricing: Pricing | None = Field(default=None, description="Purchase option for GPU capacity.")
    utilization: float | None = Field(
        default=None,
        ge=MIN_UTILIZATION,
        le=1,
        description=_bounded("Average load over provisioned capacity.", "utilization"),
    )
    serving_efficiency: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="No longer accepted (an error): throughput comes from the "
        "throughput model (docs/cost-model.md).",
    )
    memory_reserve: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Share of GPU memory the serving engine keeps (activations, CUDA graphs).",
    )
    user_output_tps: float | None = Field(
        default=None,
        ge=MIN_USER_OUTPUT_TPS,
        le=MAX_USER_OUTPUT_TPS,
        description=_bounded(
            "Output tokens a second one user reads at (the per-user speed of its throughput).",
            "user_output_tps",
        ),
    )
    request: RequestShape | None = None
    price_date: date | None = Field(default=None, description="Date API prices are read at.")
    price_region: str | None = Field(
        default=None,
        description="A region the catalog has prices for, whose prices stand in for `region`'s "
        "where the catalog has none (the plan warns).",
    )
    engineer_usd_per_month: float | None = Field(
        default=None,
        ge=0,
        le=MAX_ENGINEER_USD_PER_MONTH,
        description=_bounded(
            "Loaded monthly cost of one platform engineer.", "engineer_usd_per_month"
        ),
    )
    pool_fte: float | None = Field(
        default=None,
        ge=0,
        le=MAX_POOL_FTE,
        description=_bounded("Engineers it takes to run one self-hosted pool.", "pool_fte"),
    )
    amortization_months: float | None = Field(
        default=None,
        ge=MIN_AMORTIZATION_MONTHS,
        le=MAX_AMORTIZATION_MONTHS,
        description=_bounded("Horizon bought hardware is written off over.", "amortization_months"),
    )
    instance_types: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The only instance types self-hosted pools may use (catalog names, e.g. "
        "p5.48xlarge); default: every instance type of the catalog.",
    )


_VPC_ID = r"^vpc-[0-9a-f]{8,17}$"
_SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
_ACCOUNT_ID = r"^[0-9]{12}$"


class Consumer(_Strict):
    """Callers of a workload: their range, and where they run (the stack connects a VPC of this
    account; another account is allowed to connect and makes its own endpoint); or, on a
    Kubernetes site, the namespace their pods run in ({namespace, site})."""

    cidr: str | None = Field(
        default=None,
        description="The callers' range, e.g. 10.20.0.0/16 (or give namespace and site).",
    )
    vpc: str | None = Field(
        default=None,
        pattern=_VPC_ID,
        description="The callers' VPC in this account: the stack creates their endpoint there.",
    )
    subnets: list[Annotated[str, Field(pattern=_SUBNET_ID)]] = Field(
        default_factory=list,
        description="With vpc: the subnets (one per availability zone) the endpoint goes in.",
    )
    account: str | None = Field(
        default=None,
        pattern=_ACCOUNT_ID,
        description="Another AWS account (12 digits) whose callers may connect; it makes its own "
        "endpoint.",
    )
    # Kubernetes validates a namespace's name as an RFC 1123 DNS label (kubernetes.io,
    # "Namespaces", Namespaces and DNS; "Object Names and IDs", DNS Label Names).
    namespace: str | None = Field(
        default=None,
        pattern=SITE_NAME,
        description="Instead of cidr: the callers are the pods of this namespace (a DNS label) "
        "of the Kubernetes site `site`; the workload is then served by a pool on that site.",
    )
    site: str | None = Field(
        default=None,
        description="With namespace: the Kubernetes site (a name in `sites`) whose cluster the "
        "namespace is in.",
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR block: {exc}") from None
        if network.prefixlen == 0:
            raise ValueError(f"{value!r} admits every address; name the consumers' networks")
        return value

    @model_validator(mode="after")
    def _where(self) -> Consumer:
        if (self.cidr is None) == (self.namespace is None):
            raise ValueError(
                "give cidr (the callers' range) or namespace with site (pods of a Kubernetes "
                "site), exactly one of them"
            )
        if self.namespace is not None:
            if self.site is None:
                raise ValueError(
                    f"namespace {self.namespace} needs the site (a Kubernetes site of `sites`) "
                    "whose cluster it is in"
                )
            if self.vpc is not None or self.account is not None or self.subnets:
                raise ValueError(
                    "a namespace's pods run in its site's cluster: vpc, subnets and account "
                    "go with a cidr"
                )
            return self
        if self.site is not None:
            raise ValueError("site goes with namespace (pods of that site's cluster), not a cidr")
        if self.vpc is not None and self.account is not None:
            raise ValueError("give vpc (this account) or account (another one), not both")
        if self.vpc is not None and not self.subnets:
            raise ValueError(f"vpc {self.vpc} needs subnets: the endpoint goes in them")
        if self.subnets and self.vpc is None:
            raise ValueError("subnets need the vpc they are in")
        if len(set(self.subnets)) != len(self.subnets):
            raise ValueError("a subnet is listed twice")
        return self


def _plain_cidr(value: Any) -> Any:
    """A bare CIDR string is a consumer inside the stack's own network."""
    return {"cidr": value} if isinstance(value, str) else value


ConsumerEntry = Annotated[
    Consumer, BeforeValidator(_plain_cidr, json_schema_input_type=str | Consumer)
]


class Workload(_Strict):
    name: str = Field(description="Unique, a lowercase DNS label.")
    task: Task
    data: DataClass
    monthly_tokens: MonthlyTokens
    consumers: list[ConsumerEntry] = Field(
        min_length=1,
        description="Who may call the workload: a CIDR (callers inside the stack's own network), "
        "or where the callers run ({cidr, vpc, subnets} in this account, {cidr, account} in "
        "another, {namespace, site} the pods of a namespace of a Kubernetes site).",
    )
    quality: Tier | None = Field(default=None, description="Overrides the task's tier.")
    model: str | None = Field(
        default=None,
        description="Pin a catalog model (open-weights or API) instead of choosing; an "
        "open-weights pin admits that model self-hosted or sold as an API where allowed.",
    )
    peak_tokens_per_second: float | None = Field(
        default=None,
        gt=0,
        le=MAX_PEAK_TOKENS_PER_SECOND,
        description=_bounded(
            "Peak output tokens per second the service must sustain.", "peak_tokens_per_second"
        ),
    )
    request: RequestShape | None = None
    concurrency: int | None = Field(
        default=None,
        gt=0,
        le=MAX_CONCURRENCY,
        description=_bounded(
            "Requests in flight at the busiest time, at any volume: each holds its prompt and "
            "half its output in the KV cache, which they size. Without it, the requests the "
            "volume brings are in the throughput model's batch (no KV load of their own).",
            "concurrency",
        ),
    )
    user_output_tps: float | None = Field(
        default=None,
        ge=MIN_USER_OUTPUT_TPS,
        le=MAX_USER_OUTPUT_TPS,
        description=_bounded(
            "Output tokens a second one user of this workload reads at: the per-user speed its "
            "self-hosted throughput is computed at. Default: the assumptions' user_output_tps.",
            "user_output_tps",
        ),
    )
    cached_input_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share (0 to 1) of the input tokens that repeat a prefix the provider "
        "caches (a RAG corpus, a code base resent): an API charges it at its cache-read price, "
        "and a self-hosted pool skips its prefill (prefix caching).",
    )
    cache_write_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share (0 to 1) of the input tokens not read from the cache (the rest "
        "after cached_input_fraction: the cache's misses) that are written to the provider's "
        "prompt cache (a prefix's first send, and each resend after its cache entry expired): "
        "an API that charges cache writes at a premium (Anthropic: 1.25x the input price for "
        "five-minute caching) charges them at that price. Default 0: a plan that reads from "
        "such a cache without it says the writes are not counted.",
    )
    availability: Availability = Availability.standard
    capacity_reservation_id: str | None = Field(
        default=None, pattern=r"^cr-[0-9a-f]{8,17}$", description="EC2 capacity reservation to use."
    )
    capacity_reservation_zone: str | None = Field(
        default=None,
        pattern=ZONE_PATTERN,
        description="With capacity_reservation_id: the availability zone the reservation is in "
        "(instances launch into a reservation only in its zone).",
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a lowercase DNS label (a-z, 0-9 and '-', at most 63 characters)"
            )
        return value


# A VPC's range is /16 to /28 and a subnet's at least /28 (Amazon VPC user guide, "VPC CIDR
# blocks"); the stack splits each of its networks in four for its subnets (stacks/aws/network.py
# subnet_cidrs), so a /24 still leaves subnets of 59 usable addresses for nodes and endpoints.
NETWORK_PREFIXES = (16, 24)


def _ipv4_cidr(value: str, prefixes: tuple[int, int] | None = None) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{value!r} is IPv6: a VPC's range is IPv4")
    if prefixes is not None and not prefixes[0] <= network.prefixlen <= prefixes[1]:
        raise ValueError(
            f"{value!r} is a /{network.prefixlen}: a network of the stack is /{prefixes[0]} to "
            f"/{prefixes[1]} (a VPC is at most a /16, and the stack splits each network into "
            "subnets for its availability zones)"
        )
    return value


class Network(_Strict):
    """Where the stack's own networks get their ranges: one per self-hosted pool, and the API
    networks (PrivateLink, egress). The planner allocates them at plan time, never overlapping
    each other or a consumer's range, and records them in the plan."""

    space: str = Field(
        default=DEFAULT_SPACE,
        description="The private block every network of the stack is allocated from.",
    )
    pools: str = Field(
        default=DEFAULT_POOLS,
        description="The first pool's range: the next pools take the following ranges of its "
        "size (/16 to /24), skipping taken ones and wrapping round the space.",
    )
    apis: str = Field(
        default=DEFAULT_APIS,
        description="The first API network's range (/16 to /24): the PrivateLink network takes "
        "it, the egress network the next free one.",
    )

    @field_validator("space")
    @classmethod
    def _space(cls, value: str) -> str:
        return _ipv4_cidr(value)

    @field_validator("pools", "apis")
    @classmethod
    def _start(cls, value: str) -> str:
        return _ipv4_cidr(value, NETWORK_PREFIXES)


class WorkloadsFile(_Strict):
    organization: str = Field(min_length=1)
    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region, e.g. us-east-1."
    )
    assumptions: Assumptions = Assumptions()
    network: Network = Field(
        default=Network(),
        description="Where the stack's own networks get their ranges (defaults: pools from "
        "10.100.0.0/16 up, API networks from 10.250.0.0/16, all in 10.0.0.0/8).",
    )
    sites: list[Site] | None = Field(
        default=None,
        min_length=1,
        description="Where self-hosted pools may run: `aws` (EC2 in `region`) and Kubernetes "
        "clusters the organization runs; default: AWS EC2 in `region` only.",
    )
    workloads: list[Workload] = Field(min_length=1)
