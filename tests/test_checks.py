"""Semantic checks beyond the corpus: what is accepted, and hostile values that must
come back as diagnostics rather than exceptions."""

from __future__ import annotations

import pytest

from engine.errors import PlaybookInvalid
from engine.format.loader import load_playbook_text

from test_loader import VALID


def _problems(text: str) -> list:
    with pytest.raises(PlaybookInvalid) as info:
        load_playbook_text(text, "check.yaml")
    return info.value.diagnostics


def _line(text: str, start: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith(start))


def test_identifier_regex_nested_thousands_deep_is_a_diagnostic():
    text = VALID + 'identifiers:\n  deep: "' + "(" * 5000 + ")" * 5000 + '"\n'
    (d,) = _problems(text)
    assert d.field == "identifiers.deep"
    assert "not a usable regular expression" in d.message


def test_identifier_regex_that_compiles_is_fine():
    load_playbook_text(VALID + 'identifiers:\n  mrn: "MRN-?[0-9]{7}"\n', "ok.yaml")


def test_each_language_variant_is_checked_at_its_own_line():
    text = VALID + '        es: "Estamos revisando {{ hospitl }}."\n        fr: "{{ hospital }"\n'
    found = {d.field: d for d in _problems(text)}
    assert found["templates.ack.channels.x.es"].line == _line(text, "es: ")
    assert "undeclared variable 'hospitl'" in found["templates.ack.channels.x.es"].message
    assert found["templates.ack.channels.x.fr"].line == _line(text, "fr: ")
    assert "template syntax error" in found["templates.ack.channels.x.fr"].message


def test_email_subject_over_its_limit():
    text = VALID + (
        "      email:\n        en:\n"
        f"          subject: \"{'Update ' * 30}\"\n"
        "          body: We are looking into this.\n"
    )
    (d,) = _problems(text)
    assert d.field == "templates.ack.channels.email.en.subject"
    assert "over the email subject limit" in d.message


def test_channel_limit_setting_tightens_the_check():
    text = VALID.replace(
        "en: We are looking into the concerns raised about {{ hospital }}.",
        "en: We are looking into the concerns raised today and will say more as soon as we can.",
    ) + "channels:\n  x:\n    limit: 50\n"
    (d,) = _problems(text)
    assert "/50" in d.message and "over the x limit" in d.message


def test_existing_partial_may_be_imported():
    text = VALID.replace(
        "        en: We are looking into the concerns raised about {{ hospital }}.\n",
        '        en: |\n          {% from "partials/common.j2" import signature %}\n'
        "          We are looking into this. {{ signature(hospital) }}\n",
    )
    load_playbook_text(text, "partial.yaml")


def test_reopen_from_a_terminal_stage_is_fine():
    text = VALID.replace("templates:\n  ack:", "  reopen:\n    from: resolved\n    to: triage\n"
                         "    roles: [lead]\n    reopen: true\ntemplates:\n  ack:")
    pb = load_playbook_text(text, "reopen.yaml").playbook
    assert pb.transitions["reopen"].reopen


def test_escalation_along_a_real_transition_is_fine():
    text = VALID.replace("        templates: [ack]\n", "        templates: [ack]\n        deadline:\n"
                         "          within: 1h\n          escalate:\n            notify: [lead]\n"
                         "            move_to: resolved\n")
    load_playbook_text(text, "escalate.yaml")


def test_several_semantic_problems_come_sorted_by_line():
    text = VALID.replace("all_of: [spokesperson]", "all_of: [press]").replace(
        "tasks: [confirm]", "tasks: [confirmed]").replace("templates: [ack]", "templates: [ack, update]")
    lines = [d.line for d in _problems(text)]
    assert len(lines) == 3 and lines == sorted(lines)
