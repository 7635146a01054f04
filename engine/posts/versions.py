"""Posts: render drafts, edit them, approve or reject them.

A post is identified by ``template/channel/lang`` (e.g. ``public_ack/x/en``). Every
render of it is a new *version* with the SHA-256 of its exact text; approvals
name the version and hash they cover, so a changed text needs approval again.
The rules are enforced here, inside the write transaction, not by the CLI (who may
act at all is :mod:`engine.incidents.policy`'s answer): no approval by the draft's author,
approvers must hold the role they approve as, identifier hits need an explicit
override. Publishing and delivering the approved text is :mod:`engine.posts.release`.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import NotFound, Refused, UsageError
from ..incidents import state as inc
from ..incidents import policy
from ..incidents.act import act, event_time, read_state
from ..incidents.events import NewEvent, canonical, utc_now_iso
from ..incidents.service import writing_of


def confidential_leaks(state: dict, text, extra: dict | None = None) -> list[str]:
    """Confidential inputs whose current value a reader would recognise in a (public)
    post's text, however disguised (see :mod:`engine.posts.leaks`)."""
    from .leaks import prepared as prepare

    prepared = prepare(text["subject"] + "\n" + text["body"] if isinstance(text, dict) else text)
    spec = state["plan"]["inputs"]
    values = {**state["inputs"], **(extra or {})}
    return sorted(k for k, v in values.items()
                  if k in spec and spec[k]["confidential"] and v not in (None, "")
                  and prepared.reveals(str(v)))


def _ours(found: str, contacts: set[str]) -> bool:
    """A hit that is (part of) one of the organisation's own declared public contacts."""
    digits = "".join(c for c in found if c.isdigit())
    for contact in contacts:
        if found in contact or (len(digits) >= 6 and digits in "".join(c for c in contact if c.isdigit())):
            return True
    return False


def text_hash(text) -> str:
    return hashlib.sha256(canonical(text)).hexdigest()


def post_of(state: dict, post_id: str) -> dict:
    post = state["posts"].get(post_id)
    if post is None:
        known = ", ".join(state["posts"]) or "none yet (playbook render ...)"
        raise NotFound(f"incident {state['id']}: no post {post_id!r} (posts: {known})")
    return post


# -- render -------------------------------------------------------------------------


RECIPIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def render(store, clock, actor: str, incident: str, template: str, *,
           channels: tuple[str, ...] = (), langs: tuple[str, ...] = (),
           overrides: dict[str, str] | None = None,
           recipients: list[tuple[str, dict[str, str]]] | None = None,
           reply_to: str | None = None) -> list[dict]:
    """Render a template of the current stage into draft posts (one per channel and language).

    A ``per_recipient`` template is rendered once per recipient (a reference such as
    ``P-0042``, never a name), with that recipient's values: each is its own post
    (``template/channel/lang/REF``) with its own approval and delivery record. All
    of them are drafted in one transaction, or none.

    With `reply_to` (an inbound message, ``M3``), the post answers that message: its id
    ends in the message's (``template/channel/lang/M3``), it records the message, and
    publishing it marks the message answered. It goes to the message's own channel
    unless `channels` says otherwise, and in the message's language when the template has
    it (``en`` for ``en-GB``) unless `langs` says otherwise; in every language otherwise."""
    from .channels import CHANNELS
    from ..format.inputs import resolve
    from .render import context, render_text

    writing = writing_of(store, incident)
    drafted: list[str] = []

    def build(state):
        policy.require(state, actor, "render")
        plan = state["plan"]
        if template not in writing["templates"]:
            raise NotFound(f"incident {incident}: playbook {plan['id']} has no template {template!r} "
                           f"(templates: {', '.join(writing['templates'])})")
        stage = state["stage"]
        stages = plan["stages"]
        if template not in stages[stage]["templates"]:
            owners = [s for s in stages if template in stages[s]["templates"]]
            raise Refused(f"incident {incident}: template {template} belongs to stage "
                          f"{', '.join(owners) or '(none)'}, and the incident is in {stage}",
                          [f"templates of {stage}: {', '.join(stages[stage]['templates']) or 'none'}"])
        spec = writing["templates"][template]
        if reply_to is not None:
            _reply_channels(state, spec, reply_to, recipients)
        wanted = chosen or list(channels) or list(spec["channels"])
        for ch in wanted:
            if ch not in spec["channels"]:
                raise NotFound(f"incident {incident}: template {template} has no {ch!r} channel "
                               f"(channels: {', '.join(spec['channels'])})")
        if spec["per_recipient"] and not recipients:
            raise UsageError(f"template {template} is written to each recipient: give --recipient REF "
                             "(with their --set values) or --recipients FILE.csv")
        if recipients and not spec["per_recipient"]:
            raise UsageError(f"template {template} is not per_recipient: render it without --recipient")
        problems = []
        batch = []
        for ref, values in recipients or [(None, {})]:
            if ref is not None and not RECIPIENT.match(ref):
                problems.append(f"recipient {ref!r}: use a reference of letters, digits, '.', '_' or '-' "
                                "(not a name: it appears in the log and the report)")
            batch.append((ref, resolve(state["plan"]["inputs"], {**(overrides or {}), **values},
                                       fill_defaults=False, now=inc.effective_now(state, clock.now()),
                                       problems=problems)))
        refs = [ref for ref, _ in batch]
        if len(set(refs)) != len(refs):
            problems.append("a recipient is listed twice")
        if problems:
            raise UsageError(f"incident {incident}: nothing was rendered:\n" + "\n".join(f"  - {p}" for p in problems))
        now = event_time(clock, state)
        events = []
        for ref, extra in batch:
            events += _render_one(state, ref, extra, now)
        if not drafted:
            raise NotFound(f"incident {incident}: template {template} has no text in "
                           f"{', '.join(langs)} for {', '.join(wanted)}")
        return events

    chosen: list[str] = []

    def _reply_channels(state, spec, message, recipients):
        from ..incidents.inbound import check_reply

        m = check_reply(state, message)
        if recipients:
            raise UsageError("a reply answers one message: give --reply-to or --recipient, not both")
        if not channels and m["source"] not in spec["channels"]:
            raise UsageError(f"message {message} came through {m['source']}, which template {template} has "
                             f"no text for: choose a channel with --channel ({', '.join(spec['channels'])})")
        if len(channels) > 1:
            raise UsageError("a reply goes out on one channel: give one --channel")
        chosen[:] = list(channels) or [m["source"]]
        available = spec["channels"].get(chosen[0]) or {}
        said = (m.get("lang") or "").lower()
        match = next((lang for lang in available if lang.lower() == said), None) or next(
            (lang for lang in available if lang.lower() == said.split("-")[0]), None)
        replying_in[:] = [match] if match and not langs else []

    replying_in: list[str] = []

    def _render_one(state, ref, extra, now):
        spec = writing["templates"][template]
        wanted = chosen or list(channels) or list(spec["channels"])
        events = []
        for ch in wanted:
            profile = CHANNELS[ch]
            available = spec["channels"][ch]
            for lang in list(langs) or replying_in or list(available):
                if lang not in available:
                    if langs and len(wanted) > 1:
                        continue  # asked for several channels: render those that have the language
                    raise NotFound(f"incident {incident}: template {template} has no {lang!r} text "
                                   f"for {ch} (languages: {', '.join(available)})")
                source = available[lang]
                where = f"{template}/{ch}/{lang}" + (f"/{ref}" if ref else "") + (f"/{reply_to}" if reply_to else "")
                public = spec["audience"][ch] == "public"
                ctx = context(state, public=public, overrides=extra)
                withheld = frozenset(k for k, v in state["plan"]["inputs"].items()
                                     if v["confidential"] and public)
                if isinstance(source, str):
                    text = render_text(source, ctx, html=profile.html, where=where, withheld=withheld)
                else:
                    text = {"subject": render_text(source["subject"], ctx, html=False, where=where + " subject",
                                                   withheld=withheld),
                            "body": render_text(source["body"], ctx, html=profile.html, where=where,
                                                withheld=withheld)}
                events.append(_drafted(writing, state, where, template, ch, lang, text, now, actor, extra,
                                       recipient=ref, reply_to=reply_to))
                drafted.append(where)
        return events

    # only the drafted posts are read back (an incident of thousands of messages reads none of them)
    return act(store, incident, build, read=lambda state: [{"id": pid, **state["posts"][pid]} for pid in drafted])


