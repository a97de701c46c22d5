"""A wheel install renders plans too: templates/ sits beside the packages rather than in one,
so pyproject.toml ships it as data files under the prefix, and planner/templating.py finds it
there when no checkout is beside the packages (three stops noted a non-editable install that
could not render plan.md; a wheel built and installed by hand then wrote a plan.md identical to
the checkout's but for the workloads file's path)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from planner.templating import INSTALLED_TEMPLATES, TEMPLATES_DIR, templates_dir

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_every_template_where_the_planner_looks() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    data_files = config["tool"]["setuptools"]["data-files"]
    shipped = {
        path.relative_to(REPO)
        for destination, patterns in data_files.items()
        if Path(destination) == INSTALLED_TEMPLATES
        for pattern in patterns
        for path in REPO.glob(pattern)
    }
    templates = {path.relative_to(REPO) for path in (REPO / "templates").iterdir()}
    assert templates and shipped == templates
    # A checkout renders from its own templates/, never an installed copy.
    assert TEMPLATES_DIR == REPO / "templates"


def test_templates_are_found_under_the_install_prefix(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout" / "templates"
    environment, user = tmp_path / "venv", tmp_path / "user"
    (user / INSTALLED_TEMPLATES).mkdir(parents=True)
    prefixes = [str(environment), None, str(user)]
    # No checkout: the first prefix holding them (here the user's, pip install --user).
    assert templates_dir(checkout, prefixes) == user / INSTALLED_TEMPLATES
    (environment / INSTALLED_TEMPLATES).mkdir(parents=True)
    assert templates_dir(checkout, prefixes) == environment / INSTALLED_TEMPLATES
    # A checkout wins over any install.
    checkout.mkdir(parents=True)
    assert templates_dir(checkout, prefixes) == checkout
    # Nowhere: the checkout's path, which Jinja2 then says it cannot find a template in.
    assert templates_dir(tmp_path / "none", [str(tmp_path / "empty")]) == tmp_path / "none"
