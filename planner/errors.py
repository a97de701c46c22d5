"""Errors the planner reports to a user: which file, which field (and line), what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}: {self.field}" if self.field else file
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class PlannerError(Exception):
    """Bad input: the CLI prints every problem and exits with status 2, writing nothing."""

    exit_code = 2

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__(self.render())

    @classmethod
    def single(cls, file: str, field: str, message: str, line: int | None = None) -> PlannerError:
        return cls(file, [Problem(field, message, line)])

    def render(self) -> str:
        return "\n".join(problem.render(self.file) for problem in self.problems)

    @classmethod
    def unreadable(
        cls, file: str, exc: OSError | UnicodeDecodeError, what: str, note: str = ""
    ) -> PlannerError:
        """One problem for a file (`what` it should be) that is there but cannot be read as
        text: a directory in its place, bytes that are not UTF-8, any other read error."""
        if isinstance(exc, UnicodeDecodeError):
            message = f"not UTF-8 text ({exc.reason})"
        elif isinstance(exc, IsADirectoryError):
            message = f"a directory, not a {what}"
        else:
            message = f"cannot read: {exc.strerror}"
        return cls.single(file, "", message + note)

    @classmethod
    def malformed_yaml(cls, file: str, exc: Exception, note: str = "") -> PlannerError:
        """One problem for a YAML parser's error (PyYAML's or ruamel's, both marked): what is
        wrong and its line, not the parser's several lines of context."""
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return cls.single(file, "", f"malformed YAML{note}: {problem}", line)


class WarningsFailed(Exception):
    """`--strict` and the plan has warnings: exit status 1, nothing written."""

    exit_code = 1
