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

from planner.errors import PlannerError

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


# What leaves the stack: deletions, and the old halves of replacements.
GONE = ("delete", "delete-replaced", "discard", "discard-replaced", "remove-pending-replace")
# Steps that may share a URN with another kept step of the same resource: a replacement's new
# half and its logical `replace` step (the engine emits CreateReplacement, Replace and
# DeleteReplaced for one URN; ReadReplacement or ImportReplacement for a read or imported
# resource), and a `--refresh` read of what exists before the step that changes it.
# The engine's step ops (pulumi pkg/display/json.go, deploy.StepOp): the new half of a
# replacement is created, read or imported.
NEW_HALVES = ("create-replacement", "read-replacement", "import-replacement")


def graph_from_preview(document: Mapping[str, Any], file: str = "preview") -> Graph:
    """From `pulumi preview --json` (or `planner preview --json`): each step's new state. A step
    the verifier cannot read (no type, inputs that are not an object, ...) or two steps that
    declare one URN differently are bad input (PlannerError naming the step), never a guess:
    a dropped or collapsed step could hide what breaks a rule."""
    steps = document.get("steps")
    if not isinstance(steps, list):
        raise PlannerError.single(
            file, "steps", "missing: expected the output of `pulumi preview --json`"
        )
    kept: dict[str, tuple[int, str, Resource]] = {}
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, Mapping):
            raise PlannerError.single(file, where, "not a preview step (an object)")
        if step.get("op") in GONE:
            continue
        if step.get("op") == "refresh" and step.get("newState") is None:
            # A --refresh found the resource gone (deleted outside pulumi; the engine's
            # RefreshStep with no new state, written without `newState`): a later step of
            # the preview says what is made in its place.
            continue
        state = step.get("newState")
        if not isinstance(state, Mapping):
            raise PlannerError.single(
                file, f"{where}.newState", "missing or not an object: a step that keeps or "
                "creates a resource records its new state",
            )  # fmt: skip
        type_ = state.get("type")
        if not isinstance(type_, str) or len(type_.split(":")) != 3 or not all(type_.split(":")):
            raise PlannerError.single(
                file, f"{where}.newState.type",
                "missing" if type_ is None else f"{type_!r} is not a resource type "
                "(package:module:Type)",
            )  # fmt: skip
        if not state.get("custom", True) or type_.startswith("pulumi:"):
            continue
        urn = state.get("urn") or step.get("urn")
        if not isinstance(urn, str) or not urn.startswith("urn:pulumi:") or "::" not in urn:
            raise PlannerError.single(file, f"{where}.newState.urn", f"{urn!r} is not a URN")
        resource = Resource(
            urn=urn,
            type=type_,
            name=urn.rsplit("::", 1)[-1],
            inputs=_object(state.get("inputs"), file, f"{where}.newState.inputs"),
            # The engine writes `null` for a property with no dependencies.
            deps=_dependencies(state.get("propertyDependencies"), file, where),
            protect=bool(state.get("protect")),
            retain_on_delete=bool(state.get("retainOnDelete")),
        )
        op = str(step.get("op"))
        if urn in kept:
            first, first_op, earlier = kept[urn]
            if op == "refresh":
                continue  # what exists now; the earlier step says what it becomes
            halves = {op, first_op}
            if first_op == "refresh" or (
                "replace" in halves and len(halves & set(NEW_HALVES)) == 1 and earlier == resource
            ):
                kept[urn] = (index, op, resource)
                continue
            raise PlannerError.single(
                file, f"{where}.urn",
                f"{urn} is also steps[{first}]'s: two steps declare one resource, and which "
                "one the stack holds is not decided",
            )  # fmt: skip
        kept[urn] = (index, op, resource)
    return Graph.of(resource for _, _, resource in kept.values())


def _object(value: Any, file: str, field: str) -> dict[str, Any]:
    """A step's inputs: an object (null: none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlannerError.single(file, field, f"a {type(value).__name__}, not an object")
    found: dict[str, Any] = normalize(value)
    return found


def _dependencies(value: Any, file: str, where: str) -> dict[str, tuple[str, ...]]:
    """A step's propertyDependencies: property -> URNs (null: none)."""
    field = f"{where}.newState.propertyDependencies"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlannerError.single(file, field, f"a {type(value).__name__}, not an object")
    deps: dict[str, tuple[str, ...]] = {}
    for key, urns in value.items():
        if urns is None:
            urns = []
        if not isinstance(urns, list) or not all(isinstance(u, str) for u in urns):
            raise PlannerError.single(file, f"{field}.{key}", "not a list of URNs")
        deps[str(key)] = tuple(urns)
    return deps


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
