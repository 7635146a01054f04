"""Approvers per language, messages to individual recipients, templates shared between stages."""

from __future__ import annotations

import json

import pytest

from conftest import PLAYBOOKS
from test_delivery import Hook

INC = "INC-20260314-001"

PB = """\
id: letters
name: Letters and languages
version: "1"
roles:
  lead: {title: Lead, required: true}
  spokesperson: {title: Spokesperson, required: true}
  liaison: {title: Turkish-speaking liaison}
  privacy: {title: Privacy officer}
inputs:
  patient_name: {type: string, confidential: true}
  record_number: {type: string, confidential: true}
stages:
  respond:
    title: Respond
    templates: [statement]
  letters:
    title: Letters
    templates: [letter]
  closed: {title: Closed, terminal: true}
transitions:
  letters: {from: respond, to: letters, roles: [lead]}
  close: {from: letters, to: closed, roles: [lead]}
templates:
  statement:
    approval:
      all_of: [spokesperson]
      languages:
        tr: {all_of: [liaison]}
    channels:
      x: {en: "We are looking into it.", tr: "Konuyu inceliyoruz."}
  holding:
    also_in: [letters]
    approval: {all_of: [spokesperson]}
    channels:
      x: {en: "We are aware of reports and will say more soon."}
  letter:
    per_recipient: true
    approval: {all_of: [privacy]}
    channels:
      email:
        en:
          subject: "About your information"
          body: "Dear {{ patient_name }}, record {{ record_number }} was involved."
"""


