"""`planner crossover`: break-even volumes per purchase option against two comparisons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planner.catalog import Catalog
from planner.cli import main
from planner.crossover import reports
from planner.loader import load_workloads
from tests.conftest import EXAMPLE


@pytest.fixture
def scout_example(tmp_path: Path) -> Path:
    """The example with patient-notes pinned to Llama 4 Scout: a model sold as an API too (on
    Bedrock), so both comparisons appear. (Unpinned, the throughput model makes Llama 3.3 70B
    on p5.4xlarge cheapest, which the catalog sells as no API.)"""
    target = tmp_path / "scout.yaml"
    target.write_text(
        EXAMPLE.read_text().replace(
            "    availability: high", "    availability: high\n    model: llama-4-scout"
        )
    )
    return target


def test_rows_cross_where_the_lines_meet(catalog: Catalog, scout_example: Path) -> None:
    [report] = reports(load_workloads(scout_example, catalog), catalog, "patient-notes")
    assert report.self_hosted == "self_hosted/llama-4-scout/p5.48xlarge"
    assert {api.comparison for api in report.apis} == {
        "closed frontier API",
        "same open model as an API",
    }
    assert {row.purchase for row in report.rows} == {
        "on_demand", "spot", "savings_1yr", "savings_3yr",
    }  # fmt: skip
    apis = {api.api_id: api for api in report.apis}
    units = {unit.purchase: unit for unit in report.units}
    crossed = 0
    for row in report.rows:
        api, unit = apis[row.api_id], units[row.purchase]
        if row.monthly_tokens is None:
            # Never: one unit's capacity is worth less through the API than the unit.
            assert api.usd_per_token * unit.tokens < unit.monthly_usd
            continue
        crossed += 1
        volume = row.monthly_tokens
        assert api.cost(volume) == pytest.approx(unit.cost(volume), rel=1e-6)
        assert api.cost(volume * 0.99) < unit.cost(volume * 0.99)
        assert row.api_monthly_usd == pytest.approx(api.usd_per_token * volume)
    assert crossed >= 2
    # Against Bedrock's own Llama 4 Scout, self-hosting never wins at these assumptions.
    assert all(r.monthly_tokens is None for r in report.rows if r.api_id == "bedrock-llama-4-scout")


@pytest.fixture
def example(project: Path) -> Path:
    target = project / "workloads.yaml"
    target.write_text(EXAMPLE.read_text())
    return target


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["crossover", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_and_deterministic_svg(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(example), "patient-notes", "--chart", "chart.svg")
    assert code == 0
    assert "closed frontier API" in out and "gemini-3.1-pro" in out and "never" in out
    first = (project / "chart.svg").read_bytes()
    assert first.startswith(b"<?xml") and b"patient-notes" in first
    assert run(capsys, str(example), "patient-notes", "--chart", "chart.svg")[0] == 0
    assert (project / "chart.svg").read_bytes() == first


def test_png_per_workload(example: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, str(example), "--chart", "charts/x.png")
    assert code == 0
    written = sorted(p.name for p in (project / "charts").iterdir())
    assert "x-patient-notes.png" in written and len(written) == 4
    assert (project / "charts/x-patient-notes.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nobody"], "no workload named 'nobody'"),
        (["patient-notes", "--chart", "chart.pdf"], ".svg or .png"),
    ],
)
def test_bad_arguments(
    example: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needle: str,
    write_workloads: Callable[[str], Path],
) -> None:
    code, _, err = run(capsys, str(example), *args)
    assert code == 2 and needle in err and "Traceback" not in err


def test_each_pool_in_the_plan_carries_its_crossover(catalog: Catalog, scout_example: Path) -> None:
    """A pool of one workload crosses where `planner crossover` says that workload does; a
    shared pool crosses where its members' blended API line meets its unit line."""
    from planner.answers import Context, FigureBook, crossover_lines
    from planner.plan import build_plan, settings_for

    loaded = load_workloads(scout_example, catalog)
    alone = build_plan(loaded, catalog, "dev", "examples/workloads.yaml")
    [report] = reports(loaded, catalog, "patient-notes")
    [pool] = [p for p in alone.pools if p.workloads == ["patient-notes"]]
    assert len(pool.crossover) == 8  # two comparisons x four purchase options
    expected = {
        (f"cloud_api/{r.api_id}", r.purchase): None
        if r.monthly_tokens is None
        else round(r.monthly_tokens)
        for r in report.rows
    }
    assert {(c.api_option, c.purchase): c.monthly_tokens for c in pool.crossover} == expected
    assert any(c.monthly_tokens for c in pool.crossover)

    shared = build_plan(loaded, catalog, "dev", "examples/workloads.yaml", "optimal")
    [big] = [p for p in shared.pools if len(p.workloads) > 1]
    book = FigureBook()
    ctx = Context(catalog=catalog, settings=settings_for(catalog, loaded.spec, book), book=book,
                  region="us-east-1")  # fmt: skip
    members = [w for w in loaded.spec.workloads if w.name in big.workloads]
    option_id = f"self_hosted/{big.model}/{big.instance_type}"
    apis, units, _ = crossover_lines(ctx, ctx.by_option[option_id], members)
    assert big.monthly_tokens == sum(w.monthly_tokens.total for w in members)
    assert any(row.monthly_tokens for row in big.crossover)
    for row in big.crossover:
        if row.monthly_tokens is None:
            continue
        api = next(a for a in apis if f"cloud_api/{a.api_id}" == row.api_option)
        unit = next(u for u in units if u.purchase == row.purchase)
        assert api.cost(row.monthly_tokens) == pytest.approx(unit.cost(row.monthly_tokens), 1e-6)
