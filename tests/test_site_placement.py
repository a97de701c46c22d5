"""Review of issue 16's cluster sites, planning: a workload is refused, and warned of, for where
the final plan places it, not for where it would go decided one at a time; and a pool on a
site is reached only by callers its internal load balancer serves."""

from __future__ import annotations

import pytest

from planner.errors import PlannerError
from planner.planfile import Plan
from tests.test_sites import LOAD_BALANCER, _plan


def _file(nodes: int, workloads: str, aws: bool = True) -> str:
    return f"""
organization: acme
region: us-east-1
sites:
  - name: dc1
    kind: kubernetes
    context: dc1-admin
    gpu: h100
    gpus_per_node: 8
    nodes: {nodes}
    node_selector: {{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
    storage_class: fast-nvme
    weights_source: s3://models.internal/weights
    cost: {{owned: true, power_kw_per_node: 7.0, usd_per_kwh: 0.12, pue: 1.3,
            hosting_usd_per_node_month: 600}}
{LOAD_BALANCER}{"  - name: aws" + chr(10) + "    kind: aws" if aws else ""}
workloads:{workloads}"""


def _pods(name: str, volume: str) -> str:
    """A workload whose callers are pods of namespace team-<name> on dc1."""
    return f"""
  - name: {name}
    task: summarization
    data: confidential
    monthly_tokens: {volume}
    consumers: [{{namespace: team-{name}, site: dc1}}]"""


SMALL = "{input: 3B, output: 600M}"
LARGE = "{input: 60B, output: 12B}"


def _refused(text: str, strategy: str) -> list[tuple[str, str]]:
    with pytest.raises(PlannerError) as raised:
        _plan(text, strategy)
    return [(p.field, p.message) for p in raised.value.problems]


def test_site_bound_workloads_that_share_a_pool_fit_where_one_at_a_time_they_do_not() -> None:
    """A one-node site and two small workloads of its pods: one at a time each needs the node,
    so the per-workload strategy refuses the second; the optimizer shares one pool on it."""
    text = _file(1, _pods("x", SMALL) + _pods("y", SMALL))
    [(field, message)] = _refused(text, "per-workload")
    assert field == "workloads[1]"
    assert message.startswith(
        "site dc1 has 0 of its 1 GPU nodes left after the workloads bound to it before this one"
    )
    plan = _plan(text, "optimal")
    [pool] = plan.pools
    assert (pool.site, pool.nodes, pool.workloads) == ("dc1", 1, ["x", "y"])
    assert all(w.pool == pool.name for w in plan.workloads)


def test_site_bound_workloads_no_plan_fits_are_refused_under_the_optimal_strategy_too() -> None:
    """Two large workloads of a two-node site's pods: each alone needs both nodes, and shared
    they need more; the optimizer finds no placement within the site, so both strategies say
    which workload does not fit (never an overfull plan, never a traceback)."""
    text = _file(2, _pods("x", LARGE) + _pods("y", LARGE))
    for strategy in ("per-workload", "optimal"):
        [(field, message)] = _refused(text, strategy)
        assert field == "workloads[1]"
        assert "0 of its 2 GPU nodes left" in message
        assert "so it cannot go to AWS or an API" in message


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_a_site_too_small_for_a_workload_says_its_size_not_workloads_before_it(
    strategy: str,
) -> None:
    """Nothing is bound to the site before it: the message names the site's size."""
    text = _file(1, _pods("x", LARGE))
    [(field, message)] = _refused(text, strategy)
    assert field == "workloads[0]"
    assert message.startswith("site dc1 has only 1 GPU node(s), and no option of this workload")
    assert "before this one" not in message


