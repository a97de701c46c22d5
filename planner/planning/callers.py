"""Workloads whose callers are the pods of a Kubernetes site (consumers named by namespace,
issue 16): where they may be served (a pool on that site only: an API or an EC2 pool cannot be
connected to a cluster's pods) and how messages name their callers. decide.py restricts their
options with it; sites.py gives them their site's nodes first; crossover.py says why no API is
compared."""

from __future__ import annotations

from planner.errors import Problem
from planner.inputs.workloads import Workload
from planner.planning.candidates import SelfHostedCandidate
from planner.planning.context import Context, Entry


def callers_site(workload: Workload) -> str | None:
    """The Kubernetes site whose pods call the workload (its consumers named by namespace: the
    loader checks they name one site), or None."""
    return next((c.site for c in workload.consumers if c.site is not None), None)


def callers_text(workload: Workload) -> str:
    """Its consumers named by namespace, as a message names them."""
    spaces = sorted({c.namespace for c in workload.consumers if c.namespace is not None})
    return (
        f"its consumers are the pods of namespace{'s' if len(spaces) > 1 else ''} "
        f"{', '.join(spaces)} on site {callers_site(workload)}"
    )


def on_callers_site(
    ctx: Context, index: int, workload: Workload, entries: list[Entry]
) -> tuple[list[Entry], str | None, Problem | None]:
    """A workload whose consumers are pods of a cluster site is served there only: an API or
    an EC2 pool cannot be connected to a cluster's pods (the stack admits them by namespace, in
    the pool's NetworkPolicy). The entries on that site and the site; or, where there are none,
    the problem saying why (the workload is unservable: decide raises it)."""
    site = callers_site(workload)
    if site is None:
        return entries, None, None
    kept = [
        e
        for e in entries
        if isinstance(e.subject, SelfHostedCandidate) and e.subject.target.name == site
    ]
    outside = [
        f"{c.cidr} in {c.vpc or 'account ' + str(c.account)}"
        for c in workload.consumers
        if c.vpc is not None or c.account is not None
    ]
    if outside and not any(
        isinstance(e.subject, SelfHostedCandidate) and e.subject.target.reached_from_outside
        for e in kept
    ):
        kept = []  # the pool would be out of its other callers' reach
    if kept:
        return kept, site, None
    why = callers_text(workload) + f", which only a self-hosted pool on site {site} reaches"
    if outside:
        message = (
            f"{why}, and its other consumers ({', '.join(outside)}) are outside the cluster, "
            "which a pool on the site is not reached from: give the outside callers a workload "
            "of their own"
        )
    elif workload.model is not None and workload.model in ctx.catalog.api_models:
        message = (
            f"{why}; the pinned model {workload.model} is an API: pin an open-weights model "
            "or remove the pin"
        )
    elif workload.model is not None:
        message = (
            f"{why}; the pinned model {workload.model} has no option on the site (its weights "
            "fit no replica of the site's nodes): pin a smaller model or remove the pin"
        )
    else:
        message = f"{why}; no model of the catalog fits the site's nodes"
    field_name = "model" if workload.model is not None and not outside else "consumers"
    return [], site, Problem(f"workloads[{index}].{field_name}", message)
