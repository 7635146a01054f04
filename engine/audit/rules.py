"""Every logged action replayed through the rules the commands apply.

The hash chain proves the log was not altered; it does not prove that what the
log records was allowed. :func:`audit` folds an incident's log from nothing and,
before each event that changes who may act or releases text, asks the same rule
function the command uses (``service.assign_events``, ``posts.approve_events``,
``release.publish_events``, ``release.deliver_check``) whether it would have allowed
that event on the state just before it. So "nothing unapproved was published"
is checked from the log alone, whatever the stored projection says:

* a role given or taken by someone who did not manage the incident at that
  moment (the assignments made when the incident was started excepted);
* an approval by the draft's author, by someone not holding the role at that
  moment, of another version or another text hash, or of a text the identifier
  or confidential-value checks refuse without the logged override;
* a publication without the approvals its version needed, of another version
  or hash, or by someone with no role;
* a delivery of a text that was not published, by someone with no role (attempts
  recorded under delivery rules 2), or an outcome without its logged attempt;
* an inbound message recorded by someone who may not record one, with fields the
  checks refuse (its text over the limit, a control character, a posted-at in the
  future), delivered before by its source (deduplication), or out of its number;
  a message marked handled that did not exist or was not waiting, or for a reason
  the command does not know; a reply drafted to a message that did not exist or was
  already answered, or an edit that changes which message a reply answers.

``verify`` reports these; approve, publish and deliver refuse to act on a log
that contains any (see ``act.checked_state``). What the rules cannot tell
is whether the person named on an event is who typed it (see the README).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import PlaybookError, UsageError
from ..incidents import state as inc


def audit(events: Iterable) -> tuple[dict | None, list[str]]:
    """(the state folded from `events`, a problem for each event the rules refuse)."""
    state: dict | None = None
    problems: list[str] = []
    starting, starter = True, None  # `start` writes its RoleAssigned events with IncidentStarted
    attempts: set[tuple] = set()
    rules_seen = 1  # approvals cannot go back to older rules once newer ones were recorded
    override: tuple | None = None  # (actor, post) of an IdentifiersOverridden awaiting its approval
    for e in events:
        t, d, actor = e.type, e.data, e.actor
        why: list[str] = []
        if state is None:
            starter = actor
        elif not (starting and t == "RoleAssigned" and actor == starter):
            starting = False
            try:
                if override is not None and (t, actor, d.get("post")) != ("PostApproved", *override):
                    why.append("the identifier override before it is not followed by its approval")
                override = None
                if t == "PostApproved":
                    if d.get("rules", 1) < rules_seen:
                        why.append(f"it claims approval rules {d.get('rules', 1)} after an approval "
                                   f"recorded under rules {rules_seen}")
                    rules_seen = max(rules_seen, d.get("rules", 1))
                _check(state, e, attempts, why)
                if t == "IdentifiersOverridden":
                    override = (actor, d["post"])
            except PlaybookError as err:
                why.append(_reason(err))
            except (LookupError, TypeError, AttributeError) as err:
                why.append(f"its data is not what the engine writes ({type(err).__name__}: {err})")
        problems.extend(f"incident {e.incident} event {e.seq} ({t} by {actor}): refused by the rules: {w}"
                        for w in why)
        try:
            state = inc.apply(state, t, e.at, actor, d, in_place=state is not None)
        except (LookupError, TypeError, ValueError, AttributeError) as err:
            problems.append(f"incident {e.incident} event {e.seq} ({t}): cannot be folded "
                            f"({type(err).__name__}: {err})")
            return state, problems
    if override is not None and state is not None:
        problems.append(f"incident {state['id']}: the identifier override at the end of the log "
                        "is not followed by its approval")
    return state, problems


def _check(state: dict, e, attempts: set, why: list[str]) -> None:
    """Raise (or add to `why`) if the rules refuse event `e` on `state`, the state just before it."""
    t, d, actor = e.type, e.data, e.actor
    if t not in _CHECKED:
        return
    from ..posts import versions as posts, release
    from ..incidents import service  # here: most events need none of them

    if t == "RoleAssigned":
        service.assign_events(state, actor, d["role"], d["person"], e.at)
    elif t == "RoleUnassigned":
        service.unassign_events(state, actor, d["role"], d["person"], e.at)
    elif t == "PostApproved":
        _same_text(state, d, why)
        # an override of the identifier warning was applied by the event just before, if any
        posts.approve_events(state, actor, d["post"], version=d["version"], role=d["role"],
                             override=None, at=e.at, rules=d.get("rules", 1),
                             signature=d.get("signature"))
    elif t == "PostPublished":
        _same_text(state, d, why)
        release.publish_events(state, actor, d["post"], at=e.at, outbox=d["outbox"])
    elif t == "DeliveryAttempted":
        if d.get("rules", 1) >= 2:
            from ..incidents import policy

            policy.require(state, actor, "deliver")
        if (d["version"], d["sha256"]) != release.deliver_check(state, d["post"]):
            why.append("it names another version or text than the one published")
        attempts.add((d["post"], d["version"], d["target"]))
    elif t in ("PostDelivered", "DeliveryFailed"):
        if (d["post"], d["version"], d["target"]) not in attempts:
            why.append("no attempt to send it was logged before it")
    elif t == "MessageReceived":
        _received(state, e, why)
    elif t == "MessageHandled":
        from ..incidents import inbound

        inbound.handle_events(state, actor, d["message"], d["reason"], d.get("note", ""), e.at)
    elif t == "PostDrafted" and d.get("reply_to") is not None:
        _reply_drafted(state, d, why)


_CHECKED = frozenset({"RoleAssigned", "RoleUnassigned", "PostApproved", "PostPublished", "DeliveryAttempted",
                      "PostDelivered", "DeliveryFailed", "MessageReceived", "MessageHandled", "PostDrafted"})
#: The fields of a ``MessageReceived`` that the message checks cover (the others: its
#: id, checked below; the source it came through and how its recorder was authenticated).
_MESSAGE_FIELDS = ("source", "source_id", "kind", "author", "text", "lang", "url", "posted_at")


def _received(state: dict, e, why: list[str]) -> None:
    """The message passes the checks the command applies, as recorded, and is new and next."""
    from ..incidents import inbound
    from ..incidents.events import parse_iso

    d = e.data
    try:
        checked = inbound.check_message({k: d.get(k) for k in _MESSAGE_FIELDS}, parse_iso(e.at))
    except UsageError as err:  # every problem, not the command's "nothing was recorded"
        lines = [ln.strip()[2:] for ln in err.message.splitlines() if ln.strip().startswith("- ")]
        why.append("the message checks refuse it: " + "; ".join(lines or [err.message]))
        return
    changed = [k for k in checked if checked[k] != d.get(k)]
    if changed:
        why.append(f"its {', '.join(changed)} is not what the checks record (" +
                   ", ".join(f"{k} {str(d.get(k))[:40]!r}" for k in changed) + ")")
    if not inbound.receive_events(state, e.actor, checked, e.at):
        why.append(f"its source delivered it before, as {inbound.known(state, checked['source'], checked['source_id'])}"
                   " (a message is recorded once)")
    elif d["message"] != f"M{len(state.get('inbound', {})) + 1}":
        why.append(f"it is numbered {d['message']}; the next message is M{len(state.get('inbound', {})) + 1}")


def _reply_drafted(state: dict, d: dict, why: list[str]) -> None:
    """A reply is rendered to a message that exists and waits; an edit keeps what it answers."""
    from ..incidents import inbound

    post = state["posts"].get(d["post"])
    if d.get("edited"):
        if post is None or post.get("reply_to") != d["reply_to"]:
            why.append(f"an edit makes it answer {d['reply_to']} instead of "
                       f"{(post or {}).get('reply_to') or 'nothing'}")
        return
    inbound.check_reply(state, d["reply_to"])


def _same_text(state: dict, d: dict, why: list[str]) -> None:
    """The event names the post's current text hash."""
    post = state["posts"].get(d["post"])
    if post is not None and d.get("sha256") != post["sha256"]:
        why.append(f"it covers another text (sha256 {str(d.get('sha256'))[:12]}) than "
                   f"v{post['version']}'s ({post['sha256'][:12]})")


def _reason(err: PlaybookError) -> str:
    """The refusal's text without the incident id the problem line already names."""
    head = err.message.split("\n", 1)[0]
    head = head.split(": ", 1)[1] if head.startswith("incident ") and ": " in head else head
    return "; ".join([head, *(getattr(err, "reasons", None) or [])])
