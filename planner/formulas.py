"""The formulas plan.json and plan.md show beside each cost, written from the terms the costing
and the planning compute (issue 15: formula text lives with the writers, not inside the
arithmetic). The arithmetic returns numbers and the small records below (what each piece is,
its count, rate and basis); the functions here turn them into the plan's sentences, with the
amounts written by planner/fmt.py. A formula's bytes are part of plan.json: a change here is a
change of every plan.

Where a formula is assembled per workload and option, its parts that do not depend on both are
written once and kept (SelfHostedCandidate.cost_text, ShapeLimits.texts, Demand.texts,
ApiQuote's texts, Context.formula_tails): the writers for those parts are the `*_text`
functions, and the sentence joining them is `self_hosted_formula` / `api_formula`.

About 570 lines on purpose: every formula's wording in one place, so a reviewer reads what the
plan says of a cost here and nowhere else. The reasons a decision gives (planning/decide.py,
crossings.py) stay with the steps that decide: they say why, not how a cost is made up."""

from __future__ import annotations

from dataclasses import dataclass

from planner.fmt import (
    tokens_per_second,
    tokens_text,
    usd,
    usd_cents,
    usd_per_hour,
    usd_per_mtok,
    usd_whole,
)

# ---- Fixed pieces (costing/fixed.py) ----


@dataclass(frozen=True, slots=True)
class PiecePrice:
    """One network or security piece at its list price a month, and what it is."""

    monthly_usd: float
    what: str


@dataclass(frozen=True, slots=True)
class PiecesTerms:
    """Pieces of some kinds (operations.yaml) priced, and their sum before rounding to the cent."""

    pieces: tuple[PiecePrice, ...]
    total_usd: float


@dataclass(frozen=True, slots=True)
class PoolFixedTerms:
    """A pool's cost besides its nodes: a share of an engineer and its network pieces."""

    fte: float
    engineer_usd: float
    staff_usd: float
    pieces: PiecesTerms


def pieces_formula(terms: PiecesTerms) -> str:
    """'16.43 (NAT gateway) + ... = 73.00 USD', or that there is nothing."""
    if not terms.pieces:
        return f"nothing of its own in this stack = {usd(0.0)}"
    parts = " + ".join(f"{usd_cents(p.monthly_usd)} ({p.what})" for p in terms.pieces)
    return f"{parts} = {usd(terms.total_usd)}"


def pool_fixed_formula(terms: PoolFixedTerms) -> str:
    return (
        f"operations {terms.fte:g} engineer x {usd_whole(terms.engineer_usd)} = "
        f"{usd(terms.staff_usd)}; network and security {pieces_formula(terms.pieces)}"
    )


def fixed_formula(terms: PiecesTerms | PoolFixedTerms) -> str:
    """A fixed cost's formula (costing.FixedCost.terms)."""
    if isinstance(terms, PoolFixedTerms):
        return pool_fixed_formula(terms)
    return pieces_formula(terms)


def hourly_quantity(count: int, usd_per_hour: object, hours: float, what: str) -> str:
    """A resource priced by the hour, as aws_prices.list_price says its quantity:
    '2 x 0.045 USD/h x 730 h (NAT gateways)'. The price is written as the data file gives it
    (aws_prices.yaml), not rounded."""
    return f"{count} x {usd_per_hour} USD/h x {hours:.0f} h ({what})"


def monthly_quantity(count: int, usd_per_month: float, what: str) -> str:
    """A resource priced by the month: '1 x 0.40 USD/month (the API key's secret)'. Unique to
    this quantity: to the cent without thousands separators (a list price a month of one
    resource is never a thousand dollars; the bytes are those plans and previews have shown)."""
    return f"{count} x {usd_per_month:.2f} USD/month ({what})"


@dataclass(frozen=True, slots=True)
class PricedResource:
    """One resource a connection makes in a consumer VPC: its price a month (to the cent, as
    `planner preview` prices it) and its quantity as aws_prices.list_price says it."""

    monthly_usd: float
    quantity: str


@dataclass(frozen=True, slots=True)
class ConnectionTerms:
    """What the stack adds in one consumer VPC for one service, and its sum in whole cents."""

    resources: tuple[PricedResource, ...]
    cents: int


