"""The command line each node of a pool runs: `vllm serve /weights ARGS`, built from the plan and
the pinned vLLM release (planner/data/vllm.yaml).

The node serves the checkpoint published at the pool's precision as it is (no online
quantization, which would load the larger checkpoint first), with the context length the plan
sized (--max-model-len: a model's advertised window may not fit the KV cache, and vLLM then
refuses to start), and as many engines as the plan priced replicas on the node: vLLM's data
parallelism runs them behind one port and sends each request to the least busy engine.

Target-neutral, so at the top of stacks/ rather than in stacks/aws/: the Kubernetes target the
next issue asks for reuses it, as any target running the pinned vLLM image runs this command line
(an EC2 node's cloud-init today).
"""

from __future__ import annotations

import re
import shlex

from planner.catalog import Catalog
from planner.planfile import Pool
from stacks.settings import SERVING_PORT

# Where the serving container sees the node's files (the start script mounts them there).
TLS_KEY = "/secrets/tls.key"
TLS_CERTIFICATE = "/secrets/tls.crt"
# Every argument is a plain word, so the start script can hold the command in a double-quoted
# shell string and hand it to `bash -c` without any quoting.
PLAIN = re.compile(r"[A-Za-z0-9._/:=@+-]+")


def data_parallel(pool: Pool) -> int:
    """vLLM engines a node runs: the replicas per node the plan priced (one when a replica
    spans several nodes)."""
    return pool.replicas_per_node


def serve_args(
    pool: Pool,
    catalog: Catalog,
    port: int = SERVING_PORT,
    engines: int | None = None,
    tls: bool = True,
) -> list[str]:
    """The arguments after `vllm serve /weights` for the nodes of a pool. `engines`: the
    data-parallel engines one server runs (default: the replicas the plan put on a node, as
    both an EC2 node and a cluster pool's whole-node pod run them). `tls`: serve
    HTTPS with the node's certificate (an EC2 node behind its TLS listener; a cluster pool's pods
    with their pool's certificate, stacks/kubernetes/tls.py)."""
    model = catalog.models[pool.model]
    if pool.precision not in model.checkpoints:
        # read_plan refuses such a plan; a caller passing its own Pool gets the reason.
        raise ValueError(f"{pool.model} has no checkpoint at {pool.precision}")
    args = [
        "--served-model-name", pool.model,
        "--host", "0.0.0.0",  # the load balancer reaches the node on its own address
        "--port", str(port),
        *(["--ssl-keyfile", TLS_KEY, "--ssl-certfile", TLS_CERTIFICATE] if tls else []),
        "--tensor-parallel-size", str(pool.tensor_parallel),
        "--pipeline-parallel-size", str(pool.pipeline_parallel),
        "--data-parallel-size", str(data_parallel(pool) if engines is None else engines),
        "--max-model-len", str(pool.max_model_len),
        # The plan's memory reserve, not the release's default (0.92 in 0.33.0).
        "--gpu-memory-utilization", str(pool.gpu_memory_utilization),
        # No --shutdown-timeout: vLLM's own drain on SIGTERM is not used; a server keeps
        # serving, untold, while its requests finish (stacks/boot.py TerminationFigures), and
        # vLLM aborts what is left (its default, 0). 0.33.0 drains only a server of one engine,
        # perhaps not even that on Ray: with several data-parallel engines it runs an API
        # server per engine (entrypoints/cli/serve.py: api_server_count defaults to
        # data_parallel_size), stops those first on SIGTERM, and their engine clients neither
        # own nor wait for the engines (v1/engine/core_client.py MPClient.shutdown); on Ray the
        # engine installs its SIGTERM handler before it builds the Ray executor, whose ray.init
        # may install Ray's own over it (an outside review's reading of Ray 2.8 and later: not
        # checked against the image's Ray, so not relied on either way).
    ]  # fmt: skip
    if pool.precision == "bf16":
        # A BF16 checkpoint loads as BF16 with the default dtype too: said, not inferred.
        args += ["--dtype", "bfloat16"]
    # FP8 and int4 checkpoints carry their quantization_config: vLLM reads the method there.
    args += catalog.serving.models[pool.model].flags
    for arg in args:
        if not PLAIN.fullmatch(arg):
            raise ValueError(f"serving argument {arg!r} would need shell quoting")
    return args


def serve_flags(pool: Pool, catalog: Catalog, port: int = SERVING_PORT) -> str:
    """The same arguments as one shell word list, as the start script holds them."""
    return shlex.join(serve_args(pool, catalog, port))
