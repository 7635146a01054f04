"""Semantic checks of a playbook whose shape is already valid.

Each check returns diagnostics instead of raising, so a playbook author sees every
problem of a file in one run, each at the line that has to change.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Iterator

from ..errors import Diagnostic
from .playbook import EmailText, Escalation, Playbook
from .yamlsource import Loc, SourceMap


def check_playbook(pb: Playbook, smap: SourceMap, *, graph: bool = True) -> list[Diagnostic]:
    """Every semantic problem; `graph=False` skips reachability (for a salvaged playbook)."""
    problems: list[Diagnostic] = []
    from .monitors import check_monitors

    checks = (_references, _graph, _tasks, _templates, _settings, check_monitors) if graph else (
        _references, _tasks, _templates, _settings, check_monitors)
    for check in checks:
        problems.extend(check(pb, smap))
    problems.sort(key=lambda d: (d.line, d.col))
    return problems


def _ref(smap: SourceMap, loc: Loc, kind: str, name: str, known) -> Diagnostic:
    names = ", ".join(sorted(known)) or "none declared"
    return smap.diagnostic(loc, f"unknown {kind} {name!r} (known: {names})")


def _references(pb: Playbook, smap: SourceMap) -> Iterator[Diagnostic]:
    stages, roles, templates, inputs = pb.stages, pb.roles, pb.templates, pb.inputs
    tasks = {t for s in stages.values() for t in s.tasks}
    if pb.initial is not None and pb.initial not in stages:
        yield _ref(smap, ("initial",), "stage", pb.initial, stages)
    for i, role in enumerate(pb.managers or []):
        if role not in roles:
            yield _ref(smap, ("managers", i), "role", role, roles)
    for tid, tr in pb.transitions.items():
        base = ("transitions", tid)
        for i, src in enumerate(tr.source):
            loc = base + ("from", i) if (base + ("from", i)) in smap.values else base + ("from",)
            if src not in stages:
                yield _ref(smap, loc, "stage", src, stages)
            elif stages[src].terminal and not tr.reopen:
                yield smap.diagnostic(loc, f"stage {src!r} is terminal; only a transition "
                                      "marked reopen: true may leave it")
        if tr.to not in stages:
            yield _ref(smap, base + ("to",), "stage", tr.to, stages)
        if tr.reopen and not any(s in stages and stages[s].terminal for s in tr.source):
            yield smap.diagnostic(base + ("reopen",), "reopen: true only applies to a "
                                  "transition out of a terminal stage")
        for i, role in enumerate(tr.roles):
            if role not in roles:
                yield _ref(smap, base + ("roles", i), "role", role, roles)
        guard = base + ("requires",)
        for field, kind, known in (("tasks", "task", tasks), ("published", "template", templates),
                                   ("approved", "template", templates), ("inputs", "input", inputs)):
            for i, name in enumerate(getattr(tr.requires, field)):
                if name not in known:
                    yield _ref(smap, guard + (field, i), kind, name, known)
    for sid, stage in stages.items():
        for i, name in enumerate(stage.templates):
            if name not in templates:
                yield _ref(smap, ("stages", sid, "templates", i), "template", name, templates)
        for clock in ("deadline", "updates"):
            value = getattr(stage, clock)
            if value is not None and value.escalate is not None:
                yield from _escalation(pb, smap, ("stages", sid, clock, "escalate"),
                                       value.escalate, from_stage=sid)
    if pb.inbound is not None and pb.inbound.escalate is not None:
        yield from _escalation(pb, smap, ("inbound", "escalate"), pb.inbound.escalate, from_stage=None)
    for name, target in pb.targets.items():
        base = ("targets", name)
        if target.escalate is not None:
            yield from _escalation(pb, smap, base + ("escalate",), target.escalate, from_stage=None)
        yield from _clock_refs(pb, smap, base, target, stage_clock=False)
        until = target.until
        if not isinstance(until, str):
            if until.published is not None and until.published not in templates:
                yield _ref(smap, base + ("until", "published"), "template", until.published, templates)
            if until.reached is not None and until.reached not in stages:
                yield _ref(smap, base + ("until", "reached"), "stage", until.reached, stages)
    for sid, stage in stages.items():
        if stage.deadline is not None:
            yield from _clock_refs(pb, smap, ("stages", sid, "deadline"), stage.deadline, stage_clock=True)


def _clock_refs(pb: Playbook, smap: SourceMap, loc: Loc, clock, *, stage_clock: bool) -> Iterator[Diagnostic]:
    """A clock's from: names a datetime input or an event; its severities exist."""
    anchor = clock.anchor
    events = ("start", "entry") if stage_clock else ("start",)
    if anchor is not None and anchor not in events:
        spec = pb.inputs.get(anchor)
        if spec is None:
            datetimes = [n for n, i in pb.inputs.items() if i.type == "datetime"]
            yield smap.diagnostic(loc + ("from",), f"{anchor!r} is neither {' nor '.join(events)} "
                                  f"nor a datetime input (datetime inputs: {', '.join(datetimes) or 'none'})")
        elif spec.type != "datetime":
            yield smap.diagnostic(loc + ("from",), f"input {anchor!r} is of type {spec.type}; a clock "
                                  "can only count from a datetime input")
    if isinstance(clock.within, dict):
        for level in clock.within:
            if level not in pb.severities:
                yield smap.diagnostic(loc + ("within", level), f"unknown severity {level!r} (this "
                                      f"playbook's severities: {', '.join(pb.severities)})", key=True)