@pytest.fixture
def letters(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    path = tmp_path / "letters.yaml"
    path.write_text(PB, encoding="utf-8")
    assert cli("start", str(path), "--title", "L", "--assign", "lead=alice",
               "--assign", "spokesperson=bob").exit_code == 0
    cli("assign", INC, "liaison", "tulay")
    cli("assign", INC, "privacy", "pia")
    return path


def _drafts(cli) -> dict:
    return {d["id"]: d for d in json.loads(cli("drafts", INC, "--json").stdout)}


def test_turkish_posts_are_approved_by_the_turkish_speaking_liaison(cli, letters):
    """(11) The policy for a language replaces the template's policy for posts in it."""
    cli("render", INC, "statement")
    refused = cli("approve", INC, "statement/x/tr", "--version", "1", "--as", "bob")
    assert refused.exit_code == 5
    assert "bob holds none of the roles still needed (approval by liaison)" in refused.stderr
    assert cli("approve", INC, "statement/x/tr", "--version", "1", "--as", "tulay").exit_code == 0
    assert cli("approve", INC, "statement/x/en", "--version", "1", "--as", "tulay").exit_code == 5
    assert cli("approve", INC, "statement/x/en", "--version", "1", "--as", "bob").exit_code == 0
    drafts = _drafts(cli)
    assert drafts["statement/x/tr"]["policy"] == {"all_of": ["liaison"], "any_of": [], "min": 1}
    assert {p["status"] for p in drafts.values()} == {"approved"}
    assert "approval of tr posts: all of liaison" in cli("show", str(letters)).stdout


def test_a_language_policy_is_checked_at_validate_time(cli, tmp_path):
    bad = PB.replace("tr: {all_of: [liaison]}", "de: {all_of: [translator]}")
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    out = cli("validate", str(path)).stdout
    assert f"{path}:28:9: templates.statement.approval.languages.de: no channel of template 'statement' has 'de' text" in out
    assert f"{path}:28:23: templates.statement.approval.languages.de.all_of[0]: unknown role 'translator'" in out


def test_a_template_can_be_made_available_in_other_stages(cli, letters):
    """(13) also_in: the holding statement, renderable in the letters stage."""
    assert cli("render", INC, "holding").exit_code == 5  # not in respond
    cli("advance", INC, "letters")
    assert cli("render", INC, "holding").exit_code == 0
    assert "Templates for this stage: letter, holding" in cli("status", INC).stdout
    bad = PB.replace("also_in: [letters]", "also_in: [leters]")
    path = letters.with_name("bad.yaml")
    path.write_text(bad, encoding="utf-8")
    assert "templates.holding.also_in[0]: unknown stage 'leters'" in cli("validate", str(path)).stdout


def test_each_recipient_gets_their_own_post_approval_and_delivery_record(cli, store, letters, tmp_path, monkeypatch):
    """(12) Thirty patients are thirty posts, not thirty versions of one; status and report say who was reached."""
    cli("advance", INC, "letters")
    missing = cli("render", INC, "letter")
    assert missing.exit_code == 2 and "give --recipient REF" in missing.stderr
    csv = tmp_path / "patients.csv"
    csv.write_text("recipient,patient_name,record_number\nP-1,Ann Example,MRN-111\n"
                   "P-2,Bo Example,MRN-222\nP-3,Cy Example,MRN-333\n", encoding="utf-8")
    result = cli("render", INC, "letter", "--recipients", str(csv))
    assert result.exit_code == 0, result.output
    drafts = _drafts(cli)
    assert sorted(drafts) == ["letter/email/en/P-1", "letter/email/en/P-2", "letter/email/en/P-3"]
    assert {d["version"] for d in drafts.values()} == {1}
    assert "Dear Bo Example, record MRN-222" in drafts["letter/email/en/P-2"]["text"]["body"]
    for ref in ("P-1", "P-2"):
        assert cli("approve", INC, f"letter/email/en/{ref}", "--version", "1", "--as", "pia").exit_code == 0
    with Hook() as hook:
        dest = tmp_path / "hooks.yaml"
        dest.write_text(f"email:\n  - {hook.url}\n", encoding="utf-8")
        monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(dest))
        assert cli("publish", INC, "letter/email/en/P-1").exit_code == 0
    monkeypatch.delenv("PLAYBOOK_DESTINATIONS")
    assert cli("publish", INC, "letter/email/en/P-2").exit_code == 0
    status = cli("status", INC).stdout
    assert "Recipients of letter: 1 of 3 reached" in status
    assert "not reached: P-2 (published, not delivered), P-3 (draft)" in status
    rec = json.loads(cli("report", INC, "--format", "json").stdout)["metrics"]["recipients"]
    assert rec == {"letter": {
        "reached": [{"recipient": "P-1", "post": "letter/email/en/P-1"}],
        "not_reached": [{"recipient": "P-2", "post": "letter/email/en/P-2", "state": "published, not delivered"},
                        {"recipient": "P-3", "post": "letter/email/en/P-3", "state": "draft"}]}}
    assert "1 of 3 reached (published and delivered)" in cli("report", INC).stdout


def test_a_bad_recipient_list_renders_nothing(cli, store, letters, tmp_path):
    cli("advance", INC, "letters")
    before = store.snapshot(INC).seq
    csv = tmp_path / "p.csv"
    csv.write_text("recipient,patient_name\nAnn Example,Ann\nP-1,Bo\nP-1,Cy\n", encoding="utf-8")
    result = cli("render", INC, "letter", "--recipients", str(csv))
    assert result.exit_code == 2
    assert "recipient 'Ann Example': use a reference" in result.stderr
    assert "a recipient is listed twice" in result.stderr
    assert cli("render", INC, "statement", "--recipient", "P-1").exit_code == 5  # not in this stage
    cli("render", INC, "holding", "--recipient", "P-1")
    assert store.snapshot(INC).seq == before



def test_the_privacy_breach_holding_statement_is_available_where_a_story_tends_to_break():
    from engine.format.loader import load_playbook

    pb = load_playbook(PLAYBOOKS / "privacy-breach.yaml").playbook
    for stage in ("contain", "assess", "notify_regulator", "notify_patients"):
        assert "holding_statement" in pb.stage_templates(stage)
    assert pb.targets["regulator_notified"].anchor == "discovered_at"
    assert pb.targets["individuals_notified"].within == "60d"
