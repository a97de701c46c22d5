"""`planner crossover`: break-even volumes per purchase option against two comparisons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planner.catalog import Catalog
from planner.cli import main
from planner.inputs.loader import load_workloads
from planner.planning.crossover import reports
from tests.conftest import EXAMPLE


def test_rows_cross_where_the_lines_meet(catalog: Catalog) -> None:
    [report] = reports(load_workloads(EXAMPLE, catalog), catalog, "support-faq")
    assert report.self_hosted == "self_hosted/llama-3.1-8b/p5.4xlarge"
    # An internal FAQ may use any API of its tier: the cheapest is the comparison.
    assert [api.comparison for api in report.apis] == ["cheapest API it may use"]
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
            assert row.crossings == []
            continue
        crossed += 1
        volume = row.monthly_tokens
        assert api.cost(volume) == pytest.approx(unit.cost(volume), rel=1e-6)
        assert api.cost(volume * 0.99) < unit.cost(volume * 0.99)
        assert row.api_monthly_usd == pytest.approx(api.usd_per_token * volume)
        if row.crossings:
            assert row.crossings[0].monthly_tokens == pytest.approx(volume)
    assert crossed >= 2


def test_regulated_data_is_compared_with_no_api(catalog: Catalog) -> None:
    """Patient notes may only be self-hosted (technical perimeter): no API is a comparison,
    where the frontier APIs it may not use used to be."""
    [report] = reports(load_workloads(EXAMPLE, catalog), catalog, "patient-notes")
    assert report.apis == [] and report.rows == []


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
    code, out, _ = run(capsys, str(example), "support-faq", "--chart", "chart.svg")
    assert code == 0
    assert "cheapest API it may use" in out and "bedrock-claude-haiku-5.5-global" in out
    assert "API from" in out and "self-hosted from" in out  # the later crossings
    first = (project / "chart.svg").read_bytes()
    assert first.startswith(b"<?xml") and b"support-faq" in first
    assert run(capsys, str(example), "support-faq", "--chart", "chart.svg")[0] == 0
    assert (project / "chart.svg").read_bytes() == first


def test_png_per_workload(example: Path, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, str(example), "--chart", "charts/x.png")
    assert code == 0
    written = sorted(p.name for p in (project / "charts").iterdir())
    assert "x-patient-notes.png" in written and len(written) == 4
    assert (project / "charts/x-patient-notes.png").read_bytes()[:4] == b"\x89PNG"


def test_an_empty_chart_value_draws_no_chart(
    example: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--chart ''` has always meant no chart (a script passing an unset variable): the
    argparse type that checks --chart keeps it so."""
    before = sorted(p.name for p in project.iterdir())
    code, out, err = run(capsys, str(example), "support-faq", "--chart", "")
    assert code == 0 and "cheapest API it may use" in out and "error" not in err
    assert sorted(p.name for p in project.iterdir()) == before


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


def test_each_pool_in_the_plan_carries_its_crossover(catalog: Catalog) -> None:
    """A pool of one workload crosses where `planner crossover` says that workload does
    (tests/test_crossover_all.py); a shared pool crosses where its members' blended API line
    meets its unit line, against the APIs all of its members may use."""
    from planner.planning.build import build_plan
    from planner.planning.context import Context
    from planner.planning.crossings import admissible_apis, crossover_lines
    from planner.planning.figures import FigureBook
    from planner.planning.settings import settings_for
    from tests.test_crossover_all import loaded as load_text

    loaded = load_text(catalog)
    shared = build_plan(loaded, catalog, "dev", "workloads.yaml", "optimal")
    [big] = [p for p in shared.pools if len(p.workloads) > 1]
    book = FigureBook()
    ctx = Context(catalog=catalog, settings=settings_for(catalog, loaded.spec, book), book=book,
                  region="us-east-1")  # fmt: skip
    members = [w for w in loaded.spec.workloads if w.name in big.workloads]
    allowed = set.intersection(
        *(
            set(admissible_apis(w.answers.volume_economics.options))
            for w in shared.workloads
            if w.name in big.workloads
        )
    )
    option_id = f"self_hosted/{big.model}/{big.instance_type}"
    apis, units, _ = crossover_lines(ctx, ctx.by_option[option_id], members, sorted(allowed))
    assert big.monthly_tokens == sum(w.monthly_tokens.total for w in members)
    assert any(row.monthly_tokens for row in big.crossover)
    for row in big.crossover:
        if row.monthly_tokens is None:
            continue
        api = next(a for a in apis if f"cloud_api/{a.api_id}" == row.api_option)
        unit = next(u for u in units if u.purchase == row.purchase)
        assert api.cost(row.monthly_tokens) == pytest.approx(unit.cost(row.monthly_tokens), 1e-6)
        for crossing in row.crossings:
            assert (
                api.cost(crossing.monthly_tokens)
                == pytest.approx(unit.cost(crossing.monthly_tokens), rel=1e-6)
                or crossing.cheaper == "cloud_api"
            )
