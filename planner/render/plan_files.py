"""Write a plan: plan.json, plan.md (Jinja2) and the Pulumi stack config, all or nothing."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import ruamel.yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from planner import names
from planner.catalog import Catalog, default_catalog
from planner.console import group_warnings
from planner.errors import PlannerError
from planner.fmt import (
    billions_label,
    chart_labels,
    percent_points,
    tokens_text,
    usd,
    usd_cents,
    usd_cents_signed,
    usd_range,
)
from planner.planfile import Plan, WorkloadPlan
from planner.templating import base_environment

MAX_OPTIONS_IN_MD = 12
CONFIG_PLAN_KEY = names.CONFIG_PLAN


def plan_json(plan: Plan) -> str:
    # pydantic's serializer keeps field order and is several times faster than json.dumps.
    return plan.model_dump_json(indent=2) + "\n"


@cache
def template_environment() -> jinja2.Environment:
    """The templates of templates/ with the plan's formatting filters, on an overlay of the
    shared environment (planner/templating.py)."""
    env = base_environment().overlay()
    # An overlay shares its parent's dictionaries: the plan's filters go on copies of them.
    env.filters = dict(env.filters)
    env.globals = dict(env.globals)
    env.filters["usd"] = usd
    env.filters["money"] = lambda amount: "" if amount is None else usd_cents(amount)
    # A change to the cent with its sign, and no sign where it rounds to nothing ("-0.00").
    env.filters["signed"] = lambda amount: (
        usd_cents(0.0) if round(amount, 2) == 0 else usd_cents_signed(round(amount, 2))
    )
    # A change in percent with its sign, on its side of a threshold (the budget gate's): "+5.03 %"
    # against 5, never "+5.0 %".
    env.filters["points"] = lambda pct, beyond=None: percent_points(pct, beyond, signed=True)
    env.filters["tokens"] = tokens_text
    env.filters["billions"] = billions_label
    env.filters["chart_labels"] = chart_labels
    env.filters["consumer"] = lambda consumer: consumer.text()
    env.filters["usd_range"] = usd_range
    env.globals["cost_parts"] = cost_parts
    env.globals["first_call_notes"] = first_call_notes
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    # The plan's warnings, equal ones of several workloads as one line.
    env.globals["warning_groups"] = lambda plan: group_warnings(
        (w.name, warning) for w in plan.workloads for warning in w.warnings
    )
    return env


def first_call_notes(plan: Plan, catalog: Catalog) -> list[tuple[list[str], str]]:
    """The one-time steps before the plan's API models are first invoked (providers.yaml
    before_first_call, e.g. Anthropic's use-case details for Claude on Amazon Bedrock): each
    note with the planned models it concerns, by provider; plan.md says them before the first
    call."""
    models = catalog.api_models
    planned = sorted(
        {w.model for w in plan.workloads if w.placement == "cloud_api" and w.model in models}
    )
    notes = []
    for provider_id, provider in sorted(catalog.providers.items()):
        for step in provider.before_first_call:
            concerned = [
                m
                for m in planned
                if models[m].provider == provider_id
                and (models[m].provider_model_id or "").startswith(step.model_prefix)
            ]
            if concerned:
                notes.append((concerned, step.note))
    return notes


def cost_parts(w: WorkloadPlan, plan: Plan) -> str:
    """What a workload's cost in the plan is made of, where it differs from its chosen option's
    price standing alone (an API's access shared with other workloads, a pool shared with
    others): both, each labelled. Empty where the two are the same."""
    economics = w.answers.volume_economics
    chosen = next((o for o in economics.options if o.id == economics.chosen), None)
    if chosen is None or round(chosen.monthly_cost_usd * 100) == round(w.monthly_cost_usd * 100):
        return ""
    alone = f"the option standing alone: {usd(chosen.monthly_cost_usd)}"
    # Its share of the connections in its consumers' VPCs (Plan.connections), priced apart.
    connections = (
        f" + {usd(w.connection_share_usd)}, its share of the connections in its consumers' VPCs"
        if w.connection_share_usd
        else ""
    )
    if w.placement == "cloud_api":
        tokens = w.monthly_cost_usd - w.access_share_usd - w.connection_share_usd
        return (
            f"{usd(tokens)} of tokens + {usd(w.access_share_usd)}, its share of the "
            f"shared access (paid once in the plan){connections}; {alone}, with "
            f"{usd(chosen.fixed_monthly_usd)} of access to itself"
        )
    pool = next((p for p in plan.pools if p.name == w.pool), None)
    whole = f" of {usd(pool.monthly_cost_usd)}" if pool is not None else ""
    own = w.monthly_cost_usd - w.connection_share_usd
    share = f"{usd(own)}, its share of pool {w.pool}{whole}" if connections else ""
    if connections and round(own * 100) == round(chosen.monthly_cost_usd * 100):
        return (
            f"{usd(own)}, pool {w.pool} (the option standing alone){connections} "
            "(not in the option's price)"
        )
    if connections:
        return f"{share}{connections}; {alone}, in a pool of its own"
    return f"its share of pool {w.pool}{whole}; {alone}, in a pool of its own"


def plan_markdown(plan: Plan, catalog: Catalog | None = None) -> str:
    """plan.md of a plan; `catalog`, the one that priced it (the bundled one unless given),
    says how its providers are reached (providers.yaml)."""
    template = template_environment().get_template("plan.md.j2")
    text = template.render(
        plan=plan, max_options=MAX_OPTIONS_IN_MD, catalog=catalog or default_catalog()
    )
    return tidy_markdown(text)


def tidy_markdown(text: str) -> str:
    """One blank line around headings, tables and quotes, never two in a row.

    The template stays readable with Jinja's block tags on lines of their own; this puts back the
    blank lines Markdown needs and drops the rest, so a plan's diff shows only real changes.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            if lines and lines[-1] != "":
                lines.append("")
            continue
        if lines and lines[-1] != "" and _needs_blank(_kind(lines[-1]), _kind(line)):
            lines.append("")
        lines.append(line)
    return "\n".join(lines).strip() + "\n"


