"""Hostile templates: each payload is refused with a clear message, quickly, in bounded
memory, and nothing it produces shows Python internals.

Every payload is rendered directly (``render_text``, plain and HTML mode) and also
through a whole playbook: the validator may refuse it statically (exit 3), otherwise
``playbook render`` refuses it (exit 5) and writes nothing.
"""

from __future__ import annotations

import re
import resource
import time
import tracemalloc

import jinja2
import pytest
import yaml

from engine.errors import PlaybookError, PlaybookInvalid, Refused
from engine.posts.render import render_text

SECONDS = 2.0
BYTES = 256 * 2**20

PAYLOADS = {
    # reaching Python objects
    "str-class-mro": "{{ ''.__class__.__mro__ }}",
    "cycler-globals": "{{ cycler.__init__.__globals__ }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "self-context": "{{ self._TemplateReference__context }}",
    "attr-class": "{{ ''|attr('__class__') }}",
    "format-class": "{{ '{0.__class__}'.format(1) }}",
    "format-map-empty": "{{ '{0}'.format_map({}) }}",
    "format-map-class": "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "format-map-globals": "{{ '{x.__init__.__globals__}'.format_map({'x': namespace}) }}",
    "attr-format-map": "{{ ''|attr('format_map') }}",
    "attr-format": '{{ ""|attr("format") }}',
    "list-append": "{{ [].append(1) }}",
    "dict-subclasses": "{{ dict.__subclasses__() }}",
    "namespace-globals": "{{ namespace.__init__.__globals__ }}",
    "int-base-subclasses": "{{ (1).__class__.__base__.__subclasses__() }}",
    "range-globals": "{{ range.__globals__ }}",
    "append-in-loop": "{% set x = [] %}{% for i in range(100000) %}{% set _ = x.append(i) %}{% endfor %}",
    "config": "{{ config }}",
    "request": "{{ request }}",
    "print-global-function": "{{ range }}",
    "print-class": "{{ dict }}",
    "print-macro": "{% macro m() %}{% endmacro %}{{ m }}",
    "function-as-string": "{{ ''.upper|string }}",
    "function-concat": "{{ range ~ '' }}",
    "function-percent": "{{ '%s' % namespace }}",
    "function-format": "{{ '{}'.format(dict) }}",
    # exhausting memory or time
    "range-list": "{{ range(10**6)|list }}",
    "range-join": "{{ range(10**6)|join }}",
    "repeat-1e9": "{{ 'a'*10**9 }}",
    "repeat-1e6": "{{ 'a'*1000000 }}",
    "power-tower": "{{ 9**9**9 }}",
    "square-in-loop": "{% set ns = namespace(x=10**100) %}{% for i in range(40) %}"
                      "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 0 }}",
    "nested-loops-silent": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested-loops-output": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "recursive-macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "concat-repeat": "{{ ('a'~'b')*10**8 }}",
    "concat-doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "plus-doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                     "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "concat-growth": "{% set ns = namespace(s='') %}{% for i in range(100000) %}"
                     "{% set ns.s = ns.s ~ 'xxxxxxxxxx' %}{% endfor %}{{ ns.s|length }}",
    "center-1e9": "{{ 'a'.center(10**9) }}",
    "center-filter": "{{ 'a'|center(10**9) }}",
    "indent-filter": "{{ 'a\nb'|indent(10**9) }}",
    "percent-width": "{{ '%1000000000d' % 1 }}",
    "format-width": "{{ '{:>1000000000}'.format(1) }}",
    "join-big-separator": "{{ range(100000)|join('x' * 99999) }}",
    "replace-amplifies": "{{ ('a' * 99999)|replace('a', 'b' * 99999) }}",
    "translate-amplifies": "{{ ('a' * 99999).translate({97: 'b' * 99999}) }}",
    "print-big-list": "{{ ['x' * 99999] * 100000 }}",
    "print-list-of-lists": "{{ [range(100000)|list] * 100000 }}",
    "tojson-big-list": "{{ (['x' * 99999] * 100000)|tojson|length }}",
    "deep-parentheses": "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    # reading files
    "include-absolute": "{% include '/etc/passwd' %}",
    "include-parent": "{% include '../../../etc/passwd' %}",
    "extends-escape": "{% extends 'partials/../../cli.py' %}",
    "import-escape": "{% import '../cli.py' as m %}{{ m }}",
}

