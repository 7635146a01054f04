"""YAML -> Playbook, with file:line:col on every error.

The YAML is composed into nodes (safe loader, no tags beyond the core schema) and
turned into plain Python values here, not by PyYAML's constructors, so that we
keep the position of every key and value, refuse duplicate keys, bound alias
expansion, and notice YAML 1.1 coercions. Then the pydantic models check the
shape and :mod:`engine.checks` the meaning; every problem found by either is
reported in one :class:`~engine.errors.PlaybookInvalid`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import Diagnostic, PlaybookInvalid

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


@dataclass(frozen=True)
class LoadedPlaybook:
    """A validated playbook with the exact text it came from."""

    playbook: Any  # engine.playbook.Playbook (imported lazily)
    text: str
    path: str
    sourcemap: SourceMap

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


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
                          f"{_yaml_kind(key)}, not text; put it in quotes")
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


def load_playbook_text(text: str, path: str = "<playbook>") -> LoadedPlaybook:
    """Load and check a playbook from its text; raise PlaybookInvalid with every problem."""
    from pydantic import ValidationError

    from .checks import check_playbook
    from .playbook import Playbook

    data, smap, problems = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise PlaybookInvalid([smap.diagnostic((), "a playbook is a mapping of keys, such as id:, name:, stages:")])
    raw_version = smap.coerced.get(("version",))
    if isinstance(data.get("version"), int) and raw_version and not raw_version.isdigit():
        problems.append(smap.diagnostic(("version",), f"YAML 1.1 reads {raw_version} as the number "
                                        f"{data['version']}; put the version in quotes"))
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as e:
        shape = _pydantic_diagnostics(e, data, smap)
        raise PlaybookInvalid(_sorted(problems + shape + _salvaged_checks(e, data, smap, shape))) from None
    problems += check_playbook(playbook, smap)
    if problems:
        raise PlaybookInvalid(_sorted(problems))
    return LoadedPlaybook(playbook=playbook, text=text, path=path, sourcemap=smap)


#: Mappings whose keys are names that other parts of a playbook refer to.
_NAMED = {"roles", "inputs", "stages", "transitions", "templates", "tasks"}


def _salvaged_checks(error: Any, data: dict, smap: SourceMap, shape: list[Diagnostic]) -> list[Diagnostic]:
    """The meaning problems of the well-formed rest, so one run reports both kinds.

    Every value the models refused is cut out; if what remains validates (nothing
    required was cut), the semantic checks run on it. Reachability is skipped (a
    cut could distort it), and so is anything inside a cut. When a required value
    was refused, nothing is salvaged: the shape errors come first.
    """
    import copy

    from pydantic import ValidationError

    from .checks import check_playbook
    from .playbook import Playbook

    trimmed, cuts = copy.deepcopy(data), []
    for err in error.errors(include_url=False):
        loc, _ = _data_loc(err["loc"], data)
        if err["type"] == "missing" or not loc:
            return []
        if isinstance(loc[-1], int):  # cutting one list item would shift its neighbours
            loc = loc[:-1]
        if len(loc) >= 2 and loc[-2] in _NAMED:
            return []  # cutting a whole role, stage, task ... would make its references dangle
        cuts.append(loc)
    for loc in sorted(set(cuts), key=len, reverse=True):
        parent = _value_at(trimmed, loc[:-1])
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    try:
        salvaged = Playbook.model_validate(trimmed)
    except ValidationError:
        return []
    cut_fields = [format_loc(c) for c in cuts]
    seen = {(d.line, d.col) for d in shape}
    return [d for d in check_playbook(salvaged, smap, graph=False)
            if (d.line, d.col) not in seen
            and not any(d.field == f or d.field.startswith((f + ".", f + "[")) for f in cut_fields)]


def _sorted(problems: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(problems, key=lambda d: (d.line, d.col))


def load_playbook(path: str | Path) -> LoadedPlaybook:
    p = Path(path)
    try:
        if p.exists() and not p.is_dir() and not p.is_file():
            raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", "not a regular file (a device or pipe?)")])
        if p.stat().st_size > MAX_BYTES:
            raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", f"file is larger than {MAX_BYTES} bytes")])
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", f"file is larger than {MAX_BYTES} bytes")])
    except FileNotFoundError:
        from .errors import NotFound

        raise NotFound(f"{p}: no such playbook file") from None
    except IsADirectoryError:
        raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", "is a folder, not a playbook file")]) from None
    except OSError as e:
        raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", f"cannot read: {e.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PlaybookInvalid([Diagnostic(str(p), line, 0, "", "not UTF-8 text")]) from None
    return load_playbook_text(text, str(p))


def find_playbooks(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into the playbook files they hold (*.yaml, *.yml)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()))
        else:
            found.append(p)
    return found


# -- pydantic errors -> diagnostics -------------------------------------------


def _pydantic_diagnostics(error: Any, data: Any, smap: SourceMap) -> list[Diagnostic]:
    """One diagnostic per problem place, with union branch noise removed."""
    grouped: dict[tuple[Loc, bool], list[tuple[str, str, bool]]] = {}
    for err in error.errors(include_url=False):
        loc, is_key = _data_loc(err["loc"], data)
        if err["type"] == "extra_forbidden":
            is_key = True
        elif err["type"] == "value_error" and isinstance(_value_at(data, loc), dict):
            is_key = True  # a check of a whole mapping: point at its key, not its first line
        entry = (err["type"], *_message(err, loc, smap))
        bucket = grouped.setdefault((loc, is_key), [])
        if entry not in bucket:
            bucket.append(entry)
    out = []
    for (loc, is_key), entries in grouped.items():
        if all(_is_type_error(kind) for kind, _, _ in entries) and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other, _ in grouped
        ):
            continue  # a union's "expected text" when its mapping branch found the real problem
        # a union reports one error per branch: keep the ones about the value itself
        preferred = [m for _, m, how_read in entries if how_read]
        specific = [m for kind, m, _ in entries if not _is_type_error(kind)]
        messages = preferred or specific or [m for _, m, _ in entries]
        out.append(smap.diagnostic(loc, _either(messages), key=is_key))
    return _sorted(out)


def _either(messages: list[str]) -> str:
    """Join a union's messages: 'expected text or a mapping, got a list'."""
    messages = list(dict.fromkeys(messages))
    gots = {m.rpartition(", got ")[2] for m in messages}
    if len(messages) > 1 and len(gots) == 1 and all(
        m.startswith("expected ") and ", got " in m for m in messages
    ):
        wanted = [m[len("expected "):].rpartition(", got ")[0] for m in messages]
        return f"expected {' or '.join(wanted)}, got {gots.pop()}"
    return " or ".join(messages)


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _is_type_error(kind: str) -> bool:
    return kind.endswith("_type") or kind in ("model_attributes_type", "none_required")


