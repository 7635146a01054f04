"""Rendering a template into a post: sandboxed, bounded, measured, scanned.

The sandbox itself is in :mod:`engine.sandbox`. Here we add what a render needs
on top: a context of plain JSON values only (confidential inputs left out for
public channels), a time limit and an output limit, the channel's length count,
and a scan for identifiers that must not appear in a public post.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import Refused
from .sandbox import MAX_OUTPUT, environment

#: Wall-clock limit for one render (a hostile template must not hang a command).
TIME_LIMIT = 2.0

#: Obvious identifiers in public drafts. Deliberately broad: a false alarm costs an
#: approver one override with a reason; a miss can cost a patient their privacy.
IDENTIFIERS = {
    "email address": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone number": r"(?<![\w/.-])\+?\d[\d ().-]{7,}\d(?![\w/-])",
    "date (of birth?)": r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}|(?:19|20)\d{2}-\d{2}-\d{2})\b",
    "record or account number": r"\b(?:MRN|NHS|SSN|acct|account|record|patient\s*(?:id|no|number))\b[\s#:.-]*\w*\d{3,}",
    "long number": r"(?<![\w/.-])\d{8,}(?![\w/-])",
}


@dataclass(frozen=True)
class Hit:
    kind: str
    text: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "text": self.text}


def scan(text: str, extra: dict[str, str] | None = None) -> list[Hit]:
    """Identifiers found in a public draft (built-in patterns plus the playbook's)."""
    url_spans = [m.span() for m in re.finditer(r"https?://\S+", text)]
    hits: list[Hit] = []
    patterns = {**IDENTIFIERS, **(extra or {})}
    for kind, pattern in patterns.items():
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            if any(a <= m.start() < b for a, b in url_spans):
                continue  # digits inside a link are the link, not an identifier
            hit = Hit(kind, m.group(0).strip())
            if hit not in hits:
                hits.append(hit)
    return hits


class _TimeUp(Exception):
    pass


@contextmanager
def _time_limit(seconds: float):
    """Interrupt a runaway render (main thread on POSIX; elsewhere output limits only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_text(source: str, context: dict, *, html: bool, where: str,
                withheld: frozenset[str] = frozenset()) -> str:
    """Render one template source in the sandbox, within time and size limits."""
    from jinja2 import TemplateError, UndefinedError
    from jinja2.sandbox import SecurityError

    env = environment(html=html)
    started = time.monotonic()
    try:
        with _time_limit(TIME_LIMIT):
            template = env.from_string(source)
            size, parts = 0, []
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise Refused(f"{where}: output is longer than {MAX_OUTPUT} characters; nothing was recorded")
                if time.monotonic() - started > TIME_LIMIT:
                    raise _TimeUp()
                parts.append(chunk)
    except _TimeUp:
        raise Refused(f"{where}: rendering took longer than {TIME_LIMIT:g} s and was stopped; "
                      "nothing was recorded") from None
    except UndefinedError as e:
        raise Refused(f"{where}: {_undefined(e, withheld)}; nothing was recorded") from None
    except SecurityError as e:
        raise Refused(f"{where}: the template tried something the sandbox forbids ({e}); "
                      "nothing was recorded") from None
    except TemplateError as e:
        raise Refused(f"{where}: template error: {e}; nothing was recorded") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError,
            RecursionError, MemoryError) as e:
        raise Refused(f"{where}: the template failed while rendering "
                      f"({type(e).__name__}: {e}); nothing was recorded") from None
    return "".join(parts).strip()


def _undefined(e: Exception, withheld: frozenset[str]) -> str:
    m = re.search(r"'([^']+)' is undefined", str(e))
    if m and m.group(1) in withheld:
        return f"confidential input {m.group(1)!r} cannot be used on a public channel"
    if m:
        return f"variable {m.group(1)!r} has no value (set it with --set {m.group(1)}=...)"
    return str(e)


def context(state: dict, *, public: bool, overrides: dict | None = None) -> dict:
    """Plain JSON values only; confidential inputs never enter a public render."""
    plan = state["plan"]
    inputs = {**state["inputs"], **(overrides or {})}
    if public:
        inputs = {k: v for k, v in inputs.items() if not plan["inputs"][k]["confidential"]}
    return {
        **inputs,
        "incident": {
            "id": state["id"],
            "title": state["title"],
            "severity": state["severity"],
            "stage": state["stage"],
            "started_at": state["started_at"],
            "drill": state["drill"],
        },
        "roles": {role: ", ".join(people) for role, people in state["roles"].items()},
    }
