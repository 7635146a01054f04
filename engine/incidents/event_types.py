"""Every kind of event an incident's log holds, in one registry: its name, the fields
its data must have, how it folds into the incident's state, and how it reads in a log.

The projection (:func:`engine.incidents.state.apply`), the log views and the report
(:func:`describe`) and verify's refold all go through :data:`EVENT_TYPES`, so a new
kind of event is added here, once; an event of a kind not listed fails loudly
(ValueError) wherever it is folded or described.

Folds take the state being built (a private copy), the event's time, actor and data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from . import state as inc


@dataclass(frozen=True)
class EventType:
    name: str
    fields: tuple[str, ...]  # what its data must hold (others are optional)
    fold: Callable[[dict, str, str, dict], None]
    describe: Callable[[dict], str]
    meaning: str


def event_type(name: str) -> EventType:
    """The registered kind of event `name`, or ValueError."""
    kind = EVENT_TYPES.get(name)
    if kind is None:
        raise ValueError(f"{name!r} is not a kind of event this version knows (see engine.incidents.event_types)")
    return kind


def describe(name: str, data: dict) -> str:
    """One human line for an event (untrusted text, not escaped)."""
    return " ".join(event_type(name).describe(data).split())  # newlines and runs of spaces collapsed


def _post(d: dict) -> str:
    return f"{d.get('post')} v{d.get('version')}"


# -- folds ----------------------------------------------------------------------------------


def _nothing(s: dict, at: str, actor: str, d: dict) -> None:
    pass


def _role_assigned(s, at, actor, d):
    holders = s["roles"].setdefault(d["role"], [])
    if d["person"] not in holders:
        holders.append(d["person"])
    # who granted it: a self-granted role does not let its holder approve posts until
    # another manager assigns it again (separation of duties)
    s.setdefault("granted", {}).setdefault(d["role"], {})[d["person"]] = actor


def _role_unassigned(s, at, actor, d):
    holders = s["roles"].get(d["role"], [])
    if d["person"] in holders:
        holders.remove(d["person"])
    if not holders:
        s["roles"].pop(d["role"], None)
    granted = s.get("granted", {}).get(d["role"], {})
    granted.pop(d["person"], None)
    if not granted:
        s.get("granted", {}).pop(d["role"], None)


def _task_completed(s, at, actor, d):
    s["tasks"][d["task"]] = {"by": actor, "at": at}


def _task_reopened(s, at, actor, d):
    s["tasks"].pop(d["task"], None)


def _note_added(s, at, actor, d):
    s["notes"] += 1


def _inputs_set(s, at, actor, d):
    s["inputs"].update(d["inputs"])


def _severity_changed(s, at, actor, d):
    s["severity"] = d["to"]
    s.setdefault("severity_history", []).append({"at": at, "severity": d["to"]})


def notice_key(d: dict) -> str:
    """Which approval notice an ``ApprovalNotified`` is about: its destination and versions."""
    return d["target"] + "|" + ",".join(f"{p['post']}@{p['version']}" for p in d["posts"])


def _approval_notified(s, at, actor, d):
    """A failed approval notice is kept (``approval_notices``) until it is sent again and
    delivered, or dropped because its versions no longer wait (engine.app.releases)."""
    key = notice_key(d)
    pending = s.get("approval_notices") or {}
    if d["ok"] or d.get("dropped"):
        if key in pending:
            s["approval_notices"] = {k: v for k, v in pending.items() if k != key}
            if not s["approval_notices"]:
                del s["approval_notices"]
        return
    tries = (pending.get(key) or {}).get("tries", 0) + 1
    s["approval_notices"] = {**pending, key: {"target": d["target"], "posts": [dict(p) for p in d["posts"]],
                                              "roles": list(d["roles"]), "error": d.get("error"), "tries": tries,
                                              "at": at}}


def _approval_notice(d: dict) -> str:
    posts = ", ".join(_post(p) for p in d["posts"])
    if d.get("dropped"):
        return f"approval request for {posts} to {d['target']} not sent again: {d['dropped']}"
    if d["ok"]:
        return f"approval request for {posts} sent to {d['target']}" + (" (sent again)" if d.get("retry") else "")
    again = " again" if d.get("retry") else ""
    return f"approval request to {d['target']} FAILED{again}: {d.get('error')} (the next due sends it again)"


def _deadline_breached(s, at, actor, d):
    if d["clock"].startswith("message:"):
        from .inbound import fold_breach

        fold_breach(s, d["clock"][len("message:"):], d["key"])
    s.setdefault("breaches", {})[d["key"]] = {
        "clock": d["clock"], "label": d["label"], "due_at": d["due_at"], "detected_at": at}


def _escalation_applied(s, at, actor, d):
    s["escalations"] = s.get("escalations", 0) + 1
    if d.get("notify"):
        s.setdefault("notifications", {})[d["key"]] = {
            "label": d["label"], "notify": d["notify"], "delivered_to": []}
    if d.get("ladder"):
        from ..clocks.ladder import fold_ladder

        fold_ladder(s.setdefault("ladders", {}), d)


def _escalation_notified(s, at, actor, d):
    if d["ok"]:
        s["notifications"][d["key"]]["delivered_to"].append(d["target"])


def _clock_advanced(s, at, actor, d):
    s["sim_offset"] = s.get("sim_offset", 0) + d["seconds"]


def _inject_delivered(s, at, actor, d):
    s["injects"][d["index"]]["delivered_at"] = at


def _stage_changed(s, at, actor, d):
    s["stage"] = d["to"]
    s["stage_entered_at"] = at
    if s.get("visits"):
        s["visits"][-1]["left_at"] = at
        s["visits"].append({"stage": d["to"], "entered_at": at, "left_at": None, "first_public_at": None,
                            **_entered(s, d["to"], at)})
    s["public_posts"]["last_in_stage_at"] = None
    if s["plan"]["transitions"].get(d["trigger"], {}).get("reopen"):
        # reopened for new facts: the checklists start again, and posts and approvals
        # from before no longer satisfy guards (see blockers) or allow publishing
        s["tasks"] = {}
        s["reopened_at"] = at
    terminal = s["plan"]["stages"][d["to"]]["terminal"]
    s["status"] = "closed" if terminal else "open"
    s["closed_at"] = at if terminal else None


def _post_drafted(s, at, actor, d):
    old = s["posts"].get(d["post"], {})
    if old.get("published"):
        # the clocks count a post's publications by what its latest version says: a change
        # to it changes every earlier publication, which the kept times cannot follow
        if old["public"] != d["public"]:
            s["cadence"] = None
        if old["template"] != d["template"]:
            s["first_published"] = None
    # everyone who wrote a version since the post was last approved: none of them may
    # approve it (an edit by someone else must not launder another's text)
    writers = [actor]
    if old and not old.get("approvals"):
        writers = [w for w in old.get("writers", [old["author"]]) if w != actor] + [actor]
    s["posts"][d["post"]] = {
        **{k: d[k] for k in ("template", "channel", "lang", "version", "sha256", "text",
                             "public", "count", "hits", "policy")},
        "leaks": d.get("leaks", []),
        "recipient": d.get("recipient"),
        "status": "draft" if d["count"]["fits"] else "too_long",
        "author": actor,
        "writers": writers,
        "drafted_at": at,
        "approvals": [],
        "override": None,
        "rejection": None,
        "published": old.get("published", []),
        "deliveries": old.get("deliveries", []),
        **({"reply_to": d["reply_to"]} if d.get("reply_to") else {}),
    }


def _post_approved(s, at, actor, d):
    post = s["posts"][d["post"]]
    post["approvals"].append({"by": actor, "role": d["role"], "at": at, "sha256": d["sha256"],
                              **({"granted_by": d["granted_by"]} if "granted_by" in d else {})})
    if not inc.approval_missing(post):
        post["status"] = "approved"
        s["approved"][post["template"]] = at


def _identifiers_overridden(s, at, actor, d):
    s["posts"][d["post"]]["override"] = {"by": actor, "reason": d["reason"], "at": at}


def _post_rejected(s, at, actor, d):
    post = s["posts"][d["post"]]
    post["status"] = "rejected"
    post["rejection"] = {"by": actor, "reason": d["reason"], "at": at}


def _post_published(s, at, actor, d):
    post = s["posts"][d["post"]]
    post["status"] = "published"
    post["published"].append({"version": d["version"], "at": at, "by": actor, "outbox": d["outbox"],
                              "sha256": d["sha256"], "text": post["text"]})
    s["published"][post["template"]] = at
    first = s.get("first_published")
    if first is not None and (post["template"] not in first or at < first[post["template"]]):
        first[post["template"]] = at
    if post.get("reply_to"):
        from .inbound import apply_reply

        apply_reply(s, d["post"], post, at)
    if post["public"]:
        pp = s["public_posts"]
        pp["count"] += 1
        pp["first_at"] = pp["first_at"] or at
        pp["last_at"] = at
        pp["last_in_stage_at"] = at
        if s.get("visits") and s["visits"][-1]["first_public_at"] is None:
            s["visits"][-1]["first_public_at"] = at
        _public(s, at)


def _delivered(ok: bool):
    def fold(s, at, actor, d):
        s["posts"][d["post"]]["deliveries"].append({"version": d["version"], "at": at, "ok": ok,
                                                    "target": d.get("target", ""), "error": d.get("error", "")})
    return fold


# -- what the update clocks need of publications ----------------------------------------
# The clocks (engine.clocks.deadlines) ask of every publication only this, kept here so
# that no write reads the posts (each its own stored row, holding every version):
#
# * ``s["first_published"]``: {template: when a post of it was first published}
#   (the ``published:`` targets); None once a post changed template (see _post_drafted).
# * per visit of a stage with an update clock (not terminal), ``visit["updates"]``: the last
#   public publication before the visit was entered (``before``), the last one during
#   it (``last``), the longest gap between the public posts of the visit (from ``before``,
#   else the entry; ``gap``, seconds) and how many of those gaps were longer than the
#   stage's ``every`` (``late``). "During" is from the entry to the moment it was left,
#   both included, as the clocks count it.
# * ``s["cadence"]``: what those need as the log goes on: the latest moment a stage was
#   entered or a public post published (``upto``), the latest public publication
#   (``last``) and the latest one before that moment (``prior``). Kept while those
#   moments come in time order, which is what makes the values above exact; None once
#   one comes earlier than one before it (a clock set back), and then the clocks read
#   the posts, as they did before these were kept.


def _entered(s: dict, stage: str, at: str) -> dict:
    """The new visit's ``updates`` record (if its stage has an update clock), as the
    publications so far make it; the visit is entered at `at`."""
    c = s.get("cadence")
    if c is None:
        return {}
    if at < c["upto"]:
        s["cadence"] = None
        return {}
    c["upto"] = at
    return visit_updates(s["plan"], stage, at, c)


def visit_updates(plan: dict, stage: str, at: str, cadence: dict) -> dict:
    """``{"updates": ...}`` for a visit of `stage` entered at `at` (empty: the stage has no
    update clock or is terminal), given ``cadence`` up to that moment (see above)."""
    spec = plan["stages"][stage]
    if spec.get("terminal") or spec.get("updates") is None:
        return {}
    last = cadence["last"]
    kept = {"before": (last if last < at else cadence["prior"]) if last is not None else None,
            "last": None, "gap": None, "late": 0}
    if last == at:
        # published at the very moment of the entry, just before it: during the visit (the
        # others at that moment add gaps of nothing, never the longest nor late)
        _mark(kept, at, spec["updates"]["seconds"], at)
    return {"updates": kept}


def _mark(kept: dict, at: str, every: int, entered: str) -> None:
    """A public publication at `at` during the visit entered at `entered` that `kept`
    describes: the gap since the one before (or since ``before``, else the entry)."""
    since = kept["last"] or kept["before"] or entered
    gap = (inc.parse_time(at) - inc.parse_time(since)).total_seconds()
    kept["last"] = at
    kept["gap"] = gap if kept["gap"] is None else max(kept["gap"], gap)
    kept["late"] += gap > every


def _public(s: dict, at: str) -> None:
    """A public post was published at `at`: every visit it falls within gets its mark."""
    c = s.get("cadence")
    if c is None:
        return
    if at < c["upto"]:
        s["cadence"] = None
        return
    c["upto"] = at
    plan = s["plan"]
    for visit in reversed(s["visits"]):
        if visit["left_at"] is not None and visit["left_at"] < at:
            break  # left before: so were all the earlier ones
        if "updates" in visit:
            _mark(visit["updates"], at, plan["stages"][visit["stage"]]["updates"]["seconds"], visit["entered_at"])
    if c["last"] is None or c["last"] < at:
        c["prior"], c["last"] = c["last"], at


# -- descriptions ---------------------------------------------------------------------------


def _started(d: dict) -> str:
    origin = d.get("origin")
    by = (f" by monitor {origin['monitor']} ({origin['messages']} matching message(s), the first posted "
          f"{origin['origin_at']})" if origin else "")
    return (f"started from playbook {d['playbook']['id']} v{d['playbook']['version']} in stage "
            f"{d['plan']['initial']} ({d['severity']}{', DRILL' if d['drill'] else ''}){by}: {d['title']}")


def _drafted(d: dict) -> str:
    c = d["count"]
    return (f"drafted {_post(d)} ({c['used']}/{c['limit']} {c['unit']}{'' if c['fits'] else ', TOO LONG'})"
            + (f" in reply to {d['reply_to']}" if d.get("reply_to") else ""))


def _message(fold_or_describe: str):
    """Inbound messages' folds and wording live with them (engine.incidents.inbound)."""
    def call(*args):
        from . import inbound

        return getattr(inbound, fold_or_describe)(*args)
    return call