def _drafted(writing: dict, state: dict, post_id: str, template: str, channel: str, lang: str, text,
             at: str, actor: str, extra: dict | None = None, edited: bool = False,
             recipient: str | None = None, reply_to: str | None = None) -> NewEvent:
    """A new version of a post: its text measured against the channel and scanned
    (`writing`: the incident's engine.format.plan.writing_plan)."""
    from .channels import count, subject_count
    from .render import DEFAULT_REGION, scan

    spec = writing["templates"][template]
    audience = spec["audience"][channel]
    public = audience == "public"
    limit = writing["limits"].get(channel)
    # a reply in the thread of a message on the same channel follows that channel's reply rules
    in_thread = bool(reply_to) and (state.get("inbound", {}).get(reply_to) or {}).get("source") == channel
    if isinstance(text, dict):
        measured = count(channel, text["body"], limit=limit)
        if not subject_count(text["subject"]).fits:
            measured = subject_count(text["subject"])
        scanned = text["subject"] + "\n" + text["body"]
    else:
        measured = count(channel, text, limit=limit, reply=in_thread)
        scanned = text
    hits, leaks = [], []
    if public:
        # our own contacts come from the incident's inputs only, never from a render override
        contacts = set(writing["public_contact"])
        ours = {str(v) for k, v in state["inputs"].items() if k in contacts and v not in (None, "")}
        region = state["plan"].get("region") or DEFAULT_REGION
        hits = [h for h in scan(scanned, writing["identifiers"], region) if not _ours(h.text, ours)]
        leaks = confidential_leaks(state, text, extra)
    previous = state["posts"].get(post_id)
    return NewEvent("PostDrafted", at, actor, {
        "post": post_id, "template": template, "channel": channel, "lang": lang,
        "version": (previous["version"] + 1) if previous else 1,
        "text": text,
        "sha256": text_hash(text),
        "public": public,
        "audience": audience,
        "count": {"used": measured.used, "limit": measured.limit, "unit": measured.unit,
                  "detail": measured.detail, "fits": measured.fits},
        "hits": [h.to_json() for h in hits],
        "leaks": leaks,
        "policy": spec["policy"][lang],
        **({"edited": True} if edited else {}),
        **({"recipient": recipient} if recipient else {}),
        **({"reply_to": reply_to} if reply_to else {}),
    })


def edit(store, clock, actor: str, incident: str, post_id: str, *, text: str,
         subject: str | None = None) -> dict:
    """A hand-edited new version of a draft: measured, scanned, and needing approval again."""
    from .sandbox import MAX_OUTPUT

    from ..safetext import refuse_unsafe

    writing = writing_of(store, incident)
    text = text.replace("\r\n", "\n").strip()
    if not text or len(text) > MAX_OUTPUT:
        raise UsageError(f"the edited text must be 1 to {MAX_OUTPUT} characters")
    refuse_unsafe("the edited text", text)
    if subject is not None:
        refuse_unsafe("--subject", subject, one_line=True)

    def build(state):
        policy.require(state, actor, "edit")
        post = post_of(state, post_id)
        if post["status"] == "published":
            raise Refused(f"incident {incident}: {post_id} v{post['version']} is published; "
                          "render the template again for a new post")
        if isinstance(post["text"], dict):
            new = {"subject": (subject or post["text"]["subject"]).strip(), "body": text}
        elif subject is not None:
            raise UsageError(f"{post_id} is a {post['channel']} post: only email has a subject")
        else:
            new = text
        if new == post["text"]:
            raise Refused(f"incident {incident}: the edited text is the same as v{post['version']}")
        return [_drafted(writing, state, post_id, post["template"], post["channel"], post["lang"],
                         new, event_time(clock, state), actor, edited=True, recipient=post.get("recipient"),
                         reply_to=post.get("reply_to"))]
    return {"id": post_id, **act(store, incident, build)["posts"][post_id]}


# -- approve / reject ------------------------------------------------------------------


