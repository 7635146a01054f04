"""The compiled plan: the parts of a playbook an incident needs, as plain JSON.

An incident pins the exact playbook text it started from (in its first event). It
also carries this plan, derived from that text once at start, so that reading an
incident (``status``, ``list``, ``due``) needs neither YAML nor pydantic: start-up
stays light, and the cost of a read does not depend on the playbook's size.
"""

from __future__ import annotations

from typing import Any

from .durations import parse_duration


def _step(esc) -> dict:
    out = {"notify": list(esc.notify), "move_to": esc.move_to}
    if esc.ladder:  # only then, so that the plans of older playbooks keep their shape
        out["ladder"] = [{"after": s.after_seconds, "notify": list(s.notify),
                          "repeat": _seconds(s.repeat) if s.repeat else None} for s in esc.ladder]
    return out


def _escalation(esc) -> dict | None:
    if esc is None:
        return None
    out = _step(esc)
    if esc.by_severity:
        out["by_severity"] = {level: _step(step) for level, step in esc.by_severity.items()}
    return out


def _seconds(value: str) -> int:
    return int(parse_duration(value).total_seconds())


def _within(clock) -> dict:
    """``seconds`` for one allowance, or ``by_severity`` when it depends on the severity."""
    if isinstance(clock.within, dict):
        return {"seconds": None, "by_severity": {k: _seconds(v) for k, v in clock.within.items()}}
    return {"seconds": _seconds(clock.within)}


def _until(until) -> object:
    if isinstance(until, str):
        return until
    return {k: v for k, v in until.model_dump().items() if v is not None}


def compile_plan(pb: Any, sha256: str) -> dict:
    """Plain-JSON view of a validated :class:`engine.format.playbook.Playbook`."""
    from ..posts.channels import CHANNELS

    stages = {}
    for sid, st in pb.stages.items():
        deadline = None
        if st.deadline is not None:
            deadline = {
                **_within(st.deadline),
                "from": st.deadline.anchor,
                "until": st.deadline.until,
                "escalate": _escalation(st.deadline.escalate),
            }
        updates = None
        if st.updates is not None:
            updates = {
                "seconds": int(parse_duration(st.updates.every).total_seconds()),
                "escalate": _escalation(st.updates.escalate),
            }
        stages[sid] = {
            "title": st.title,
            "tasks": dict(st.tasks),
            "templates": pb.stage_templates(sid),
            "terminal": st.terminal,
            "deadline": deadline,
            "updates": updates,
        }
    return {
        "id": pb.id,
        "name": pb.name,
        "version": pb.version,
        "sha256": sha256,
        "initial": pb.initial_stage,
        "severities": list(pb.severities),
        "region": pb.region,
        "roles": {rid: {"title": r.title, "required": r.required} for rid, r in pb.roles.items()},
        "managers": pb.manager_roles(),
        "inputs": {
            name: {
                "type": spec.type,
                "required": spec.required,
                "confidential": spec.confidential,
                "default": spec.default,
                "values": spec.values,
            }
            for name, spec in pb.inputs.items()
        },
        "stages": stages,
        "transitions": {
            trig: {
                "from": list(tr.source),
                "to": tr.to,
                "title": tr.title,
                "roles": list(tr.roles),
                "requires": tr.requires.model_dump(),
                "reopen": tr.reopen,
            }
            for trig, tr in pb.transitions.items()
        },
        "targets": {
            name: {**_within(t), "title": t.title, "from": t.anchor, "until": _until(t.until),
                   "escalate": _escalation(t.escalate)}
            for name, t in pb.targets.items()
        },
        **({"inbound": {"respond_within": {k: _seconds(v) for k, v in pb.inbound.respond_within.items()},
                        "escalate": _escalation(pb.inbound.escalate)}} if pb.inbound is not None else {}),
        "templates": {
            tid: {
                "title": t.title,
                "channels": {ch: sorted(langs) for ch, langs in t.channels.items()},
                "public": any(pb.audience(tid, ch) == "public" for ch in t.channels if ch in CHANNELS),
            }
            for tid, t in pb.templates.items()
        },
    }


def writing_plan(pb: Any) -> dict:
    """What rendering and editing posts need from the playbook, as plain JSON: each
    template's sources per channel and language, whether it is written per recipient,
    its audience per channel and approval policy per language; the channels' limits;
    the playbook's identifier patterns; the inputs that are our own public contacts.

    Recorded with the incident when it starts (IncidentStarted's ``writing``), so a
    render reads it instead of parsing and checking the pinned playbook again; an
    incident started before it was recorded has it built from the pinned text."""
    templates = []  # lists, not mappings: stored JSON sorts keys, and the playbook's order is kept
    for tid, spec in pb.templates.items():
        langs = sorted({lang for texts in spec.channels.values() for lang in texts})
        templates.append([tid, {
            "per_recipient": bool(spec.per_recipient),
            "channels": [[ch, [[lang, src if isinstance(src, str) else {"subject": src.subject, "body": src.body}]
                               for lang, src in texts.items()]] for ch, texts in spec.channels.items()],
            "audience": {ch: pb.audience(tid, ch) for ch in spec.channels},
            "policy": {lang: spec.approval.policy_for(lang) for lang in langs},
        }])
    return {
        "templates": templates,
        "limits": {ch: s.limit for ch, s in pb.channels.items() if s.limit is not None},
        "identifiers": dict(pb.identifiers),
        "public_contact": sorted(k for k, v in pb.inputs.items() if v.public_contact),
    }