# Per workload: c (its pods) takes one of the site's two nodes first, a the other, and b, its
# next option an EC2 pool, is warned that the site is full; the optimizer puts b on the site.
FULL_FOR_B = _file(
    2,
    """
  - name: a
    task: summarization
    data: internal
    monthly_tokens: {input: 30B, output: 6B}
    consumers: [{cidr: 10.60.0.0/16}]
  - name: b
    task: summarization
    data: regulated
    model: llama-4-scout
    monthly_tokens: {input: 6B, output: 1.2B}
    consumers: [{cidr: 10.51.0.0/16}]
  - name: c
    task: summarization
    data: confidential
    model: qwen3-235b-a22b
    monthly_tokens: {input: 6B, output: 1.2B}
    consumers: [{namespace: team-c, site: dc1}]""",
)


def _b(plan: Plan) -> tuple[str | None, list[str], str]:
    b = next(w for w in plan.workloads if w.name == "b")
    site = next((p.site for p in plan.pools if p.name == b.pool), None)
    return site, [w.code for w in b.warnings], b.answers.volume_economics.reason


def test_a_workload_the_optimizer_puts_on_the_site_carries_no_site_full_warning() -> None:
    site, codes, reason = _b(_plan(FULL_FOR_B, "per-workload"))
    assert site == "aws"
    assert "site_full" in codes
    assert "decided alone, the workload goes to self_hosted/llama-4-scout/p5" in reason
    site, codes, reason = _b(_plan(FULL_FOR_B, "optimal"))
    assert site == "dc1"
    assert "site_full" not in codes
    assert "goes to" not in reason and "p5.48xlarge instead" not in reason


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_a_site_bound_workload_s_range_past_the_site_says_it_cannot_spill(strategy: str) -> None:
    plan = _plan(FULL_FOR_B, strategy)
    warned = {
        w.name: m.message for w in plan.workloads for m in w.warnings if m.code == "site_range"
    }
    assert "c" in warned
    assert warned["c"].endswith(
        "at that throughput the workload could not be served: its consumers are pods of site "
        "dc1, so it has no option off the site to spill to (give the site more nodes)"
    )
    assert "would spill" not in warned["c"]
    for name, message in warned.items():  # callers by range: the pool may spill
        if name != "c":
            assert message.endswith(
                "at that throughput the workload would spill to its next option"
            )


PUBLIC = """
  - name: a
    task: summarization
    data: internal
    monthly_tokens: {input: 30B, output: 6B}
    consumers: [{cidr: 8.8.8.0/24}]"""


@pytest.mark.parametrize("strategy", ["per-workload", "optimal"])
def test_callers_on_a_public_range_never_get_a_pool_behind_the_internal_load_balancer(
    strategy: str,
) -> None:
    """The same workload with a private range goes to the site (cheapest); with a public one
    no option on the site is admitted, and the reason says why."""
    private = _plan(_file(2, PUBLIC.replace("8.8.8.0/24", "10.60.0.0/16")), strategy)
    assert [p.site for p in private.pools] == ["dc1"]
    plan = _plan(_file(2, PUBLIC), strategy)
    [a] = plan.workloads
    assert not [p for p in plan.pools if p.site == "dc1"]
    economics = a.answers.volume_economics
    assert not any(o.id.endswith("/dc1") for o in economics.options)
    assert (
        "left out because its callers include the public range 8.8.8.0/24, from which a "
        "cluster site's internal load balancer is not reached: self_hosted/" in economics.reason
    )


def test_callers_on_a_public_range_with_only_a_cluster_site_are_an_error_naming_them() -> None:
    """A model no API sells (llama-3.3-70b), and no EC2: only the site is left, which its
    callers cannot reach."""
    pinned = PUBLIC.replace("    data: internal", "    data: internal\n    model: llama-3.3-70b")
    [(field, message)] = _refused(_file(2, pinned, aws=False), "per-workload")
    assert field == "workloads[0].consumers"
    assert message.startswith(
        "its callers include the public range 8.8.8.0/24, from which a cluster site's internal "
        "load balancer is not reached, and every option allowed runs on one: let the workload "
        "use AWS or an API ("
    )