def _data_loc(raw: tuple, data: Any) -> tuple[Loc, bool]:
    """Drop the parts of a pydantic loc that are not keys of the data (union branches)."""
    loc: list[Any] = []
    node = data
    is_key = False
    for part in raw:
        if part == "[key]":
            is_key = True
            break
        if isinstance(node, dict) and part in node:
            loc.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            loc.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_branch(part):
            loc.append(part)  # a missing field: name it, point at its parent
            node = None
    return tuple(loc), is_key


def _is_branch(part: str) -> bool:
    return (
        part in ("str", "int", "bool", "none", "list[str]", "dict[str,any]")
        or "[" in part
        or part[:1].isupper()
    )


def _message(err: dict, loc: Loc, smap: SourceMap) -> tuple[str, bool]:
    """The message for one pydantic error, and whether it explains how YAML read the
    value (then it is the one worth showing among a union's alternatives)."""
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "required field is missing", False
    if kind == "extra_forbidden":
        return (f"unknown key {loc[-1]!r}" if loc else "unknown key"), False
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    raw = smap.coerced.get(loc)
    if raw is not None and kind in ("string_type", "bool_type", "int_type", "dict_type",
                                    "model_type", "value_error"):
        if isinstance(value, bool) and raw.lower() not in ("true", "false"):
            return (f"YAML 1.1 reads {raw} as the boolean {str(value).lower()}, "
                    f"not text; put it in quotes if you mean the text {raw!r}"), True
        if isinstance(value, int) and ":" in raw:
            return f"YAML 1.1 reads {raw} as the number {value}; put it in quotes", True
        if value is None and kind != "value_error":
            return "value is empty (null); write a value or remove the key", True
        if kind == "string_type":
            return f"expected text, got {raw}; put it in quotes if you mean the text", True
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_yaml_kind(value)}", False
    if kind == "list_type":
        return f"expected a list, got {_yaml_kind(value)}", False
    if kind == "string_type":
        return f"expected text, got {_yaml_kind(value)}", False
    if kind == "int_type":
        return f"expected a whole number, got {_yaml_kind(value)}", False
    if kind == "bool_type":
        return f"expected true or false, got {_yaml_kind(value)}", False
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if "a-z][a-z0-9_]" in pattern:
            return f"{value!r} is not an identifier: use lower_snake_case (a-z, 0-9, _)", False
        if "[a-z]{2,3}" in pattern:
            return f"{value!r} is not a language tag such as en, es or pt-BR", False
        if "a-z0-9][a-z0-9_-]" in pattern:
            return (f"{value!r} is not a playbook id: use lowercase letters, digits, "
                    "- and _"), False
    return (msg[:1].lower() + msg[1:] if msg else kind), False


