"""The playbook's ``monitors:`` block: rules that open or feed an incident from messages.

A monitor lives in the playbook it opens (not in a file of its own) because its words
and its threshold are part of the plan the team reviews, validates and versions with
the playbook, and every problem is then reported like the rest of the playbook's, at
its file, line and field::

    monitors:
      complaint_spike:
        title: Patient complaints are spreading
        keywords: [waited hours, rude, misdiagnosed, "no one answered"]
        sources: [x, mastodon]        # default: every source feeding this playbook
        min_reach: 0                  # the author's followers, when the source gives them
        spike: {count: 3, within: 30m}
        action: open                  # or page: ask the on-call lead to confirm
        severity: high
        inputs: {complaint_url: url, complaint_posted_at: posted_at}
        notify: [incident_lead]

Keywords are words and phrases, never patterns: a playbook may come from anyone, so
no expression of it runs in the matcher (see :mod:`engine.incidents.monitors`).
Matching is case- and accent-insensitive and on whole words.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .durations import parse_duration

#: What a monitor may copy from the first message into an input of the incident it opens.
MESSAGE_FIELDS = ("url", "author", "source", "posted_at", "text", "lang")
#: The longest spike window: a count over longer than a week is not a spike.
MAX_WINDOW_SECONDS = 7 * 24 * 3600
MAX_KEYWORDS = 200
_PHRASE = re.compile(r"^[\w' -]+$")


def words(text: str) -> list[str]:
    """`text` as lower-case words without accents: how messages and keywords are compared."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.findall(r"\w+", plain)


def _phrase(value: str) -> str:
    if not _PHRASE.match(value) or "_" in value:
        raise ValueError(f"{value!r} is not a word or phrase: letters, digits, spaces, ' and - only "
                         "(keywords are not patterns)")
    if not words(value):
        raise ValueError(f"{value!r} has no word in it")
    return value


def _window(value: str) -> str:
    seconds = parse_duration(value).total_seconds()
    if not 60 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"a spike window is between 1m and 7d, not {value!r}")
    return value


Phrase = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_phrase)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
RoleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Spike(_Model):
    """So many matching messages posted within so long."""

    count: int = Field(ge=1, le=10_000, description="how many matching messages")
    within: Annotated[str, AfterValidator(_window)] = Field(
        "60m", description="posted within this long of each other (1m to 7d)")


class Monitor(_Model):
    """A rule over inbound messages that opens an incident of this playbook, or pages
    someone to confirm, when enough matching messages arrive while none is open."""

    title: Annotated[str, StringConstraints(max_length=200)] = Field(
        "", description="the title of the incident it opens (default: the monitor's name)")
    keywords: list[Phrase] = Field(min_length=1, max_length=MAX_KEYWORDS, description=(
        "a message matches when it contains any of these words or phrases (whole words, "
        "case and accents ignored; not patterns)"))
    sources: list[Name] = Field(default_factory=list, description="only messages from these sources (default: any)")
    min_reach: int | None = Field(None, ge=0, description=(
        "only messages whose author has at least this many followers (a message whose "
        "source does not say never matches)"))
    spike: Spike = Field(default_factory=lambda: Spike(count=1), description=(
        "how many matching messages within how long fire it (default: one)"))
    action: Literal["open", "page"] = Field("open", description=(
        "open: start an incident of this playbook; page: notify the on-call lead to confirm"))
    severity: str | None = Field(None, description="the severity of the incident it opens (default: the highest)")
    inputs: dict[RoleId, Literal[MESSAGE_FIELDS]] = Field(default_factory=dict, description=(
        "inputs of the incident it opens, copied from the first matching message: "
        "{complaint_url: url, complaint_posted_at: posted_at}"))
    notify: list[RoleId] = Field(default_factory=list, description=(
        "roles whose escalation destinations hear that it fired (escalation.ROLE in the "
        "destinations file; escalation hears every notice)"))

    @field_validator("keywords")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        seen: dict[tuple, str] = {}
        for phrase in value:
            key = tuple(words(phrase))
            if key in seen:
                raise ValueError(f"{phrase!r} is the same keyword as {seen[key]!r} (case and accents are ignored)")
            seen[key] = phrase
        return value


def compiled(monitors: dict[str, Monitor]) -> dict[str, dict]:
    """The monitors as the plain data the matcher uses (keywords as word lists, seconds)."""
    return {name: {"name": name, "title": m.title, "keywords": [words(k) for k in m.keywords],
                   "sources": list(m.sources), "min_reach": m.min_reach, "count": m.spike.count,
                   "within": int(parse_duration(m.spike.within).total_seconds()), "action": m.action,
                   "severity": m.severity, "inputs": dict(m.inputs), "notify": list(m.notify)}
            for name, m in monitors.items()}


def check_monitors(pb, smap):
    """The references of the playbook's monitors (severity, inputs, roles), as diagnostics."""
    def unknown(loc, kind, name, known):
        names = ", ".join(sorted(known)) or "none declared"
        return smap.diagnostic(loc, f"unknown {kind} {name!r} (known: {names})")

    for name, m in pb.monitors.items():
        base = ("monitors", name)
        if m.severity is not None and m.severity not in pb.severities:
            yield unknown(base + ("severity",), "severity", m.severity, pb.severities)
        for i, role in enumerate(m.notify):
            if role not in pb.roles:
                yield unknown(base + ("notify", i), "role", role, pb.roles)
        for field, source in m.inputs.items():
            spec = pb.inputs.get(field)
            if spec is None:
                yield unknown(base + ("inputs", field), "input", field, pb.inputs)
            elif spec.confidential:
                yield smap.diagnostic(base + ("inputs", field), f"input {field!r} is confidential: a monitor "
                                      "copies what a public message says, never into a confidential input")
            elif (source == "posted_at") != (spec.type == "datetime"):
                yield smap.diagnostic(base + ("inputs", field), (
                    f"input {field!r} is of type {spec.type}: " + (
                        "posted_at goes into a datetime input" if source == "posted_at"
                        else f"a datetime input takes posted_at, not {source}")))
