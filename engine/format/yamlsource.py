"""YAML text -> plain values, keeping where every key and value stands (file:line:col).

The YAML is composed into nodes (safe loader, no tags beyond the core schema) and
turned into plain Python values here, not by PyYAML's constructors, so that we keep
the position of every key and value (:class:`SourceMap`), refuse duplicate keys,
bound size, depth and alias expansion, and notice YAML 1.1 coercions. Playbooks
(:mod:`engine.format.loader`) and drill scenarios are read through :func:`parse_yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from ..errors import Diagnostic, PlaybookInvalid

#: Largest playbook file accepted. Real playbooks are a few tens of kilobytes.
MAX_BYTES = 1_000_000
#: Most values a document may expand to (aliases included): stops alias bombs.
MAX_NODES = 100_000
MAX_DEPTH = 64

Loc = tuple  # a path into the document: ("stages", "notify", "deadline")

_STR = "tag:yaml.org,2002:str"
_CANONICAL_BOOL = {"true": True, "false": False}
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_PUNCTUATION_TAGS = {"tag:yaml.org,2002:value", "tag:yaml.org,2002:merge"}
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SourceMap:
    """Where each key and value of a document stands in its file."""

    path: str
    lines: list[str]
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    #: original text of scalars YAML turned into something other than a string
    coerced: dict[Loc, str] = field(default_factory=dict)
    #: block style ('|', '>') of string scalars, for mapping template lines
    styles: dict[Loc, str | None] = field(default_factory=dict)
    #: last line of string scalars, for mapping template lines
    ends: dict[Loc, int] = field(default_factory=dict)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """Best known position for loc: the key or value, else the nearest parent."""
        table = (self.keys, self.values) if key else (self.values, self.keys)
        for end in range(len(loc), -1, -1):
            for t in table:
                if loc[:end] in t:
                    return t[loc[:end]]
        return (1, 1)

    def diagnostic(
        self, loc: Loc, message: str, *, key: bool = False, at: tuple[int, int] | None = None
    ) -> Diagnostic:
        line, col = at or self.position(loc, key=key)
        return Diagnostic(
            path=self.path,
            line=line,
            col=col,
            field=format_loc(loc),
            message=message,
            source_line=self.line_text(line),
        )

    def line_text(self, line: int) -> str:
        return self.lines[line - 1].rstrip("\r\n") if 0 < line <= len(self.lines) else ""


def format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Invalid(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


class _Builder:
    """Turns composed YAML nodes into plain values, recording positions."""

    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.count = 0
        #: collections being built, to spot an alias to one of its own ancestors
        self.open: set[int] = set()
        #: problems that do not stop the build (duplicate keys, non-text keys)
        self.problems: list[Diagnostic] = []

    def note(self, loc: Loc, node: yaml.Node, message: str) -> None:
        self.problems.append(self.smap.diagnostic(loc, message, at=_pos(node)))

    def fail(self, loc: Loc, node: yaml.Node, message: str) -> None:
        raise _Invalid(self.smap.diagnostic(loc, message, at=_pos(node)))

    def build(self, node: yaml.Node, loc: Loc = (), depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            top = loc[:1]
            raise _Invalid(self.smap.diagnostic(
                top, f"document expands to more than {MAX_NODES} values "
                "(anchors and aliases used as a bomb?)", key=True))
        if depth > MAX_DEPTH:
            self.fail(loc, node, f"nested more than {MAX_DEPTH} levels deep")
        self.smap.values.setdefault(loc, _pos(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, loc)
        if id(node) in self.open:
            self.fail(loc, node, "recursive alias: this anchored value contains an alias "
                      "to itself, so it would never end")
        self.open.add(id(node))
        try:
            return self.collection(node, loc, depth)
        finally:
            self.open.discard(id(node))

    def collection(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        if isinstance(node, yaml.SequenceNode):
            self.check_tag(node, loc, "tag:yaml.org,2002:seq")
            return [self.build(item, loc + (i,), depth + 1) for i, item in enumerate(node.value)]
        self.check_tag(node, loc, "tag:yaml.org,2002:map")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(loc, key_node, "merge keys (<<) are not supported; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(loc, key_node, "a key must be plain text, not a list or mapping")
            key = self.scalar(key_node, loc)
            if not isinstance(key, str):
                self.note(loc, key_node, f"key {key_node.value!r} is read by YAML as "
                          f"{yaml_kind(key)}, not text; put it in quotes")
                continue
            if key in out:
                first = self.smap.keys[loc + (key,)][0]
                self.note(loc + (key,), key_node,
                          f"duplicate key {key!r} (first on line {first}, again on line "
                          f"{key_node.start_mark.line + 1})")
                continue
            self.smap.keys[loc + (key,)] = _pos(key_node)
            out[key] = self.build(value_node, loc + (key,), depth + 1)
        return out

    def check_tag(self, node: yaml.Node, loc: Loc, expected: str) -> None:
        if node.tag != expected:
            self.fail(loc, node, f"YAML tag {node.tag!r} is not allowed in a playbook")

    def scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        tag, text = node.tag, node.value
        if tag in _PUNCTUATION_TAGS and text in ("=", "<<"):
            tag = _STR  # a plain '=' or '<<' value is text (YAML 1.1 tags them 'value', 'merge')
        if tag not in _SCALAR_TAGS:
            self.fail(loc, node, f"YAML tag {tag!r} is not allowed in a playbook")
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            self.smap.styles[loc] = node.style
            end = node.end_mark
            self.smap.ends[loc] = end.line + 1 if end.column else end.line
            return text
        self.smap.coerced[loc] = text
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:bool":
            return _CANONICAL_BOOL.get(text.lower(), text.lower() in ("yes", "on", "y"))
        try:
            if tag == "tag:yaml.org,2002:int":
                return _yaml_int(text)
            return float(text.replace("_", "")) if "." in text or "e" in text.lower() else float(text)
        except ValueError:
            return text  # .inf/.nan spellings and oddities: leave as text, the model decides


def _yaml_int(text: str) -> int:
    s = text.replace("_", "")
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    if ":" in s:  # YAML 1.1 sexagesimal: 1:30 == 90
        value = 0
        for part in s.split(":"):
            value = value * 60 + int(part)
        return sign * value
    if s.startswith("0b"):
        return sign * int(s[2:], 2)
    if s.startswith("0x"):
        return sign * int(s[2:], 16)
    if s.startswith("0o"):
        return sign * int(s[2:], 8)
    if len(s) > 1 and s.startswith("0"):
        return sign * int(s, 8)
    return sign * int(s)



def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def parse_yaml(text: str, path: str) -> tuple[Any, SourceMap, list[Diagnostic]]:
    """Compose and build a YAML document.

    Raises PlaybookInvalid for problems that stop reading (syntax, tags, bombs);
    returns the others (duplicate keys, non-text keys) beside the data.
    """
    smap = SourceMap(path=path, lines=text.splitlines())
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise PlaybookInvalid([Diagnostic(path, 0, 0, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        _check_depth(text, smap)
        node = yaml.compose(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as e:
        raise PlaybookInvalid([_yaml_diagnostic(e, smap)]) from None
    except yaml.reader.ReaderError as e:
        raise PlaybookInvalid([_reader_diagnostic(e, text, smap)]) from None
    except yaml.YAMLError as e:
        raise PlaybookInvalid([Diagnostic(path, 0, 0, "", f"not valid YAML: {e}")]) from None
    except RecursionError:
        raise PlaybookInvalid(
            [Diagnostic(path, 0, 0, "", f"nested more than {MAX_DEPTH} levels deep")]
        ) from None
    if node is None:
        raise PlaybookInvalid([Diagnostic(path, 1, 1, "", "the file is empty")])
    _check_expansion(node, smap)
    builder = _Builder(smap)
    try:
        data = builder.build(node)
    except _Invalid as e:
        raise PlaybookInvalid([e.diagnostic]) from None
    return data, smap, builder.problems


def _check_depth(text: str, smap: SourceMap) -> None:
    """Refuse deep nesting from the event stream, before composing.

    libyaml's composer recurses in C: a few tens of thousands of nested brackets
    overflow the C stack and kill the process, so the depth is bounded here first.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line, col = event.start_mark.line + 1, event.start_mark.column + 1
                raise PlaybookInvalid([Diagnostic(
                    smap.path, line, col, "", f"nested more than {MAX_DEPTH} levels deep",
                    smap.line_text(line))])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, smap: SourceMap) -> None:
    """Refuse an alias bomb before building anything, by counting (once per node) the
    values the document would expand to."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            return 1  # the builder reports the nesting
        sizes[id(node)] = 0  # while counting it: a recursive alias, which the builder reports
        if isinstance(node, yaml.ScalarNode):
            total = 1
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item, depth + 1) for item in node.value)
        else:
            total = 1 + sum(size(value, depth + 1) for _, value in node.value)
        sizes[id(node)] = min(total, MAX_NODES + 1)
        return sizes[id(node)]

    if size(root, 0) <= MAX_NODES:
        return
    at, field = root, ""
    if isinstance(root, yaml.MappingNode):
        total = 1
        for key, value in root.value:
            total += sizes.get(id(value), 1)
            if total > MAX_NODES:
                at, field = key, str(key.value)
                break
    line, col = _pos(at)
    raise PlaybookInvalid([Diagnostic(
        smap.path, line, col, field, f"document expands to more than {MAX_NODES} values "
        "(anchors and aliases used as a bomb?)", smap.line_text(line))])


def _reader_diagnostic(e: yaml.reader.ReaderError, text: str, smap: SourceMap) -> Diagnostic:
    """A character YAML refuses (NUL, other control characters), at its line and column."""
    index = text.find(chr(e.character)) if isinstance(e.character, int) else -1
    if index < 0:
        return Diagnostic(smap.path, 0, 0, "", f"not valid YAML: {e.reason}")
    head = (text[:index] + "x").splitlines()  # the same line breaks as SourceMap.lines
    line, col = len(head), len(head[-1])
    return Diagnostic(smap.path, line, col, "", f"YAML syntax: character U+{e.character:04X} "
                      f"is not allowed in YAML ({e.reason})", smap.line_text(line))


def _yaml_diagnostic(e: yaml.MarkedYAMLError, smap: SourceMap) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    problem = e.problem or e.context or "invalid YAML"
    source = smap.line_text(line)
    if "\t" in problem or (source and col <= len(source) and source[col - 1 : col] == "\t"):
        problem = "tab character: YAML indentation must use spaces"
    elif "expected a single document" in str(e):
        problem = "more than one YAML document (---) in one playbook file"
    elif e.context and e.context_mark and mark and e.context_mark.line != mark.line:
        problem += f" ({e.context}, which starts on line {e.context_mark.line + 1})"
    return Diagnostic(smap.path, line, col, "", f"YAML syntax: {problem}", source)


def yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
