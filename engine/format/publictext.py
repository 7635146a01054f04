"""The public-text check: the classic mistakes of a healthcare reply in public.

`playbook validate` reports them as warnings (errors with ``--strict``), each at the
file:line:col of the words to change:

- ``confirms_care``: words that confirm in public that someone is or was a patient,
  or describe their care ("the patient", "your visit"; HIPAA 45 CFR 164.510(a));
- ``admission``: fault or cause admitted before the facts are established, or an
  absolute promise ("our fault", "it won't happen again");
- ``names_person``: an input holding a member of the public's name or handle
  (``identifies_person: true``) anywhere but as the leading @mention of a reply;
- ``macro_language`` (see :mod:`engine.format.macrolang`): a shared macro called in another
  language than the template's, or without text in it;
- ``no_phrase_list``: a language with no phrase list, whose texts go unchecked.

The phrases come from ``engine/format/lexicon/<lang>.yaml`` plus the playbook's own
``lexicon:``; they are matched on the template's fixed text (not on input values,
which are not known before a crisis), after NFKC normalisation and case folding,
on whole words. A template silences a finding with ``allow: [{check, reason}]``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from ..errors import Diagnostic
from .playbook import EmailText, Playbook, Template
from .yamlsource import Loc, SourceMap

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"
PHRASE_KINDS = ("confirms_care", "admission")

_MESSAGES = {
    "confirms_care": "{phrase!r} confirms in public that someone is or was a patient, or "
                     "describes their care; speak of their concerns, and take the rest private",
    "admission": "{phrase!r} admits fault or cause before the facts are established, or "
                 "promises what no one can guarantee; express empathy without liability",
}
#: Apostrophes and the dot that Turkish İ keeps after case folding.
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u0307": None})


@dataclass(frozen=True)
class Finding:
    check: str
    loc: Loc
    at: tuple[int, int]
    message: str
    phrase: str = ""


def check_public_text(pb: Playbook, smap: SourceMap) -> list[Diagnostic]:
    """Every warning of the public-text check, sorted by position."""
    from ..posts.channels import CHANNELS
    from .macrolang import macro_findings

    found: list[Diagnostic] = []
    unlisted: set[str] = set()
    for tid, template in pb.templates.items():
        findings: list[Finding] = []
        for channel, langs in template.channels.items():
            profile = CHANNELS.get(channel)
            if profile is None:
                continue
            for lang, text in langs.items():
                loc = ("templates", tid, "channels", channel, lang)
                for part, source in _parts(text):
                    ploc = loc + (part,) if part else loc
                    ast = _parse(source, profile.html)
                    if ast is None:
                        continue
                    findings += macro_findings(ast, smap, ploc, lang, profile.html)
                    if pb.audience(tid, channel) != "public":  # sms too, unless audience: direct
                        continue
                    phrases = phrase_lists(pb, lang)
                    if phrases is None:
                        if lang not in unlisted:
                            unlisted.add(lang)
                            findings.append(Finding(
                                "no_phrase_list", ploc, smap.position(ploc),
                                f"no phrase list for language {lang!r}, so the public-text "
                                f"check cannot read this text; add lexicon: {lang}: to the "
                                "playbook"))
                        continue
                    findings += _phrase_findings(ast, smap, ploc, phrases)
                    findings += _person_findings(pb, ast, smap, ploc)
        found += _allowed(template, tid, findings, smap)
    return sorted(found, key=lambda d: (d.line, d.col))


def _parts(text: Any) -> list[tuple[str | None, str]]:
    if isinstance(text, EmailText):
        return [("subject", text.subject), ("body", text.body)]
    return [(None, text)]


def _parse(source: str, html: bool):
    from jinja2 import TemplateSyntaxError

    from ..posts.sandbox import environment

    try:
        return environment(html=html).parse(source)
    except (TemplateSyntaxError, RecursionError):
        return None  # reported by the template checks


def _allowed(template: Template, tid: str, findings: list[Finding],
             smap: SourceMap) -> Iterator[Diagnostic]:
    used = [False] * len(template.allow)
    for f in findings:
        hit = next((i for i, a in enumerate(template.allow) if a.check == f.check and (
            a.phrase is None or normalise(a.phrase)[0] == normalise(f.phrase)[0])), None)
        if hit is None:
            yield _warning(smap, f.loc, f.at, f.message, f.check)
        else:
            used[hit] = True
    for i, allowance in enumerate(template.allow):
        if not used[i]:
            what = f"{allowance.check} on {allowance.phrase!r}" if allowance.phrase else allowance.check
            loc = ("templates", tid, "allow", i)
            yield _warning(smap, loc, smap.position(loc), f"allows {what}, but the template has "
                           "no such finding; remove the entry", "allow")


def _warning(smap: SourceMap, loc: Loc, at: tuple[int, int], message: str, check: str) -> Diagnostic:
    d = smap.diagnostic(loc, message, at=at)
    return Diagnostic(d.path, d.line, d.col, d.field, d.message, d.source_line,
                      severity="warning", check=check)


# -- phrases ------------------------------------------------------------------------


def normalise(text: str) -> tuple[str, list[int]]:
    """NFKC and case folding, apostrophes unified, runs of whitespace as one space; and
    for each character of the result, the index in `text` it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch).casefold().translate(_FOLD)
        if unicodedata.combining(ch) and out:  # a decomposed accent: join it to its letter
            joined = unicodedata.normalize("NFC", out[-1] + folded)
            if len(joined) == 1:
                out[-1] = joined
                continue
        if folded.isspace():
            if out and out[-1] == " ":
                continue
            folded = " "
        for c in folded:
            out.append(c)
            where.append(i)
    return "".join(out), where


