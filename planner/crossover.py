"""`planner crossover`: the monthly volume at which self-hosting starts to win, per purchase option,
against the closed frontier API and against the same open model bought as an API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from planner.answers import (
    ApiLine,
    Context,
    FigureBook,
    Row,
    SelfHostedCandidate,
    Unit,
    Unservable,
    crossover_lines,
    decide,
)
from planner.catalog import Catalog
from planner.errors import PlannerError
from planner.loader import LoadedWorkloads, did_you_mean
from planner.plan import settings_for
from planner.workloads import Workload


@dataclass(frozen=True)
class Report:
    workload: str
    self_hosted: str
    monthly_tokens: int
    apis: list[ApiLine]
    units: list[Unit]
    rows: list[Row]


def report_for(ctx: Context, index: int, workload: Workload) -> Report | None:
    answers, _, _ = decide(ctx, index, workload)
    # The self-hosted option the plan would pick: cheapest, then the smaller model.
    own = min(
        (o for o in answers.volume_economics.options if o.placement == "self_hosted"),
        key=lambda o: (o.monthly_cost_usd, ctx.model_sizes[o.model], o.id),
        default=None,
    )
    if own is None:
        return None
    candidate: SelfHostedCandidate = ctx.by_option[own.id]
    apis, units, rows = crossover_lines(ctx, candidate, [workload])
    return Report(workload.name, own.id, workload.monthly_tokens.total, apis, units, rows)


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


def _tokens(volume: float | None) -> str:
    if volume is None:
        return "never"
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if volume >= size:
            return f"{volume / size:,.3g}{suffix}"
    return f"{volume:,.0f}"


def render_table(found: list[Report]) -> str:
    lines = []
    for report in found:
        lines.append(
            f"{report.workload}: {report.self_hosted} against the APIs "
            f"(this workload: {_tokens(report.monthly_tokens)} tokens a month)"
        )
        lines.append(
            f"  {'comparison':<27} {'API':<26} {'purchase':<12} {'tokens/month':>13} "
            f"{'API spend/month':>16}"
        )
        for row in report.rows:
            spend = "-" if row.api_monthly_usd is None else f"{row.api_monthly_usd:,.0f} USD"
            lines.append(
                f"  {row.comparison:<27} {row.api_id:<26} {row.purchase:<12} "
                f"{_tokens(row.monthly_tokens):>13} {spend:>16}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def chart_points(report: Report, points: int = 9) -> tuple[list[float], dict[str, list[float]]]:
    """Volumes up to twice the farthest crossover (or this workload's volume), and each line."""
    finite = [r.monthly_tokens for r in report.rows if r.monthly_tokens is not None]
    top = 2 * max([*finite, float(report.monthly_tokens), report.units[0].tokens])
    volumes = [top * i / (points - 1) for i in range(points)]
    lines: dict[str, list[float]] = {}
    for api in report.apis:
        lines[api.api_id] = [api.cost(v) for v in volumes]
    for unit in report.units:
        if unit.purchase in ("on_demand", "savings_3yr"):
            lines[f"self-hosted {unit.purchase}"] = [unit.cost(v) for v in volumes]
    return volumes, lines


def write_chart(report: Report, path: Path) -> None:
    """Monthly cost against monthly volume, crossovers marked: PNG or SVG by the file's suffix."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ai-infra-planner"  # the same SVG every time
    from matplotlib import pyplot

    volumes, lines = chart_points(report, points=200)
    figure, axes = pyplot.subplots(figsize=(8, 5))
    for label, values in lines.items():
        style = "steps-post" if label.startswith("self-hosted") else "default"
        axes.plot([v / 1e9 for v in volumes], values, label=label, drawstyle=style)
    for row in report.rows:
        if row.monthly_tokens is None or row.api_monthly_usd is None:
            continue
        if row.purchase in ("on_demand", "savings_3yr"):
            api = next(a for a in report.apis if a.api_id == row.api_id)
            point = (row.monthly_tokens / 1e9, api.cost(row.monthly_tokens))
            axes.plot([point[0]], [point[1]], "o", color="black")
            axes.annotate(f"{row.purchase} vs {row.api_id}", point, fontsize=7)
    axes.axvline(report.monthly_tokens / 1e9, linestyle=":", color="grey", label="this workload")
    axes.set_xlabel("tokens a month (billions)")
    axes.set_ylabel("USD a month")
    axes.set_title(f"{report.workload}: {report.self_hosted} against the APIs")
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {}
    figure.savefig(path, metadata=metadata)
    pyplot.close(figure)
