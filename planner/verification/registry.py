"""The rules of security-rules.md (../shared/reference/security-rules.md) in a registry, and the
verdicts a run of them gives: findings, networks (subjects), workloads, the report.

Each rule family (planner.verification.rules) registers its checks with @rule, next to each
check, with the resource types it reads; the package puts them in the order reports list them.

A check returns its findings, each a FAIL (the graph breaks the rule there) or an UNKNOWN (the
rule cannot be decided there: a value known only after `pulumi up`), as checkov's checks return
UNKNOWN: an unknown is a result of its rule, not a warning beside the report. A rule's verdict
is FAIL with any failure, else UNKNOWN with any unknown, else PASS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from planner.graph.resources import Graph, Resource
from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations

Check = Callable[[Graph, Network, Expectations], list["Finding"]]


class Status(StrEnum):
    """A verdict, as reports print it: of a rule, a finding, or a whole report."""

    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Rule:
    """One rule of security-rules.md: its id, what it requires, and the check that finds where
    the graph breaks it."""

    id: str
    text: str
    check: Check
    # The resource types the check reads (checkov's supported resources); empty: it reads the
    # whole graph (the network's paths, or every resource's inputs).
    resource_types: tuple[str, ...] = ()


# The rules of security-rules.md, by id, in the order reports list them. Filled by @rule, next
# to each check (planner.verification.rules, which importing the package loads, and orders);
# a Finding can name only a rule registered here.
RULES: dict[str, Rule] = {}


def rule(id: str, text: str, *resource_types: str) -> Callable[[Check], Check]:
    """Register the decorated check as the rule `id`, reading these resource types."""

    def register(check: Check) -> Check:
        if id in RULES:
            raise ValueError(f"rule {id!r} registered twice")
        RULES[id] = Rule(id, text, check, tuple(resource_types))
        return check

    return register


def put_in_order(ids: Sequence[str]) -> None:
    """Order the registry as reports list the rules: the families register them module by
    module, which is not the reports' order."""
    if sorted(ids) != sorted(RULES):
        raise ValueError(f"the rules' order names {', '.join(ids)}; registered: {', '.join(RULES)}")
    ordered = {id: RULES[id] for id in ids}
    RULES.clear()
    RULES.update(ordered)


@dataclass(frozen=True)
class Finding:
    """Where a rule fails (FAIL: `message` says how), or cannot be decided (UNKNOWN: `message`
    says why, e.g. a value known only after `pulumi up`)."""

    rule: str
    resource: str
    message: str
    witness: tuple[str, ...] = ()
    status: Status = Status.FAIL

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(
                f"a finding of rule {self.rule!r}, which is not registered "
                f"(registered: {', '.join(RULES)})"
            )
        if self.status is Status.PASS:
            raise ValueError(
                f"a finding of rule {self.rule!r} that passes: a finding fails or is unknown"
            )

    @classmethod
    def unknown(cls, rule: str, resource: str, reason: str) -> Finding:
        """The rule cannot be decided on `resource`, for `reason`."""
        return cls(rule, resource, reason, status=Status.UNKNOWN)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


@dataclass
class Subject:
    """One network that serves workloads: a pool's, a PrivateLink provider's (Bedrock's), the
    egress one."""

    # pool, provider (its PrivateLink network), endpoint (a provider's, in a consumer's VPC),
    # network (the egress one)
    kind: str
    name: str
    perimeter: str
    workloads: list[str]
    failures: list[Finding] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)  # what stops each way out, when it passes
    vpc: Resource | None = None  # its network in the graph (None: the plan's, missing)
    provider: str | None = None  # the PrivateLink provider a provider or endpoint subject reaches
    # What its verdict rests on that is known only after `pulumi up` (an endpoint's policy).
    unknowns: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def status(self) -> Status:
        if self.failures:
            return Status.FAIL
        return Status.UNKNOWN if self.unknowns else Status.PASS