LEAKS = ("class '", "<function", "<built-in", "__globals__", "subprocess", "object at 0x",
         "Traceback", "/etc/passwd:", "root:")
OS_MODULE = re.compile(r"\bos\b")
CONTEXT = {"hospital_name": "St Mary's Hospital", "incident": {"id": "INC-20260314-001"}}


def _assert_nothing_leaks(text: str, payload: str = "") -> None:
    """No sign of Python internals, except what the payload itself spelled out (an error
    may name the attribute it refused, e.g. '__globals__')."""
    for leak in LEAKS:
        assert leak not in text or leak in payload, (leak, text)
    assert not OS_MODULE.search(text), text


@pytest.fixture(autouse=True, scope="module")
def _warm():
    """Build the environment first, so that its one-off cost is not measured."""
    assert render_text("{{ hospital_name }}", CONTEXT, html=False, where="t") == "St Mary's Hospital"
    assert render_text("{{ hospital_name }}", CONTEXT, html=True, where="t") == "St Mary&#39;s Hospital"


def test_jinja2_is_recent_enough_to_have_the_known_sandbox_escapes_fixed():
    """3.1.6 fixed the |attr and str.format sandbox escapes (CVE-2025-27516, CVE-2024-56326)."""
    version = tuple(int(part) for part in re.findall(r"\d+", jinja2.__version__)[:3])
    assert version >= (3, 1, 6), jinja2.__version__


@pytest.mark.parametrize("html", [False, True], ids=["text", "html"])
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_render_text_refuses_the_payload_quickly_and_in_bounded_memory(payload, html):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(PlaybookError) as info:
            out = render_text(payload, CONTEXT, html=html, where="t")
            _assert_nothing_leaks(out, payload)  # only reached if the payload was not refused
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024  # KiB on Linux
    assert isinstance(info.value, (Refused, PlaybookInvalid))
    assert elapsed < SECONDS, f"took {elapsed:.2f} s"
    assert peak < BYTES, f"allocated {peak >> 20} MB"
    assert grown < BYTES, f"resident set grew by {grown >> 20} MB"
    message = str(info.value)
    assert message.startswith("t: ") and message.endswith("nothing was recorded"), message
    assert "\n" not in message and len(message) < 400, message
    _assert_nothing_leaks(message, payload)


# -- through a playbook and the CLI --------------------------------------------------------


def _playbook(path, payload: str):
    doc = {
        "id": "hostile", "name": "Hostile template", "version": "1",
        "roles": {"lead": {"title": "Lead", "required": True},
                  "spokesperson": {"title": "Spokesperson", "required": True}},
        "inputs": {"hospital_name": {"type": "string", "default": "St Mary's Hospital"}},
        "stages": {"respond": {"title": "Respond", "templates": ["statement"]},
                   "closed": {"title": "Closed", "terminal": True}},
        "transitions": {"close": {"from": "respond", "to": "closed", "roles": ["lead"]}},
        "templates": {"statement": {"approval": {"all_of": ["spokesperson"]},
                                    "channels": {"x": {"en": payload}}}},
    }
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _event_count(db, incident: str) -> int:
    from engine.store import open_store

    s = open_store(db)
    try:
        return sum(1 for _ in s.events(incident))
    finally:
        s.close()


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_the_playbook_is_refused_at_validation_or_at_render_and_nothing_is_written(cli, tmp_path, db, payload):
    path = _playbook(tmp_path / "hostile.yaml", payload)
    started = cli("start", str(path), "--title", "Hostile", "--assign", "lead=alice",
                  "--assign", "spokesperson=bob", "--as", "alice")
    _assert_nothing_leaks(started.output, payload)
    if started.exit_code == 3:  # the validator refused it statically: a safe failure
        assert "hostile.yaml:" in started.output and "templates.statement.channels.x.en" in started.output
        assert not db.exists() or _event_count(db, "INC-20260314-001") == 0
        return
    assert started.exit_code == 0, started.output
    before = _event_count(db, "INC-20260314-001")
    t0 = time.monotonic()
    result = cli("render", "INC-20260314-001", "statement", "--as", "alice")
    assert time.monotonic() - t0 < SECONDS
    assert result.exit_code == 5, result.output
    assert "error: statement/x/en: " in result.output and "nothing was recorded" in result.output
    _assert_nothing_leaks(result.output, payload)
    assert _event_count(db, "INC-20260314-001") == before