def _escalation(pb: Playbook, smap: SourceMap, loc: Loc, esc: Escalation,
                from_stage: str | None) -> Iterator[Diagnostic]:
    for level, step in getattr(esc, "by_severity", {}).items():
        if level not in pb.severities:
            yield smap.diagnostic(loc + ("by_severity", level), f"unknown severity {level!r} (this "
                                  f"playbook's severities: {', '.join(pb.severities)})", key=True)
        yield from _escalation(pb, smap, loc + ("by_severity", level), step, from_stage)
    for i, role in enumerate(esc.notify):
        if role not in pb.roles:
            yield _ref(smap, loc + ("notify", i), "role", role, pb.roles)
    if esc.ladder:
        yield from _ladder(pb, smap, loc + ("ladder",), esc.ladder)
    target = esc.move_to
    if target is None:
        return
    if target not in pb.stages:
        yield _ref(smap, loc + ("move_to",), "stage", target, pb.stages)
    elif from_stage is not None and not any(
        tr.to == target and from_stage in tr.source for tr in pb.transitions.values()
    ):
        yield smap.diagnostic(loc + ("move_to",), f"escalation moves to {target!r} but no "
                              f"transition leads from {from_stage!r} to {target!r}; add one so "
                              "the move is a real, logged transition")


def _ladder(pb: Playbook, smap: SourceMap, loc: Loc, ladder) -> Iterator[Diagnostic]:
    """Steps in ascending order of after:, repeat: only on the last, roles the playbook's own
    or on-call roles of the roster (a name close to a playbook role is taken for a typo)."""
    import difflib

    previous = None
    for i, step in enumerate(ladder):
        after = step.after_seconds
        if previous is not None and after <= previous[1]:
            yield smap.diagnostic(loc + (i, "after"), f"after: {step.after} is not later than the step "
                                  f"before ({previous[0]}); list the steps in ascending order of after:")
        previous = (step.after, after)
        if step.repeat is not None and i != len(ladder) - 1:
            yield smap.diagnostic(loc + (i, "repeat"), "repeat: only on the last step of a ladder "
                                  "(it repeats until someone acknowledges)")
        for n, role in enumerate(step.notify):
            close = difflib.get_close_matches(role, list(pb.roles), n=1, cutoff=0.8)
            if role not in pb.roles and close:
                yield smap.diagnostic(loc + (i, "notify", n), f"unknown role {role!r}: did you mean "
                                      f"{close[0]!r}? (a name that is not a role of this playbook is an "
                                      "on-call role, found in the roster)")


def _graph(pb: Playbook, smap: SourceMap) -> Iterator[Diagnostic]:
    stages = pb.stages
    if pb.initial is not None and pb.initial not in stages:
        return
    terminals = set(pb.terminal_stages())
    if not terminals:
        yield smap.diagnostic(("stages",), "no stage is terminal: mark the stage that closes "
                              "the incident with terminal: true", key=True)
    edges = [(s, tr.to) for tr in pb.transitions.values() for s in tr.source
             if s in stages and tr.to in stages]
    reach = _closure({pb.initial_stage}, edges)
    for sid in stages:
        if sid not in reach:
            yield smap.diagnostic(("stages", sid), f"stage {sid!r} cannot be reached from the "
                                  f"initial stage {pb.initial_stage!r}", key=True)
    if terminals:
        back = _closure(terminals, [(b, a) for a, b in edges])
        for sid in stages:
            if sid in reach and sid not in back:
                yield smap.diagnostic(("stages", sid), f"stage {sid!r} has no way to a terminal "
                                      "stage: an incident there could never be closed", key=True)


