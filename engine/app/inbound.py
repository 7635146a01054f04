"""Use cases on inbound messages: record one, mark one handled, the inbox.

The rules (what a message may hold, deduplication, response clocks) are in the domain,
:mod:`engine.incidents.inbound`; who may act is :mod:`engine.incidents.policy`'s answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..incidents import inbound
from ..incidents.policy import scope_of
from .context import App, acting
from .principal import Principal


@dataclass(frozen=True)
class Received:
    state: dict
    message: str  # its id in the incident: M1, M2, ...
    new: bool  # False: its source delivered it before, and nothing was recorded

    def to_json(self) -> dict:
        return {"incident": self.state["id"], "message": self.message, "new": self.new,
                **self.state["inbound"][self.message]}


def receive(app: App, who: Principal, incident: str, message: dict) -> Received:
    """Record `message` (source, text, source_id, kind, author, lang, url, posted_at)."""
    with acting(who, scope_of("receive")) as actor:
        state, mid, new = inbound.receive(app.store(), app.clock, actor, incident, dict(message))
    return Received(state, mid, new)


def handle(app: App, who: Principal, incident: str, message: str, reason: str, note: str = "") -> dict:
    """Mark a waiting message as needing no published reply (spam, duplicate, private, ...)."""
    with acting(who, scope_of("handle")) as actor:
        return inbound.handle(app.store(), app.clock, actor, incident, message, reason, note)


def inbox(app: App, who: Principal, incident: str | None = None, *, unanswered: bool = False) -> list[dict]:
    """Messages of one incident (or of every open one), the longest waiting first."""
    from ..incidents import service
    from ..incidents.act import read_state

    with acting(who, "read"):
        store = app.store(read_only=True)
        states = [read_state(store, incident)] if incident else service.list_incidents(store)
        now = app.clock.now()
        rows = [r for s in states for r in inbound.inbox_rows(s, now, unanswered=unanswered)]
    waiting = [r for r in rows if r["status"] == "waiting"]
    done = [r for r in rows if r["status"] != "waiting"]
    return (sorted(waiting, key=lambda r: (-r["waiting_seconds"], r["incident"], r["message"]))
            + sorted(done, key=lambda r: (r["posted_at"], r["incident"], r["message"])))


#: Why a message needs no reply, as the domain words it (for forms and help).
REASONS = inbound.REASONS


def may(who: Principal, state: dict, action: str) -> bool:
    """Whether `who` may `action` (``handle``, ``render``, ...) on the incident in `state`
    now: what the use case would answer, asked before a form is offered."""
    from ..errors import Refused
    from ..incidents import policy

    if not who.allows(scope_of(action)):
        return False
    try:
        policy.require(state, who.name, action)
    except Refused:
        return False
    return True


def waiting(state: dict, now) -> dict:
    """An incident's unanswered messages in figures: how many, how many past their
    target, and the longest wait so far (seconds; None when none waits)."""
    rows = inbound.inbox_rows(state, now, unanswered=True)
    return {"unanswered": len(rows), "overdue": sum(1 for r in rows if r["overdue"]),
            "oldest_wait_seconds": max((r["waiting_seconds"] for r in rows), default=None)}


def response_time(app: App, who: Principal) -> dict:
    """The live response-time figure (engine.incidents.response_time) for someone signed in."""
    with acting(who, "read"):
        return _live(app)


def public_response_time(app: App) -> dict:
    """The same figure for anyone, where the configuration publishes it; else NotFound."""
    from ..errors import NotFound

    if not app.config.public_response_time:
        raise NotFound("the response time is not published here (PLAYBOOK_PUBLIC_RESPONSE_TIME is off)")
    return _live(app)


def _live(app: App) -> dict:
    from ..incidents import service
    from ..incidents.response_time import live

    return live(service.list_incidents(app.store(read_only=True), include_closed=True), app.clock.now())


#: Who records what a configured source delivers (the engine, not a person).
LISTENER = "system:listen"


def sources(app: App) -> dict:
    """The configured inbound sources by name (engine.sources)."""
    from ..sources import load_sources

    return load_sources(app.config.sources)


def ingest(app: App, source, raw: dict) -> Received:
    """Record a message a configured source delivered, on the incident it feeds."""
    from ..sources import target_incident

    store = app.store()
    incident = target_incident(store, source)
    state, mid, new = inbound.receive(store, app.clock, LISTENER, incident, {**raw, "source": source.channel},
                                      via=source.name)
    return Received(state, mid, new)


def listen_once(app: App, *, timeout: float = 10.0) -> list[dict]:
    """Poll every feed, Mastodon and Bluesky source once and record what is new; one row per
    source: {source, incident, new, seen, error}. A source that fails is reported
    and polled again next time; the others go on."""
    from ..errors import PlaybookError
    from ..sources import poll

    report = []
    for source in sources(app).values():
        if source.kind == "webhook":
            continue
        row = {"source": source.name, "incident": None, "new": 0, "seen": 0, "refused": [], "error": None}
        try:
            found = poll(source, timeout)
            for raw in found:
                row["seen"] += 1
                try:
                    got = ingest(app, source, raw)
                except PlaybookError as e:
                    if not e.exit_code == 2:
                        raise
                    row["refused"].append(f"{raw.get('source_id')}: {e.message.splitlines()[0]}")
                    continue
                row["incident"] = got.state["id"]
                row["new"] += int(got.new)
        except PlaybookError as e:
            row["error"] = e.message
        report.append(row)
    return report


def reply_route(app: App, state: dict, post_id: str):
    """(destinations, transport) for a post that answers a message, sent in that
    message's thread: through the configured Mastodon or Bluesky source that received
    it, or, for a message from X, to the X bridge (the channel's json:// or jsons://
    destinations) with the message's id as ``in_reply_to_tweet_id`` in the payload.
    None for any other post (delivered as usual)."""
    post = state["posts"].get(post_id) or {}
    message = state.get("inbound", {}).get(post.get("reply_to") or "")
    if not message or not message.get("source_id"):
        return None
    channel = post.get("channel")
    if channel == "x" and message.get("source") == "x":
        from ..posts.bridge import XBridge
        from .releases import destinations

        bridge = XBridge(message["source_id"])
        return {"x": bridge.targets(destinations(app).get("x", []))}, bridge
    source = sources(app).get(message.get("via") or "")
    if source is None or source.kind != channel:
        return None
    if channel == "mastodon":
        from ..sources.mastodon import InThread

        thread = InThread(source)
    elif channel == "bluesky":
        from ..sources.bluesky import InThread

        thread = InThread(source, app.clock)
    else:
        return None
    return {channel: [thread.url(message["source_id"])]}, thread

