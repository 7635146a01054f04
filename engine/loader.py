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
                          f"{_kind(key)} {key!r}, not text; put it in quotes")
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
        if tag not in _SCALAR_TAGS:
            self.fail(loc, node, f"YAML tag {tag!r} is not allowed in a playbook")
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            self.smap.styles[loc] = node.style
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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean"
    if isinstance(value, int):
        return "the number"
    if isinstance(value, float):
        return "the number"
    return type(value).__name__


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
        node = yaml.compose(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as e:
        raise PlaybookInvalid([_yaml_diagnostic(e, smap)]) from None
    except yaml.YAMLError as e:
        raise PlaybookInvalid([Diagnostic(path, 0, 0, "", f"not valid YAML: {e}")]) from None
    except RecursionError:
        raise PlaybookInvalid(
            [Diagnostic(path, 0, 0, "", f"nested more than {MAX_DEPTH} levels deep")]
        ) from None
    if node is None:
        raise PlaybookInvalid([Diagnostic(path, 1, 1, "", "the file is empty")])
    builder = _Builder(smap)
    try:
        data = builder.build(node)
    except _Invalid as e:
        raise PlaybookInvalid([e.diagnostic]) from None
    return data, smap, builder.problems


def _yaml_diagnostic(e: yaml.MarkedYAMLError, smap: SourceMap) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    problem = e.problem or e.context or "invalid YAML"
    source = smap.line_text(line)
    if "\t" in problem or (source and col <= len(source) and source[col - 1 : col] == "\t"):
        problem = "tab character: YAML indentation must use spaces"
    elif "expected a single document" in str(e):
        problem = "more than one YAML document (---) in one playbook file"
    return Diagnostic(smap.path, line, col, "", f"YAML syntax: {problem}", source)


def load_playbook_text(text: str, path: str = "<playbook>") -> LoadedPlaybook:
    """Load and check a playbook from its text; raise PlaybookInvalid with every problem."""
    from pydantic import ValidationError

    from .checks import check_playbook
    from .playbook import Playbook

    data, smap, problems = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise PlaybookInvalid([smap.diagnostic((), "a playbook is a mapping of keys, such as id:, name:, stages:")])
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as e:
        raise PlaybookInvalid(_sorted(problems + _pydantic_diagnostics(e, data, smap))) from None
    problems += check_playbook(playbook, smap)
    if problems:
        raise PlaybookInvalid(_sorted(problems))
    return LoadedPlaybook(playbook=playbook, text=text, path=path, sourcemap=smap)


def _sorted(problems: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(problems, key=lambda d: (d.line, d.col))


def load_playbook(path: str | Path) -> LoadedPlaybook:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", f"file is larger than {MAX_BYTES} bytes")])
        raw = p.read_bytes()
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
    grouped: dict[tuple[Loc, bool], list[str]] = {}
    for err in error.errors(include_url=False):
        loc, is_key = _data_loc(err["loc"], data)
        if err["type"] == "extra_forbidden":
            is_key = True
        entry = (err["type"], _message(err, loc, smap))
        bucket = grouped.setdefault((loc, is_key), [])
        if entry not in bucket:
            bucket.append(entry)
    out = []
    for (loc, is_key), entries in grouped.items():
        # a union reports one error per branch: keep the ones about the value itself
        specific = [m for kind, m in entries if not _is_type_error(kind)]
        messages = specific or [m for _, m in entries]
        out.append(smap.diagnostic(loc, " or ".join(messages), key=is_key))
    return _sorted(out)


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


def _message(err: dict, loc: Loc, smap: SourceMap) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}" if loc else "unknown key"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    raw = smap.coerced.get(loc)
    if raw is not None and kind in ("string_type", "bool_type", "int_type", "dict_type", "model_type"):
        value = err.get("input")
        if isinstance(value, bool) and raw.lower() not in ("true", "false"):
            return (f"YAML 1.1 reads {raw} as the boolean {str(value).lower()}, "
                    f"not text; put it in quotes if you mean the text {raw!r}")
        if isinstance(value, int) and ":" in raw:
            return f"YAML 1.1 reads {raw} as the number {value}; put it in quotes"
        if value is None:
            return "value is empty (null); write a value or remove the key"
        if kind == "string_type":
            return f"expected text, got {raw}; put it in quotes if you mean the text"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if "a-z][a-z0-9_]" in pattern:
            return f"{err.get('input')!r} is not an identifier: use lower_snake_case (a-z, 0-9, _)"
    return msg[:1].lower() + msg[1:] if msg else kind


@dataclass(frozen=True)
class ValidationResult:
    path: str
    loaded: LoadedPlaybook | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return self.loaded is not None

    @property
    def playbook(self) -> Any:
        return self.loaded.playbook if self.loaded else None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "valid": self.ok,
            "id": self.playbook.id if self.ok else None,
            "version": self.playbook.version if self.ok else None,
            "errors": [d.to_json() for d in self.diagnostics],
        }


def validate_files(paths: Iterable[str | Path]) -> list[ValidationResult]:
    """Load every playbook under paths; never raises for a bad playbook."""
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
                results.append(ValidationResult(str(path), load_playbook(path), []))
            except PlaybookInvalid as e:
                results.append(ValidationResult(str(path), None, e.diagnostics))
            except NotFound as e:
                results.append(ValidationResult(str(path), None, [Diagnostic(str(path), 0, 0, "", str(e))]))
    return results
