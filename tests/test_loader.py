"""The playbook loader: every broken playbook is refused with the right file:line:col,
in one pass, and nothing but PlaybookInvalid ever escapes it.

The corpus in ``tests/bad_playbooks/`` holds one file per mistake. Each file starts
with one ``# expect:`` line per diagnostic it must produce::

    # expect: LINE:COL FIELD: MESSAGE-SUBSTRING
    # expect: 8:1 - YAML syntax            (no field: a YAML syntax problem)
    # expect: 14:* - not UTF-8             (column not meaningful)
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.errors import Diagnostic, NotFound, PlaybookInvalid
from engine.format.loader import MAX_BYTES, MAX_DEPTH, load_playbook, load_playbook_text

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_playbooks"
BAD = sorted(CORPUS.glob("*.yaml"))
SHIPPED = sorted((ROOT / "playbooks").glob("*.yaml"))

_EXPECT = re.compile(r"# expect: (\d+):(\d+|\*) (?:-|(\S+):) (.+)")

#: A small valid playbook, for the positive cases below.
VALID = textwrap.dedent("""\
    id: small
    name: Small playbook
    version: "1"
    roles:
      lead:
        title: Incident lead
      spokesperson:
        title: Spokesperson
    inputs:
      hospital:
        type: string
        default: St Mary's
      patient_name:
        type: string
        confidential: true
    stages:
      triage:
        title: Triage
        tasks:
          confirm: Confirm the post is real
        templates: [ack]
      resolved:
        title: Resolved
        terminal: true
    transitions:
      resolve:
        from: triage
        to: resolved
        roles: [lead]
        requires:
          tasks: [confirm]
    templates:
      ack:
        approval:
          all_of: [spokesperson]
        channels:
          x:
            en: We are looking into the concerns raised about {{ hospital }}.
    """)


@dataclass(frozen=True)
class Expected:
    line: int
    col: int | None  # None: any column
    field: str
    text: str

    def matches(self, d: Diagnostic) -> bool:
        return (
            d.line == self.line
            and (self.col is None or d.col == self.col)
            and d.field == self.field
            and self.text in d.message
        )

    def __str__(self) -> str:
        return f"{self.line}:{self.col or '*'} {self.field or '-'}: {self.text}"


def expectations(path: Path) -> list[Expected]:
    """The ``# expect:`` lines at the top of a corpus file."""
    found = []
    for raw in path.read_bytes().splitlines():
        line = raw.decode("ascii", "replace")
        if not line.startswith("# expect:"):
            break
        m = _EXPECT.fullmatch(line.rstrip())
        assert m, f"{path.name}: malformed expect line {line!r}"
        found.append(Expected(int(m[1]), None if m[2] == "*" else int(m[2]), m[3] or "", m[4]))
    return found


def load_invalid(path: Path) -> PlaybookInvalid:
    """Load path and return the PlaybookInvalid it raises (any other outcome fails)."""
    try:
        load_playbook(path)
    except PlaybookInvalid as e:
        return e
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{path.name}: {type(e).__name__} escaped the loader: {e}")
    pytest.fail(f"{path.name}: loaded without an error")


def test_corpus_is_large_enough():
    assert len(BAD) >= 35
    assert all(expectations(p) for p in BAD), "every corpus file states what it expects"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_playbook_is_reported_where_the_mistake_is(path: Path):
    """Each expected diagnostic is reported, and nothing else: the file has exactly those mistakes."""
    expected = expectations(path)
    error = load_invalid(path)
    shown = "\n".join(f"  {d.line}:{d.col} {d.field or '-'}: {d.message}" for d in error.diagnostics)
    for want in expected:
        assert any(want.matches(d) for d in error.diagnostics), f"missing {want}; got:\n{shown}"
    assert len(error.diagnostics) == len(expected), f"unexpected extra diagnostics:\n{shown}"
    for d in error.diagnostics:
        assert d.path == str(path)
        assert d.message


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_playbook_diagnostics_quote_their_own_line(path: Path):
    """The source line printed under a diagnostic is the file's line at that number."""
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    for d in load_invalid(path).diagnostics:
        if d.line and d.source_line:
            assert d.source_line == lines[d.line - 1]
            assert 1 <= d.col <= len(d.source_line) + 1