def _check_version(state: dict, post_id: str, post: dict, version: int | None) -> None:
    if version is not None and not 1 <= version <= post["version"]:
        raise NotFound(f"incident {state['id']}: {post_id} has no version {version} (its current "
                       f"version is {post['version']}; see playbook drafts {state['id']})")
    if version is not None and version != post["version"]:
        raise Refused(f"incident {state['id']}: {post_id} version {version} is superseded by "
                      f"version {post['version']}; review the current text and approve that",
                      [f"playbook drafts {state['id']}"])


#: The approval rules in force, recorded on every PostApproved event, so that verify
#: judges each logged approval by the rules of its day: 2 added separation of duties
#: (no approving with a role you gave yourself) and authorship of every version since
#: the last approval; an event without the field was recorded under rules 1.
APPROVAL_RULES = 2


#: How long after signing in a person may still sign an approval (21 CFR 11.200: a
#: signature is given by someone who just proved who they are).
SIGNATURE_WINDOW_S = 300


def signature_of(signer, post_id: str, post: dict, now: str) -> dict | None:
    """What an approval by an authenticated `signer` records as their signature: who,
    how they were authenticated and when, the meaning, and the text hash. None for an
    asserted name (the local command line) or an API token."""
    if signer is None or signer.method in ("asserted", "token", "engine"):
        return None  # a typed name, or a token (something held, not a person proving who they are)
    when = signer.authenticated_at
    return {"by": signer.name, "auth": signer.auth, "authenticated_at": utc_now_iso(when) if when else None,
            "signed_at": now, "sha256": post["sha256"],
            "meaning": f"approved for publication on {post['channel']} in {post['lang']}"}


def _signature_problems(post: dict, actor: str, signature: dict | None, at: str) -> list[str]:
    if signature is None:
        return (["this post's approval must be signed: approve on the team server, signed in "
                 "as yourself"] if post["policy"].get("signed") else [])
    from ..incidents.events import parse_iso

    problems = []
    if signature.get("by") != actor or signature.get("sha256") != post["sha256"]:
        problems.append("the signature names another person or text")
    when = signature.get("authenticated_at")
    signed = signature.get("signed_at")  # the real time (a drill's events carry simulated time)
    age = (parse_iso(signed) - parse_iso(when)).total_seconds() if when and signed else None
    if age is None or not 0 <= age <= SIGNATURE_WINDOW_S:
        problems.append(f"a signature needs a sign-in within the last {SIGNATURE_WINDOW_S // 60} minutes: "
                        "sign in again (password or single sign-on) and approve")
    return problems