def _kind(line: str) -> str:
    for prefix, name in (("#", "heading"), ("|", "table"), (">", "quote"), ("- ", "list")):
        if line.startswith(prefix):
            return name
    return "text"


def _needs_blank(previous: str, current: str) -> bool:
    if "heading" in (previous, current):
        return True
    if previous == current:
        return previous == "quote"  # consecutive quotes are separate warnings
    return previous != "text" or current in ("table", "quote")


def find_project_dir(start: Path) -> Path | None:
    """The nearest directory holding Pulumi.yaml, from start upward (as the Pulumi CLI looks)."""
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file() or (directory / "Pulumi.yml").is_file():
            return directory
    return None


@dataclass(frozen=True)
class ConfigChange:
    """A key of Pulumi.<stack>.yaml a plan sets: its value before (None: not set) and after."""

    key: str
    old: str | None
    new: str
    line: int | None  # of the key in the file, when it is there


def _load_config(existing: str | None, config_path: Path) -> tuple[Any, Any]:
    """The stack file's document and its `config` mapping, round-trip loaded."""
    data: Any = None
    if existing:
        try:
            data = _round_trip().load(existing)
        except YAMLError as exc:
            raise PlannerError.malformed_yaml(str(config_path), exc, ", left unchanged") from None
        if data is not None and not isinstance(data, dict):
            raise PlannerError.single(str(config_path), "", "expected a mapping, left unchanged")
    if data is None:
        data = CommentedMap()
    config = data.get("config")
    if config is None:
        config = data["config"] = CommentedMap()
    if not isinstance(config, dict):
        raise PlannerError.single(str(config_path), "config", "expected a mapping, left unchanged")
    return data, config


def stack_config_changes(
    existing: str | None, config_path: Path, region: str, plan_path: str
) -> list[ConfigChange]:
    """What writing this plan would change in the stack file: the plan key and aws:region, each
    only when its value differs (a plan path is compared as a path, from the project)."""
    _, config = _load_config(existing, config_path)
    changes = []
    for key, new in (("aws:region", region), (CONFIG_PLAN_KEY, plan_path)):
        old = config.get(key)
        if key == CONFIG_PLAN_KEY and isinstance(old, str):
            same = (config_path.parent / old).resolve() == (config_path.parent / new).resolve()
        else:
            same = old == new
        if not same:
            line = (
                config.lc.key(key)[0] + 1
                if isinstance(config, CommentedMap) and key in config
                else None
            )
            changes.append(ConfigChange(key, None if old is None else str(old), new, line))
    return changes