def _yaml_kind(value: Any) -> str:
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


@dataclass(frozen=True)
class ValidationResult:
    path: str
    loaded: LoadedPlaybook | None
    diagnostics: list[Diagnostic]
    #: findings of the public-text check (a playbook with warnings still loads)
    warnings: list[Diagnostic] = field(default_factory=list)
    #: warnings count as errors
    strict: bool = False

    @property
    def ok(self) -> bool:
        return self.loaded is not None and not (self.strict and self.warnings)

    @property
    def problems(self) -> list[Diagnostic]:
        """What makes the playbook invalid: its errors, and under strict its warnings."""
        if not self.strict:
            return list(self.diagnostics)
        raised = [Diagnostic(w.path, w.line, w.col, w.field, w.message, w.source_line,
                             severity="error", check=w.check) for w in self.warnings]
        return _sorted(list(self.diagnostics) + raised)

    @property
    def playbook(self) -> Any:
        return self.loaded.playbook if self.loaded else None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "valid": self.ok,
            "id": self.playbook.id if self.loaded else None,
            "version": self.playbook.version if self.loaded else None,
            "errors": [d.to_json() for d in self.problems],
            "warnings": [] if self.strict else [d.to_json() for d in self.warnings],
        }


def validate_files(paths: Iterable[str | Path], *, strict: bool = False) -> list[ValidationResult]:
    """Load every playbook under paths and run the public-text check on those that load;
    never raises for a bad playbook. With `strict`, warnings make a playbook invalid."""
    from .publictext import check_public_text

    from .errors import NotFound

    results = []
    for raw in paths:
        if not Path(raw).exists():
            results.append(ValidationResult(str(raw), None, [Diagnostic(str(raw), 0, 0, "", "no such file or folder")]))
            continue
        files = find_playbooks([raw])
        if not files:
            results.append(ValidationResult(str(raw), None, [Diagnostic(str(raw), 0, 0, "", "no *.yaml or *.yml playbooks in this folder")]))
        for path in files:
            try:
                loaded = load_playbook(path)
                warnings = check_public_text(loaded.playbook, loaded.sourcemap)
                results.append(ValidationResult(str(path), loaded, [], warnings, strict))
            except PlaybookInvalid as e:
                results.append(ValidationResult(str(path), None, e.diagnostics))
            except NotFound as e:
                results.append(ValidationResult(str(path), None, [Diagnostic(str(path), 0, 0, "", str(e))]))
    return results
