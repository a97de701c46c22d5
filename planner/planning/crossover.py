"""`planner crossover`: every monthly volume at which the cheaper of self-hosting and an API
changes, per purchase option, against the APIs the workload may use."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from planner.catalog import Catalog
from planner.catalog.vocabulary import Pricing
from planner.errors import PlannerError
from planner.fmt import usd_whole
from planner.inputs.loader import LoadedWorkloads
from planner.inputs.messages import did_you_mean
from planner.inputs.workloads import Workload
from planner.outputs import versioned
from planner.planning.callers import callers_site, callers_text
from planner.planning.context import Context
from planner.planning.crossings import (
    ApiLine,
    Row,
    Unit,
    admissible_apis,
    crossover_lines,
    own_option,
)
from planner.planning.decide import Unservable, decide
from planner.planning.figures import FigureBook
from planner.planning.settings import settings_for


@dataclass(frozen=True)
class Report:
    workload: str
    self_hosted: str | None  # None: the workload has no self-hosted option (asked by name)
    monthly_tokens: int
    apis: list[ApiLine]
    units: list[Unit]
    rows: list[Row]
    # The plan's purchase option (the one the chart draws), or owned / bought where the
    # self-hosted option is a cluster site's bought hardware (its only row).
    pricing: str
    # Why no API is compared, when none is.
    no_api: str = "its tier and perimeter admit no API (or none with its context)"


def report_for(ctx: Context, index: int, workload: Workload) -> Report | None:
    answers, _, _ = decide(ctx, index, workload)
    options = answers.volume_economics.options
    # The self-hosted option the plan's break-even compares (crossings.own_option), against the
    # APIs this workload may use.
    own = own_option(ctx, options)
    if own is None:
        return None
    candidate = ctx.by_option[own.id]
    apis, units, rows = crossover_lines(ctx, candidate, [workload], admissible_apis(options))
    return Report(
        workload.name,
        own.id,
        workload.monthly_tokens.total,
        apis,
        units,
        rows,
        # The plan's purchase option, or a cluster's owned or bought hardware.
        candidate.target.purchase_label(ctx.settings.pricing).value,
        *(
            [f"{callers_text(workload)}, which no API reaches"]
            if callers_site(workload) is not None
            else []
        ),
    )


def reports(loaded: LoadedWorkloads, catalog: Catalog, name: str | None) -> list[Report]:
    spec = loaded.spec
    book = FigureBook()
    ctx = Context(catalog=catalog, settings=settings_for(catalog, spec, book), book=book,
                  region=spec.region)  # fmt: skip
    found = []
    problems = []
    for index, workload in enumerate(spec.workloads):
        if name is not None and workload.name != name:
            continue
        try:
            report = report_for(ctx, index, workload)
        except Unservable as exc:  # bad input, as `planner plan` reports it
            problems += [replace(p, line=loaded.lines.line_of_field(p.field)) for p in exc.problems]
            continue
        if report is not None:
            found.append(report)
        elif name is not None:  # asked for by name: say there is nothing to cross
            found.append(
                Report(workload.name, None, workload.monthly_tokens.total, [], [], [],
                       ctx.settings.pricing.value)
            )  # fmt: skip
    if problems:
        raise PlannerError(str(loaded.path), problems)
    if name is not None and not any(w.name == name for w in spec.workloads):
        names = [w.name for w in spec.workloads]
        raise PlannerError.single(
            str(loaded.path),
            "workloads[].name",
            f"no workload named {name!r}{did_you_mean(name, names) or ';'} there are: "
            + ", ".join(names),
        )
    return found


PURCHASE_OPTIONS = {option.value for option in Pricing}


def _tokens(volume: float | None) -> str:
    """A volume in the crossover table's columns: unique to that table (no 'k', as its
    volumes are millions and more; fmt.tokens_text is the format elsewhere), and kept so that
    `planner crossover`'s text reads as before."""
    if volume is None:
        return "never"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if volume >= size:
            return f"{volume / size:,.3g}{suffix}"
    return f"{volume:,.0f}"


def _later(row: Row) -> str:
    """The crossings after the first: where the API wins again, and self-hosting after it."""
    parts = [
        f"{'API' if c.placement == 'cloud_api' else 'self-hosted'} from {_tokens(c.monthly_tokens)}"
        + (" (site full)" if c.monthly_tokens == row.site_full_tokens else "")
        for c in row.crossings[1:]
    ]
    if row.truncated:
        parts.append("more")
    return ", ".join(parts) or "-"


NO_SELF_HOSTED = (
    "no self-hosted option: no open model of its tier serves it (`planner explain` says why), "
    "so there is nothing to cross"
)


def render_json(found: list[Report]) -> str:
    """`planner crossover --json`: per workload, its self-hosted option, the APIs and purchase
    options compared (each API's price per token and fixed access, each option's unit), and
    every crossing the table lists, with the side that is cheaper from it on."""
    document = {
        "workloads": [
            {
                "workload": report.workload,
                "self_hosted": report.self_hosted,
                **({} if report.self_hosted else {"reason": NO_SELF_HOSTED}),
                "monthly_tokens": report.monthly_tokens,
                "pricing": report.pricing,
                "apis": [asdict(line) for line in report.apis],
                "units": [asdict(unit) for unit in report.units],
                "rows": [asdict(row) for row in report.rows],
            }
            for report in found
        ]
    }
    return json.dumps(versioned("crossover", document), indent=2, sort_keys=True) + "\n"