@lru_cache(maxsize=None)
def shipped_phrases(lang: str) -> dict[str, tuple[str, ...]] | None:
    """The phrase lists shipped for `lang` (en, es, ...), or None if there are none."""
    import yaml

    path = LEXICON_DIR / f"{lang.lower()}.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {kind: tuple(str(p) for p in data.get(kind) or ()) for kind in PHRASE_KINDS}


def phrase_lists(pb: Playbook, lang: str) -> dict[str, tuple[str, ...]] | None:
    """Shipped and playbook phrases for a language tag (pt-BR falls back to pt)."""
    tags = [lang, lang.split("-")[0]] if "-" in lang else [lang]
    shipped = next((s for t in tags if (s := shipped_phrases(t)) is not None), None)
    own = next((pb.lexicon[t] for t in tags if t in pb.lexicon), None)
    if shipped is None and own is None:
        return None
    return {kind: (shipped or {}).get(kind, ()) + tuple(getattr(own, kind, None) or ())
            for kind in PHRASE_KINDS}


@lru_cache(maxsize=4096)
def _pattern(phrase: str) -> re.Pattern:
    body = normalise(phrase.strip())[0]
    head = "" if body.startswith("*") else r"(?<!\w)"
    tail = "" if body.endswith("*") else r"(?!\w)"
    return re.compile(head + re.escape(body.strip("*").strip()) + tail)


def _phrase_findings(ast, smap: SourceMap, loc: Loc, phrases: dict) -> Iterator[Finding]:
    """One finding per phrase found; of overlapping phrases ("won't happen again" in "it
    won't happen again") only the longest."""
    from jinja2 import nodes

    taken: set[tuple[int, int]] = set()
    for node in ast.find_all(nodes.TemplateData):
        text, where = normalise(node.data)
        hits = sorted(((m.start(), m.end(), kind, phrase)
                       for kind in PHRASE_KINDS for phrase in phrases[kind]
                       for m in _pattern(phrase).finditer(text)),
                      key=lambda h: (h[0], h[0] - h[1]))
        end = -1
        for begin, stop, kind, phrase in hits:
            if begin < end:
                continue
            end = stop
            tline = node.lineno + node.data[: where[begin]].count("\n")
            at = locate(smap, loc, tline, _pattern(phrase), taken)
            yield Finding(kind, loc, at, _MESSAGES[kind].format(phrase=phrase), phrase)


def _person_findings(pb: Playbook, ast, smap: SourceMap, loc: Loc) -> Iterator[Finding]:
    from jinja2 import nodes

    people = {n for n, spec in pb.inputs.items() if spec.identifies_person}
    if not people:
        return
    leading = _leading_name(ast)
    taken: set[tuple[int, int]] = set()
    uses = sorted((n for n in ast.find_all(nodes.Name) if n.name in people and n.ctx == "load"),
                  key=lambda n: n.lineno)
    for node in uses:
        pattern = re.compile(r"\{[{%][^}]*?(?<!\w)(" + re.escape(node.name) + r")(?!\w)")
        at = locate(smap, loc, node.lineno, pattern, taken, group=1)
        if node is leading:
            continue
        yield Finding("names_person", loc, at, f"input {node.name!r} holds a member of the "
                      "public's name or handle; in a public post it may only open a reply "
                      f"as its @mention (@{{{{ {node.name} }}}} first)", node.name)


def _leading_name(ast):
    """The Name printed first in the template, if nothing but '@' and space precede it."""
    from jinja2 import nodes

    for node in ast.body:
        if isinstance(node, (nodes.FromImport, nodes.Import)):
            continue
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                if child.data.strip() in ("", "@"):
                    continue
                return None
            return child if isinstance(child, nodes.Name) else None
    return None


def locate(smap: SourceMap, loc: Loc, tline: int, pattern: re.Pattern,
            taken: set[tuple[int, int]], group: int = 0) -> tuple[int, int]:
    """The YAML line and column of the first match of `pattern` at or after template
    line `tline` that is not already taken; else where that template line starts."""
    start, col = smap.position(loc)
    style = smap.styles.get(loc)
    last = max(smap.ends.get(loc, start), start)
    first = min(start + max(tline, 1) - (0 if style in ("|", ">") else 1), last)
    for n in range(first, last + 1):
        raw = smap.line_text(n)
        text, where = normalise(raw)
        for m in pattern.finditer(text):
            at = (n, where[m.start(group)] + 1)
            if at not in taken:
                taken.add(at)
                return at
    if first != start:
        raw = smap.line_text(first)
        col = len(raw) - len(raw.lstrip(" ")) + 1
    return (first, col)
