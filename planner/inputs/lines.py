"""Where things are in a workloads file: the YAML node tree's line of every field path, field
paths written and read back, and the keys given twice (PyYAML keeps the last one silently)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

# The C loader is several times faster; the pure-Python one gives the same data.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loader_of(text: str) -> Any:
    """A YAML loader over text (the C one where PyYAML has it)."""
    return _Loader(text)


_MERGE_TAG = "tag:yaml.org,2002:merge"

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class LineIndex:
    """Lines of a workloads file's YAML nodes, looked up by field path when a problem needs one."""

    root: yaml.Node | None

    def line(self, loc: Loc) -> int | None:
        """The 1-based line of the node at loc (or of its nearest existing parent)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == part:
                        # A key's own line reads better than its value's for a bad scalar.
                        child = value if isinstance(value, yaml.CollectionNode) else key
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line

    def line_of_field(self, field: str) -> int | None:
        """The line of a field given as text, 'workloads[1].model' (as Problem carries it)."""
        return self.line(parse_field_path(field))


def field_path(loc: Loc) -> str:
    """('workloads', 1, 'monthly_tokens', 'input') -> 'workloads[1].monthly_tokens.input'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_field_path(field: str) -> Loc:
    """'workloads[1].model' -> ('workloads', 1, 'model'), the inverse of field_path."""
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(field))


# --- Repeated keys: PyYAML keeps the last silently, which can turn regulated data into public.


def repeated_keys(root: yaml.Node | None) -> list[tuple[Loc, int, int]]:
    """(path of the repeated key, first line, repeated line) for every key given twice."""
    found: list[tuple[Loc, int, int]] = []
    collection = yaml.CollectionNode
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())] if root is not None else []
    seen_nodes: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:  # an alias repeats a node, not a key
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            pairs = node.value
            keys = [(key.tag, key.value) for key, _ in pairs if isinstance(key, yaml.ScalarNode)]
            if len(set(keys)) != len(keys):  # rare: look at each key only then
                first: dict[tuple[str, str], int] = {}
                for key, _ in pairs:
                    if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                        ident, line = (key.tag, key.value), key.start_mark.line + 1
                        if ident in first:
                            found.append(((*loc, key.value), first[ident], line))
                        else:
                            first[ident] = line
            # Only collections can hold more keys: scalars are not walked.
            stack.extend(
                (value, (*loc, key.value)) for key, value in pairs if isinstance(value, collection)
            )
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(
                (item, (*loc, index))
                for index, item in enumerate(node.value)
                if isinstance(item, collection)
            )
    return sorted(found, key=lambda entry: entry[2])


# --- Messages in the file's words: no class names, no regular expressions.
