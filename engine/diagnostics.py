"""One problem found in a playbook, with its place (:class:`Diagnostic`).

:class:`engine.errors.PlaybookInvalid` carries them; ``engine.errors`` still exports the
class (loaded from here when first asked for), so the commands that never read a
playbook do not build it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a playbook, with the place it was found."""

    path: str
    line: int  # 1-based; 0 when unknown
    col: int  # 1-based; 0 when unknown
    field: str  # dotted field path, e.g. "stages.notify.deadline"
    message: str
    source_line: str = ""
    severity: str = "error"  # or "warning": reported, but the playbook still loads
    check: str = ""  # the public-text check that found it (confirms_care, ...), if any

    def location(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path

    def format(self) -> str:
        label = f"{self.severity} [{self.check}]: " if self.check else ""
        head = f"{self.location()}: {self.field + ': ' if self.field else ''}{label}{self.message}"
        if not self.source_line:
            return head
        caret = " " * max(self.col - 1, 0) + "^"
        return f"{head}\n    {self.source_line}\n    {caret}"

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
            **({"check": self.check} if self.check else {}),
        }
