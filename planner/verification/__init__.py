"""`planner verify`: the AWS network model, the perimeter judgement and the rules registry.

Importing any module of the package registers every rule (planner.verification.rules), so the
registry a report, a renderer or a Finding reads is always complete.
"""

from __future__ import annotations

from planner.verification import rules  # noqa: F401 (registers the rules)
