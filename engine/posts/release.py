"""Releasing approved text: publish it to the outbox, deliver it to its channel.

Publication is recorded before the outbox file is written, and each delivery attempt
before it is sent, so the log always knows at least what happened: a crash leaves a
publication ``playbook outbox rebuild`` re-creates, or an attempt without an outcome.
:func:`publish_events` and :func:`deliver_check` are the rules ``verify`` replays
(:mod:`engine.audit.rules`); who may act is :mod:`engine.incidents.policy`'s answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import NotFound, Refused, StoreError
from ..incidents import state as inc
from ..incidents import policy
from ..incidents.act import act, event_time, read_state
from ..incidents.events import NewEvent
from .versions import confidential_leaks, post_of, text_hash


# -- publish -----------------------------------------------------------------------


def publish_events(state: dict, actor: str, post_id: str, *, at: str, outbox: str) -> list[NewEvent]:
    """`actor` publishing a post of `state` to the outbox file `outbox`, or Refused.

    The one statement of the publication rules: the publish command runs it on the state
    folded from the log, and verify replays every logged publication through it."""
    incident = state["id"]
    policy.require(state, actor, "publish")
    post = post_of(state, post_id)
    if post["status"] == "published":
        raise Refused(f"incident {incident}: {post_id} v{post['version']} is already published "
                      f"(at {post['published'][-1]['at']})")
    if post["status"] != "approved" or inc.approval_missing(post):
        raise Refused(f"incident {incident}: {post_id} v{post['version']} is {post['status']}, "
                      "not approved; nothing was published",
                      inc.approval_missing(post) if post["status"] == "draft" else [])
    leaks = confidential_leaks(state, post["text"]) if post["public"] else []
    if leaks:
        raise Refused(f"incident {incident}: {post_id} v{post['version']} contains the value of "
                      f"confidential input(s) {', '.join(leaks)}; nothing was published")
    reopened = state.get("reopened_at") or ""
    if any(a["at"] < reopened for a in post["approvals"]):
        raise Refused(f"incident {incident}: {post_id} v{post['version']} was approved before the "
                      "incident was reopened; it needs approval again", [f"playbook drafts {incident}"])
    stale = [a for a in post["approvals"] if a.get("sha256") != post["sha256"]]
    if text_hash(post["text"]) != post["sha256"] or stale:
        raise Refused(f"incident {incident}: {post_id} v{post['version']}: its text does not match "
                      "the hash its approvals cover; nothing was published")
    return [NewEvent("PostPublished", at, actor, {
        "post": post_id, "version": post["version"], "sha256": post["sha256"], "outbox": outbox})]


def outbox_name(post_id: str, version: int) -> str:
    return f"{post_id.replace('/', '.')}.v{version}.json"


def outbox_record(state: dict, post_id: str) -> dict:
    """The outbox file of a post's latest publication, from the state just after it
    (so the outbox can always be rebuilt from the log: see rebuild_outbox)."""
    post = state["posts"][post_id]
    published = post["published"][-1]
    return {
        "incident": state["id"], "drill": state["drill"], "post": post_id,
        "version": published["version"], "channel": post["channel"], "lang": post["lang"],
        "text": published["text"], "sha256": published["sha256"],
        "approvals": post["approvals"], "identifier_override": post["override"],
        "published_at": published["at"], "published_by": published["by"],
    }


def publish(store, clock, actor: str, incident: str, post_id: str, outbox: Path) -> dict:
    """Record the publication of an approved post, then write it to the outbox.

    The event is committed first: a crash before the file is written leaves a
    publication the log records and `playbook outbox rebuild` re-creates, never a
    file the log does not know about."""

    def build(state):
        post = post_of(state, post_id)
        path = Path(outbox) / incident / outbox_name(post_id, post["version"])
        return publish_events(state, actor, post_id, at=event_time(clock, state), outbox=str(path))

    state = act(store, incident, build, from_log=True)
    published = state["posts"][post_id]["published"][-1]
    try:
        write_outbox_file(Path(published["outbox"]), outbox_record(state, post_id))
    except StoreError as e:
        raise StoreError(f"incident {incident}: {post_id} v{published['version']} is published (recorded "
                         f"in the log), but {e}; re-create the file with: playbook outbox rebuild {incident}") from None
    return {"id": post_id, **state["posts"][post_id]}


def rebuild_outbox(store, outbox: Path, incident: str | None = None) -> list[dict]:
    """Re-create the outbox file of every publication in the log (of one incident, or all)
    under `outbox`: missing or differing files are written, identical ones left alone."""
    ids = [incident] if incident is not None else store.incidents()
    if incident is not None:
        read_state(store, incident)
    done = []
    for iid in ids:
        state = None
        for e in store.events(iid):
            state = inc.apply(state, e.type, e.at, e.actor, e.data, in_place=state is not None)
            if e.type != "PostPublished":
                continue
            record = outbox_record(state, e.data["post"])
            path = Path(outbox) / iid / outbox_name(e.data["post"], e.data["version"])
            text = _outbox_text(record)
            try:
                same = path.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                write_outbox_file(path, record)
            done.append({"incident": iid, "post": e.data["post"], "version": e.data["version"],
                         "path": str(path), "written": not same})
    return done


#: The delivery rules recorded on each attempt, so verify judges it by the rules of its
#: day: 2 requires a role in the incident (attempts without the field were recorded
#: when anyone could retry a delivery).
DELIVERY_RULES = 2


def deliver(store, clock, actor: str, incident: str, post_id: str,
            destinations: dict[str, list[str]], transport=None) -> list[dict]:
    """Send the published version of a post to its channel's destinations.

    Targets that already received this version are skipped, so running it again
    retries only the failures. Each attempt is logged (DeliveryAttempted, committed)
    before anything is sent, and its outcome after: delivery is at least once, and a
    crash between sending and recording shows in the log as an attempt without an
    outcome. If any failed, DeliveryFailed is raised once the outcomes are recorded.
    `transport` (``redact(url)``, ``send(url, text)``; default :mod:`engine.posts.delivery`)
    sends a reply in thread through its service's own client (engine.sources.mastodon).
    """
    from ..errors import DeliveryFailed

    if transport is None:
        from . import delivery as transport
    redact, send = transport.redact, transport.send

    current = read_state(store, incident)
    policy.require(current, actor, "deliver")
    deliver_check(current, post_id)  # checked again, on the log, before anything is sent
    channel = current["posts"][post_id]["channel"]
    urls = {redact(url): url for url in destinations.get(channel, [])}
    if not urls:
        raise NotFound(f"no destinations configured for channel {channel} "
                       "(see PLAYBOOK_DESTINATIONS in the README)")
    pending: list[str] = []

    def attempt(state):
        policy.require(state, actor, "deliver")
        post = post_of(state, post_id)
        version, sha = deliver_check(state, post_id)
        done = {d["target"] for d in post["deliveries"] if d["ok"] and d["version"] == version}
        pending[:] = [t for t in urls if t not in done]
        now = event_time(clock, state)
        return [NewEvent("DeliveryAttempted", now, actor, {
            "post": post_id, "version": version, "sha256": sha, "target": t, "rules": DELIVERY_RULES})
            for t in pending]

    state = act(store, incident, attempt, from_log=True)
    if not pending:
        return []
    published = state["posts"][post_id]["published"][-1]
    version, text, sha = published["version"], published["text"], published["sha256"]
    attempts = [send(urls[t], text) for t in pending]

    def outcome(current):
        now = event_time(clock, current)
        return [NewEvent("PostDelivered" if a.ok else "DeliveryFailed", now, actor, {
            "post": post_id, "version": version, "sha256": sha,
            "target": a.target, "error": a.error}) for a in attempts]

    act(store, incident, outcome)
    failed = [a for a in attempts if not a.ok]
    if failed:
        raise DeliveryFailed(
            f"incident {incident}: {post_id} v{version} is published (outbox) but delivery failed "
            f"for {len(failed)} of {len(attempts)} destination(s):\n"
            + "\n".join(f"  - {a.target}: {a.error}" for a in failed)
            + f"\nretry with: playbook deliver {incident} {post_id}")
    return [{"target": a.target, "ok": a.ok} for a in attempts]


def deliver_check(state: dict, post_id: str) -> tuple[int, str]:
    """(version, sha256) of the post's publication that may be delivered now, or Refused."""
    incident = state["id"]
    post = post_of(state, post_id)
    if not post["published"]:
        raise Refused(f"incident {incident}: {post_id} is not published; publish it first")
    if state["drill"]:
        raise Refused(f"incident {incident} is a drill: posts are never delivered to real services")
    published = post["published"][-1]
    if text_hash(published["text"]) != published["sha256"]:
        raise Refused(f"incident {incident}: the published text of {post_id} v{published['version']} does not "
                      "match its hash; run playbook verify")
    return published["version"], published["sha256"]


def _outbox_text(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, indent=2) + "\n"


def write_outbox_file(path: Path, record: dict) -> None:
    """Write `record` to `path` atomically: a new temporary file created exclusively in
    the same folder (never following a link planted there), fsynced, then renamed."""
    import tempfile

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_outbox_text(record))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise StoreError(f"cannot write to the outbox {path.parent}: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
