"""Run the real Pulumi program offline, under Pulumi's mocks, and collect what it registers.

The Pulumi CLI and its provider plugins are not needed: `pulumi.runtime.set_mocks` answers every
resource registration and invoke in-process. This is how the tests exercise `__main__.py`, and it
is what an offline preview is built on. It is not `pulumi preview`: no provider checks inputs.
"""

from __future__ import annotations

import contextvars
import os
import runpy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "ai-infra-planner"


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None


@dataclass
class OfflineRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[str] = field(default_factory=list)


InvokeAnswer = Callable[[str, dict[str, Any]], dict[str, Any]]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, run: OfflineRun, answer: InvokeAnswer | None) -> None:
        self.run = run
        self.answer = answer

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.run.resources.append(Registered(args.typ, args.name, dict(args.inputs), None))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        self.run.invokes.append(args.token)
        if self.answer is None:
            raise KeyError(f"no mock answer for invoke {args.token}")
        return self.answer(args.token, dict(args.args)), None


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_program(
    project_dir: Path,
    stack: str,
    config: Mapping[str, str],
    answer_invoke: InvokeAnswer | None = None,
) -> OfflineRun:
    """Run project_dir/__main__.py under mocks as the CLI would (cwd = the project directory)."""
    run = OfflineRun()

    def body() -> None:
        pulumi.runtime.set_mocks(
            _Mocks(run, answer_invoke), project=PROJECT, stack=stack, preview=True
        )
        pulumi.runtime.set_all_config(dict(config))
        root = pulumi.runtime.get_root_resource()

        def program() -> None:
            runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

        with _working_directory(project_dir):
            _sync_await(run_pulumi_func(program))
        outputs = getattr(root, "outputs", {})
        for name, value in outputs.items():
            run.outputs[name] = _sync_await(pulumi.Output.from_input(value).future())

    # A fresh context: the root stack resource and settings are context variables, so each run
    # gets its own stack instead of adding to the previous run's.
    contextvars.Context().run(body)
    return run
