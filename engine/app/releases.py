"""Use cases on posts: render, drafts, edit, approve, reject, publish, deliver, outbox.

Publishing composes publication and delivery: a published post of a real incident is
sent to its channel's configured destinations; a drill's never is.

Rendering and editing tell the approvers: when new versions wait for approvals, the
destinations ``approval`` and ``approval.ROLE`` (for each role whose approval they
wait for) receive one notice each (:func:`tell_approvers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DeliveryFailed
from ..incidents.policy import scope_of
from ..posts import versions as posts, release
from .context import App, acting
from .principal import Principal


@dataclass(frozen=True)
class RenderRequest:
    incident: str
    template: str
    channels: tuple[str, ...] = ()
    langs: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    #: for a per_recipient template: (recipient reference, their values) per post
    recipients: list[tuple[str, dict[str, str]]] | None = None
    #: the inbound message (M3) the post answers
    reply_to: str | None = None


def render(app: App, who: Principal, request: RenderRequest) -> list[dict]:
    if app.remote is not None:
        return app.remote.render(request)
    with acting(who, scope_of("render")) as actor:
        targets = destinations(app)  # read first: a broken file is reported before anything is written
        drafted = posts.render(app.store(), app.clock, actor, request.incident, request.template,
                               channels=request.channels, langs=request.langs, overrides=dict(request.overrides),
                               recipients=request.recipients, reply_to=request.reply_to)
        tell_approvers(app, actor, request.incident, drafted, targets, "rendered")
    return drafted


def drafts(app: App, who: Principal, incident: str) -> list[dict]:
    if app.remote is not None:
        return app.remote.drafts(incident)
    with acting(who, "read"):
        return posts.drafts(app.store(read_only=True), incident)


def edit(app: App, who: Principal, incident: str, post: str, *, text: str, subject: str | None = None) -> dict:
    if app.remote is not None:
        return app.remote.edit(incident, post, text=text, subject=subject)
    with acting(who, scope_of("edit")) as actor:
        targets = destinations(app)
        edited = posts.edit(app.store(), app.clock, actor, incident, post, text=text, subject=subject)
        tell_approvers(app, actor, incident, [edited], targets, "edited")
    return edited


@dataclass(frozen=True)
class Approved:
    post: dict
    #: the roles whose approval the version still needs (empty: ready to publish)
    missing: list[str]


def approve(app: App, who: Principal, incident: str, post: str, *, version: int, role: str | None = None,
            override: str | None = None) -> Approved:
    if app.remote is not None:
        return app.remote.approve(incident, post, version=version, role=role, override=override)
    from ..incidents.state import approval_missing

    with acting(who, scope_of("approve")) as actor:
        result = posts.approve(app.store(), app.clock, actor, incident, post, role=role, version=version,
                               override=override, signer=who)
    return Approved(result, approval_missing(result))


def reject(app: App, who: Principal, incident: str, post: str, reason: str, version: int | None = None) -> dict:
    if app.remote is not None:
        return app.remote.reject(incident, post, reason, version)
    with acting(who, scope_of("reject")) as actor:
        return posts.reject(app.store(), app.clock, actor, incident, post, reason, version)


@dataclass(frozen=True)
class Published:
    post: dict
    #: where the outbox file was written
    outbox: str
    #: the delivery attempts made right after publishing ({target, ok}); empty for a
    #: drill or a channel without destinations
    deliveries: list[dict]


def destinations(app: App) -> dict[str, list[str]]:
    from ..posts.delivery import load_destinations

    return load_destinations(app.config.destinations)


class DeliveryAfterPublish(DeliveryFailed):
    """The post was published (it is in the outbox and the log) but the delivery that
    followed failed: ``published`` says what was published, ``failure`` why."""

    def __init__(self, published: Published, failure: DeliveryFailed) -> None:
        super().__init__(failure.message)
        self.published = published
        self.failure = failure


def publish(app: App, who: Principal, incident: str, post: str) -> Published:
    """Publish to the outbox; then, for a real incident whose channel has destinations,
    deliver (a drill is never delivered to real services)."""
    if app.remote is not None:
        return app.remote.publish(incident, post)
    with acting(who, scope_of("publish")) as actor:
        store = app.store()
        result = release.publish(store, app.clock, actor, incident, post, app.config.outbox)
        published = Published(result, result["published"][-1]["outbox"], [])
        targets, transport = _route(app, store, incident, post)
        if targets.get(result["channel"]) and not store.snapshot(incident).state["drill"]:
            try:
                sent = release.deliver(store, app.clock, actor, incident, post, targets, transport)
            except DeliveryFailed as e:
                raise DeliveryAfterPublish(published, e) from e
            published = Published(result, published.outbox, sent)
    return published


def deliver(app: App, who: Principal, incident: str, post: str) -> list[dict]:
    if app.remote is not None:
        return app.remote.deliver(incident, post)
    with acting(who, scope_of("deliver")) as actor:
        store = app.store()
        targets, transport = _route(app, store, incident, post)
        return release.deliver(store, app.clock, actor, incident, post, targets, transport)


def _route(app: App, store, incident: str, post: str):
    """Where a post goes: into the thread of the message it answers, when that came
    through a configured source that can reply (engine.app.inbound), else the
    configured destinations of its channel."""
    from ..incidents.act import read_state
    from .inbound import reply_route

    state = read_state(store, incident)
    if (state["posts"].get(post) or {}).get("reply_to"):
        route = reply_route(app, state, post)
        if route is not None:
            return route
    return destinations(app), None


def rebuild_outbox(app: App, who: Principal, incident: str | None = None) -> list[dict]:
    if app.remote is not None:
        return app.remote.rebuild_outbox(incident)
    with acting(who, "read"):
        return release.rebuild_outbox(app.store(read_only=True), app.config.outbox, incident)


def awaiting(app: App, who: Principal) -> list[dict]:
    """The drafts awaiting an approval `who` can give now and did not write, oldest first.

    Each: incident, title, drill, post (its id), version, template, channel, lang,
    drafted_at, waited_s (on the incident's own clock: a drill's simulated one), roles
    (the still-wanted roles `who` holds), missing (what the version still needs), blocks
    (the open clock due soonest, or None) and draft (the post as the log holds it). Which
    approval is finally allowed is decided when it is given (:func:`approve`)."""
    if app.remote is not None:
        return app.remote.json("GET", "/queue")
    from ..clocks.deadlines import clocks
    from ..incidents import service, state as inc
    from ..incidents.events import parse_iso

    with acting(who, "read"):
        states = service.list_incidents(app.store(read_only=True))
    now = app.clock.now()
    items = []
    for state in states:
        mine = inc.roles_of(state, who.name)
        if not mine:
            continue
        own_now = inc.effective_now(state, now)
        running = sorted((c for c in clocks(state, now) if c.outcome == "open"), key=lambda c: c.due_at)
        blocks = running[0].to_json() if running else None
        for pid, post in state["posts"].items():
            roles = [r for r in inc.approval_wanted(post) if r in mine]
            if (post["status"] != "draft" or not roles or who.name in post.get("writers", [post["author"]])
                    or any(a["by"] == who.name for a in post["approvals"])):
                continue
            items.append({
                "incident": state["id"], "title": state["title"], "drill": state["drill"], "post": pid,
                "version": post["version"], "template": post["template"], "channel": post["channel"],
                "lang": post["lang"], "drafted_at": post["drafted_at"],
                "waited_s": max(0, int((own_now - parse_iso(post["drafted_at"])).total_seconds())),
                "roles": roles, "missing": inc.approval_missing(post), "blocks": blocks, "draft": post})
    return sorted(items, key=lambda i: (i["drafted_at"], i["incident"], i["post"]))


#: The destinations that receive every approval notice, and those of one role (``approval.ROLE``).
APPROVAL_KEY = "approval"


def tell_approvers(app: App, actor: str, incident: str, drafted: list[dict], targets: dict[str, list[str]],
                   verb: str) -> list[dict]:
    """Tell the holders of the roles whose approval the new versions `drafted` wait for,
    through the destinations ``approval`` and ``approval.ROLE``: one notice per
    destination, naming the incident, the versions (template, channel, language), who
    `verb` them and, when the server's public address is configured, a link to each
    in the queue. Never the text, an input or the title (which may hold a confidential
    value). A drill's notice says it is a drill. Each attempt is logged
    (``ApprovalNotified``); a failed one is sent again by ``due`` (:func:`resend_notices`).
    Returns the attempts."""
    from ..incidents import state as inc

    if not any(k == APPROVAL_KEY or k.startswith(APPROVAL_KEY + ".") for k in targets):
        return []  # the usual case: no approval destinations, nothing to load
    waiting = [p for p in drafted if p["status"] == "draft" and inc.approval_wanted(p)]
    by_url: dict[str, dict] = {}
    for p in waiting:
        for role in inc.approval_wanted(p):
            for url in targets.get(APPROVAL_KEY, []) + targets.get(f"{APPROVAL_KEY}.{role}", []):
                entry = by_url.setdefault(url, {"posts": [], "roles": []})
                if p["id"] not in [q["id"] for q in entry["posts"]]:
                    entry["posts"].append(p)
                if role not in entry["roles"]:
                    entry["roles"].append(role)
    if not by_url:
        return []
    return _notify(app, actor, incident, by_url, verb)


def _notify(app: App, actor: str, incident: str, by_url: dict[str, dict], verb: str) -> list[dict]:
    from ..incidents.act import act, event_time, read_state
    from ..incidents.events import NewEvent
    from ..posts.delivery import send

    store = app.store()
    state = read_state(store, incident)
    sent = [(entry, send(url, approval_notice(state, actor, entry["posts"], entry["roles"], verb,
                                              app.config.public_url)))
            for url, entry in by_url.items()]

    def build(current):
        at = event_time(app.clock, current)
        return [NewEvent("ApprovalNotified", at, actor, {
            "posts": [{"post": p["id"], "version": p["version"]} for p in entry["posts"]], "roles": entry["roles"],
            "target": a.target, "ok": a.ok, "error": a.error, "drill": current["drill"],
            "linked": app.config.public_url is not None}) for entry, a in sent]

    act(store, incident, build)
    return [{"target": a.target, "ok": a.ok, "error": a.error} for _, a in sent]


def resend_notices(app: App, targets: dict[str, list[str]], rows=None) -> list[dict]:
    """Send again each approval notice that failed (``due`` calls this with its other
    notices): to the destination it failed at, while one of its versions still waits for
    approval; one whose versions no longer wait is dropped, and that is logged too. Only
    the incidents whose index row says they have one are read (`rows`: the index
    summaries, when the caller has read them already). Returns the attempts."""
    from ..clocks.breaches import SYSTEM
    from ..incidents.act import act, event_time, read_state
    from ..incidents.events import NewEvent
    from ..posts.delivery import redact, send

    if not any(k == APPROVAL_KEY or k.startswith(APPROVAL_KEY + ".") for k in targets):
        return []
    store, report = app.store(), []
    for incident, row in (store.summaries(clocks=False) if rows is None else rows):
        if row is not None and not row.get("approvals_unsent"):
            continue
        state = read_state(store, incident)
        for pending in (state.get("approval_notices") or {}).values():
            waiting = [p for p in pending["posts"] if _waits(state, p)]
            urls = [u for u in dict.fromkeys(targets.get(APPROVAL_KEY, []) + [
                u for r in pending["roles"] for u in targets.get(f"{APPROVAL_KEY}.{r}", [])])
                if redact(u) == pending["target"]]
            data = {"posts": pending["posts"], "roles": pending["roles"], "target": pending["target"],
                    "drill": state["drill"], "retry": True}
            if not waiting:
                data.update(ok=False, error=None, dropped="those versions no longer wait for approval")
            elif not urls:
                data.update(ok=False, error=None, dropped="the destination is no longer configured")
            else:
                posts = [{"id": p["post"], **state["posts"][p["post"]]} for p in waiting]
                notice = approval_notice(state, posts[0]["author"], posts, pending["roles"], "drafted",
                                         app.config.public_url)
                got = send(urls[0], {"subject": notice["subject"] + " (sent again)", "body": notice["body"]})
                data.update(ok=got.ok, error=got.error, linked=app.config.public_url is not None)
                report.append({"incident": incident, "target": got.target, "ok": got.ok, "error": got.error})
            act(store, incident, lambda current, data=data: [
                NewEvent("ApprovalNotified", event_time(app.clock, current), SYSTEM, data)])
    return report


def _waits(state: dict, ref: dict) -> bool:
    """Whether the version `ref` names is still the post's current draft, waiting for approval."""
    from ..incidents import state as inc

    post = state["posts"].get(ref["post"])
    return post is not None and post["status"] == "draft" and post["version"] == ref["version"] \
        and bool(inc.approval_wanted(post))