@dataclass
class WorkloadVerdict:
    """A workload of the plan and the network that serves it (None: none does, a failure)."""

    name: str
    perimeter: str
    served_by: str | None
    failures: list[Finding] = field(default_factory=list)
    ways_in: list[str] = field(default_factory=list)  # each consumer's proven path in


@dataclass
class Report:
    """Every verdict of a run. A renderer prints only what is here, and every status is derived
    from it: a status line printed FAIL always has a failure behind it, one printed UNKNOWN an
    unknown (and no failure). Networks and workloads hold failures only; the rules' unknowns are
    in `findings`."""

    subjects: list[Subject]
    findings: list[Finding]
    workloads: list[WorkloadVerdict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for owner, held in [
            *((f"network {s.name}", s.failures) for s in self.subjects),
            *((f"workload {w.name}", w.failures) for w in self.workloads),
        ]:
            if any(not f.failed for f in held):
                raise ValueError(f"{owner}: an unknown among its failures")
        for subject in self.subjects:
            if any(f.failed for f in subject.unknowns):
                raise ValueError(f"network {subject.name}: a failure among its unknowns")
        known = {s.name for s in self.subjects}
        for verdict in self.workloads:
            if verdict.served_by is None and not verdict.failures:
                raise ValueError(f"workload {verdict.name}: served by nothing, with no failure")
            if verdict.served_by is not None and verdict.served_by not in known:
                raise ValueError(f"workload {verdict.name}: served by unknown {verdict.served_by}")

    def workload_status(self, verdict: WorkloadVerdict) -> Status:
        """FAIL unless it passes; UNKNOWN where it passes but a network that serves it rests on
        something known only after `pulumi up`; else PASS."""
        if not self.workload_passed(verdict):
            return Status.FAIL
        serving = [s for s in self.subjects if s.name == verdict.served_by]
        return Status.UNKNOWN if any(s.unknowns for s in serving) else Status.PASS

    def workload_passed(self, verdict: WorkloadVerdict) -> bool:
        """Served, with no failure of its own, and every network of that name passes."""
        return (
            not verdict.failures
            and verdict.served_by is not None
            and all(s.passed for s in self.subjects if s.name == verdict.served_by)
        )

    def failures(self) -> list[Finding]:
        return [
            *(f for f in self.findings if f.failed),
            *(f for s in self.subjects for f in s.failures),
            *(f for w in self.workloads for f in w.failures),
        ]

    def unknowns(self) -> list[Finding]:
        return [
            *(f for f in self.findings if f.status is Status.UNKNOWN),
            *(f for s in self.subjects for f in s.unknowns),
        ]

    def rule_failures(self, rule: str) -> list[Finding]:
        return [f for f in self.failures() if f.rule == rule]

    def rule_unknowns(self, rule: str) -> list[Finding]:
        return [f for f in self.unknowns() if f.rule == rule]

    def rule_status(self, rule: str) -> Status:
        """FAIL with any failure of the rule, else UNKNOWN with any unknown, else PASS."""
        if self.rule_failures(rule):
            return Status.FAIL
        return Status.UNKNOWN if self.rule_unknowns(rule) else Status.PASS

    @property
    def status(self) -> Status:
        """The run's verdict: FAIL with any failure, else UNKNOWN with any unknown, else PASS."""
        if self.failures():
            return Status.FAIL
        return Status.UNKNOWN if self.unknowns() else Status.PASS

    @property
    def passed(self) -> bool:
        """No failure (unknowns aside: `passes` says whether they fail the gate)."""
        return not self.failures()

    def passes(self, fail_on_unknown: bool = False) -> bool:
        """The gate (`planner verify`'s exit status 0): no failure and, with `fail_on_unknown`,
        no unknown either."""
        return self.status is Status.PASS or (self.passed and not fail_on_unknown)


def unique(findings: list[Finding]) -> list[Finding]:
    """Each finding once, by rule, resource, message and status."""
    seen, kept = set(), []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.rule, f.resource, f.message, f.status))