def _closure(start: set[str], edges: list[tuple[str, str]]) -> set[str]:
    seen, todo = set(start), deque(start)
    while todo:
        here = todo.popleft()
        for a, b in edges:
            if a == here and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _tasks(pb: Playbook, smap: SourceMap) -> Iterator[Diagnostic]:
    owner: dict[str, str] = {}
    for sid, stage in pb.stages.items():
        for task in stage.tasks:
            if task in owner:
                yield smap.diagnostic(("stages", sid, "tasks", task), f"task {task!r} is already "
                                      f"declared in stage {owner[task]!r}; task ids must be unique",
                                      key=True)
            owner.setdefault(task, sid)


def _settings(pb: Playbook, smap: SourceMap) -> Iterator[Diagnostic]:
    from ..posts.channels import CHANNELS

    for name in pb.channels:
        if name not in CHANNELS:
            yield smap.diagnostic(("channels", name), f"unknown channel {name!r} (known: "
                                  f"{', '.join(CHANNELS)})", key=True)
    if pb.region is not None:
        import phonenumbers

        if pb.region not in phonenumbers.SUPPORTED_REGIONS:
            yield smap.diagnostic(("region",), f"unknown region {pb.region!r}: give an ISO 3166 "
                                  "country code such as US, GB or ES")
    for name, pattern in pb.identifiers.items():
        try:
            re.compile(pattern)
        except re.error as e:
            yield smap.diagnostic(("identifiers", name), f"not a valid regular expression: {e}")
        except (OverflowError, RecursionError) as e:  # a{99999999999}, thousands of nested groups
            reason = "nested too deeply" if isinstance(e, RecursionError) else f"a repeat count is too large ({e})"
            yield smap.diagnostic(("identifiers", name), f"not a usable regular expression: {reason}")
    seen = set()
    for i, level in enumerate(pb.severities):
        if level in seen:
            yield smap.diagnostic(("severities", i), f"severity {level!r} is listed twice")
        seen.add(level)


# -- templates ----------------------------------------------------------------


def _templates(pb: Playbook, smap: SourceMap) -> Iterator[Diagnostic]:
    from ..posts.channels import CHANNELS

    for tid, template in pb.templates.items():
        base = ("templates", tid)
        policies = [(base + ("approval",), template.approval)] + [
            (base + ("approval", "languages", lang), policy) for lang, policy in template.approval.languages.items()]
        for loc, policy in policies:
            for group, field in (("all_of", policy.all_of), ("any_of", policy.any_of)):
                for i, role in enumerate(field):
                    if role not in pb.roles:
                        yield _ref(smap, loc + (group, i), "role", role, pb.roles)
        written = {lang for langs in template.channels.values() for lang in langs}
        for lang in template.approval.languages:
            if lang not in written:
                yield smap.diagnostic(base + ("approval", "languages", lang), f"no channel of template "
                                      f"{tid!r} has {lang!r} text (languages: {', '.join(sorted(written))})",
                                      key=True)
        for i, stage in enumerate(template.also_in):
            if stage not in pb.stages:
                yield _ref(smap, base + ("also_in", i), "stage", stage, pb.stages)
        for channel, langs in template.channels.items():
            if channel not in CHANNELS:
                yield smap.diagnostic(base + ("channels", channel), f"unknown channel {channel!r} "
                                      f"(known: {', '.join(CHANNELS)})", key=True)
                continue
            profile = CHANNELS[channel]
            if template.audience is not None and template.audience not in profile.audiences:
                yield smap.diagnostic(base + ("audience",), f"a {channel} post cannot have audience "
                                      f"{template.audience!r} (on {channel}: {', '.join(profile.audiences)}); "
                                      "split the template by audience")
            public = pb.audience(tid, channel) == "public"
            for lang, text in langs.items():
                loc = base + ("channels", channel, lang)
                if profile.has_subject and not isinstance(text, EmailText):
                    yield smap.diagnostic(loc, "an email template needs subject: and body:")
                    continue
                if not profile.has_subject and isinstance(text, EmailText):
                    yield smap.diagnostic(loc, f"subject and body only apply to email; "
                                          f"a {channel} template is plain text")
                    continue
                parts = [("subject", text.subject), ("body", text.body)] if isinstance(text, EmailText) else [(None, text)]
                for part, source in parts:
                    ploc = loc + (part,) if part else loc
                    yield from _template_text(pb, smap, ploc, source, channel, part, public)


