"""The Jinja2 environment of templates/: its loader and settings, with no filter of its own.

The Pulumi program renders cloud-init from it (stacks/aws/nodes.py), the plan's renderers add their
formatting filters on an overlay of it (planner/render/plan_files.py template_environment): the
stacks need nothing of the planner's rendering, and the settings that decide every template's
text are in one place.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


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