def stack_config(existing: str | None, config_path: Path, region: str, plan_path: str) -> str:
    """The stack file with aws:region and the plan path set, everything else kept as it was:
    other keys, secure values, and the user's comments and layout (a round-trip YAML load)."""
    changes = stack_config_changes(existing, config_path, region, plan_path)
    if existing and not changes:
        return existing  # already pointing here: the file stays byte for byte
    data, config = _load_config(existing, config_path)
    # Only what differs is set: a plan path spelled otherwise but the same stays as written.
    for change in changes:
        config[change.key] = change.new
    stream = io.StringIO()
    _round_trip().dump(data, stream)
    return stream.getvalue()


def _round_trip() -> ruamel.yaml.YAML:
    loader = ruamel.yaml.YAML()  # round-trip: comments, key order and quoting survive
    loader.preserve_quotes = True
    loader.width = 4096  # never fold a long value (a secure ciphertext) onto two lines
    loader.indent(mapping=2, sequence=4, offset=2)
    return loader


def unwritable(directory: Path) -> str | None:
    """Why files cannot be written in `directory` (made if missing), or None when they can.

    The planner makes a missing output directory, but not at the filesystem root: a mistyped
    absolute path (`/nonexistent/x`) is an error, not a new top-level directory."""
    if directory.exists():
        if not directory.is_dir():
            return f"{directory} is a file, not a directory"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"{directory} is not writable (permission denied)"
        return None
    missing, ancestor = directory, directory.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing, ancestor = ancestor, ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a directory"
    real = ancestor.resolve()
    if real == Path(real.anchor):
        return (
            f"{missing} does not exist, and the planner makes no directory at the filesystem root"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{missing} does not exist and {ancestor} is not writable (permission denied)"
    return None


def _in_the_way(path: Path) -> str | None:
    """Why a file cannot be renamed onto `path`, or None: a rename replaces a file, never a
    directory (checked for every file before any is replaced)."""
    if path.is_dir() and not path.is_symlink():
        return f"{path} is a directory, in the way of the file"
    return None


def write_all(files: Mapping[Path, str | bytes]) -> None:
    """Write every file to a temporary sibling first, then rename them into place.

    Nothing is replaced unless every file was written in full; a rename is atomic on one
    filesystem. On a failure the temporary files and the directories made for them are removed
    again, and the error names the file (exit 2, as bad input)."""
    for path in files:
        reason = unwritable(path.parent) or _in_the_way(path)
        if reason:
            raise PlannerError.single(
                str(path), "", f"cannot write it: {reason}; nothing was written"
            )
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []  # directories this call made, deepest first
    current = next(iter(files), None)
    replaced: list[Path] = []
    done = False
    try:
        for path, text in files.items():
            current = path
            missing = []
            directory = path.parent
            while not directory.exists():
                missing.append(directory)
                directory = directory.parent
            path.parent.mkdir(parents=True, exist_ok=True)
            made[:0] = missing
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append((Path(name), path))
            data = text.encode("utf-8") if isinstance(text, str) else text
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(name, 0o644)  # mkstemp makes 0600; a plan is meant to be read and reviewed.
        for temp, path in staged:
            current = path
            os.replace(temp, path)
            replaced.append(path)
        done = True
    except OSError as exc:
        # A rename in one directory fails only in a race (the directory removed meanwhile):
        # then say which files were replaced already.
        written = (
            "already replaced: " + ", ".join(map(str, replaced))
            if replaced
            else "nothing was written"
        )
        raise PlannerError.single(
            str(current), "", f"cannot write it: {exc.strerror or exc}; {written}"
        ) from None
    finally:
        for temp, _ in staged:
            if temp.exists():
                temp.unlink()
        if not done:
            for directory in made:
                with contextlib.suppress(OSError):
                    directory.rmdir()
