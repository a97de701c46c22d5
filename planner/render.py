"""Write a plan: plan.json, plan.md (Jinja2) and the Pulumi stack config, all or nothing."""

from __future__ import annotations

import io
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import ruamel.yaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from planner.answers import tokens_text
from planner.errors import PlannerError
from planner.model import Plan

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_OPTIONS_IN_MD = 12
CONFIG_PLAN_KEY = "ai-infra-planner:plan"


def plan_json(plan: Plan) -> str:
    # pydantic's serializer keeps field order and is several times faster than json.dumps.
    return plan.model_dump_json(indent=2) + "\n"


@cache
def template_environment() -> jinja2.Environment:
    """The templates of templates/, each compiled once per process."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML.
    )
    env.filters["usd"] = lambda amount: f"{amount:,.2f} USD"
    env.filters["money"] = lambda amount: "" if amount is None else f"{amount:,.2f}"
    env.filters["signed"] = lambda amount: (
        "0.00" if round(amount, 2) == 0 else f"{round(amount, 2):+,.2f}"
    )
    env.filters["tokens"] = tokens_text
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env


def plan_markdown(plan: Plan) -> str:
    template = template_environment().get_template("plan.md.j2")
    text = template.render(plan=plan, max_options=MAX_OPTIONS_IN_MD)
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


def stack_config(existing: str | None, config_path: Path, region: str, plan_path: str) -> str:
    """The stack file with aws:region and the plan path set, everything else kept as it was:
    other keys, secure values, and the user's comments and layout (a round-trip YAML load)."""
    loader = _round_trip()
    data: Any = None
    if existing:
        try:
            data = loader.load(existing)
        except YAMLError as exc:
            raise PlannerError.single(
                str(config_path), "", f"malformed YAML, left unchanged: {exc}"
            ) from None
        if data is not None and not isinstance(data, dict):
            raise PlannerError.single(str(config_path), "", "expected a mapping, left unchanged")
    if data is None:
        data = CommentedMap()
    config = data.get("config")
    if config is None:
        config = data["config"] = CommentedMap()
    if not isinstance(config, dict):
        raise PlannerError.single(str(config_path), "config", "expected a mapping, left unchanged")
    if config.get("aws:region") == region and config.get(CONFIG_PLAN_KEY) == plan_path:
        return existing or ""  # already pointing here: the file stays byte for byte
    config["aws:region"] = region
    config[CONFIG_PLAN_KEY] = plan_path
    stream = io.StringIO()
    loader.dump(data, stream)
    return stream.getvalue()


def _round_trip() -> ruamel.yaml.YAML:
    loader = ruamel.yaml.YAML()  # round-trip: comments, key order and quoting survive
    loader.preserve_quotes = True
    loader.width = 4096  # never fold a long value (a secure ciphertext) onto two lines
    loader.indent(mapping=2, sequence=4, offset=2)
    return loader


def write_all(files: dict[Path, str]) -> None:
    """Write every file to a temporary sibling first, then rename them into place.

    Nothing is replaced unless every file was written in full; a rename is atomic on one filesystem.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append((Path(name), path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
            os.chmod(name, 0o644)  # mkstemp makes 0600; a plan is meant to be read and reviewed.
        for temp, path in staged:
            os.replace(temp, path)
    finally:
        for temp, _ in staged:
            if temp.exists():
                temp.unlink()