def _template_text(pb: Playbook, smap: SourceMap, loc: Loc, source: str, channel: str,
                   part: str | None, public: bool) -> Iterator[Diagnostic]:
    from jinja2 import TemplateSyntaxError, meta, nodes

    from ..posts.channels import CHANNELS, count
    from ..posts.sandbox import CONTEXT_NAMES, environment

    profile = CHANNELS[channel]
    env = environment(html=profile.html)
    try:
        ast = env.parse(source)
        refs = list(meta.find_referenced_templates(ast))
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError as e:
        yield _at_template_line(smap, loc, e.lineno, f"template syntax error: {e.message}")
        return
    except RecursionError:
        yield smap.diagnostic(loc, "template is nested too deeply to check")
        return
    for ref in refs:
        if ref is not None and not _partial_exists(env, ref):
            yield _at_template_line(smap, loc, _include_line(ast, ref),
                                    f"template includes {ref!r}, which is not one of the shared partials")
    known = set(pb.inputs) | CONTEXT_NAMES | set(env.globals)
    undeclared = undeclared - known
    names = {}
    for node in ast.find_all(nodes.Name):
        names.setdefault(node.name, node.lineno)
    for name in sorted(undeclared):
        yield _at_template_line(smap, loc, names.get(name, 1),
                                f"uses undeclared variable {name!r}; declare it under inputs: "
                                f"(usable: {', '.join(sorted(set(pb.inputs) | CONTEXT_NAMES))})",
                                name)
    if public:
        for name, spec in pb.inputs.items():
            if spec.confidential and name in names:
                yield _at_template_line(smap, loc, names[name],
                                        f"confidential input {name!r} would be published on the "
                                        f"public channel {channel!r}"
                                        + (" (an SMS is a broadcast unless the template says "
                                           "audience: direct)" if channel == "sms" else ""), name)
    static = "".join(
        child.data
        for node in ast.body if isinstance(node, nodes.Output)
        for child in node.nodes if isinstance(child, nodes.TemplateData)
    )
    limit = pb.channel_limit(channel) if part != "subject" else None
    if part == "subject":
        from ..posts.channels import subject_count

        used = subject_count(static)
    else:
        used = count(channel, static.strip(), limit=limit)
    if not used.fits:
        yield smap.diagnostic(loc, f"fixed text alone is {used} {used.unit}, over the "
                              f"{channel}{' subject' if part == 'subject' else ''} limit")


def _partial_exists(env, ref: str) -> bool:
    """Whether the sandbox's loader can find ref (so not '../x' or an absolute path)."""
    from jinja2 import TemplateNotFound

    try:
        env.loader.get_source(env, ref)
    except TemplateNotFound:
        return False
    return True


def _include_line(ast, ref: str) -> int:
    from jinja2 import nodes

    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        template = node.template
        consts = [template] if isinstance(template, nodes.Const) else template.find_all(nodes.Const)
        if any(const.value == ref for const in consts):
            return node.lineno
    return 1


def _at_template_line(smap: SourceMap, loc: Loc, lineno: int, message: str,
                      name: str | None = None) -> Diagnostic:
    """Place a diagnostic at line `lineno` of a template embedded in the YAML.

    In a literal block (``|``) template line n is YAML line n below the ``|``. A folded
    (``>``) or flow scalar joins lines, so there n is only the first YAML line it can
    be on: the variable `name`, when given, is looked for from there to the end.
    """
    start, col = smap.position(loc)
    style = smap.styles.get(loc)
    last = max(smap.ends.get(loc, start), start)
    line = min(start + max(lineno, 1) - (0 if style in ("|", ">") else 1), last)
    if style == "|":
        last = line  # exact: the name can only be on this line
    found = None
    if name is not None:
        pattern = re.compile(r"\{[{%][^}]*?\b(" + re.escape(name) + r")\b")
        found = next(((n, m) for n in range(line, last + 1)
                      if (m := pattern.search(smap.line_text(n)))), None)
    if found is not None:
        line, col = found[0], found[1].start(1) + 1
    elif line != start:
        text = smap.line_text(line)
        col = len(text) - len(text.lstrip(" ")) + 1
    return smap.diagnostic(loc, message, at=(line, col))
