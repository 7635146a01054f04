"""YAML -> Playbook, with file:line:col on every error.

The text is read into plain values with their positions by :mod:`engine.format.yamlsource`;
then the pydantic models check the shape and :mod:`engine.format.checks` the meaning; every
problem found by either is reported in one :class:`~engine.errors.PlaybookInvalid`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import Diagnostic, PlaybookInvalid
from .yamlsource import MAX_BYTES, MAX_DEPTH, MAX_NODES, Loc, SourceMap, format_loc, parse_yaml, yaml_kind

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "LoadedPlaybook", "Loc", "SourceMap", "ValidationResult",
           "find_playbooks", "format_loc", "load_playbook", "load_playbook_text", "parse_yaml", "validate_files"]


@dataclass(frozen=True)
class LoadedPlaybook:
    """A validated playbook with the exact text it came from."""

    playbook: Any  # engine.format.playbook.Playbook (imported lazily)
    text: str
    path: str
    sourcemap: SourceMap

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()



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
        from ..errors import NotFound

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
        return f"expected a mapping (key: value lines), got {yaml_kind(value)}", False
    if kind == "list_type":
        return f"expected a list, got {yaml_kind(value)}", False
    if kind == "string_type":
        return f"expected text, got {yaml_kind(value)}", False
    if kind == "int_type":
        return f"expected a whole number, got {yaml_kind(value)}", False
    if kind == "bool_type":
        return f"expected true or false, got {yaml_kind(value)}", False
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

    from ..errors import NotFound

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
