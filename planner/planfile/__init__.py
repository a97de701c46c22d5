"""The plan file: what `planner plan` writes to plan.json and what the Pulumi program reads back.

Its models by part: workload.py (a workload's answers and options), pool.py (a self-hosted pool),
plan.py (the plan, its providers' access, connections and totals), base.py (what they share);
reading it back is io.py (read_plan, check_fresh, SCHEMA_VERSION), its checks checks.py and
place_checks.py, and the plan against its workloads file input_checks.py (check_fresh). The
package's public names are these (`from planner.planfile import Plan`).
"""

from planner.planfile.base import Placement
from planner.planfile.checks import plan_problems
from planner.planfile.io import SCHEMA_VERSION, check_fresh, read_plan
from planner.planfile.plan import (
    API_NETWORK_FOR,
    STACK_NAME,
    ClusterLoadBalancer,
    ClusterSite,
    Connection,
    FigureUsed,
    Plan,
    ProviderAccess,
    SiteNodeCost,
    Totals,
    is_stack_name,
)
from planner.planfile.pool import Pool, PoolCrossover, PoolLoad, PurchaseOptionCost
from planner.planfile.workload import (
    Answers,
    BreakEven,
    Consumer,
    Crossing,
    DataSensitivity,
    MemoryFit,
    Option,
    TaskQuality,
    ThroughputUsed,
    VolumeEconomics,
    Warning,
    WorkloadPlan,
)

__all__ = [
    "API_NETWORK_FOR",
    "SCHEMA_VERSION",
    "STACK_NAME",
    "Answers",
    "BreakEven",
    "ClusterLoadBalancer",
    "ClusterSite",
    "Connection",
    "Consumer",
    "Crossing",
    "DataSensitivity",
    "FigureUsed",
    "MemoryFit",
    "Option",
    "Placement",
    "Plan",
    "Pool",
    "PoolCrossover",
    "PoolLoad",
    "ProviderAccess",
    "PurchaseOptionCost",
    "SiteNodeCost",
    "TaskQuality",
    "ThroughputUsed",
    "Totals",
    "VolumeEconomics",
    "Warning",
    "WorkloadPlan",
    "check_fresh",
    "is_stack_name",
    "plan_problems",
    "read_plan",
]
