"""How long a node of a pool takes to serve: the health-check grace of its Auto Scaling group.

Computed, not guessed: the weights' size (the catalog's parameters times the bytes per parameter
of the pool's precision), fetched from the pool's bucket at the instance's documented rate
(planner/data/instances.yaml `s3_download_gbps`, the target the node gives its S3 client) and
loaded into GPU memory, plus the engine's start, with a margin (planner/data/boot.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import yaml

from planner.catalog import DATA_DIR, Catalog, Figure
from planner.model import Pool


@dataclass(frozen=True)
class BootFigures:
    weights_load_gb_per_s: Figure
    engine_start_s: Figure
    margin: Figure


@cache
def boot_figures() -> BootFigures:
    data = yaml.safe_load((DATA_DIR / "boot.yaml").read_text(encoding="utf-8"))["boot"]
    return BootFigures(**{name: Figure.model_validate(value) for name, value in data.items()})


def weights_gb(catalog: Catalog, model: str, precision: str) -> float:
    """The checkpoint's size in GB: parameters times bytes per parameter of the precision."""
    params_b = catalog.models[model].total_params_b.value
    return params_b * catalog.precisions[precision].bytes_per_param.value


@dataclass(frozen=True)
class BootTime:
    weights_gb: float
    download_gbps: float
    download_s: float
    load_s: float
    engine_start_s: float
    grace_s: int

    @property
    def estimate_s(self) -> float:
        return self.download_s + self.load_s + self.engine_start_s

    @property
    def restart_s(self) -> float:
        """A restart of the serving unit on a node that has the weights: `aws s3 sync` copies
        nothing new, so the load and the engine's start."""
        return self.load_s + self.engine_start_s


def boot_time(catalog: Catalog, pool: Pool) -> BootTime:
    """The boot of one node of the pool, and the grace before its health checks count (the
    estimate with its margin, in whole minutes)."""
    instance = catalog.instances[pool.instance_type]
    if instance.s3_download_gbps is None:
        raise ValueError(f"instances.yaml: {pool.instance_type} has no s3_download_gbps")
    figures = boot_figures()
    size = weights_gb(catalog, pool.model, pool.precision)
    download = size * 8 / instance.s3_download_gbps.value
    load = size / figures.weights_load_gb_per_s.value
    start = figures.engine_start_s.value
    grace = math.ceil((download + load + start) * figures.margin.value / 60) * 60
    return BootTime(size, instance.s3_download_gbps.value, download, load, start, grace)
