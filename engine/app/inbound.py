"""Use cases on inbound messages: record one, mark one handled, the inbox, and listen.

The rules (what a message may hold, deduplication, response clocks) are in the domain,
:mod:`engine.incidents.inbound`; who may act is :mod:`engine.incidents.policy`'s answer.
A message for a playbook with no open incident is kept and counted by the playbook's
monitors (:mod:`engine.incidents.monitors`), which may open one or page someone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..incidents import inbound
from ..incidents.policy import scope_of
from .context import App, acting
from .principal import Principal


@dataclass(frozen=True)
class Received:
    incident: str | None  # the incident it was recorded on; None: kept in the listening log
    message: str  # its id in the incident (M1, M2, ...) or in the listening log (L1, ...)
    new: bool  # False: its source delivered it before, and nothing was recorded
    record: dict | None = None  # the message as the incident holds it
    #: kept (no incident of the playbook open): the monitors it matches, and what fired
    monitors: list[str] = field(default_factory=list)
    fired: dict | None = None
    opened: str | None = None  # the incident a monitor opened with it
    pages: list[dict] = field(default_factory=list)  # who was notified that a monitor fired
    note: str | None = None

    def to_json(self) -> dict:
        if self.incident is None:
            return {"incident": None, "message": self.message, "new": self.new, "kept": True,
                    "monitors": self.monitors, "fired": self.fired, "pages": self.pages, "note": self.note}
        return {"incident": self.incident, "message": self.message, "new": self.new,
                **({"opened_by": self.fired["monitor"]} if self.opened else {}), **(self.record or {})}


def _on_state(state: dict, message: str, new: bool, **more) -> Received:
    """What was received, from the incident's whole state."""
    return Received(state["id"], message, new, state["inbound"].get(message), **more)


def receive(app: App, who: Principal, incident: str, message: dict) -> Received:
    """Record `message` (source, text, source_id, kind, author, lang, url, posted_at, reach)."""
    with acting(who, scope_of("receive")) as actor:
        record, mid, new = inbound.receive(app.store(), app.clock, actor, incident, dict(message))
    return Received(incident, mid, new, record)


def receive_for(app: App, who: Principal, playbook: str, message: dict, *, drill: bool = False) -> Received:
    """Record `message` for the library playbook `playbook` (no incident named): on its
    newest open incident (as `who`, who must hold a role there), else kept for its
    monitors with the name of who reported it, as a source feeding it would be. With
    `drill`: its open drill, else kept on its drill track (a DRILL incident opens)."""
    from ..errors import NotFound
    from ..incidents.index import listed
    from ..incidents.monitors import track

    loaded, specs = watched(app, playbook)
    if loaded is None:
        raise NotFound(f"--playbook: no playbook {playbook!r} in the library "
                       f"(there are: {', '.join(_library(app)) or 'none'})")
    line = track(loaded.playbook.id, drill)
    rows = [r for r in listed(app.store(), playbook=loaded.playbook.id) if r["drill"] == drill]
    if rows:
        return _joined(app, line, receive(app, who, rows[-1]["id"], message))
    with acting(who, scope_of("receive")) as actor:
        checked = inbound.check_message(dict(message), app.clock.now())
        checked["reported_by"] = actor
        return _keep(app, loaded, specs, line, checked, lambda incident: receive(app, who, incident, message),
                     drill=drill)


def _library(app: App) -> dict:
    from .incidents import library

    return library(app)


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


def kept(app: App, who: Principal) -> list[dict]:
    """The messages the listening log keeps for the playbooks' monitors and has not moved
    into an incident, newest first (engine.incidents.monitors)."""
    from ..incidents import monitors

    with acting(who, "read"):
        state = monitors.read(app.store(read_only=True))
    rows = [{"id": mid, **m} for mid, m in state["messages"].items() if m["attached"] is None]
    return sorted(rows, key=lambda r: (r["posted_at"], r["id"]), reverse=True)


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
    """Record a message a configured source delivered, on the incident it feeds: its
    incident, or its playbook's newest open one; with none open, kept in the listening
    log for the playbook's monitors (which may open one: then it is recorded there)."""
    from ..incidents import monitors
    from ..incidents.index import listed

    store = app.store()
    raw = {**raw, "source": source.channel}
    via = source.name
    if source.incident is not None:
        return _on(app, source.incident, raw, via)
    loaded, specs = watched(app, source.playbook)
    playbook = monitors.track(loaded.playbook.id if loaded is not None else source.playbook, source.drill)
    # a real message never joins a drill, nor a drill's a real incident
    rows = [r for r in listed(store, playbook=loaded.playbook.id if loaded else source.playbook)
            if r["drill"] == source.drill]
    if rows:
        again = monitors.kept(store, playbook, source.channel, raw.get("source_id"))
        if again is not None:  # kept before the incident opened, delivered again: moved, not recorded twice
            return _joined(app, playbook, Received(None, again, False), also=again, incident=rows[-1]["id"])
        return _joined(app, playbook, _on(app, rows[-1]["id"], raw, via))
    message = inbound.check_message(raw, app.clock.now())
    if via is not None:
        message["via"] = via
    return _keep(app, loaded, specs, playbook, message, lambda incident: _on(app, incident, raw, via),
                 drill=source.drill)