def connection_formula(terms: ConnectionTerms) -> str:
    """'7.30 USD: 1 x 0.01 USD/h x 730 h (...); together 7.30 USD'."""
    parts = [f"{usd(r.monthly_usd)}: {r.quantity}" for r in terms.resources]
    return "; ".join([*parts, f"together {usd(terms.cents / 100)}"])


# ---- Node prices (costing/node_prices.py) ----


@dataclass(frozen=True, slots=True)
class SpotBasis:
    """A published spot price with the premium pricing.yaml adds for interruptions and the
    on-demand fallback; `capped_at` the on-demand price where the premium's high end reaches it."""

    usd_per_hour: float
    date: str
    premium: float
    capped_at: float | None


@dataclass(frozen=True, slots=True)
class PublishedBasis:
    """A published rate of the instance type ('1-year rate', ...)."""

    label: str
    usd_per_hour: float
    date: str


@dataclass(frozen=True, slots=True)
class MultiplierBasis:
    """The on-demand price times the purchase option's multiplier; `inferred` where the
    option is not on-demand (no published rate was found)."""

    on_demand_usd_per_hour: float
    multiplier: float
    inferred: bool


@dataclass(frozen=True, slots=True)
class SiteNodeBasis:
    """A cluster's node a month as bought hardware (planner/targets/kubernetes.py): power x PUE x
    electricity x hours, hosting, and for a purchase the capital over the horizon."""

    owned: bool
    power_kw: float
    pue: float
    usd_per_kwh: float
    hours: float
    power_usd: float
    hosting_usd: float
    capital_usd: float | None
    horizon_months: float | None
    capital_month_usd: float
    monthly_usd: float


def site_node_formula(basis: SiteNodeBasis) -> str:
    """'7 kW x PUE 1.3 x 0.12 USD/kWh x 730 h = 797.16 USD power + 600.00 USD hosting
    [+ 285,000 USD / 18 months = 15,833.33 USD capital] = ... USD a node-month'."""
    text = (
        f"{basis.power_kw:g} kW x PUE {basis.pue:g} x {basis.usd_per_kwh:g} USD/kWh x "
        f"{basis.hours:,.0f} h = {usd(basis.power_usd)} power + {usd(basis.hosting_usd)} hosting"
    )
    if basis.capital_usd is not None and basis.horizon_months is not None:
        text += (
            f" + {usd_whole(basis.capital_usd)} / {basis.horizon_months:g} months = "
            f"{usd(basis.capital_month_usd)} capital"
        )
    return f"{text} = {usd(basis.monthly_usd)} a node-month"


RateBasis = SpotBasis | PublishedBasis | MultiplierBasis | SiteNodeBasis


def rate_basis(basis: RateBasis) -> str:
    """What a node's hourly rate rests on (costing.NodeRate.basis)."""
    if isinstance(basis, SpotBasis):
        capped = (
            ""
            if basis.capped_at is None
            else f", at most on-demand {usd_per_hour(basis.capped_at)}"
        )
        return (
            f"published spot {usd_per_hour(basis.usd_per_hour)} ({basis.date}) x (1 + "
            f"{basis.premium:g} interruption and fallback premium){capped}"
        )
    if isinstance(basis, PublishedBasis):
        return f"published {basis.label} {usd_per_hour(basis.usd_per_hour)} ({basis.date})"
    if isinstance(basis, SiteNodeBasis):  # the formula names it owned or bought before this
        return site_node_formula(basis)
    inferred = ", inferred: no published rate found" if basis.inferred else ""
    return (
        f"on-demand {usd_per_hour(basis.on_demand_usd_per_hour)} x {basis.multiplier:g}{inferred}"
    )


@dataclass(frozen=True, slots=True)
class RentedNodesTerms:
    """A pool's nodes a month under a purchase option: nodes x hourly rate x hours."""

    nodes: int
    usd_per_hour: float
    basis: RateBasis
    hours: float
    monthly_usd: float


@dataclass(frozen=True, slots=True)
class BoughtNodesTerms:
    """A pool's nodes bought outright: capital over the horizon plus power, a month."""

    nodes: int
    capital_usd: float
    capital_date: str
    horizon_months: float
    power_kw: float
    pue: float
    usd_per_kwh: float
    hours: float
    monthly_usd: float


