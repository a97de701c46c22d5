"""The verdicts of the perimeter: every network that serves workloads, from the network model of
each deployment target (NETWORK_MODELS, by the target's kind: planner/targets), and every
workload of the plan with the network that serves it and each consumer's way in. A workload no
network serves, or a pool of the plan with no network, is a failure, not a silence.

A new target's network model is a class with `kind`, `subjects`, `served_elsewhere` and
`prove_ways_in` (as perimeter.AwsNetworkModel), registered here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from planner.verification.aws_network import Network
from planner.verification.expectations import Expectations
from planner.verification.kubernetes_network import KubernetesNetworkModel
from planner.verification.perimeter import AwsNetworkModel
from planner.verification.registry import Finding, Subject, WorkloadVerdict


class NetworkModel(Protocol):
    @property
    def kind(self) -> str: ...

    def subjects(self, expect: Expectations) -> list[Subject]:
        """Its networks that serve workloads, each checked against its perimeter."""
        ...

    def served_elsewhere(
        self, subjects: list[Subject], workload: str, expect: Expectations
    ) -> Subject | None:
        """The subject serving a workload no network of `subjects` lists, if this model has
        one (added to `subjects`)."""
        ...

    def prove_ways_in(
        self, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
    ) -> None:
        """Each consumer's path to the workload through these subjects, or what blocks it."""
        ...


# The network model of each target kind, made from the graph's AWS network model (the one every
# stack has: a stack's own networks, its API access and boundaries are AWS's).
NETWORK_MODELS: dict[str, Callable[[Network], NetworkModel]] = {
    "aws": AwsNetworkModel,
    "kubernetes": KubernetesNetworkModel,
}


def perimeter_verdicts(
    network: Network, expect: Expectations
) -> tuple[list[Subject], list[WorkloadVerdict]]:
    """Every network that serves workloads, checked; and every workload of the plan with the
    network that serves it and each consumer's way in: a workload no network serves, or a
    consumer with no path to it, is a failure, not a silence."""
    models = [make(network) for _, make in sorted(NETWORK_MODELS.items())]
    subjects: list[Subject] = []
    model_of: dict[str, NetworkModel] = {}
    for model in models:
        for subject in model.subjects(expect):
            subjects.append(subject)
            model_of[subject.name] = model
    # A pool of the plan with no network: the AWS model proves (and fails) its ways in.
    aws = next(model for model in models if model.kind == "aws")
    for pool, (perimeter, members, _) in sorted(expect.pools.items()):
        if not any(s.name == f"pool {pool}" for s in subjects):
            model_of[f"pool {pool}"] = aws
            subjects.append(
                Subject(
                    "pool",
                    f"pool {pool}",
                    perimeter,
                    members,
                    [
                        Finding(
                            "perimeter",
                            f"pool {pool}",
                            "the plan's pool has no network "
                            "in the graph: nothing to verify it against",
                        )
                    ],
                )
            )
    subjects.sort(key=lambda s: s.name)
    owner = {name: s.name for s in subjects for name in s.workloads}
    workloads = []
    for name in expect.workloads:
        if name in owner:
            continue
        for model in models:
            served = model.served_elsewhere(subjects, name, expect)
            if served is not None:
                model_of[served.name] = model
                served.workloads.append(name)
                owner[name] = served.name
                break
    subjects.sort(key=lambda s: s.name)
    for name, perimeter in expect.workloads.items():
        serving = owner.get(name)
        failures = (
            []
            if serving
            else [Finding("perimeter", f"workload {name}", "no network of the stack serves it")]
        )
        verdict = WorkloadVerdict(name, perimeter, serving, failures)
        if serving:
            model_of[serving].prove_ways_in(
                expect, verdict, [s for s in subjects if s.name == serving]
            )
        workloads.append(verdict)
    return subjects, workloads
