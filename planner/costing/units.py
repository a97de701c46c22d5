"""A scaling unit of a self-hosted pool: how a model's weights fit an instance type (Fit,
memory_fit) and what one unit is made of for the throughput model (Capacity)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from planner.catalog import Catalog, Instance, OpenModel
from planner.costing.settings import EPSILON
from planner.costing.throughput_data import throughput_data


@dataclass(frozen=True)
class Fit:
    """How a model's weights fit an instance type at a precision."""

    precision: str
    weights_gb: float
    gpu_memory_gb: float
    usable_gb_per_gpu: float
    gpus_per_replica: int
    nodes_per_replica: int
    replicas_per_node: int

    @property
    def kv_room_gb(self) -> float:
        """GPU memory one replica has for the KV cache once its weights are loaded."""
        return self.gpus_per_replica * self.usable_gb_per_gpu - self.weights_gb

    @property
    def tensor_parallel(self) -> int:
        return min(self.gpus_per_replica, self.gpus_per_replica // self.nodes_per_replica)

    @property
    def pipeline_parallel(self) -> int:
        return self.nodes_per_replica

    @property
    def note(self) -> str:
        if self.nodes_per_replica > 1:
            return (
                f"{self.weights_gb:,.0f} GB of {self.precision} weights do not fit one node "
                f"({self.gpu_memory_gb:,.0f} GB GPUs, {self.usable_gb_per_gpu:,.1f} GB usable "
                f"each after the engine's reserve): {self.nodes_per_replica} nodes per replica, "
                f"tensor parallel {self.tensor_parallel} x pipeline parallel "
                f"{self.pipeline_parallel}; {self.kv_room_gb:,.1f} GB left for the KV cache"
            )
        return (
            f"{self.weights_gb:,.1f} GB of {self.precision} weights on "
            f"{self.gpus_per_replica} GPU(s) ({self.usable_gb_per_gpu:,.1f} GB usable each); "
            f"{self.replicas_per_node} replica(s) per node, {self.kv_room_gb:,.1f} GB each left "
            "for the KV cache"
        )


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def memory_fit(
    catalog: Catalog, model: OpenModel, instance: Instance, precision: str, reserve: float
) -> Fit | None:
    """Smallest tensor-parallel group (a power of two) that holds the weights with room left for
    the KV cache; several nodes (pipeline parallel) only on instances with EFA. None when the
    model cannot be served there. How much KV cache a workload needs is its own (kv_load)."""
    bytes_per_param = catalog.precisions[precision].bytes_per_param.value
    weights_gb = model.total_params_b.value * bytes_per_param
    gpu_gb = instance.gpu_memory_gb.value
    # vLLM's budget (gpu_memory_utilization = 1 - reserve) holds the weights, the activations of
    # its profiling pass and CUDA graphs, then the KV cache: the engine's own share of it
    # (throughput.yaml runtime_reserve_gb, the throughput model's figure) is no KV cache either.
    # Without it a 70.6 GB model "fits" one 80 GB H100 with 1.4 GB of KV cache that vLLM's
    # start-up profiling then takes.
    runtime = throughput_data(catalog).settings.runtime_reserve_gb.value
    usable = gpu_gb * (1 - reserve) - runtime
    # Weights that fill the group exactly leave no KV cache: the next group size then.
    gpus_needed = max(1, math.floor(weights_gb / usable + EPSILON) + 1)
    group = _next_power_of_two(gpus_needed)
    if group <= instance.gpus:
        return Fit(precision, weights_gb, gpu_gb, usable, group, 1, instance.gpus // group)
    if not instance.efa:
        return None
    nodes = math.ceil(gpus_needed / instance.gpus)
    return Fit(precision, weights_gb, gpu_gb, usable, nodes * instance.gpus, nodes, 1)


@dataclass(frozen=True)
class Capacity:
    """A scaling unit (one node, or the nodes of one multi-node replica): its memory fit, and
    what its replicas are made of for the throughput model (planner/costing/throughput.py)."""

    fit: Fit
    nodes_per_unit: int
    # Bytes of KV cache a token of context takes at the model's KV-cache precision
    # (architectures.yaml kv_cache_precision), in GB.
    kv_gb_per_token: float
    model_id: str
    gpu: str
    kv_cache_precision: str
    # The share of GPU memory the engine may use (vLLM's gpu_memory_utilization, 1 - the
    # memory reserve), and what the replica's KV cache holds with it (throughput.kv_cache, the
    # throughput model's own figure): tokens of context, and their bytes in all its GPUs.
    memory_utilization: float
    kv_tokens_per_replica: float
    kv_gb_per_replica: float
    # The directory of the catalog the unit was sized with: whose throughput data serves it
    # (serving.unit_throughput), so a unit of another catalog is never served by this one's.
    catalog_directory: Path