def approve_events(state: dict, actor: str, post_id: str, *, version: int, role: str | None,
                   override: str | None, at: str, rules: int = APPROVAL_RULES,
                   signature: dict | None = None) -> list[NewEvent]:
    """The events of `actor` approving version `version` of a post in `state`, or Refused.

    The one statement of the approval rules: the approve command runs it on the state
    folded from the log, and verify replays every logged approval through it, under the
    rules version the approval was recorded with."""
    incident = state["id"]
    policy.require(state, actor, "approve")  # the name and a closed incident; the roles below
    post = post_of(state, post_id)
    _check_version(state, post_id, post, version)
    reasons = []
    if post["status"] == "too_long":
        c = post["count"]
        reasons.append(f"it does not fit {post['channel']}: {c['used']}/{c['limit']} {c['unit']}; "
                       "shorten the template or its inputs and render again")
    elif post["status"] != "draft":
        reasons.append(f"it is {post['status']}, not a draft awaiting approval")
    if post["author"] == actor:
        reasons.append(f"{actor} rendered this version and cannot approve their own post")
    elif rules >= 2 and actor in post.get("writers", ()):
        reasons.append(f"{actor} wrote a version of this post since it was last approved and "
                       "cannot approve it")
    wanted = inc.approval_wanted(post)
    held = [r for r in wanted if r in inc.roles_of(state, actor)]
    if any(a["by"] == actor for a in post["approvals"]):
        reasons.append(f"{actor} has already approved this version")
    chosen = None
    if role is not None:
        if role not in wanted:
            reasons.append(f"role {role} is not (or no longer) needed: still needed "
                           f"{', '.join(inc.approval_missing(post)) or 'nothing'}")
        elif role not in held:
            reasons.append(f"{actor} does not hold {role} in this incident")
        else:
            chosen = role
    elif not held:
        reasons.append(f"{actor} holds none of the roles still needed "
                       f"({', '.join(inc.approval_missing(post)) or 'none'})")
    elif len(held) > 1:
        raise UsageError(f"{actor} could approve as {', '.join(held)}: choose one with --role "
                         "(one approval counts for one role)")
    else:
        chosen = held[0]
    granted_by = state.get("granted", {}).get(chosen, {}).get(actor) if chosen else None
    if granted_by == actor and rules >= 2:
        reasons.append(f"{actor} assigned themselves {chosen}; another manager must assign it "
                       f"(playbook assign {incident} {chosen} {actor} --as OTHER) before "
                       f"{actor} can approve as {chosen}")
    leaks = sorted(set(post.get("leaks", [])) | set(confidential_leaks(state, post["text"]))
                   if post["public"] else [])
    if leaks:
        reasons.append(f"the text contains the value of confidential input(s) "
                       f"{', '.join(leaks)}; it can never be published on {post['channel']} "
                       "(edit the text; no override exists for this)")
    if post["hits"] and post["override"] is None and not override:
        found = "; ".join(f"{h['kind']} {h['text']!r}" for h in post["hits"])
        reasons.append(f"possible identifiers in a public post: {found}; remove them, or "
                       "approve with --override-identifiers REASON")
    if text_hash(post["text"]) != post["sha256"]:
        reasons.append("its text does not match the hash it was drafted with")
    reasons += _signature_problems(post, actor, signature, at)
    if reasons:
        raise Refused(f"incident {incident}: cannot approve {post_id} v{post['version']}", reasons)
    events = []
    if post["hits"] and post["override"] is None:
        events.append(NewEvent("IdentifiersOverridden", at, actor, {
            "post": post_id, "version": post["version"], "sha256": post["sha256"],
            "reason": override.strip(), "hits": post["hits"]}))
    events.append(NewEvent("PostApproved", at, actor, {
        "post": post_id, "version": post["version"], "sha256": post["sha256"], "role": chosen,
        "rules": APPROVAL_RULES, **({"granted_by": granted_by} if granted_by else {}),
        **({"signature": signature, "auth": signature["auth"]} if signature else {})}))
    return events


def approve(store, clock, actor: str, incident: str, post_id: str, *, version: int,
            role: str | None = None, override: str | None = None, signer=None) -> dict:
    """Approve version `version` of a post: the approver names the text they reviewed, so a
    version drafted meanwhile is never approved unseen. Checked against the state folded
    from the log, not only the stored projection."""
    override = (override or "").strip() or None  # a blank reason is no reason

    def build(state):
        at = event_time(clock, state)
        post = post_of(state, post_id)
        return approve_events(state, actor, post_id, version=version, role=role, override=override,
                              at=at, signature=signature_of(signer, post_id, post, utc_now_iso(clock.now())))
    return act(store, incident, build, from_log=True)["posts"][post_id]


def reject(store, clock, actor: str, incident: str, post_id: str, reason: str,
           version: int | None = None) -> dict:
    if not reason or not reason.strip():
        raise UsageError("a rejection needs --reason")

    def build(state):
        policy.require(state, actor, "reject")
        post = post_of(state, post_id)
        _check_version(state, post_id, post, version)
        policy.require(state, actor, "reject", post=post, post_id=post_id)
        if post["status"] in ("published", "rejected"):
            raise Refused(f"incident {incident}: {post_id} v{post['version']} is already {post['status']}")
        return [NewEvent("PostRejected", event_time(clock, state), actor, {
            "post": post_id, "version": post["version"], "sha256": post["sha256"], "reason": reason.strip()})]
    return act(store, incident, build)["posts"][post_id]


def drafts(store, incident: str) -> list[dict]:
    state = read_state(store, incident)
    posts = [{"id": pid, **p, "missing": inc.approval_missing(p)} for pid, p in state["posts"].items()]
    return sorted(posts, key=lambda p: (p["drafted_at"], p["id"]))
