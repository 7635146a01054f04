"""The public-text check of `playbook validate`: texts for public channels that confirm
someone is a patient, admit fault, name a member of the public, or call a shared
macro in the wrong language are reported as warnings at their file:line:col; a
playbook can accept one with a stated reason; --strict makes them errors.

The corpus in ``tests/publictext/cases.yaml`` holds good and bad texts in the shipped
languages, each with the findings it must produce.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from engine.format.loader import load_playbook_text
from engine.format.publictext import check_public_text

HERE = Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "publictext" / "cases.yaml").read_text(encoding="utf-8"))
PLAYBOOKS = HERE.parent / "playbooks"

BASE = textwrap.dedent("""\
    id: public-text
    name: Public text check
    version: "1"
    roles:
      lead: {title: Incident lead, required: true}
      spokesperson: {title: Spokesperson, required: true}
    inputs:
      hospital: {type: string, default: St Mary's}
      contact_url: {type: url, default: "https://example.org/contact"}
      handle: {type: string, identifies_person: true, description: the complainant's handle}
    stages:
      respond: {title: Respond, templates: [reply]}
      closed: {title: Closed, terminal: true}
    transitions:
      close: {from: respond, to: closed, roles: [lead]}
    templates:
      reply:
    """)
INDENT = 10  # columns before a text line inside the block below


def playbook_with(text: str, lang: str, channel: str, extra: str = "") -> tuple[str, int]:
    """The base playbook with `text` as the reply's only text; and the line of its '|'."""
    body = textwrap.indent(text, " " * INDENT)
    if channel == "email":
        head = f"    channels:\n      email:\n        {lang}:\n          subject: A reply\n          body: |\n"
        body = textwrap.indent(text, " " * (INDENT + 2))
    else:
        head = f"    channels:\n      {channel}:\n        {lang}: |\n"
    doc = BASE + "    approval: {all_of: [spokesperson]}\n" + extra + head + body
    return doc, doc[: doc.index(head)].count("\n") + head.count("\n")


def findings(doc: str) -> list:
    loaded = load_playbook_text(doc, "case.yaml")
    return check_public_text(loaded.playbook, loaded.sourcemap)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case_gets_exactly_its_findings_at_their_place(case):
    channel = case.get("channel", "facebook")
    doc, block = playbook_with(case["text"], case["lang"], channel)
    lines = doc.splitlines()
    want = []
    for entry in case["expect"]:
        check, _, where = entry.partition(" ")
        line, col = (int(x) for x in where.split(":"))
        if line == 0:  # the text as a whole: where its value starts
            want.append((check, block, lines[block - 1].index("|") + 1))
        else:
            want.append((check, block + line, INDENT + (2 if channel == "email" else 0) + col))
    got = [(d.check, d.line, d.col) for d in findings(doc)]
    assert sorted(got) == sorted(want), "\n".join(d.format() for d in findings(doc))


def test_the_corpus_covers_every_shipped_language_with_good_and_bad_texts():
    assert len(CASES) >= 30
    for lang in ("en", "es", "tr", "ar", "fr"):
        mine = [c for c in CASES if c["lang"] == lang]
        assert any(c["expect"] for c in mine) and any(not c["expect"] for c in mine), lang
    kinds = {e.split()[0] for c in CASES for e in c["expect"]}
    assert kinds == {"confirms_care", "admission", "names_person", "macro_language", "no_phrase_list"}


def test_warnings_name_the_phrase_and_what_to_do_instead():
    doc, _ = playbook_with("We remain in contact with the patient.\n", "en", "x")
    (d,) = findings(doc)
    assert d.severity == "warning" and d.field == "templates.reply.channels.x.en"
    assert "'the patient' confirms in public that someone is or was a patient" in d.message
    assert d.format().splitlines()[0].endswith(
        "warning [confirms_care]: 'the patient' confirms in public that someone is or was a "
        "patient, or describes their care; speak of their concerns, and take the rest private")


# -- allow, lexicon -----------------------------------------------------------------


def test_an_allowance_with_a_reason_silences_that_check_on_that_template_only():
    allow = ('    allow:\n      - check: confirms_care\n'
             '        reason: addresses everyone who attended, not one person\n')
    doc, _ = playbook_with("If you had your treatment here last week, call us.\n"
                           "We will fix it so it cannot happen again.\n", "en", "facebook", allow)
    assert [d.check for d in findings(doc)] == ["admission"]


def test_an_allowance_that_silences_nothing_is_reported():
    allow = '    allow:\n      - {check: admission, reason: our lawyers cleared this apology}\n'
    doc, _ = playbook_with("We're sorry to hear how you're feeling.\n", "en", "x", allow)
    (d,) = findings(doc)
    assert d.check == "allow" and d.field == "templates.reply.allow[0]"
    assert "allows admission, but the template has no such finding; remove the entry" in d.message


def test_an_allowance_needs_a_stated_reason():
    allow = '    allow:\n      - {check: admission, reason: ok}\n'
    doc, _ = playbook_with("We're sorry.\n", "en", "x", allow)
    with pytest.raises(Exception) as info:
        load_playbook_text(doc, "case.yaml")
    (d,) = info.value.diagnostics
    assert d.field == "templates.reply.allow[0].reason"
    assert "state the reason in a few words" in d.message


def test_a_playbook_adds_its_own_phrases_and_languages():
    doc, block = playbook_with("Wir bedauern Ihren Aufenthalt.\nWe hope your procedure went well.\n",
                               "de", "facebook")
    doc += "lexicon:\n  de:\n    confirms_care: [ihren aufenthalt]\n  en:\n    confirms_care: [your procedure]\n"
    got = [(d.check, d.line, d.col) for d in findings(doc)]
    assert got == [("confirms_care", block + 1, INDENT + 14)]  # en phrases do not apply to a de text


# -- the command --------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    doc, _ = playbook_with(text, "en", "x")
    path = tmp_path / "reply.yaml"
    path.write_text(doc, encoding="utf-8")
    return path


def test_validate_shows_warnings_and_still_exits_0(tmp_path):
    path = _write(tmp_path, "We remain in contact with the patient.\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: ok (public-text v1)" in result.output
    assert f"{path}:22:37: templates.reply.channels.x.en: warning [confirms_care]:" in result.output
    assert "1 playbook(s) checked: 1 valid, 0 invalid (0 problem(s)), 1 warning(s)" in result.output


def test_validate_strict_turns_warnings_into_errors_and_exits_3(tmp_path):
    path = _write(tmp_path, "This was our fault.\n")
    result = CliRunner().invoke(main, ["validate", "--strict", str(path)])
    assert result.exit_code == 3, result.output
    assert f"{path}:22:20: templates.reply.channels.x.en: error [admission]:" in result.output
    assert "1 playbook(s) checked: 0 valid, 1 invalid (1 problem(s))" in result.output


def test_validate_json_gives_each_warning_with_its_severity(tmp_path):
    path = _write(tmp_path, "This was our fault.\n")
    (data,) = json.loads(CliRunner().invoke(main, ["validate", "--json", str(path)]).output)
    assert data["valid"] is True and data["errors"] == []
    (w,) = data["warnings"]
    assert (w["severity"], w["check"], w["line"], w["col"]) == ("warning", "admission", 22, 20)
    result = CliRunner().invoke(main, ["validate", "--json", "--strict", str(path)])
    assert result.exit_code == 3
    (data,) = json.loads(result.output)
    assert data["valid"] is False and data["warnings"] == [] and data["id"] == "public-text"
    assert [(e["severity"], e["check"]) for e in data["errors"]] == [("error", "admission")]


def test_show_lists_each_allowance_with_its_reason(tmp_path):
    allow = ('    allow:\n      - check: confirms_care\n'
             '        reason: addresses everyone who attended, not one person\n')
    doc, _ = playbook_with("If you had your treatment here last week, call us.\n", "en", "facebook", allow)
    path = tmp_path / "allowed.yaml"
    path.write_text(doc, encoding="utf-8")
    result = CliRunner().invoke(main, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "allows confirms_care: addresses everyone who attended, not one person" in result.output


def test_the_shipped_playbooks_pass_the_check_strictly():
    result = CliRunner().invoke(main, ["validate", "--strict", str(PLAYBOOKS)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and "error" not in result.output


def test_the_shared_signature_and_privacy_notice_speak_every_language_the_shipped_playbooks_use():
    from engine.format.loader import load_playbook
    from engine.format.macrolang import falls_back

    langs = {lang for path in PLAYBOOKS.glob("*.yaml")
             for t in load_playbook(path).playbook.templates.values()
             for texts in t.channels.values() for lang in texts}
    assert {"en", "es", "tr", "ar"} <= langs
    for macro in ("signature", "privacy_notice"):
        assert {lang: falls_back("partials/common.j2", macro, lang) for lang in langs} == {
            lang: None for lang in langs}, macro
    assert falls_back("partials/common.j2", "signature", "de") == "en"
