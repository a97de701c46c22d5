"""The figures a plan cites, recorded once by id: the book, and the figures a cost rests on
(the per-user speed, the throughput model's)."""

from __future__ import annotations

from planner import costing
from planner.catalog import Catalog, Figure
from planner.costing import Settings
from planner.costing.throughput_data import throughput_data
from planner.inputs.workloads import Workload
from planner.planfile import FigureUsed


class FigureBook:
    """The figures a plan used, by id, so every cost can cite them once."""

    def __init__(self) -> None:
        self.figures: dict[str, FigureUsed] = {}

    def add(self, key: str, value: float | str, unit: str, source: str, date: str) -> str:
        if key not in self.figures:
            self.figures[key] = FigureUsed(value=value, unit=unit, source=source, date=date)
        return key


ASSUMED_SPEED = "assumption.user_output_tps"


def speed_figure(
    book: FigureBook, workload: Workload, field: str = "", line: int | None = None
) -> str:
    """The id of the per-user speed a workload is priced at: its own user_output_tps, recorded
    with the field and line that set it (the plan records them first), else the assumption's."""
    if workload.user_output_tps is None:
        return ASSUMED_SPEED
    where = field or f"user_output_tps of workload {workload.name}"
    return book.add(
        f"workload.{workload.name}.user_output_tps",
        workload.user_output_tps,
        "output tokens/s per user",
        f"set in the workloads file: {where}" + (f" (line {line})" if line is not None else ""),
        "",
    )


def throughput_figures(
    catalog: Catalog, book: FigureBook, model_id: str, gpu: str
) -> tuple[str, ...]:
    """The throughput model's figures a self-hosted cost rests on, recorded once: the GPU's
    (gpus.yaml), the model's architecture (architectures.yaml) and the fitted efficiencies with
    the fit's error (throughput.yaml)."""
    data = throughput_data(catalog)
    card, arch, fit = data.gpus[gpu], data.architectures[model_id], data.fit
    entries: list[tuple[str, Figure, str]] = [
        (f"gpu.{gpu}.memory_gb", card.memory_gb, "GB per GPU"),
        (f"gpu.{gpu}.bandwidth_tb_per_s", card.bandwidth_tb_per_s, "TB/s per GPU (HBM)"),
        (f"gpu.{gpu}.nvlink_gb_per_s", card.nvlink_gb_per_s, "GB/s per GPU each way"),
        *(
            (f"gpu.{gpu}.dense_tflops.{p}", figure, f"dense {p} TFLOPS per GPU")
            for p, figure in sorted(card.dense_tflops.items())
        ),
        (f"architecture.{model_id}.layers", arch.layers, "layers"),
        (f"architecture.{model_id}.query_heads", arch.query_heads, "attention heads"),
        (f"architecture.{model_id}.head_dim", arch.head_dim, "values per head"),
        (f"architecture.{model_id}.active_params_b", arch.active_params_b, "billion active"),
        ("throughput_fit.bandwidth_efficiency", fit.bandwidth_efficiency, "share of HBM peak"),
        ("throughput_fit.compute_efficiency", fit.compute_efficiency, "share of dense FLOPS"),
        ("throughput_fit.step_overhead_ms", fit.step_overhead_ms, "ms per decode step"),
        ("throughput_fit.request_overhead_us", fit.request_overhead_us, "us per request a step"),
        ("throughput_fit.allreduce_latency_us", fit.allreduce_latency_us, "us per all-reduce"),
    ]
    if arch.is_moe:
        entries.append(("throughput_fit.moe_factor", fit.moe_factor, "x MoE step time"))
    ids = [book.add(key, f.value, unit, f.source, f.date) for key, f, unit in entries]
    if arch.is_moe:
        # MoE replicas are priced as deployed (vLLM tensor parallel), not as calibrated.
        deployed = costing.deployed_throughput_data(catalog).settings.moe_parallelism
        ids.append(
            book.add(
                "serving.moe_parallelism",
                deployed.value,
                "how an MoE replica's GPUs split the work",
                deployed.source,
                deployed.date,
            )
        )
    ids.append(
        book.add(
            "throughput_fit.geometric_mean_error",
            fit.geometric_mean_error,
            f"x typical error on {fit.points} calibration points (worst {fit.worst_error}x: "
            f"{fit.worst_point}); the planning range of every throughput",
            fit.source,
            fit.date,
        )
    )
    return tuple(ids)


def staff_figures(catalog: Catalog, settings: Settings, book: FigureBook) -> None:
    """Record the staff figures every pool's fixed cost cites: the file's, else the catalog's."""
    staff = catalog.operations.staff
    for key, figure, unit, given in (
        (
            "operations.engineer_usd_per_month",
            staff.engineer_usd_per_month,
            "USD/month",
            settings.engineer_usd_per_month,
        ),
        ("operations.pool_fte", staff.pool_fte, "engineers per pool", settings.pool_fte),
    ):
        if given is None:
            book.add(key, figure.value, unit, figure.source, figure.date)
        else:
            book.add(key, given, unit, "set in the workloads file (assumptions)", "")
