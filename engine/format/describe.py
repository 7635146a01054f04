"""Human views of a playbook: a Mermaid stage diagram and a plain-text summary.

(transitions' own Mermaid output was considered: it has no terminal markers, no
stage titles and no guard labels, and needs its diagram machinery at import;
a stateDiagram-v2 written from the model is shorter than adapting it.)
"""

from __future__ import annotations

from .durations import format_duration, parse_duration
from .playbook import Playbook


def _q(text: str) -> str:
    """Text safe inside a Mermaid label (no quotes, colons or line breaks)."""
    return " ".join(text.replace('"', "'").replace(":", " -").split())


def within_text(within) -> str:
    """``60m``, or ``critical 30m, high 1h`` for an allowance that depends on the severity."""
    if isinstance(within, dict):
        return ", ".join(f"{level} {format_duration(parse_duration(v))}" for level, v in within.items())
    return format_duration(parse_duration(within))


def escalation_text(esc) -> str:
    """``escalate: notify a, b, move to s; if critical: notify ...``"""
    def step(s) -> str:
        if s.ladder:
            rungs = ", then ".join(f"after {r.after} notify {', '.join(r.notify)}"
                                   + (f" (every {r.repeat} until acknowledged)" if r.repeat else "") for r in s.ladder)
            return f"ladder: {rungs}" + (f", move to {s.move_to}" if s.move_to else "")
        return f"notify {', '.join(s.notify) or 'nobody'}" + (f", move to {s.move_to}" if s.move_to else "")

    return "escalate: " + "; ".join([step(esc), *(f"if {level}: {step(s)}" for level, s in esc.by_severity.items())])


def clock_text(clock, default_from: str) -> str:
    text = f"within {within_text(clock.within)} of {clock.anchor or default_from}"
    if clock.escalate is not None:
        text += "; " + escalation_text(clock.escalate)
    return text


def mermaid(pb: Playbook) -> str:
    lines = ["---", f"title: {_q(pb.name)} (v{pb.version})", "---", "stateDiagram-v2"]
    for sid, stage in pb.stages.items():
        label = stage.title
        if stage.deadline is not None:
            label += f" ({within_text(stage.deadline.within)})"
        lines.append(f'    state "{_q(label)}" as {sid}')
    lines.append(f"    [*] --> {pb.initial_stage}")
    for trigger, tr in pb.transitions.items():
        guards = []
        if tr.requires.tasks:
            guards.append("tasks " + ", ".join(tr.requires.tasks))
        if tr.requires.published:
            guards.append("published " + ", ".join(tr.requires.published))
        if tr.requires.approved:
            guards.append("approved " + ", ".join(tr.requires.approved))
        if tr.requires.inputs:
            guards.append("inputs " + ", ".join(tr.requires.inputs))
        label = trigger + (f" [{'; '.join(guards)}]" if guards else "")
        for source in tr.source:
            lines.append(f"    {source} --> {tr.to}: {_q(label)}")
    for sid in pb.terminal_stages():
        lines.append(f"    {sid} --> [*]")
    return "\n".join(lines) + "\n"


def summary(pb: Playbook) -> str:
    out = [f"{pb.name}  ({pb.id}, version {pb.version})"]
    if pb.description:
        out.append(f"  {pb.description.strip()}")
    out.append(f"Severities: {', '.join(pb.severities)}")
    for name, t in pb.targets.items():
        until = t.until if isinstance(t.until, str) else (
            f"{t.until.published} published" if t.until.published else f"stage {t.until.reached} reached")
        out.append(f"Target {name}: {t.title or until.replace('_', ' ')} {clock_text(t, 'the start')}")
    out.append("\nRoles:")
    for rid, role in pb.roles.items():
        out.append(f"  {rid:<20} {role.title}{'  (required to start)' if role.required else ''}")
    if pb.inputs:
        out.append("\nInputs:")
        for name, spec in pb.inputs.items():
            flags = [spec.type]
            if spec.required:
                flags.append("required")
            if spec.confidential:
                flags.append("CONFIDENTIAL")
            if spec.default is not None:
                flags.append(f"default {spec.default!r}")
            if spec.public_contact:
                flags.append("public contact (not flagged as an identifier)")
            out.append(f"  {name:<20} {', '.join(flags)}")
    out.append("\nStages:")
    for sid, stage in pb.stages.items():
        marks = []
        if sid == pb.initial_stage:
            marks.append("initial")
        if stage.terminal:
            marks.append("terminal")
        if stage.deadline is not None:
            until = "first public post" if stage.deadline.until == "first_public_post" else "leaving it"
            marks.append(f"deadline until {until} {clock_text(stage.deadline, 'entering it')}")
        if stage.updates is not None:
            marks.append(f"public update every {stage.updates.every}, counted from the last public post")
            if stage.updates.escalate is not None:
                marks.append(escalation_text(stage.updates.escalate))
        out.append(f"  {sid:<20} {stage.title}{'  [' + '; '.join(marks) + ']' if marks else ''}")
        for task, text in stage.tasks.items():
            out.append(f"      [ ] {task}: {text}")
        if pb.stage_templates(sid):
            out.append(f"      templates: {', '.join(pb.stage_templates(sid))}")
    out.append("\nTransitions:")
    for trigger, tr in pb.transitions.items():
        out.append(f"  {trigger:<20} {', '.join(tr.source)} -> {tr.to}  (by {', '.join(tr.roles)})")
    out.append("\nTemplates:")
    for tid, t in pb.templates.items():
        channels = ", ".join(f"{ch}[{'/'.join(langs)}]" for ch, langs in t.channels.items())
        approval = []
        if t.approval.all_of:
            approval.append("all of " + ", ".join(t.approval.all_of))
        if t.approval.any_of:
            approval.append(f"{t.approval.min} of " + ", ".join(t.approval.any_of))
        out.append(f"  {tid:<20} {channels}")
        out.append(f"  {'':<20} approval: {'; '.join(approval)}")
        for allowance in t.allow:
            what = allowance.check + (f" on {allowance.phrase!r}" if allowance.phrase else "")
            out.append(f"  {'':<20} allows {what}: {allowance.reason}")
        for lang, policy in t.approval.languages.items():
            parts = (["all of " + ", ".join(policy.all_of)] if policy.all_of else []) + (
                [f"{policy.min} of " + ", ".join(policy.any_of)] if policy.any_of else [])
            out.append(f"  {'':<20} approval of {lang} posts: {'; '.join(parts)}")
        if t.also_in:
            out.append(f"  {'':<20} also available in: {', '.join(t.also_in)}")
    return "\n".join(out) + "\n"
