"""The Jinja2 environment of templates/: its loader and settings, with no filter of its own.

The Pulumi program renders cloud-init from it (stacks/aws/nodes.py), the plan's renderers add their
formatting filters on an overlay of it (planner/render/plan_files.py template_environment): the
stacks need nothing of the planner's rendering, and the settings that decide every template's
text are in one place.
"""

from __future__ import annotations

import site
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2

# Where a wheel installs templates/, under its installation's prefix (pyproject.toml
# [tool.setuptools.data-files]).
INSTALLED_TEMPLATES = Path("share/ai-infra-planner/templates")


def templates_dir(source: Path, prefixes: Sequence[str | None]) -> Path:
    """templates/ beside the packages in a source checkout or an editable install; else where
    a wheel put it, under the first prefix that has it (the environment's, or the user's for
    `pip install --user`). A checkout's never shadows: the stacks render from it."""
    if source.is_dir():
        return source
    for prefix in prefixes:
        if prefix and (Path(prefix) / INSTALLED_TEMPLATES).is_dir():
            return Path(prefix) / INSTALLED_TEMPLATES
    return source  # nowhere: Jinja2 then names the template it cannot find


TEMPLATES_DIR = templates_dir(
    Path(__file__).resolve().parent.parent / "templates", [sys.prefix, site.getuserbase()]
)


@cache
def base_environment() -> jinja2.Environment:
    """Each template compiled once per process; a missing variable is an error, not a blank."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, YAML and shell, not HTML.
    )
