"""The resource graph of a stack: what the Pulumi engine sees, whichever way it is shown it.

The graph comes from the real program run under mocks (planner.graph.offline), the steps of a
`pulumi preview --json`, or the resources a CrossGuard policy is handed. Resources are joined
through their property dependencies (URNs), never through id values, which are unknown for new
resources at preview time. Where packets can go in it is the verifier's (the AWS network model,
planner.verification.aws_network).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pulumi.runtime import rpc

UNKNOWN_SENTINEL = rpc.UNKNOWN  # how `pulumi preview --json` writes a value known after apply
MASKED = "[secret]"  # how a preview shows a secret


class Secret:
    """A secret value: its content is never kept."""

    def __repr__(self) -> str:
        return "Secret()"


class Unknown:
    """A value known only after `pulumi up`."""

    def __repr__(self) -> str:
        return "Unknown()"


SECRET = Secret()
UNKNOWN = Unknown()


def normalize(value: Any) -> Any:
    """Inputs as the verifier reads them: secrets and unknowns as markers, whatever the source."""
    if rpc.is_rpc_secret(value) or value == MASKED or type(value).__name__ == "Secret":
        return SECRET
    if value == UNKNOWN_SENTINEL or type(value).__name__ == "Unknown":
        return UNKNOWN
    if isinstance(value, Mapping):
        return {str(key): normalize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    return value


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    # input property -> URNs of the resources its value came from
    deps: dict[str, tuple[str, ...]]
    protect: bool = False
    retain_on_delete: bool = False

    def tags(self) -> dict[str, str]:
        tags = self.inputs.get("tags")
        if isinstance(tags, list):  # auto-scaling groups: [{key, value, propagateAtLaunch}]
            return {str(t.get("key")): str(t.get("value")) for t in tags if isinstance(t, dict)}
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
        return {}

    @property
    def label(self) -> str:
        return f"{self.type.split(':')[1].split('/')[-1]} {self.name}"


@dataclass
class Graph:
    resources: dict[str, Resource]

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> Graph:
        return cls({r.urn: r for r in resources})

    @cached_property
    def _by_type(self) -> dict[str, list[Resource]]:
        index: dict[str, list[Resource]] = {}
        for resource in sorted(self.resources.values(), key=lambda r: r.urn):
            index.setdefault(resource.type, []).append(resource)
        return index

    @cached_property
    def _users(self) -> dict[str, list[Resource]]:
        """URN -> the resources with an input that came from it."""
        index: dict[str, list[Resource]] = {}
        for resource in sorted(self.resources.values(), key=lambda r: r.urn):
            for urn in sorted({u for values in resource.deps.values() for u in values}):
                index.setdefault(urn, []).append(resource)
        return index

    def users(self, resource: Resource, *types: str) -> list[Resource]:
        """Resources (of these types) with an input that came from this one."""
        return [r for r in self._users.get(resource.urn, []) if r.type in types]

    def of_type(self, *types: str) -> list[Resource]:
        if len(types) == 1:
            return self._by_type.get(types[0], [])
        return sorted((r for t in types for r in self._by_type.get(t, [])), key=lambda r: r.urn)

    def refs(self, resource: Resource, prop: str, *types: str) -> list[Resource]:
        """The resources an input property came from (of the given types, if any)."""
        found = [self.resources[u] for u in resource.deps.get(prop, ()) if u in self.resources]
        return [r for r in found if not types or r.type in types]

    def ref(self, resource: Resource, prop: str, *types: str) -> Resource | None:
        found = self.refs(resource, prop, *types)
        return found[0] if found else None

    def touching(self, urns: set[str]) -> list[Resource]:
        """Resources with an input that came from one of these resources."""
        found = {r.urn: r for urn in urns for r in self._users.get(urn, [])}
        return [found[urn] for urn in sorted(found)]


def graph_from_offline(run: Any) -> Graph:
    """From planner.graph.offline.OfflineRun: what the mock monitor recorded of each
    registration."""
    return Graph.of(
        Resource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            inputs=normalize(r.inputs),
            deps={k: tuple(v) for k, v in r.dependencies.items()},
            protect=r.protect,
            retain_on_delete=r.retain_on_delete,
        )
        for r in run.resources
        if r.custom
    )


def graph_from_preview(document: Mapping[str, Any]) -> Graph:
    """From `pulumi preview --json` (or `planner preview --json`): each step's new state."""
    resources = []
    for step in document.get("steps") or []:
        # What leaves the stack: deletions, and the old halves of replacements.
        if step.get("op") in (
            "delete", "delete-replaced", "discard", "discard-replaced", "remove-pending-replace",
        ):  # fmt: skip
            continue
        state = step.get("newState") or {}
        if not state.get("custom", True) or str(state.get("type", "")).startswith("pulumi:"):
            continue
        urn = str(state.get("urn") or step.get("urn"))
        resources.append(
            Resource(
                urn=urn,
                type=str(state.get("type")),
                name=urn.rsplit("::", 1)[-1],
                inputs=normalize(state.get("inputs") or {}),
                # The engine writes `null` for a property with no dependencies.
                deps={
                    k: tuple(v or ()) for k, v in (state.get("propertyDependencies") or {}).items()
                },
                protect=bool(state.get("protect")),
                retain_on_delete=bool(state.get("retainOnDelete")),
            )
        )
    return Graph.of(resources)


def graph_from_policy(resources: Iterable[Any]) -> Graph:
    """From the resources a CrossGuard stack validation policy receives (PolicyResource)."""
    return Graph.of(
        Resource(
            urn=r.urn,
            type=r.resource_type,
            name=r.name,
            inputs=normalize(dict(r.props)),
            deps={k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()},
            protect=bool(getattr(r.opts, "protect", False)),
            # CrossGuard does not show retain_on_delete: the program sets it with protect.
            retain_on_delete=bool(getattr(r.opts, "protect", False)),
        )
        for r in resources
    )
