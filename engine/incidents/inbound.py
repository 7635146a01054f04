"""Inbound messages: what reaches the organisation, its response clock, and its answer.

A mention, reply, direct message, review or phone call is recorded in the incident's
own log (``MessageReceived``), so it is covered by the same hash chain as everything
the team did about it: inbound text can hold personal data and is treated like the
rest of the log. Each message gets an id within its incident (``M1``, ``M2``, ...); a
message a source already delivered (the same ``source`` and ``source_id``) is not
recorded twice.

A message waits until it is *answered* (a reply naming it is published: see
:func:`engine.posts.versions.render`'s ``reply_to``) or *handled* (``MessageHandled``: spam, a
duplicate, handled privately). While it waits, its response clock runs from when it
was posted (not when it was seen): the playbook's ``inbound.respond_within`` for its
source, else its ``default``. Those clocks are :class:`~engine.clocks.deadlines.ClockStatus`
like every other, so ``status``, ``due`` and the report show and page them with the
same rules (a drill never pages).

A burst brings thousands of messages to one incident, so nothing a write does may scan
them all. The fold keeps their clocks as counts (``inbound_clock``, see
:func:`tally`): per minute in which waiting messages fall due, how many have no breach
recorded yet and how many have. The incident's index row carries those counts instead
of one clock per message (engine.incidents.index), and ``due`` reads an incident's
messages only when one of them is about to fall due (engine.clocks.breaches).

Inbound text is untrusted: bounded in size, refused when it holds control characters
or bidirectional overrides (:mod:`engine.safetext`), never given to a template.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ..errors import NotFound, Refused, UsageError
from . import policy
from .events import NewEvent, parse_iso, utc_now_iso

MAX_TEXT = 5_000
MAX_FIELD = 200
MAX_URL = 2_000
#: a source's name: the channel it came through (x, mastodon, ...) or how (phone, email)
SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
KINDS = ("mention", "reply", "direct", "review", "call", "other")
#: why a message needs no reply, and how the log and the views word it
REASONS = {"spam": "spam", "duplicate": "a duplicate", "private": "handled privately",
           "no_reply_needed": "no reply needed"}
#: the largest audience an author may be said to have (followers)
MAX_REACH = 10**10
#: a message posted this far after the moment it is recorded is refused (clock skew allowed)
FUTURE_SLACK = timedelta(minutes=5)


def check_message(raw: dict, now: datetime) -> dict:
    """The checked data of a ``MessageReceived`` (without its id), or UsageError naming
    every field that is wrong. `raw` has source, text, and optionally source_id, kind,
    author, lang, url, posted_at (ISO 8601 with a zone; default: `now`), reach (the
    author's followers, when the source says; kept only when given)."""
    from ..safetext import refuse_unsafe

    problems: list[str] = []

    def text_field(name: str, limit: int, *, one_line: bool = True, required: bool = False) -> str | None:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip() and not required):
            if required:
                problems.append(f"{name}: missing")
            return None
        if not isinstance(value, str):
            problems.append(f"{name}: must be text, not {type(value).__name__}")
            return None
        value = value.replace("\r\n", "\n").strip()
        if not value:
            problems.append(f"{name}: empty")
            return None
        if len(value) > limit:
            problems.append(f"{name}: {len(value)} characters; at most {limit}")
            return None
        try:
            refuse_unsafe(name, value, one_line=one_line)
        except UsageError as e:
            problems.append(e.message)
            return None
        return value

    unknown = sorted(set(raw) - {"source", "source_id", "kind", "author", "text", "lang", "url", "posted_at",
                                 "reach"})
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)}")
    source = text_field("source", 32, required=True)
    if source is not None and not SOURCE.match(source):
        problems.append(f"source: {source!r} is not a source name (lower-case letters, digits, '-' or '_', "
                        "e.g. phone, mastodon, reviews)")
    text = text_field("text", MAX_TEXT, one_line=False, required=True)
    source_id = text_field("source_id", MAX_FIELD)
    author = text_field("author", MAX_FIELD)
    kind = raw.get("kind") or "mention"
    if kind not in KINDS:
        problems.append(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    lang = text_field("lang", 16)
    if lang is not None and not LANG.match(lang):
        problems.append(f"lang: {lang!r} is not a language tag such as en or pt-BR")
    url = text_field("url", MAX_URL)
    if url is not None and not re.match(r"^https?://[^\s/]+", url):
        problems.append(f"url: {url[:80]!r} is not an http(s) address")
    posted = raw.get("posted_at")
    posted_at = utc_now_iso(now)
    if posted not in (None, ""):
        try:
            when = parse_iso(posted) if isinstance(posted, str) else None
            if when is None:
                problems.append(f"posted_at: must be text, not {type(posted).__name__}")
            elif when > now + FUTURE_SLACK:
                problems.append(f"posted_at: {posted} is in the future (now is {utc_now_iso(now)})")
            else:
                posted_at = utc_now_iso(when)
        except (ValueError, OverflowError) as e:
            problems.append(f"posted_at: {e}")
    reach = raw.get("reach")
    if reach is not None and (not isinstance(reach, int) or isinstance(reach, bool) or not 0 <= reach <= MAX_REACH):
        problems.append(f"reach: the author's followers, a whole number from 0 to {MAX_REACH}, not {reach!r}")
    if problems:
        raise UsageError(problems[0] if len(problems) == 1 else
                         f"the message has {len(problems)} problems; nothing was recorded\n"
                         + "\n".join(f"  - {p}" for p in problems))
    return {"source": source, "source_id": source_id, "kind": kind, "author": author, "text": text,
            "lang": lang, "url": url, "posted_at": posted_at, **({"reach": reach} if reach is not None else {})}


def dedup_key(source: str, source_id: str | None) -> str | None:
    return None if source_id is None else f"{source}\x1f{source_id}"


def known(state: dict, source: str, source_id: str | None) -> str | None:
    """The id of the message of the incident that source already delivered, if any."""
    key = dedup_key(source, source_id)
    return None if key is None else state.get("inbound_keys", {}).get(key)


def receive_events(state: dict, actor: str, message: dict, at: str) -> list[NewEvent]:
    """`actor` recording a checked message (see :func:`check_message`); no event for a
    message its source delivered before (deduplicated by source and source id)."""
    policy.require(state, actor, "listen" if policy.is_engine(actor) else "receive")
    if known(state, message["source"], message["source_id"]) is not None:
        return []
    number = len(state.get("inbound", {})) + 1
    return [NewEvent("MessageReceived", at, actor, {"message": f"M{number}", **message})]


def message_of(state: dict, message: str) -> dict:
    found = state.get("inbound", {}).get(message)
    if found is None:
        have = ", ".join(state.get("inbound", {})) or "none yet"
        raise NotFound(f"incident {state['id']}: no message {message!r} (messages: {have})")
    return found


def handle_events(state: dict, actor: str, message: str, reason: str, note: str, at: str) -> list[NewEvent]:
    """`actor` marking a waiting message as needing no published reply, or Refused."""
    from ..safetext import refuse_unsafe

    policy.require(state, actor, "handle")
    if reason not in REASONS:
        raise UsageError(f"--reason: {reason!r} is not one of {', '.join(REASONS)}")
    note = (note or "").strip()
    if len(note) > MAX_FIELD * 5:
        raise UsageError(f"--note: at most {MAX_FIELD * 5} characters")
    refuse_unsafe("--note", note)
    m = message_of(state, message)
    if m["status"] != "waiting":
        raise Refused(f"incident {state['id']}: message {message} is already {m['status']} "
                      f"({answer_text(m)})")
    return [NewEvent("MessageHandled", at, actor, {"message": message, "reason": reason, "note": note})]


def check_reply(state: dict, message: str) -> dict:
    """The message a new reply may answer, or NotFound/Refused."""
    m = message_of(state, message)
    if m["status"] != "waiting":
        raise Refused(f"incident {state['id']}: message {message} is already {m['status']} "
                      f"({answer_text(m)}); a reply is not needed")
    return m


# -- folding ------------------------------------------------------------------------


def fold_received(s: dict, at: str, actor: str, data: dict) -> None:
    """Fold a ``MessageReceived`` into state `s` (in place; see engine.incidents.event_types)."""
    mid = data["message"]
    s.setdefault("inbound", {})[mid] = {
        **{k: data.get(k) for k in ("source", "source_id", "kind", "author", "text", "lang", "url", "posted_at",
                                    "via")},
        "received_at": at, "by": actor, "status": "waiting", "answered": None, "handled": None,
        **({"reach": data["reach"]} if data.get("reach") is not None else {})}
    due = message_due(s["plan"], data)
    if due is not None:
        _count(s, due, 0, +1)
    key = dedup_key(data["source"], data.get("source_id"))
    if key is not None:
        s.setdefault("inbound_keys", {})[key] = mid


def fold_handled(s: dict, at: str, actor: str, data: dict) -> None:
    """Fold a ``MessageHandled`` into state `s` (in place)."""
    mid = data["message"]  # a new record, not an edit: copies of the state share the old one
    m = s["inbound"][mid]
    if m["status"] == "waiting":
        _settle(s, mid, m)
    s["inbound"][mid] = {**m, "status": "handled",
                         "handled": {"reason": data["reason"], "note": data.get("note", ""), "by": actor, "at": at}}


# -- the clocks' counts -----------------------------------------------------------------
# ``s["inbound_clock"]``: {minute: [no breach recorded, breach recorded]} over the waiting
# messages that have a response clock, by the minute their clock falls due in (a UTC text
# like "2026-03-14T09:30:00.000Z", in the incident's own time). Entries at zero are removed.


def message_due(plan: dict, m: dict) -> datetime | None:
    """When message `m`'s response clock falls due (None: its source has none)."""
    seconds = allowance(plan, m["source"])
    if seconds is None:
        return None
    return datetime.fromisoformat(m["posted_at"].replace("Z", "+00:00")) + timedelta(seconds=seconds)


def breach_of(mid: str, due: datetime) -> str:
    """The key a message's missed clock is recorded under (engine.clocks.deadlines.breach_key)."""
    return f"message:{mid}@{utc_now_iso(due)}"


def minute_of(due: datetime) -> str:
    return utc_now_iso(due.replace(second=0, microsecond=0))


def _count(s: dict, due: datetime, column: int, change: int) -> None:
    counts = s.setdefault("inbound_clock", {})
    minute = minute_of(due)
    row = counts.get(minute) or [0, 0]
    row = [row[0] + change, row[1]] if column == 0 else [row[0], row[1] + change]
    if row == [0, 0]:
        counts.pop(minute, None)
    else:
        counts[minute] = row


def _settle(s: dict, mid: str, m: dict) -> None:
    """Message `m` (waiting) is answered or handled: its clock leaves the counts."""
    due = message_due(s["plan"], m)
    if due is not None:
        _count(s, due, 1 if breach_of(mid, due) in s.get("breaches", {}) else 0, -1)


def fold_breach(s: dict, mid: str, key: str) -> None:
    """A breach `key` is about to be recorded for message `mid`'s clock (before the fold
    stores it): a waiting message moves from not recorded to recorded."""
    m = s.get("inbound", {}).get(mid)
    if m is None or m["status"] != "waiting" or key in s.get("breaches", {}):
        return
    due = message_due(s["plan"], m)
    if due is not None and breach_of(mid, due) == key:
        _count(s, due, 0, -1)
        _count(s, due, 1, +1)


def tally(state: dict) -> list[tuple[str, int, int]]:
    """(minute, waiting with no breach recorded, waiting with one recorded) of the
    incident's message clocks, earliest first: the counts the fold keeps."""
    return sorted((minute, a, b) for minute, (a, b) in (state.get("inbound_clock") or {}).items())


def describe_received(d: dict) -> str:
    text = d["text"] if len(d["text"]) <= 200 else d["text"][:199] + "\u2026"
    return (f"message {d['message']} ({d.get('kind', 'mention')}) via {d['source']}"
            + (f" from {d['author']}" if d.get("author") else "") + f", posted {d['posted_at']}: {text}")


def describe_handled(d: dict) -> str:
    return f"message {d['message']} needs no reply: {d['reason']}" + (f" ({d['note']})" if d.get("note") else "")


def apply_reply(s: dict, post_id: str, post: dict, at: str) -> None:
    """A published post that answers a message marks that message answered (the first one)."""
    mid = post.get("reply_to") or ""
    m = s.get("inbound", {}).get(mid)
    if m is not None and m["status"] == "waiting":  # a new record (see fold_handled)
        _settle(s, mid, m)
        s["inbound"][mid] = {**m, "status": "answered", "answered": {"post": post_id, "at": at}}


def answer_text(m: dict) -> str:
    if m["answered"]:
        return f"answered by {m['answered']['post']} at {m['answered']['at']}"
    if m["handled"]:
        h = m["handled"]
        return f"{REASONS.get(h['reason'], h['reason'])}, by {h['by']} at {h['at']}"
    return "waiting"


# -- response clocks ------------------------------------------------------------------


def allowance(plan: dict, source: str) -> int | None:
    """Seconds the playbook allows to answer a message from `source`; None: no clock."""
    spec = (plan.get("inbound") or {}).get("respond_within") or {}
    return spec.get(source, spec.get("default"))


def message_clocks(state: dict, now: datetime) -> list:
    """One response clock per message (waiting, or how it ended)."""
    from ..clocks.deadlines import ClockStatus

    plan = state["plan"]
    escalate = (plan.get("inbound") or {}).get("escalate")
    out = []
    for mid, m in state.get("inbound", {}).items():
        due = message_due(plan, m)
        if due is None:
            continue
        ended = m["answered"] or m["handled"]
        who = f" from {m['author']}" if m["author"] else ""
        out.append(ClockStatus(
            f"message:{mid}", f"reply to {mid} ({m['source']}{who})", due,
            ended["at"] if ended else None, now, escalate, kind="message",
            anchor=f"{mid} posted", anchor_at=m["posted_at"]))
    return out


def waiting_seconds(m: dict, now: datetime) -> int:
    """How long the message has waited: until its answer, or until now."""
    end = (m["answered"] or m["handled"] or {}).get("at")
    then = parse_iso(end) if end else now
    return max(int((then - parse_iso(m["posted_at"])).total_seconds()), 0)


def inbox_rows(state: dict, now: datetime, *, unanswered: bool = False) -> list[dict]:
    """The incident's messages as rows of the inbox (see :func:`engine.app.inbound.inbox`)."""
    from .state import effective_now

    now = effective_now(state, now)
    rows = []
    for mid, m in state.get("inbound", {}).items():
        if unanswered and m["status"] != "waiting":
            continue
        seconds = allowance(state["plan"], m["source"])
        due = parse_iso(m["posted_at"]) + timedelta(seconds=seconds) if seconds is not None else None
        rows.append({"incident": state["id"], "drill": state["drill"], "message": mid, **m,
                     "waiting_seconds": waiting_seconds(m, now),
                     "due_at": utc_now_iso(due) if due else None, "target_seconds": seconds,
                     "overdue": bool(due and m["status"] == "waiting" and now > due)})
    return rows


def figures(state: dict, now: datetime) -> dict:
    """Time to detect and to respond, per message and in all, for the report."""
    from .state import effective_now

    now = effective_now(state, now)
    msgs = state.get("inbound", {})
    first_posted = min((m["posted_at"] for m in msgs.values()), default=None)
    detect = None
    if first_posted is not None:
        detect = max(int((parse_iso(state["started_at"]) - parse_iso(first_posted)).total_seconds()), 0)
    answered = [m for m in msgs.values() if m["answered"]]
    within = met = 0
    for m in msgs.values():
        seconds = allowance(state["plan"], m["source"])
        if seconds is None:
            continue
        within += 1
        end = (m["answered"] or m["handled"] or {}).get("at")
        if end and (parse_iso(end) - parse_iso(m["posted_at"])).total_seconds() <= seconds:
            met += 1
    responses = sorted(waiting_seconds(m, now) for m in answered)
    return {"messages": len(msgs), "waiting": sum(1 for m in msgs.values() if m["status"] == "waiting"),
            "answered": len(answered), "handled": sum(1 for m in msgs.values() if m["handled"]),
            "first_posted_at": first_posted, "time_to_detect_seconds": detect,
            "with_target": within, "met_target": met,
            "first_response_seconds": responses[0] if responses else None,
            "median_response_seconds": responses[len(responses) // 2] if responses else None,
            "longest_wait_seconds": max((waiting_seconds(m, now) for m in msgs.values()), default=None)}


# -- use cases on one incident ---------------------------------------------------------


def receive(store, clock, actor: str, incident: str, raw: dict, via: str | None = None) -> tuple[dict, str, bool]:
    """Record a message on `incident`: (its record, the message's id, whether it is new).

    A message its source delivered before is not recorded again; its id is returned.
    `via` names the configured source (engine.sources) a listener received it from.
    Only that message is read back (a burst's thousandth message costs what the first did)."""
    from . import state as inc
    from .act import act, event_time

    found: list[tuple[str, bool]] = []

    def build(state):
        message = check_message(raw, inc.effective_now(state, clock.now()))
        if via is not None:
            message["via"] = via
        events = receive_events(state, actor, message, event_time(clock, state))
        found.append((events[0].data["message"], True) if events else
                     (known(state, message["source"], message["source_id"]), False))
        return events

    record = act(store, incident, build, read=lambda state: dict(state["inbound"][found[-1][0]]))
    mid, new = found[-1]
    return record, mid, new


def handle(store, clock, actor: str, incident: str, message: str, reason: str, note: str = "") -> dict:
    from .act import act, event_time

    return act(store, incident, lambda state: handle_events(state, actor, message, reason, note,
                                                            event_time(clock, state)))


def report_section(state: dict, as_of: datetime) -> dict:
    """The report's account of the incident's inbound messages: figures and each message."""
    messages = []
    for mid, m in state.get("inbound", {}).items():
        seconds = allowance(state["plan"], m["source"])
        waited = waiting_seconds(m, as_of)
        messages.append({"message": mid, **{k: m[k] for k in ("source", "kind", "author", "lang", "url", "text",
                                                             "posted_at", "received_at", "status")},
                         "answer": answer_text(m), "waited_seconds": waited, "target_seconds": seconds,
                         "met_target": None if seconds is None else (m["status"] != "waiting" and waited <= seconds)})
    return {**figures(state, as_of), "items": messages}