def _keep(app: App, loaded, specs: dict, playbook: str, message: dict, record, *, drill: bool = False) -> Received:
    """Keep a checked message for `playbook`'s monitors, and do what one that fires does;
    `record(incident)` records it on an incident a monitor opened since we looked."""
    from ..incidents import monitors

    held = monitors.hold(app.store(), app.clock, playbook, specs, message)
    if held.attach_to is not None:
        return record(held.attach_to)
    note = None if loaded is not None else f"no playbook {playbook!r} in the library: no monitor watches it"
    if held.fired is None:
        return Received(None, held.message, held.new, monitors=held.monitors, note=note)
    return _fired(app, loaded, specs[held.fired["monitor"]], held, playbook, drill)


def _joined(app: App, playbook: str, got: Received, *, also: str | None = None,
            incident: str | None = None) -> Received:
    """`got`, after moving into its incident the messages of `playbook` that matched a
    monitor and were kept before that incident was opened (by hand, after a page), and
    the kept message `also` (delivered again: its id in the incident is then returned)."""
    from ..incidents import monitors

    incident = incident or got.incident
    kept = monitors.claim(app.store(), app.clock, playbook, incident, also=also)
    if not kept:
        return got if got.incident is not None else _on_state(_state(app, incident), got.message, got.new)
    state, ids = monitors.attach(app.store(), app.clock, incident, kept)
    return _on_state(state, ids.get(also) if also else got.message, got.new)


def _state(app: App, incident: str) -> dict:
    from ..incidents.act import read_state

    return read_state(app.store(), incident)


def _on(app: App, incident: str, raw: dict, via: str | None) -> Received:
    """Record a source's message on `incident`, as the listener."""
    record, mid, new = inbound.receive(app.store(), app.clock, LISTENER, incident, raw, via=via)
    return Received(incident, mid, new, record)


def _fired(app: App, loaded, spec: dict, held, playbook: str, drill: bool) -> Received:
    """Carry out what a monitor's firing does: open its incident and move the kept
    messages into it, or page; notify the roles it names either way."""
    from ..incidents import monitors

    store, fired = app.store(), held.fired
    pages = []
    if spec["action"] == "open":
        first = monitors.read(store)["messages"][fired["messages"][0]]
        state = monitors.open_incident(store, app.clock, loaded, spec, fired, first, region=app.config.region,
                                       drill=drill)
        kept = monitors.claim(store, app.clock, playbook, state["id"], fired=True)
        state, ids = monitors.attach(store, app.clock, state["id"], kept)
        pages = _page(app, loaded, spec, fired, playbook, drill) if spec["notify"] else []
        mine = monitors.read(store)["messages"].get(held.message) or {}
        mid = ids.get(held.message) or inbound.known(state, mine.get("source"), mine.get("source_id")) or held.message
        return _on_state(state, mid, True, monitors=held.monitors, fired=fired, opened=state["id"], pages=pages)
    pages = _page(app, loaded, spec, fired, playbook, drill)
    return Received(None, held.message, True, monitors=held.monitors, fired=fired, pages=pages)


def _page(app: App, loaded, spec: dict, fired: dict, playbook: str, drill: bool) -> list[dict]:
    """Notify the monitor's roles (destinations ``escalation`` and ``escalation.ROLE``, and
    whoever holds the role on the on-call roster now, at their destination); every
    attempt is logged, and so is finding no destination at all. A drill pages nobody."""
    from ..incidents import monitors
    from ..posts.delivery import load_destinations

    if drill:
        attempts = [{"target": "", "ok": False, "error": "a drill pages nobody"}]
        monitors.record_pages(app.store(), app.clock, playbook, spec["name"], attempts)
        return attempts
    destinations = load_destinations(app.config.destinations)
    on_call = []
    if app.config.roster is not None and app.config.roster.exists():
        from ..clocks.roster import load_roster

        roster = load_roster(app.config.roster)
        on_call = [s.destination for role in spec["notify"] for s in roster.holders(role, app.clock.now())
                   if s.destination]
    urls = list(dict.fromkeys(destinations.get("escalation", []) + [
        u for role in spec["notify"] for u in destinations.get(f"escalation.{role}", [])] + [
        u for key in on_call for u in destinations.get(key, [])]))
    if urls:
        from ..posts.delivery import send

        text = monitors.page_text(loaded.playbook, spec, fired)
        attempts = [vars(send(u, text)) for u in urls]
    else:
        wanted = ", ".join(["escalation"] + [f"escalation.{r}" for r in spec["notify"]] + on_call)
        attempts = [{"target": "", "ok": False,
                     "error": f"NOBODY WAS PAGED: no destination configured ({wanted} in "
                              f"{app.config.destinations.name})"}]
    monitors.record_pages(app.store(), app.clock, playbook, spec["name"], attempts)
    return attempts


#: Loaded library playbooks and their compiled monitors, by file (and its size and time).
_WATCHED: dict = {}


def watched(app: App, name: str):
    """(the loaded library playbook `name`, its compiled monitors), or (None, {}) when the
    library has no such playbook. Loaded once per version of the file."""
    from ..format.loader import load_playbook
    from ..format.monitors import compiled
    from .incidents import library

    path = library(app).get(name)
    if path is None:
        return None, {}
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _WATCHED:
        loaded = load_playbook(path)
        if len(_WATCHED) > 32:
            _WATCHED.clear()
        _WATCHED[key] = (loaded, compiled(loaded.playbook.monitors))
    return _WATCHED[key]


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
                if got.incident is not None:
                    row["incident"] = got.incident
                else:
                    row["kept"] = row.get("kept", 0) + int(got.new)
                if got.opened:
                    row.setdefault("opened", []).append(got.opened)
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