def _escalated(d: dict) -> str:
    move = f"; move to {d['move_to']}" if d.get("move_to") else ""
    ladder = d.get("ladder")
    if ladder:
        if ladder.get("joined"):
            return f"escalated: joins the escalation ladder already climbing for {ladder['key'].split('@')[0]}" + move
        return f"escalated: an escalation ladder of {len(ladder['steps'])} step(s) starts" + move
    who = ", ".join(f"{r} ({', '.join(ps) or 'nobody assigned'})" for r, ps in d["notify"].items()) or "nobody"
    if d.get("undelivered"):  # loud: nobody will hear of it
        return f"escalation NOT DELIVERED: {'; '.join(d['undelivered'])} (notify {who})" + move
    return f"escalated: notify {who}" + move


def _ladder(fold_or_describe: str):
    """Escalation ladders' folds and wording live with them (engine.clocks.ladder)."""
    def call(*args):
        from ..clocks import ladder

        return getattr(ladder, fold_or_describe)(*args)
    return call


def _clock_moved(d: dict) -> str:
    from ..format.durations import format_duration

    return f"drill clock moved {format_duration(timedelta(seconds=d['seconds']))} forward, to {d['simulated_now']}"


def _kinds() -> dict[str, EventType]:
    T = EventType
    kinds = [
        T("IncidentStarted", ("incident", "title", "severity", "drill", "inputs", "playbook", "plan"),
          _nothing, _started, "the incident was started from a pinned playbook"),
        T("RoleAssigned", ("role", "person"), _role_assigned, lambda d: f"assigned {d['person']} to {d['role']}",
          "a person was given a role"),
        T("RoleUnassigned", ("role", "person"), _role_unassigned,
          lambda d: f"removed {d['person']} from {d['role']}", "a person was taken off a role"),
        T("TaskCompleted", ("task",), _task_completed, lambda d: f"completed task {d['task']}", "a task was done"),
        T("TaskReopened", ("task",), _task_reopened, lambda d: f"reopened task {d['task']}", "a task was reopened"),
        T("NoteAdded", ("text",), _note_added, lambda d: f"note: {d['text']}", "a note was added"),
        T("InputsSet", ("inputs",), _inputs_set, lambda d: "set inputs " + ", ".join(sorted(d["inputs"])),
          "input values were set or corrected"),
        T("SeverityChanged", ("from", "to"), _severity_changed,
          lambda d: f"severity changed from {d['from']} to {d['to']}", "the severity changed"),
        T("StageChanged", ("trigger", "from", "to"), _stage_changed,
          lambda d: f"{d['trigger']}: {d['from']} -> {d['to']}" + (f" ({d['reason']})" if d.get("reason") else ""),
          "the incident moved to another stage"),
        T("PostDrafted", ("post", "template", "channel", "lang", "version", "sha256", "text", "public", "count",
                          "hits", "policy"), _post_drafted, _drafted, "a version of a post was drafted"),
        T("PostApproved", ("post", "version", "sha256", "role"), _post_approved,
          lambda d: f"approved {_post(d)} as {d['role']}", "a version was approved (signed, on a server)"),
        T("PostRejected", ("post", "reason"), _post_rejected, lambda d: f"rejected {_post(d)}: {d['reason']}",
          "a version was rejected"),
        T("IdentifiersOverridden", ("post", "reason"), _identifiers_overridden,
          lambda d: f"overrode the identifier warning on {_post(d)}: {d['reason']}",
          "an approver overrode the identifier warning, with a reason"),
        T("PostPublished", ("post", "version", "sha256", "outbox"), _post_published,
          lambda d: f"published {_post(d)} (sha256 {d['sha256'][:12]}) to {d['outbox']}",
          "an approved version was published to the outbox"),
        T("DeliveryAttempted", ("post", "version", "sha256", "target"), _nothing,
          lambda d: f"sending {_post(d)} to {d['target']}", "a delivery was about to be sent"),
        T("PostDelivered", ("post", "version"), _delivered(True), lambda d: f"delivered {_post(d)} to {d['target']}",
          "a delivery succeeded"),
        T("DeliveryFailed", ("post", "version"), _delivered(False),
          lambda d: f"delivery of {_post(d)} to {d['target']} FAILED: {d['error']}", "a delivery failed"),
        T("ApprovalNotified", ("posts", "roles", "target", "ok"), _approval_notified, _approval_notice,
          "the approvers of new versions were told through a destination (or it failed, or a failed "
          "notice was dropped because those versions no longer wait)"),
        T("ClockAdvanced", ("seconds", "simulated_now"), _clock_advanced, _clock_moved,
          "a drill's simulated clock moved forward"),
        T("InjectDelivered", ("index", "message"), _inject_delivered,
          lambda d: f"inject (scheduled {d['scheduled_at']}): {d['message']}", "a drill's scripted inject arrived"),
        T("DeadlineBreached", ("key", "clock", "label", "due_at"), _deadline_breached,
          lambda d: f"MISSED {d['label']} (due {d['due_at']})", "a clock was missed"),
        T("EscalationApplied", ("key", "label", "notify"), _escalation_applied, _escalated,
          "the playbook's escalation for a missed clock was applied"),
        T("EscalationNotified", ("key", "ok", "target"), _escalation_notified,
          lambda d: (f"escalation notice sent to {d['target']}" if d["ok"]
                     else f"escalation notice to {d['target']} FAILED: {d['error']}"),
          "an escalation notice was sent (or failed)"),
        T("EscalationBlocked", ("trigger", "reasons"), _nothing,
          lambda d: f"escalation move {d['trigger']} blocked: {'; '.join(d['reasons'])}",
          "an escalation could not move the incident"),
        T("EscalationStepReached", ("key", "step", "round", "notify", "undelivered"), _ladder("fold_step"),
          _ladder("describe_step"), "an escalation ladder reached a step (or repeated its last), "
          "with whom it notifies and whom it cannot reach"),
        T("EscalationAcknowledged", ("key",), _ladder("fold_ack"), _ladder("describe_ack"),
          "someone acknowledged an escalation: its ladder stops climbing"),
        T("MessageReceived", ("message", "source", "text", "posted_at"), _message("fold_received"),
          _message("describe_received"), "an inbound message (mention, review, call) was recorded"),
        T("MessageHandled", ("message", "reason"), _message("fold_handled"), _message("describe_handled"),
          "an inbound message was marked as needing no published reply"),
    ]
    return {k.name: k for k in kinds}


EVENT_TYPES: dict[str, EventType] = _kinds()