def render_table(found: list[Report]) -> str:
    lines = []
    for report in found:
        if report.self_hosted is None:
            lines += [f"{report.workload}: {NO_SELF_HOSTED}", ""]
            continue
        paid = (
            f"the plan buys {report.pricing}"
            if report.pricing in PURCHASE_OPTIONS
            else f"its nodes are {report.pricing} hardware, under any purchase option"
        )
        head = (
            f"{report.workload}: {report.self_hosted} against the APIs it may use "
            f"(this workload: {_tokens(report.monthly_tokens)} tokens a month; {paid}"
        )
        if not report.rows:
            lines.append(head + ")")
            lines.append(f"  none: {report.no_api}")
            lines.append("")
            continue
        lines.append(head + f"; crossings up to {_tokens(report.rows[0].max_tokens)})")
        lines.append(
            f"  {'comparison':<25} {'API':<26} {'purchase':<12} {'self-hosted from':>16} "
            f"{'API spend/month':>16}  then cheaper"
        )
        for row in report.rows:
            spend = "-" if row.api_monthly_usd is None else usd_whole(row.api_monthly_usd)
            lines.append(
                f"  {row.comparison:<25} {row.api_id:<26} {row.purchase:<12} "
                f"{_tokens(row.monthly_tokens):>16} {spend:>16}  {_later(row)}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _steps(unit: Unit, top: float) -> tuple[list[float], list[float]]:
    """The self-hosted staircase, exactly: a corner at every unit boundary up to `top`."""
    xs, ys = [0.0], [unit.cost(0.0)]
    k = unit.min_units
    while k * unit.tokens < top and len(xs) < 4000:
        edge = k * unit.tokens
        xs += [edge, edge]
        ys += [unit.cost(edge), unit.cost(edge * (1 + 1e-9) + 1)]
        k += 1
    xs.append(top)
    ys.append(unit.cost(top))
    return xs, ys


def _top(report: Report) -> float:
    shown = [
        c.monthly_tokens for r in report.rows if r.purchase == report.pricing for c in r.crossings
    ]
    return 1.25 * max([*shown, float(report.monthly_tokens), report.units[0].tokens])


def write_chart(report: Report, path: Path) -> None:
    """Monthly cost against monthly volume at the plan's purchase option, every crossing and the
    workload's current volume marked: PNG or SVG by the file's suffix."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ai-infra-planner"  # the same SVG every time
    from matplotlib import pyplot
    from matplotlib.ticker import FuncFormatter

    top = _top(report)
    scale = 1e6  # x in millions of tokens
    figure, axes = pyplot.subplots(figsize=(9, 5.5))
    for api in report.apis:
        axes.plot([0, top / scale], [api.cost(0), api.cost(top)],
                  label=f"{api.api_id} ({api.comparison})")  # fmt: skip
    unit = next(u for u in report.units if u.purchase == report.pricing)
    # On a cluster site the staircase ends where the site is full.
    xs, ys = _steps(unit, min(top, unit.most_tokens))
    axes.plot([x / scale for x in xs], ys, label=f"{report.self_hosted} ({report.pricing})",
              color="black", linewidth=1.6)  # fmt: skip
    for row in report.rows:
        if row.purchase != report.pricing:
            continue
        api = next(a for a in report.apis if a.api_id == row.api_id)
        for crossing in row.crossings:
            x, y = crossing.monthly_tokens / scale, api.cost(crossing.monthly_tokens)
            marker = "o" if crossing.placement == "self_hosted" else "x"
            axes.plot([x], [y], marker, color="black", markersize=6)
        if row.crossings:
            first = row.crossings[0]
            axes.annotate(
                f"self-hosted cheaper from {first.monthly_tokens / scale:,.0f}M vs {row.api_id}",
                (first.monthly_tokens / scale, api.cost(first.monthly_tokens)),
                textcoords="offset points", xytext=(6, -12), fontsize=7,
            )  # fmt: skip
    now = report.monthly_tokens
    axes.axvline(now / scale, linestyle="--", color="red", linewidth=1.4,
                 label=f"this workload: {now / scale:,.0f}M tokens a month")  # fmt: skip
    served = now <= unit.most_tokens
    if served:
        axes.plot([now / scale], [unit.cost(now)], "s", color="red", markersize=7)
    # Named beside its line too: a volume far below the crossings sits on the y-axis.
    axes.annotate(
        f"this workload: {now / scale:,.0f}M",
        (now / scale, unit.cost(now) if served or not report.apis else report.apis[0].cost(now)),
        textcoords="offset points", xytext=(28, 28), fontsize=8, color="red",
        arrowprops={"arrowstyle": "->", "color": "red"},
    )  # fmt: skip
    for api in report.apis:
        axes.plot([now / scale], [api.cost(now)], "s", color="red", markersize=7)
    # The chart's labels (millions of tokens, whole dollars on the axis) are unique to it.
    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    axes.xaxis.set_major_formatter(thousands)
    axes.yaxis.set_major_formatter(thousands)
    axes.set_xlim(0, top / scale)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("tokens a month (millions)")
    axes.set_ylabel("USD a month")
    axes.set_title(
        f"{report.workload}: {report.self_hosted} ({report.pricing}) against the APIs it may use"
        "\no: self-hosting cheaper from here, x: the API cheaper again",
        fontsize=9,
    )
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {}
    figure.savefig(path, metadata=metadata)
    pyplot.close(figure)