@dataclass(frozen=True, slots=True)
class SiteNodesTerms:
    """A pool's nodes on a cluster a month: nodes x a node-month (SiteNodeBasis)."""

    nodes: int
    basis: SiteNodeBasis
    monthly_usd: float


def purchase_formula(terms: RentedNodesTerms | BoughtNodesTerms | SiteNodesTerms) -> str:
    """A purchase option's formula (costing.PurchaseCost.formula)."""
    if isinstance(terms, SiteNodesTerms):
        return f"{terms.nodes} x ({site_node_formula(terms.basis)}) = {usd(terms.monthly_usd)}"
    if isinstance(terms, RentedNodesTerms):
        return (
            f"{terms.nodes} x {usd_per_hour(terms.usd_per_hour)} ({rate_basis(terms.basis)}) x "
            f"{terms.hours:,.0f} h = {usd(terms.monthly_usd)}"
        )
    # The power figures are written as the data file gives them (no rounding).
    return (
        f"{terms.nodes} x ({usd_whole(terms.capital_usd)} ({terms.capital_date}) / "
        f"{terms.horizon_months:g} months + {terms.power_kw} kW x "
        f"PUE {terms.pue} x {terms.usd_per_kwh} USD/kWh x {terms.hours:,.0f} h)"
        f" = {usd(terms.monthly_usd)}, before hosting, staff and networking"
    )


# ---- A self-hosted option (planning/candidates.py, demand.py, options.py) ----


def node_price_text(usd_per_hour_: float, pricing: str, basis: RateBasis, hours: float) -> str:
    """The part of a self-hosted option's cost between its node count and its amount:
    ' x 98.32 USD/h (on_demand: ...) x 730 h = ' (SelfHostedCandidate.cost_text)."""
    return f" x {usd_per_hour(usd_per_hour_)} ({pricing}: {rate_basis(basis)}) x {hours:,.0f} h = "


@dataclass(frozen=True, slots=True)
class ShapeTexts:
    """The parts of a self-hosted option's formula that depend on the candidate and the
    request shape only (planning.ShapeLimits), written once."""

    output: str
    total: str
    peak: str
    kv_ceiling: str


def shape_texts(
    output_tps: float,
    total_tps: float,
    utilization: float,
    input_tokens: int,
    output_tokens: int,
    user_output_tps: float,
    bound: str,
    kv_tokens_per_unit: float,
    kv_gb_per_unit: float,
    kv_kib_per_token: float,
    kv_cache_precision: str,
) -> ShapeTexts:
    """What a unit serves at a request shape: its output and total rates (tok/s, the throughput
    factor applied, before utilization for `output_tps` and `total_tps`), and the KV tokens it
    holds."""
    return ShapeTexts(
        output=(
            f"{tokens_per_second(output_tps * utilization)} ({tokens_per_second(output_tps)} "
            f"output tok/s a unit at {input_tokens:,}/{output_tokens:,} tokens and "
            f"{user_output_tps:g} tok/s per user, bound: {bound}, x utilization)"
        ),
        total=tokens_per_second(total_tps * utilization),
        peak=tokens_per_second(output_tps),
        kv_ceiling=(
            f"{tokens_text(kv_tokens_per_unit)} tokens a unit holds "
            f"({kv_gb_per_unit:,.1f} GB / {kv_kib_per_token:,.1f} KiB a token at "
            f"{kv_cache_precision})"
        ),
    )


@dataclass(frozen=True, slots=True)
class DemandTexts:
    """The parts of a workload's option formulas that do not depend on the option
    (planning.Demand), written once per workload."""

    units_head: str
    total_head: str
    peak_head: str
    kv_head: str
    api_head_in: str
    api_head_out: str