def test_validate_reports_every_corpus_file_in_one_run(monkeypatch):
    from cli import main

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["validate", "tests/bad_playbooks"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    for path in BAD:
        rel = path.relative_to(ROOT).as_posix()
        for want in expectations(path):
            where = f"{rel}:{want.line}:" + (f"{want.col}: " if want.col is not None else "")
            assert where in result.output, f"{rel}: {want} not reported"
    assert f"{len(BAD)} playbook(s) checked: 0 valid, {len(BAD)} invalid" in result.output


# -- hostile YAML ----------------------------------------------------------------


def test_alias_bomb_fails_fast_and_small():
    """A ~400-byte billion-laughs document is refused in well under a second, in bounded memory."""
    path = CORPUS / "alias-bomb.yaml"
    load_playbook_text(VALID, "warm-up.yaml")  # measure the refusal, not the first imports
    tracemalloc.start()
    try:
        started = time.perf_counter()
        error = load_invalid(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 100 * 2**20
    assert "aliases used as a bomb" in error.diagnostics[0].message


def test_alias_bomb_of_mappings_fails_fast():
    bomb = "a: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9}\n"
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb += f"{name}: &{name} {{" + ", ".join(f"k{j}: *{prev}" for j in range(9)) + "}\n"
    load_playbook_text(VALID, "warm-up.yaml")
    started = time.perf_counter()
    with pytest.raises(PlaybookInvalid, match="more than 100000 values") as info:
        load_playbook_text(bomb, "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    (d,) = info.value.diagnostics
    assert (d.line, d.col, d.field) == (6, 1, "f")  # f alone expands to 597 871 values


def test_alias_bomb_inside_a_list_is_refused_at_the_document():
    bomb = "- &a [x, x, x, x, x, x, x, x, x, x]\n"
    for name in "bcdefgh":
        bomb += f"- &{name} [" + ", ".join(f"*{chr(ord(name) - 1)}" for _ in range(10)) + "]\n"
    with pytest.raises(PlaybookInvalid, match="more than 100000 values") as info:
        load_playbook_text(bomb, "bomb.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.col, d.field) == (1, 1, "")


def test_deep_nesting_is_refused_without_crashing_the_process():
    """libyaml's composer recurses in C; 100 000 nested brackets must not kill the process.

    Whichever layer stops the input first (PyYAML's own depth limit or ours), the user
    gets exit 3, a location on line 1, no traceback, in bounded time and memory.
    """
    code = textwrap.dedent("""\
        import resource, time
        from engine.errors import PlaybookInvalid
        from engine.format.loader import load_playbook_text
        for text in ("x: " + "[" * 100_000 + "]" * 100_000, "x: " + "{a: " * 20_000 + "1" + "}" * 20_000):
            started = time.perf_counter()
            try:
                load_playbook_text(text, "deep.yaml")
            except PlaybookInvalid as e:
                d = e.diagnostics[0]
                print(e.exit_code, d.path, d.line, d.col > 0, round(time.perf_counter() - started, 3))
        print("peak-kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    *refusals, peak = result.stdout.splitlines()
    assert len(refusals) == 2, result.stdout
    for line in refusals:
        code_, path, line_no, has_col, seconds = line.split()
        assert (code_, path, line_no, has_col) == ("3", "deep.yaml", "1", "True")
        assert float(seconds) < 5
    assert int(peak.split()[1]) < 512 * 1024  # KiB


def test_deep_nesting_through_the_cli_is_located_and_changes_nothing(tmp_path, cli):
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * 100_000 + "]" * 100_000)
    result = cli("validate", str(deep))
    assert result.exit_code == 3
    assert f"{deep}:1:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_character_is_located(char: str):
    text = VALID.replace("name: Small playbook", f"name: Small{char}playbook")
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "ctrl.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.col) == (2, 12)
    assert f"U+{ord(char):04X}" in d.message


def test_file_over_the_size_cap_is_refused_before_parsing(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    path.write_text(VALID + "# " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    error = load_invalid(path)
    (d,) = error.diagnostics
    assert d.line == 0 and "larger than" in d.message
    with pytest.raises(PlaybookInvalid, match="larger than"):
        load_playbook_text(path.read_text(encoding="utf-8"), "huge.yaml")


def test_missing_file_is_not_found(tmp_path: Path):
    with pytest.raises(NotFound, match="no such playbook file"):
        load_playbook(tmp_path / "nope.yaml")


def test_folder_is_not_a_playbook(tmp_path: Path):
    with pytest.raises(PlaybookInvalid, match="is a folder"):
        load_playbook(tmp_path)


def test_errors_of_every_kind_stop_nothing_else():
    """A duplicate key (found while reading) and shape errors come out together, sorted by line."""
    text = VALID.replace("    title: Spokesperson\n", "    title: Spokesperson\n    title: Press\n")
    text = text.replace("terminal: true", "terminal: maybe")
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "two.yaml")
    found = [(d.line, d.field) for d in info.value.diagnostics]
    assert found == [(9, "roles.spokesperson.title"), (25, "stages.resolved.terminal")]


# -- what is accepted --------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_playbook_loads(path: Path):
    loaded = load_playbook(path)
    assert loaded.playbook.stages
    assert loaded.text == path.read_text(encoding="utf-8")


def test_small_valid_playbook_loads():
    pb = load_playbook_text(VALID, "small.yaml").playbook
    assert pb.initial_stage == "triage"
    assert pb.terminal_stages() == ["resolved"]


def test_confidential_input_in_an_email_is_fine():
    """Email is private: a confidential input may be used there (never on x: see the corpus)."""
    text = VALID + (
        "      email:\n"
        "        en:\n"
        "          subject: Your experience at {{ hospital }}\n"
        "          body: |\n"
        "            Dear {{ patient_name }},\n"
        "            we are sorry about your experience.\n"
    )
    pb = load_playbook_text(text, "email.yaml").playbook
    assert "email" in pb.templates["ack"].channels


def test_confidential_input_in_a_direct_sms_and_in_chat_is_fine():
    text = VALID + (
        "  callback:\n    audience: direct\n    approval:\n      all_of: [spokesperson]\n"
        "    channels:\n      sms:\n        en: \"{{ patient_name }}, we will call you today.\"\n"
        "  team:\n    approval:\n      all_of: [spokesperson]\n"
        "    channels:\n      chat:\n        en: \"Patient: {{ patient_name }}\"\n"
    )
    pb = load_playbook_text(text, "private.yaml").playbook
    assert (pb.audience("callback", "sms"), pb.audience("team", "chat"), pb.audience("ack", "x")) == (
        "direct", "internal", "public")


def test_an_sms_is_a_broadcast_unless_the_template_says_otherwise():
    """A mass text alert is public: a confidential input in it is refused, located."""
    text = VALID + "      sms:\n        en: \"{{ patient_name }}, we will call you today.\"\n"
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "broadcast.yaml")
    (d,) = info.value.diagnostics
    assert (d.line, d.field) == (40, "templates.ack.channels.sms.en")
    assert "confidential input 'patient_name' would be published on the public channel 'sms'" in d.message
    assert "audience: direct" in d.message


@pytest.mark.parametrize("audience, channel", [("direct", "x"), ("internal", "web"), ("public", "chat")])
def test_an_audience_a_channel_cannot_have_is_refused(audience, channel):
    text = VALID.replace("    channels:\n      x:\n", f"    audience: {audience}\n    channels:\n      {channel}:\n")
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "audience.yaml")
    (d,) = info.value.diagnostics
    assert d.field == "templates.ack.audience"
    assert f"a {channel} post cannot have audience {audience!r}" in d.message


def test_anchors_and_aliases_within_the_bound_are_fine():
    text = VALID.replace("      all_of: [spokesperson]\n", "      all_of: &approvers [spokesperson]\n")
    text += (
        "  update:\n"
        "    approval:\n"
        "      all_of: *approvers\n"
        "    channels:\n"
        "      x:\n"
        "        en: An update on the concerns raised about {{ hospital }}.\n"
    )
    pb = load_playbook_text(text, "anchors.yaml").playbook
    assert pb.templates["update"].approval.all_of == ["spokesperson"]


def test_version_may_be_a_whole_number():
    pb = load_playbook_text(VALID.replace('version: "1"', "version: 3"), "v.yaml").playbook
    assert pb.version == "3"


@pytest.mark.parametrize("spelling", ["'NO'", '"yes"', "'on'"])
def test_quoted_yaml11_words_are_text(spelling: str):
    pb = load_playbook_text(VALID.replace("name: Small playbook", f"name: {spelling}"), "q.yaml").playbook
    assert pb.name == spelling.strip("'\"")


def test_quoted_time_default_is_text():
    text = VALID.replace("    default: St Mary's", '    default: "14:30"')
    assert load_playbook_text(text, "t.yaml").playbook.inputs["hospital"].default == "14:30"


def test_typed_defaults_are_accepted():
    text = VALID.replace("  patient_name:\n", (
        "  cases:\n    type: integer\n    default: 3\n"
        "  on_site:\n    type: boolean\n    default: false\n"
        "  channel:\n    type: enum\n    values: [x, facebook]\n    default: x\n"
        "  patient_name:\n"
    ))
    inputs = load_playbook_text(text, "typed.yaml").playbook.inputs
    assert (inputs["cases"].default, inputs["on_site"].default, inputs["channel"].default) == (3, False, "x")


def test_template_line_in_literal_block_maps_to_yaml_line():
    """A mistake on the third line of a | block is reported on that YAML line, at the name."""
    text = VALID.replace(
        "        en: We are looking into the concerns raised about {{ hospital }}.\n",
        "        en: |\n          Line one.\n          Line two.\n          Line {{ three }}.\n",
    )
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "lines.yaml")
    (d,) = info.value.diagnostics
    lines = text.splitlines()
    assert lines[d.line - 1] == "          Line {{ three }}."
    assert d.col == lines[d.line - 1].index("three") + 1


@pytest.mark.parametrize("value", ["=", "<<"])
def test_plain_punctuation_values_are_text(value: str):
    """YAML 1.1 tags a plain '=' or '<<' specially; as a value it is just text."""
    pb = load_playbook_text(VALID.replace("title: Triage", f"title: {value}"), "p.yaml").playbook
    assert pb.stages["triage"].title == value


def test_unclosed_block_in_literal_template_stays_inside_the_block():
    text = VALID.replace(
        "        en: We are looking into the concerns raised about {{ hospital }}.\n",
        "        en: |\n          Line one.\n          {% if hospital %}\n          Line three.\n        es: Hola.\n",
    )
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "unclosed.yaml")
    (d,) = info.value.diagnostics
    assert "template syntax error" in d.message
    assert d.source_line == "          Line three."
