"""A pool's nodes follow from its members' loads, and the plan shows how (review: a 78-node pool
of 91 workloads gave a reviewer nothing to check the 78 against)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.plan_bench import organization
from planner.cli import main


def test_every_pool_sizes_to_the_sums_of_its_members_loads(project: Path) -> None:
    (project / "org.yaml").write_text(organization(60, seed=3))
    assert main(["plan", "org.yaml", "--no-stack-config", "--out", "out"]) == 0
    plan = json.loads((project / "out/plan.json").read_text())
    markdown = (project / "out/plan.md").read_text()
    assert plan["pools"]
    for pool in plan["pools"]:
        sizing = pool["sizing"]
        assert sorted(x["workload"] for x in sizing) == sorted(pool["workloads"])
        sums = [sum(x[part] for x in sizing) for part in ("volume_units", "peak_units")]
        sums.append(sum(x["kv_cache_units"] for x in sizing))
        units = max(max(x["min_units"] for x in sizing), *(math.ceil(s - 1e-6) for s in sums))
        per_unit = pool["pipeline_parallel"]  # a two-node replica is one unit of two nodes
        assert units * per_unit == pool["nodes"], pool["name"]
        assert pool["sizing_formula"].endswith(f"= {pool['nodes']}")
        assert f"- {pool['name']}: {pool['sizing_formula']}." in markdown
        # Each member's volume is its share of one unit: its tokens over what a unit serves.
        assert all(x["volume_units"] > 0 for x in sizing)