def demand_texts(
    utilization: float,
    min_units: int,
    availability: str,
    output_tps: float,
    total_tps: float,
    peak_tps: float | None,
    in_flight: int | None,
    held_tokens: float,
    request_in: int,
    request_out: int,
    output_share: float,
    input_tokens: int,
    output_tokens: int,
) -> DemandTexts:
    """A workload's load: its average output and total rates, its peak, its stated requests in
    flight (None: no KV term, Demand.kv_tokens says why) and the KV cache each holds on average
    (its prompt and that share of its output), and its monthly tokens."""
    return DemandTexts(
        units_head=(
            f"load / what a unit serves at this request shape (throughput model) x "
            f"utilization {utilization}: "
            f"units = max({min_units} ({availability} availability), "
            f"ceil(max(output {tokens_per_second(output_tps)} tok/s / "
        ),
        total_head=f", total {tokens_per_second(total_tps)} tok/s / ",
        peak_head=f", peak {peak_tps:,.0f} tok/s / " if peak_tps else "",
        kv_head=(
            ""
            if in_flight is None
            else f", KV cache {in_flight:,} request(s) in flight (its concurrency) x "
            f"{held_tokens:,.0f} tokens held (prompt {request_in:,} + {output_share:g} x "
            f"output {request_out:,}) / "
        ),
        api_head_in=f"{tokens_text(input_tokens)} input x ",
        api_head_out=f"{tokens_text(output_tokens)} output x ",
    )


def self_hosted_tail(
    units: int,
    nodes_per_unit: int,
    nodes: int,
    cost_text: str,
    node_cost_usd: float,
    pool_fixed: str,
    total_usd: float,
) -> str:
    """A self-hosted option's formula after its load: the units, the nodes and their cost, the
    pool's fixed cost (its formula) and the total."""
    return (
        f"))) = {units}; nodes = {units} x {nodes_per_unit} = {nodes}; "
        f"cost = {nodes}{cost_text}{usd(node_cost_usd)}; plus per pool "
        f"{pool_fixed}; total {usd(total_usd)}"
    )


def self_hosted_formula(demand: DemandTexts, shape: ShapeTexts, tail: str) -> str:
    """units = max(minimum, ceil(max(output / what a unit serves, total / ..., peak / ...,
    KV cache of a stated concurrency / what a unit holds))), then the tail
    (self_hosted_tail)."""
    peak = demand.peak_head + shape.peak if demand.peak_head else ""
    return (
        demand.units_head
        + shape.output
        + demand.total_head
        + shape.total
        + peak
        + (demand.kv_head + shape.kv_ceiling if demand.kv_head else "")
        + tail
    )


# ---- An API option (planning/quotes.py, options.py) ----


def api_input_price_text(usd_per_mtok_: float) -> str:
    return f"{usd_per_mtok(usd_per_mtok_)} + "


def api_output_price_text(usd_per_mtok_: float, request_in: int, request_out: int) -> str:
    return (
        f"{usd_per_mtok(usd_per_mtok_)} (prices for a request of "
        f"{request_in:,} input / {request_out:,} output tokens) = "
    )


@dataclass(frozen=True, slots=True)
class CacheTerm:
    """A share of the input charged at a prompt-cache price: read ('cached',
    cached_input_fraction) or written ('written', cache_write_fraction `of` the uncached
    share, where some is read)."""

    share: float
    role: str
    key: str
    of: tuple[float, float] | None
    usd_per_mtok: float
    what: str


def cache_term_text(term: CacheTerm) -> str:
    of = "" if term.of is None else f" {term.of[0]:g} of the uncached {term.of[1]:g}"
    return (
        f"{term.share:g} {term.role} ({term.key}_fraction{of}) x "
        f"{usd_per_mtok(term.usd_per_mtok)} cache {term.what}"
    )


def no_cache_price_note(api_id: str, what: str, role: str, share: float) -> str:
    return f"no cache-{what} price for {api_id}: its {role} share {share:g} is charged as input"


def uncounted_cache_writes_note(api_id: str, write_usd_per_mtok: float) -> str:
    return (
        f"cache writes not counted: {api_id} charges them {usd_per_mtok(write_usd_per_mtok)}, "
        "and the file gives no cache_write_fraction"
    )


