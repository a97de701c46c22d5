"""`planner diff`'s gates: why the budget gate (--fail-on-increase-pct, --fail-above-usd) and the
perimeter gate (--fail-on-verify, --fail-on-weaker-perimeter) fail a comparison, each reason a
sentence the comment and stderr show. No reason: the gate passes, or was not asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.fmt import percent_points, usd, usd_signed

if TYPE_CHECKING:
    from planner.diff.compare import Diff


def budget_gate(diff: Diff) -> list[str]:
    """Why the budget gate fails: the monthly estimate rises more than the percent allowed
    (from nothing counts as more), or ends above the USD allowed."""
    reasons = []
    if diff.fail_on_increase_pct is not None and diff.change_usd > 0:
        pct = diff.change_pct
        if pct is None or pct > diff.fail_on_increase_pct:
            grown = (
                "from nothing" if pct is None else percent_points(pct, diff.fail_on_increase_pct)
            )
            reasons.append(
                f"the monthly estimate rises {grown} ({usd_signed(diff.change_usd)}), above the "
                f"{diff.fail_on_increase_pct:g} % allowed"
            )
    if diff.fail_above_usd is not None and diff.after_usd > diff.fail_above_usd:
        reasons.append(
            f"the monthly estimate, {usd(diff.after_usd)}, is above the "
            f"{usd(diff.fail_above_usd)} allowed"
        )
    return reasons


def perimeter_gate(diff: Diff) -> list[str]:
    """Why the perimeter gate fails: HEAD fails `planner verify` (with --fail-on-verify), a
    workload's perimeter got weaker (with --fail-on-weaker-perimeter)."""
    reasons = []
    for s in diff.stacks:
        where = f"stack {s.stack}: " if len(diff.stacks) > 1 else ""
        if diff.fail_on_verify and s.verification is not None and not s.verification.passed:
            reasons.append(
                f"{where}HEAD fails verification ({len(s.verification.failures())} failure(s))"
            )
        if diff.fail_on_weaker_perimeter:
            reasons.extend(
                f"{where}the perimeter of {w} got weaker ({before} → {after})"
                for w, before, after, _, _ in s.weaker
            )
    return reasons
