from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from planner.catalog import Catalog, default_catalog

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "workloads.yaml"


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Pulumi project directory (Pulumi.yaml and __main__.py of this repo), the cwd."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "__main__.py", tmp_path / "__main__.py")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_workloads(project: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "workloads.yaml") -> Path:
        path = project / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def workload_yaml(**fields: str) -> str:
    """A one-workload file; fields override the defaults as YAML fragments."""
    values = {
        "name": "w",
        "task": "faq",
        "data": "internal",
        "monthly_tokens": "{input: 100M, output: 20M}",
        # Callers in another account: a plain range would warn (consumers_inside).
        "consumers": '[{cidr: 10.0.0.0/16, account: "111122223333"}]',
        **fields,
    }
    body = "\n".join(f"    {key}: {value}" for key, value in values.items())
    return f"organization: acme\nregion: us-east-1\nworkloads:\n  - {body.lstrip()}\n"