def cache_input_text(
    input_tokens: int,
    plain_share: float,
    input_usd_per_mtok: float,
    terms: list[CacheTerm],
    notes: list[str],
) -> str:
    """The input part of an API option's formula when the workload uses the prompt cache:
    the uncached share at the input price, each cache share at its price, and the notes."""
    parts = [f"{plain_share:g} x {usd_per_mtok(input_usd_per_mtok)}"]
    parts += [cache_term_text(t) for t in terms]
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{tokens_text(input_tokens)} input x ({' + '.join(parts)}){note} + "


def api_formula(
    input_text: str,
    output_head: str,
    output_text: str,
    usage_usd: float,
    access: str,
    access_usd: float,
) -> str:
    """An API option's formula: its input and output tokens at their prices, then its access
    standing alone (a fixed cost's formula) and the total."""
    return (
        f"{input_text}{output_head}{output_text}"
        f"{usd(usage_usd)}; plus, standing alone, its access: {access}; total "
        f"{usd(usage_usd + access_usd)}"
    )


# ---- A pool (planning/pools.py) ----


@dataclass(frozen=True, slots=True)
class PoolSizingTerms:
    """How a pool's nodes follow from its members' loads in units of its option."""

    minimum: int
    volume_units: float
    peak_units: float
    kv_units: float
    units: int
    members: int
    instance_type: str
    nodes_per_unit: int
    nodes: int


def pool_sizing_formula(terms: PoolSizingTerms) -> str:
    per_unit = terms.nodes_per_unit
    unit = "node" if per_unit == 1 else f"{per_unit}-node replica"
    return (
        f"units = max(largest minimum {terms.minimum}, ceil(volume {terms.volume_units:,.4f}), "
        f"ceil(peak {terms.peak_units:,.4f})"
        # Only members that state a concurrency load the KV cache (Demand.kv_tokens).
        + (f", ceil(KV cache {terms.kv_units:,.4f})" if terms.kv_units else "")
        + ") = "
        f"{terms.units}, the sums of {terms.members} member(s)' loads in units of one "
        f"{terms.instance_type} {unit}; nodes = {terms.units} x {per_unit} = {terms.nodes}"
    )


# ---- `planner tco` (cli/tco.py) ----


@dataclass(frozen=True, slots=True)
class TotalConversion:
    """How a price per million output tokens becomes one per million tokens of both kinds: the
    measured run's total rate (`measured`), or the request's input and output tokens."""

    output_tps: float
    input_tokens: int
    output_tokens: int
    measured: bool


@dataclass(frozen=True, slots=True)
class TcoTerms:
    """The article's formula: hourly price / (tokens a second x utilization x 3600) x 1e6."""

    usd_per_hour: float
    tokens_per_second: float
    utilization: float
    usd_per_million: float
    kind: str
    conversion: TotalConversion | None


def measured_run_text(output_tps: float, total_tps: float, model: str, shape: str) -> str:
    return (
        f"the measured run of {tokens_per_second(output_tps, 2)} output tok/s and "
        f"{tokens_per_second(total_tps, 2)} total (models.yaml {model} throughput: {shape})"
    )


def tco_formula(terms: TcoTerms) -> str:
    """The formula `planner tco` prints. Its price per million tokens has four decimals, unique
    to it (a price that small is where the comparison happens)."""
    text = (
        f"{usd_per_hour(terms.usd_per_hour)} / ({tokens_per_second(terms.tokens_per_second, 2)} "
        f"tok/s x {terms.utilization} x 3600 s) x 1e6 = "
        f"{terms.usd_per_million:,.4f} USD per million {terms.kind}"
    )
    c = terms.conversion
    if c is None:
        return text
    if c.measured:
        return text + (
            f" ({tokens_per_second(terms.tokens_per_second, 2)} total tok/s of the measured run "
            f"at about {c.input_tokens:,} input / {c.output_tokens:,} output tokens a request, "
            f"models.yaml, for its {tokens_per_second(c.output_tps, 2)} output tok/s)"
        )
    return text + (
        f" ({tokens_per_second(c.output_tps, 2)} output tok/s x ({c.input_tokens:,} + "
        f"{c.output_tokens:,}) / {c.output_tokens:,} tokens a request)"
    )


def usd_per_million_line(usd_per_million: float) -> str:
    """`planner tco`'s headline price: to the cent without thousands separators, unique to that
    line (the bytes it has always printed)."""
    return f"{usd_per_million:.2f}"
