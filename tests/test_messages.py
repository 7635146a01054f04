"""Messages that say what is really wrong, and views that show the whole playbook."""

from __future__ import annotations

import json

from conftest import PLAYBOOKS, VIRAL_START

INC = "INC-20260314-001"
DRILL = "DRILL-20260314-001"

INTERNAL = """\
id: internal
name: Internal only
version: "1"
roles:
  lead: {title: Lead, required: true}
inputs:
  exposed_patient_name: {type: string, confidential: true}
stages:
  contain:
    title: Contain
    templates: [internal_alert]
  closed: {title: Closed, terminal: true}
transitions:
  close: {from: contain, to: closed, roles: [lead]}
templates:
  internal_alert:
    approval: {all_of: [lead]}
    channels:
      chat: {en: "Exposed: {{ exposed_patient_name }}"}
"""


def test_an_unset_confidential_input_on_an_internal_channel_is_reported_as_unset(cli, tmp_path):
    """(15) The cause is the missing value, not a public channel."""
    path = tmp_path / "internal.yaml"
    path.write_text(INTERNAL, encoding="utf-8")
    cli("start", str(path), "--title", "I", "--assign", "lead=alice")
    result = cli("render", INC, "internal_alert")
    assert result.exit_code == 5
    assert ("internal_alert/chat/en: variable 'exposed_patient_name' has no value: set it for the incident "
            "(playbook set INCIDENT exposed_patient_name=...) or for this render only") in result.stderr
    assert "public channel" not in result.stderr
    ok = cli("render", INC, "internal_alert", "--set", "exposed_patient_name=Ann Example")
    assert ok.exit_code == 0 and "Exposed: Ann Example" in ok.stdout


def test_an_output_into_a_missing_folder_is_not_found_and_writes_nothing(cli, tmp_path):
    """(17) Exit 4 with the folder named, for bundle, report and export alike."""
    assert cli(*VIRAL_START).exit_code == 0
    target = tmp_path / "no" / "such"
    for args in (["bundle", INC, "-o", str(target / "b.zip")],
                 ["report", INC, "-o", str(target / "r.md")],
                 ["export", INC, "-o", str(target / "e.jsonl")]):
        result = cli(*args)
        assert result.exit_code == 4, args
        assert f"the folder {target} does not exist" in result.stderr
    assert not (tmp_path / "no").exists() and not (tmp_path / "signing.key").exists()


def test_a_drill_can_start_with_an_inject_at_zero_and_report_its_id_as_json(cli, tmp_path):
    """(9, 18) +0m is the post that starts the drill; `drill --json` gives the drill's id."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text("injects:\n  - at: +0m\n    message: The complaint is posted\n"
                        "  - at: +10m\n    message: A journalist calls\n", encoding="utf-8")
    result = cli("drill", *VIRAL_START[1:], "--scenario", str(scenario), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == DRILL
    injects = json.loads(cli("drill-summary", DRILL, "--json").stdout)["injects"]
    assert [(i["at_seconds"], i["delivered_at"]) for i in injects] == [
        (0, "2026-03-14T09:00:00.000Z"), (600, None)]
    text = cli("drill", *VIRAL_START[1:], "--scenario", str(scenario)).stdout
    assert ">> INJECT (at the start): The complaint is posted" in text


def test_show_includes_public_contacts_escalations_and_anchored_targets(cli):
    """(18) What the summary used to leave out."""
    out = cli("show", str(PLAYBOOKS / "privacy-breach.yaml")).stdout
    assert "helpline_phone       phone, required, public contact (not flagged as an identifier)" in out
    assert ("Target regulator_notified: regulator notified (GDPR Art. 33, 72 hours from discovery) within 3d "
            "of discovered_at; escalate: notify privacy_officer, legal, incident_lead") in out
    assert "escalate: notify privacy_officer, legal, incident_lead, move to notify_regulator" in out


def test_graph_shows_the_inputs_guard(cli):
    out = cli("graph", str(PLAYBOOKS / "privacy-breach.yaml")).stdout
    assert "assess --> notify_regulator: report_in_phases [inputs discovered_at]" in out