def queue_link(public_url: str, incident: str, post: str, version: int) -> str:
    """The address of one version in the approval queue (its card's anchor)."""
    from urllib.parse import quote

    anchor = f"{incident}|{post}|{version}".replace("|", "-").replace("/", "-")
    return f"{public_url}/queue#q-{quote(anchor, safe='')}"


def approval_notice(state: dict, actor: str, drafted: list[dict], roles: list[str], verb: str,
                    public_url: str | None) -> dict:
    """The notice's subject and body (see :func:`tell_approvers` for what it holds)."""
    drill = "[DRILL] " if state["drill"] else ""
    templates = ", ".join(dict.fromkeys(p["template"] for p in drafted))
    who = "; ".join(f"{r} ({', '.join(state['roles'].get(r, [])) or 'nobody assigned'})" for r in roles)
    lines = ["THIS IS A DRILL: an exercise, not a real incident."] if state["drill"] else []
    lines.append(f"{actor} {verb} {templates} for incident {state['id']} (stage {state['stage']}); "
                 f"it waits for approval by {who}.")
    for p in drafted:
        link = f": {queue_link(public_url, state['id'], p['id'], p['version'])}" if public_url else ""
        lines.append(f"- {p['id']} v{p['version']} ({p['channel']}, {p['lang']}){link}")
    lines.append("Approve or reject it in your queue on the team server." if public_url else
                 "No link: the server's public address is not configured (PLAYBOOK_PUBLIC_URL); "
                 "open My queue on the team server.")
    return {"subject": f"{drill}[{state['id']}] approval needed: {templates}", "body": "\n".join(lines)}
