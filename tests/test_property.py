"""Property: whatever is done to a good playbook, the loader either accepts the result
or refuses it with located diagnostics; no other exception ever escapes.

Two kinds of mutants of the shipped playbooks: structural (delete, retype, rename or
insert a value in the YAML data, then dump it back) and textual (insert arbitrary
text or YAML fragments into a line of the raw file).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import PlaybookInvalid
from engine.format.loader import load_playbook_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "playbooks").glob("*.yaml"))

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
long_strings = st.builds(lambda piece, n: piece * n,
                         st.sampled_from(["x", "é", "{{ a }}", "\U0001F468\u200D\U0001F469", " "]),
                         st.integers(100, 25_000))
scalars = st.one_of(st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True),
                    st.text(max_size=30), identifiers, long_strings)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(identifiers, st.text(max_size=10)), inner, max_size=4)),
    max_leaves=8)

#: Fragments that mean something to YAML or to Jinja.
FRAGMENTS = [
    "&a", "*a", "&a [*a]", "<<: *a", "!!python/object/apply:os.system ['ls']", "!include x.yaml",
    "!!binary aGk=", "!!set {a}", "---", "...", "? ", "- ", "-", "{", "}", "[", "]", "|", ">", "|-",
    "\t", ": ", ":", "'", '"', "%YAML 1.1", "%TAG ! tag:x,2024:", "#", "1:30", "NO", "on:", "~",
    "null", "0x1F", "0o17", "1e400", ".inf", "2024-01-01", "{{", "}}", "{%", "%}", "{{ x }}",
    "{% include 'nope' %}", "{{ (((((1))))) }}", "\\", "\u2028", "\x85", "\ufeff", "é",
    "x: &b {y: *b}", "[" * 80, "{a: " * 70, "  ", "    ", "key: value", "terminal: true", "=", "<<",
]
fragments = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40),
                      st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=4).map(" ".join))


@lru_cache(maxsize=None)
def _text(index: int) -> str:
    return SHIPPED[index].read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _data(index: int) -> Any:
    return yaml.safe_load(_text(index))


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    """Every path to a value inside node (not node itself)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append(here + (key,))
        out.extend(_paths(child, here + (key,)))
    return out


def _parent(root: Any, path: tuple) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


def _mutate(data: Any, draw) -> Any:
    paths = _paths(data)
    op = draw(st.sampled_from(["delete", "replace", "rename", "insert", "rename_key"]))
    if op == "delete":
        path = draw(st.sampled_from(paths))
        del _parent(data, path)[path[-1]]
    elif op == "replace":
        path = draw(st.sampled_from(paths))
        _parent(data, path)[path[-1]] = draw(values)
    elif op == "rename":  # a reference such as a transition's `to:`: unknown, or another real id
        strings = [p for p in paths if isinstance(_parent(data, p)[p[-1]], str)]
        names = sorted({p[-1] for p in paths if isinstance(p[-1], str)})
        if strings:
            path = draw(st.sampled_from(strings))
            _parent(data, path)[path[-1]] = draw(st.one_of(identifiers, st.sampled_from(names)))
    elif op == "insert":
        mappings = [()] + [p for p in paths if isinstance(_parent(data, p)[p[-1]], dict)]
        path = draw(st.sampled_from(mappings))
        target = _parent(data, path)[path[-1]] if path else data
        target[draw(st.one_of(identifiers, st.text(max_size=10)))] = draw(values)
    else:  # rename a mapping key: a stage, role, template or input id, or a field name
        keyed = [p for p in paths if isinstance(p[-1], str)]
        if keyed:
            path = draw(st.sampled_from(keyed))
            parent = _parent(data, path)
            new = draw(identifiers)
            renamed = {(new if key == path[-1] else key): value for key, value in parent.items()}
            parent.clear()
            parent.update(renamed)
    return data


def _check(text: str) -> None:
    """The property itself."""
    try:
        load_playbook_text(text, "mutant.yaml")
    except PlaybookInvalid as e:
        assert e.diagnostics, "PlaybookInvalid without diagnostics"
        last = len(text.splitlines()) + 1
        for d in e.diagnostics:
            assert d.message, d
            assert d.path == "mutant.yaml"
            if d.line == 0:
                assert d.col == 0 and d.field == "", f"line 0 is only for whole-file problems: {d}"
            else:
                assert 1 <= d.line <= last, d
                assert d.col >= 1, d
            assert d.format()  # formatting never fails


@PROPERTY
@given(index=st.sampled_from(range(len(SHIPPED))), data=st.data())
def test_structural_mutants_are_accepted_or_refused_with_locations(index: int, data):
    doc = copy.deepcopy(_data(index))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not isinstance(doc, dict) or not _paths(doc):
            break
        doc = _mutate(doc, data.draw)
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=200)
    _check(text)


@settings(PROPERTY, max_examples=300)  # most text mutants stop at the YAML parser: cheap
@given(index=st.sampled_from(range(len(SHIPPED))), data=st.data())
def test_text_mutants_are_accepted_or_refused_with_locations(index: int, data):
    lines = _text(index).splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3), label="insertions")):
        at = data.draw(st.integers(0, len(lines)), label="line")
        fragment = data.draw(fragments, label="fragment")
        mode = data.draw(st.sampled_from(["insert line", "prefix", "suffix", "replace"]), label="mode")
        if mode == "insert line" or at == len(lines):
            lines.insert(at, fragment + "\n")
        elif mode == "prefix":
            lines[at] = fragment + lines[at]
        elif mode == "suffix":
            lines[at] = lines[at].rstrip("\n") + fragment + "\n"
        else:
            lines[at] = fragment + "\n"
    _check("".join(lines))


def test_the_unmutated_playbooks_load():
    """The property's starting points are themselves valid."""
    for index in range(len(SHIPPED)):
        load_playbook_text(_text(index), "mutant.yaml")
        load_playbook_text(yaml.safe_dump(_data(index), allow_unicode=True, sort_keys=False), "dumped.yaml")