# -- compile time: constant folding must not run a filter outside the render limits ---------

#: Filters with constant arguments that Jinja would fold while compiling (inside parse,
#: compile and meta.find_undeclared_variables), allocating gigabytes before any limit.
COMPILE_TIME_PAYLOADS = {
    "center": "{{ 'a'|center(600000000) }}",
    "format-width": "{{ '%600000000s'|format(1) }}",
    "join-huge-separator": "{{ 'a'|center(100000)|join('x'|center(10000)) }}",
    "in-a-condition": "{% if 'a'|center(600000000) %}x{% endif %}",
    "in-a-test": "{% if 'a'|center(600000000) is string %}x{% endif %}",
    "in-autoescape": "{% autoescape 'a'|center(600000000) %}x{% endautoescape %}",
}


@pytest.mark.parametrize("payload", list(COMPILE_TIME_PAYLOADS.values()), ids=list(COMPILE_TIME_PAYLOADS))
def test_compile_time_payloads_stay_within_2_s_and_256_mb_through_validate_start_render_edit(tmp_path, payload):
    """validate, start, render and edit all compile the playbook's templates; each step
    finishes within 2 s, the whole process stays under 256 MB, and render refuses."""
    import subprocess
    import sys
    import textwrap

    from conftest import ROOT

    path = tmp_path / "hostile.yaml"
    doc = {
        "id": "hostile", "name": "Hostile template", "version": "1",
        "roles": {"lead": {"title": "Lead", "required": True},
                  "spokesperson": {"title": "Spokesperson", "required": True}},
        "stages": {"respond": {"title": "Respond", "templates": ["plain", "statement"]},
                   "closed": {"title": "Closed", "terminal": True}},
        "transitions": {"close": {"from": "respond", "to": "closed", "roles": ["lead"]}},
        "templates": {"plain": {"approval": {"all_of": ["spokesperson"]},
                                "channels": {"x": {"en": "We are looking into it."}}},
                      "statement": {"approval": {"all_of": ["spokesperson"]},
                                    "channels": {"x": {"en": payload}}}},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    code = textwrap.dedent(f"""\
        import resource, time
        from click.testing import CliRunner
        from cli import main
        env = {{"PLAYBOOK_DB": {str(tmp_path / "i.db")!r}, "PLAYBOOK_ACTOR": "alice"}}
        steps = [["validate", {str(path)!r}],
                 ["start", {str(path)!r}, "--title", "T", "--assign", "lead=alice", "--assign", "spokesperson=bob"],
                 ["render", "INC-{{day}}-001", "plain"],
                 ["render", "INC-{{day}}-001", "statement"],
                 ["edit", "INC-{{day}}-001", "plain/x/en", "--text", "We are still looking into it."]]
        day = time.strftime("%Y%m%d", time.gmtime())
        for args in steps:
            args = [a.replace("{{day}}", day) for a in args]
            started = time.monotonic()
            result = CliRunner().invoke(main, args, env=env)
            print(args[0], result.exit_code, round(time.monotonic() - started, 3),
                  "Traceback" in result.output, repr(result.output[-300:]))
        # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still counts the parent (pytest)
        print("peak-kb", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
        """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    *steps, peak = result.stdout.splitlines()
    codes = {}
    for line in steps:
        name, exit_code, seconds, traceback, output = line.split(" ", 4)
        assert float(seconds) < SECONDS, line
        assert traceback == "False", line
        codes.setdefault(name, []).append((int(exit_code), output))
    assert [c for c, _ in codes["validate"]] == [0] and [c for c, _ in codes["start"]] == [0]
    (plain, hostile) = codes["render"]
    assert plain[0] == 0 and hostile[0] == 5, hostile
    assert "statement/x/en: " in hostile[1] and "nothing was recorded" in hostile[1]
    assert codes["edit"][0][0] == 0
    assert int(peak.split()[1]) < BYTES // 1024, peak  # KiB
