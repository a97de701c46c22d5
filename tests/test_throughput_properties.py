"""Properties of the throughput model (planner/costing/throughput.py) that hold for every model,
GPU, replica size and request shape: what more hardware or a lighter request can never make
worse."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.costing.throughput import Efficiencies, Replica, make_replica, serve
from planner.costing.throughput_data import ThroughputData, default_throughput_data

DATA = default_throughput_data()
EFF = Efficiencies.of(DATA.fit)
MODELS = sorted(DATA.architectures)
GPUS = sorted(DATA.gpus)
QUIET = settings(max_examples=60, deadline=None)


def smallest_fit(data: ThroughputData, model: str, gpu: str) -> int:
    """The smallest power-of-two replica whose KV cache holds a 4k-token request."""
    for gpus in (1, 2, 4, 8, 16):
        if make_replica(data, model, gpu, gpus).kv_capacity_tokens >= 4096:
            return gpus
    raise AssertionError(f"{model} fits no replica of {gpu}")


@st.composite
def setups(draw: st.DrawFn) -> tuple[Replica, int, int]:
    model = draw(st.sampled_from(MODELS))
    gpu = draw(st.sampled_from(GPUS))
    gpus = smallest_fit(DATA, model, gpu) * draw(st.sampled_from([1, 2]))
    r = make_replica(DATA, model, gpu, gpus)
    return r, draw(st.integers(1, 8000)), draw(st.integers(1, 4000))


def _fits(r: Replica, i: int, o: int) -> bool:
    return r.kv_capacity_tokens >= i + o


@QUIET
@given(setups(), st.floats(1.01, 3))
def test_more_bandwidth_never_lowers_throughput(
    setup: tuple[Replica, int, int], factor: float
) -> None:
    r, i, o = setup
    if not _fits(r, i, o):
        return
    faster = replace(r, bandwidth_bytes_per_second=r.bandwidth_bytes_per_second * factor)
    assert (
        serve(faster, EFF, i, o).output_tokens_per_second
        >= serve(r, EFF, i, o).output_tokens_per_second
    )


@QUIET
@given(setups(), st.integers(1, 8000))
def test_longer_prompts_never_raise_throughput(setup: tuple[Replica, int, int], more: int) -> None:
    r, i, o = setup
    if not _fits(r, i + more, o):
        return
    assert (
        serve(r, EFF, i + more, o).output_tokens_per_second
        <= serve(r, EFF, i, o).output_tokens_per_second
    )


@QUIET
@given(setups(), st.floats(0.5, 500))
def test_a_per_user_speed_target_never_raises_throughput(
    setup: tuple[Replica, int, int], target: float
) -> None:
    r, i, o = setup
    if not _fits(r, i, o):
        return
    paced = serve(r, EFF, i, o, tokens_per_user=target)
    assert paced.output_tokens_per_second <= serve(r, EFF, i, o).output_tokens_per_second
    if paced.target_met:
        assert paced.tokens_per_user >= target


@QUIET
@given(st.sampled_from(MODELS), st.sampled_from(GPUS), st.integers(1, 8000), st.integers(1, 4000))
def test_more_gpus_never_lower_max_throughput(model: str, gpu: str, i: int, o: int) -> None:
    first = smallest_fit(DATA, model, gpu)
    previous = 0.0
    for gpus in (first, 2 * first, 4 * first):
        r = make_replica(DATA, model, gpu, gpus)
        if not _fits(r, i, o):
            continue
        now = serve(r, EFF, i, o).output_tokens_per_second
        assert now >= previous
        previous = now


@QUIET
@given(setups(), st.floats(1.01, 4))
def test_more_kv_memory_never_lowers_throughput(
    setup: tuple[Replica, int, int], factor: float
) -> None:
    """A larger KV cache holds a larger batch, and a larger batch never serves less: the step
    grows no faster than the batch (weights read once a step, experts touched saturate)."""
    r, i, o = setup
    if not _fits(r, i, o):
        return
    roomier = replace(r, kv_capacity_tokens=r.kv_capacity_tokens * factor)
    more = serve(roomier, EFF, i, o)
    less = serve(r, EFF, i, o)
    assert more.batch >= less.batch
    assert more.output_tokens_per_second >= less.output_tokens_per_second


@QUIET
@given(setups(), st.integers(1, 4096), st.integers(1, 64))
def test_more_concurrency_never_lowers_throughput(
    setup: tuple[Replica, int, int], concurrency: int, more: int
) -> None:
    r, i, o = setup
    if not _fits(r, i, o):
        return
    assert (
        serve(r, EFF, i, o, concurrency=concurrency + more).output_tokens_per_second
        >= serve(r, EFF, i, o, concurrency=concurrency).output_tokens_per_second
    )


@QUIET
@given(
    setups(),
    st.sampled_from([1, 2, 3, 4]),
    st.none() | st.integers(1, 3000),
    st.none() | st.floats(0.5, 200),
)
def test_a_replica_serves_its_requests_in_flight_at_each_user_s_speed(
    setup: tuple[Replica, int, int],
    stages: int,
    concurrency: int | None,
    target: float | None,
) -> None:
    """Little's law, for every pipeline depth: the output is the requests in flight times each
    user's speed, and those requests are no more than the KV cache holds or the concurrency
    sends. An outside review found a two-stage replica credited with twice that (one request
    "served" at twice its own speed; 1,064 requests' worth from a cache holding 532)."""
    r, i, o = setup
    if not _fits(r, i, o):
        return
    served = serve(r, EFF, i, o, concurrency=concurrency, tokens_per_user=target, stages=stages)
    assert served.output_tokens_per_second == pytest.approx(served.batch * served.tokens_per_user)
    assert served.batch <= max(served.kv_batch, 1)
    # The engine's limit is the scheduler's, over the whole replica (the review's case: two
    # stages held twice max_batch).
    assert served.batch <= r.max_batch
    if concurrency is not None:
        assert served.batch <= concurrency
    if target is not None and served.target_met:
        assert served.tokens_per_user >= target * (1 - 1e-9)
    # More stages never raise what a stage's own work serves in all (the same replica cut
    # deeper here: the stage's speed is shared by more steps a token).
    if stages > 1:
        one = serve(r, EFF, i, o, concurrency=concurrency, stages=1)
        deeper = serve(r, EFF, i, o, concurrency=concurrency, stages=stages)
        assert deeper.output_tokens_per_second <= one.output_tokens_per_second * (1 + 1e-9)


def test_one_request_on_a_two_stage_replica_is_served_at_its_own_speed() -> None:
    """The review's case: llama-3.1-8b, one GPU a stage on two nodes, one request in flight:
    the replica serves that one user's speed (each stage idle half the time), not twice it."""
    r = make_replica(DATA, "llama-3.1-8b", "h100", 1)
    alone = serve(r, EFF, 1000, 1000, concurrency=1, stages=2)
    assert alone.batch == 1
    assert alone.output_tokens_per_second == pytest.approx(alone.tokens_per_user)
    both = serve(r, EFF, 1000, 1000, concurrency=2, stages=2)
    assert both.batch == 2
    assert both.output_tokens_per_second == pytest.approx(2 * alone.output_tokens_per_second)
