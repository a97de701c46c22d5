"""The throughput model's data: the GPUs, architectures, precisions, settings and fit it reads
(gpus.yaml, architectures.yaml, precisions.yaml, throughput.yaml) and the measured points it is
fitted on and checked against (throughput_calibration.yaml, throughput_holdout.yaml), as typed
models, read from a catalog's directory and checked like a catalog file."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError, field_validator, model_validator

from planner.catalog import DATA_DIR, Catalog, Figure, Precision, TextFigure, default_catalog
from planner.catalog.base import _Data
from planner.errors import PlannerError
from planner.inputs.lines import LineIndex, field_path


class Gpu(_Data):
    name: str
    memory_gb: Figure
    bandwidth_tb_per_s: Figure
    nvlink_gb_per_s: Figure
    dense_tflops: dict[str, Figure]


class Architecture(_Data):
    layers: Figure
    query_heads: Figure
    kv_heads: Figure
    head_dim: Figure
    hidden_size: Figure
    total_params_b: Figure
    active_params_b: Figure
    experts: Figure | None = None
    experts_per_token: Figure | None = None
    # Layers with routed experts (Llama 4 Maverick alternates dense and MoE layers, DeepSeek's
    # first three are dense): each token's MoE dispatch and the attention data parallel
    # collectives happen once per MoE layer.
    moe_layers: Figure | None = None
    attention: Literal["gqa", "mla"]
    latent_dim: Figure | None = None
    # Not used by the model (the attention data parallel copies are all but the routed experts);
    # optional, kept for catalogs that state it.
    attention_params_b: Figure | None = None
    kv_cache_precision: TextFigure
    # Tokens of one request (prompt and completion) the model takes: `planner throughput`
    # refuses longer ones for every architecture, in the catalog's models.yaml or not.
    context_window: Figure

    @model_validator(mode="after")
    def _moe_figures_together(self) -> Architecture:
        moe = (self.experts, self.experts_per_token, self.moe_layers)
        if any(f is not None for f in moe) and any(f is None for f in moe):
            raise ValueError("an MoE architecture needs experts, experts_per_token and moe_layers")
        return self

    @property
    def is_moe(self) -> bool:
        return self.experts is not None

    def kv_values_per_token(self) -> float:
        """Values cached per token of context, all layers: K and V per KV head, or MLA's latent."""
        if self.attention == "mla":
            if self.latent_dim is None:
                raise ValueError("an mla architecture needs latent_dim")
            return self.layers.value * self.latent_dim.value
        return self.layers.value * self.kv_heads.value * self.head_dim.value * 2

    def expert_params(self) -> float:
        """Parameters (not billions) in routed experts: total - active = experts x (1 - k / E)."""
        if self.experts is None or self.experts_per_token is None:
            return 0.0
        share = self.experts_per_token.value / self.experts.value
        return (self.total_params_b.value - self.active_params_b.value) * 1e9 / (1 - share)

    def unrouted_params(self) -> float:
        """Parameters (not billions) outside the routed experts: attention, dense MLP layers,
        shared experts, embeddings. Under attention data parallelism every GPU keeps them all."""
        return self.total_params_b.value * 1e9 - self.expert_params()


class Settings(_Data):
    runtime_reserve_gb: Figure
    # Share of a request's output tokens whose KV cache the scheduler reserves when it admits
    # the request (1: the whole output, TensorRT-LLM's GUARANTEED_NO_EVICT).
    kv_reserved_output_share: Figure
    max_batch: Figure
    prefill_chunk_tokens: Figure
    kv_free_fraction: Figure
    moe_parallelism: TextFigure
    compute_precision: dict[str, TextFigure]
    kv_bytes_per_value: dict[str, Figure]

    @field_validator("moe_parallelism")
    @classmethod
    def _known_parallelism(cls, figure: TextFigure) -> TextFigure:
        if figure.value not in ("attention-dp", "tensor"):
            raise ValueError(f"must be attention-dp or tensor, not {figure.value!r}")
        return figure


