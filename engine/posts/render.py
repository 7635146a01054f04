"""Rendering a template into a post: sandboxed, bounded, measured, scanned.

The sandbox itself is in :mod:`engine.posts.sandbox`. Here we add what a render needs
on top: a context of plain JSON values only (confidential inputs left out for
public channels), time, memory and output limits, a cache of compiled templates
(rendering is the hot path; compiling is not), and a scan for identifiers that
must not appear in a public post.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from ..errors import Refused
from ..safetext import describe, first_unsafe
from .sandbox import MAX_OUTPUT, environment

try:
    import resource

    _POSIX = hasattr(signal, "setitimer")
    _PAGE = resource.getpagesize()
except ImportError:  # Windows: output limits only
    resource = None
    _POSIX, _PAGE = False, 0
try:  # the raw handler: signal.getsignal's enum conversion costs more than a small render
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal

#: Wall-clock limit for one render (a hostile template must not hang a command).
TIME_LIMIT = 1.0
#: Wall-clock limit for one identifier pattern on one draft.
SCAN_TIMEOUT = 0.5
#: Address space one render may add to the process (a hostile template must not
#: exhaust memory through a string method or filter the sandbox does not see).
MEMORY_LIMIT = 128 * 2**20

#: What Python objects look like when printed: never part of a post, even when a
#: filter (``|string``, ``|upper``, ``|join`` ...) turned one into text.
_PYTHON_REPR = (
    re.compile(r"(?:<|&lt;)(?i:function|built-in|bound method|method|class|module|macro|generator|coroutine)\b"),
    re.compile(r"(?i: at 0x[0-9a-f]{4,})"),
)

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


#: The organisation's region when neither the playbook (``region:``) nor PLAYBOOK_REGION
#: names one: how a phone number written without its country code is read.
DEFAULT_REGION = "US"
#: Fewer digits than this is not read as a phone number (a year, a room range, a time).
PHONE_MIN_DIGITS = 7
_DATE = re.compile(IDENTIFIERS["date (of birth?)"])


def _phone_numbers(text: str, region: str, url_spans: list) -> list[tuple[int, int, str]]:
    """Phone numbers as Google's libphonenumber reads them for `region` (international
    ones whatever the region): (start, end, text as written)."""
    import phonenumbers

    found = []
    for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
        raw = m.raw_string
        if sum(c.isdigit() for c in raw) < PHONE_MIN_DIGITS or _DATE.fullmatch(raw):
            continue
        if any(a <= m.start < b for a, b in url_spans):
            continue
        found.append((m.start, m.end, raw))
    return found


def scan(text: str, extra: dict[str, str] | None = None, region: str = DEFAULT_REGION) -> list[Hit]:
    """Identifiers found in a public draft (built-in patterns plus the playbook's).

    Phone numbers are read by the ``phonenumbers`` library for the organisation's
    `region`; the broad pattern stays as a safety net for numbers written the way
    another region writes them, but never where the library already read a number
    (so ``+1 (555) 555-0199`` is one hit, whole) and never on a date."""
    url_spans = [m.span() for m in re.finditer(r"https?://\S+", text)]
    hits: list[Hit] = []
    patterns = {**IDENTIFIERS, **(extra or {})}
    import regex  # supports a timeout: a playbook's pattern must not hang a render

    phones = _phone_numbers(text, region, url_spans) if any(c.isdigit() for c in text) else []
    for kind, pattern in patterns.items():
        if kind == "phone number":
            for _, _, raw in phones:
                if Hit(kind, raw) not in hits:
                    hits.append(Hit(kind, raw))
        try:
            for m in regex.finditer(pattern, text, flags=regex.IGNORECASE | regex.VERSION0,
                                    timeout=SCAN_TIMEOUT):
                if any(a <= m.start() < b for a, b in url_spans):
                    continue  # digits inside a link are the link, not an identifier
                if kind == "phone number" and (
                        _DATE.fullmatch(m.group(0).strip())
                        or any(a < m.end() and m.start() < b for a, b, _ in phones)):
                    continue  # a date, or a number the library has read (and reported) already
                hit = Hit(kind, m.group(0).strip())
                if hit not in hits:
                    hits.append(hit)
        except TimeoutError:
            raise Refused(f"the identifier pattern {kind!r} took longer than {SCAN_TIMEOUT:g} s on "
                          "this text; simplify it in the playbook's identifiers:") from None
    return hits


class _TimeUp(Exception):
    pass


@lru_cache(maxsize=None)
def _jinja_errors() -> tuple:
    from jinja2 import TemplateError, TemplateNotFound, UndefinedError
    from jinja2.sandbox import SecurityError

    return TemplateError, TemplateNotFound, UndefinedError, SecurityError


def forget_compiled() -> None:
    """Drop compiled templates (the partials folder changed)."""
    _compiled.cache_clear()


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool):
    """A template compiled once per (source, autoescape mode); rendering is the hot path."""
    return environment(html=html).from_string(source)


class _Limits:
    """Time and memory limits around one render, on the main thread of a POSIX process.

    * Time: a SIGALRM timer interrupts a runaway render. The handler is installed once
      and stays (reinstalled if someone replaced it); outside a render it passes the
      signal on to the handler that was there before.
    * Memory: the soft RLIMIT_AS is lowered to the current address space plus
      ``MEMORY_LIMIT`` for the render and put back afterwards, so an allocation that
      the sandbox cannot see coming (``'a'.center(10**9)``, a ``|join`` with a huge
      separator ...) fails with MemoryError instead of exhausting the machine.

    Both are process-wide, so elsewhere (another thread, no ``/proc``) only the output
    limit and the elapsed-time check between output chunks apply.
    """

    __slots__ = ("alarm", "rlimit")
    armed = False
    previous = None
    statm: tuple[int, int] | None = None  # (pid, fd of /proc/self/statm)

    def __enter__(self) -> "_Limits":
        self.alarm, self.rlimit = False, None
        if not _POSIX or threading.current_thread() is not threading.main_thread():
            return self
        if _getsignal(signal.SIGALRM) is not _on_alarm:
            _Limits.previous = signal.signal(signal.SIGALRM, _on_alarm)
        _Limits.armed = self.alarm = True
        signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
        try:
            used = self._address_space()
            if used is not None:
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                cap = used + MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(used + MEMORY_LIMIT, hard)
                if soft == resource.RLIM_INFINITY or soft > cap:
                    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
                    self.rlimit = (soft, hard)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        _Limits.armed = False  # first: a late alarm must not interrupt the clean-up
        try:
            if self.alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            if self.rlimit is not None:
                resource.setrlimit(resource.RLIMIT_AS, self.rlimit)

    @classmethod
    def _address_space(cls) -> int | None:
        """Bytes of address space in use now (Linux), or None where it cannot be read."""
        pid = os.getpid()
        try:
            if cls.statm is None or cls.statm[0] != pid:  # opened once per process
                cls.statm = (pid, os.open("/proc/self/statm", os.O_RDONLY))
            return int(os.pread(cls.statm[1], 64, 0).split()[0]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None


def _on_alarm(signum, frame):
    if _Limits.armed:
        _Limits.armed = False
        raise _TimeUp()
    if callable(_Limits.previous):  # someone else's timer: theirs to handle
        _Limits.previous(signum, frame)


def render_text(source: str, context: dict, *, html: bool, where: str,
                withheld: frozenset[str] = frozenset()) -> str:
    """Render one template source in the sandbox, within time, memory and size limits.

    On the main thread the limits apply here; from any other thread (a server) the
    render goes to a worker process where they apply (:mod:`engine.posts.render_pool`).
    """
    if _POSIX and threading.current_thread() is not threading.main_thread():
        from .render_pool import shared_pool

        return shared_pool().render(source, context, html=html, where=where, withheld=withheld)
    return render_here(source, context, html=html, where=where, withheld=withheld)


def render_here(source: str, context: dict, *, html: bool, where: str,
                withheld: frozenset[str] = frozenset()) -> str:
    """Render in this process: every limit holds on the main thread only."""
    TemplateError, TemplateNotFound, UndefinedError, SecurityError = _jinja_errors()
    started = time.monotonic()
    try:
        with _Limits() as limits:
            template = _compiled(source, html)
            size, parts = 0, []
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise Refused(f"{where}: output is longer than {MAX_OUTPUT} characters; nothing was recorded")
                if not limits.alarm and time.monotonic() - started > TIME_LIMIT:
                    raise _TimeUp()
                parts.append(chunk)
    except _TimeUp:
        raise Refused(f"{where}: rendering took longer than {TIME_LIMIT:g} s and was stopped; "
                      "nothing was recorded") from None
    except UndefinedError as e:
        raise Refused(f"{where}: {_undefined(e, withheld)}; nothing was recorded") from None
    except TemplateNotFound as e:
        raise Refused(f"{where}: the template includes or imports {e.name!r}, which is not one of "
                      "the shared partials; nothing was recorded") from None
    except SecurityError as e:
        raise Refused(f"{where}: the template tried something the sandbox forbids ({e}); "
                      "nothing was recorded") from None
    except TemplateError as e:
        raise Refused(f"{where}: template error: {e}; nothing was recorded") from None
    except MemoryError:
        raise Refused(f"{where}: the template needs more than {MEMORY_LIMIT >> 20} MB of memory "
                      "and was stopped; nothing was recorded") from None
    except RecursionError:
        raise Refused(f"{where}: the template nests or recurses too deeply (a macro calling "
                      "itself?); nothing was recorded") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as e:
        raise Refused(f"{where}: the template failed while rendering "
                      f"({type(e).__name__}: {e}); nothing was recorded") from None
    text = "".join(parts).strip()
    unsafe = first_unsafe(text)
    if unsafe is not None:
        raise Refused(f"{where}: the rendered text contains {describe(unsafe)}: control characters "
                      "and bidirectional overrides can hide or reorder text on a screen; nothing was recorded")
    if _PYTHON_REPR[0].search(text) or _PYTHON_REPR[1].search(text):
        raise Refused(f"{where}: the template printed a Python object instead of text "
                      "(a function, class or macro not called); nothing was recorded")
    return text


def _undefined(e: Exception, withheld: frozenset[str]) -> str:
    m = re.search(r"'([^']+)' is undefined", str(e))
    if m and m.group(1) in withheld:
        return f"confidential input {m.group(1)!r} cannot be used on a public channel"
    if m:
        return (f"variable {m.group(1)!r} has no value: set it for the incident (playbook set INCIDENT "
                f"{m.group(1)}=...) or for this render only (render ... --set {m.group(1)}=...)")
    m = re.search(r"has no attribute '([^']+)'", str(e))
    if m:
        return f"the template uses {m.group(1)!r}, which that value does not have"
    return f"the template uses a value that is not defined ({e})"


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