class Fit(_Data):
    """The fitted efficiencies, and how well they reproduce the calibration points."""

    bandwidth_efficiency: Figure
    compute_efficiency: Figure
    step_overhead_ms: Figure
    request_overhead_us: Figure
    allreduce_latency_us: Figure
    moe_factor: Figure
    points: int
    geometric_mean_error: float
    worst_error: float
    worst_point: str
    # The same on the held-out points (throughput_holdout.yaml, outliers aside), and how many of
    # them the model misses by more than 2x.
    holdout_points: int
    holdout_geometric_mean_error: float
    holdout_worst_error: float
    holdout_worst_point: str
    holdout_beyond_2x: int
    source: str
    date: str


class CalibrationPoint(_Data):
    model: str
    gpu: str
    gpus: int
    precision: str = "fp8"
    input_tokens: int
    output_tokens: int
    output_tokens_per_second: float
    concurrency: int | None = None
    tokens_per_user: float | None = None
    source: str
    date: str

    def label(self) -> str:
        load = "max load"
        if self.concurrency:
            load = f"concurrency {self.concurrency}"
        elif self.tokens_per_user:
            load = f"{self.tokens_per_user:g} tok/s/user"
        return (
            f"{self.model} {self.gpus}x {self.gpu} {self.input_tokens}/{self.output_tokens} {load}"
        )


class HoldoutPoint(CalibrationPoint):
    """A measured point the fit never sees: the model's check (throughput_holdout.yaml)."""

    engine: str
    # Why the point measures something the model does not describe (from its source), if so.
    outlier: str | None = None


class ThroughputData(_Data):
    gpus: dict[str, Gpu]
    architectures: dict[str, Architecture]
    precisions: dict[str, Precision]
    settings: Settings
    fit: Fit
    calibration: list[CalibrationPoint]
    holdout: list[HoldoutPoint]


def _read(directory: Path, name: str) -> Any:
    path = directory / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlannerError.single(str(path), "", f"cannot read catalog file: {exc}") from None


def load_throughput_data(directory: Path = DATA_DIR) -> ThroughputData:
    throughput = _read(directory, "throughput.yaml")
    raw = {
        "gpus": _read(directory, "gpus.yaml")["gpus"],
        "architectures": _read(directory, "architectures.yaml")["architectures"],
        "precisions": _read(directory, "precisions.yaml")["precisions"],
        "settings": throughput["settings"],
        "fit": throughput["fit"],
        "calibration": _read(directory, "throughput_calibration.yaml")["points"],
        "holdout": _read(directory, "throughput_holdout.yaml")["points"],
    }
    try:
        return ThroughputData.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        section, *rest = first["loc"]
        # Name the file the figure is in, the field as it is spelled there, and its line.
        name, key = _FILES[str(section)]
        loc = (key, *rest)
        path = directory / name
        line = LineIndex(yaml.compose(path.read_text(encoding="utf-8"))).line(loc)
        raise PlannerError.single(str(path), field_path(loc), first["msg"], line) from None


# Where each section of ThroughputData comes from: its file, and its key in that file.
_FILES: dict[str, tuple[str, str]] = {
    "gpus": ("gpus.yaml", "gpus"),
    "architectures": ("architectures.yaml", "architectures"),
    "precisions": ("precisions.yaml", "precisions"),
    "settings": ("throughput.yaml", "settings"),
    "fit": ("throughput.yaml", "fit"),
    "calibration": ("throughput_calibration.yaml", "points"),
    "holdout": ("throughput_holdout.yaml", "points"),
}


def throughput_data(catalog: Catalog) -> ThroughputData:
    """The throughput data of the catalog: the files of the directory it was read from, so a
    catalog read from another directory prices with its own GPUs, architectures and fit."""
    return throughput_data_in(catalog.directory)


@cache
def throughput_data_in(directory: Path) -> ThroughputData:
    """The throughput data of a catalog directory, read once (as a catalog is)."""
    return load_throughput_data(directory)


def default_throughput_data() -> ThroughputData:
    """The bundled catalog's throughput data (default_catalog's): for the commands and tests that
    use the bundled catalog; planning and costing take the catalog they are given."""
    return throughput_data(default_catalog())
