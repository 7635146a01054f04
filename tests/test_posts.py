"""Posts: render, approve, reject, publish; every refusal with its exit code, writing nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import VIRAL_START

INC = "INC-20260314-001"


def _events(db, incident: str = INC) -> list:
    from engine.store import open_store

    s = open_store(db)
    try:
        return list(s.events(incident))
    finally:
        s.close()


def _refused(cli, db, code: int, *args: str) -> str:
    """Run a command that must fail with `code` and leave the log as it was; return stderr+out."""
    before = len(_events(db))
    result = cli(*args)
    assert result.exit_code == code, (args, result.output)
    assert result.output.startswith("error: ") or code == 2, result.output
    assert len(_events(db)) == before, "a refused command wrote to the log"
    return result.output


def _drafts(cli) -> dict[str, dict]:
    result = cli("drafts", INC, "--json")
    assert result.exit_code == 0, result.output
    return {p["id"]: p for p in json.loads(result.output)}


@pytest.fixture(autouse=True)
def outbox(tmp_path, monkeypatch):
    folder = tmp_path / "outbox"
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(folder))
    return folder


@pytest.fixture
def acknowledging(cli):
    """The viral-complaint incident in stage acknowledge; carol (social_media) drafts."""
    for args in (VIRAL_START,
                 ("assign", INC, "social_media", "carol", "--as", "alice"),
                 ("task", INC, "confirm_post", "--as", "alice"),
                 ("advance", INC, "acknowledge", "--as", "alice")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    return cli


def _render_ack(cli, *extra: str) -> None:
    result = cli("render", INC, "public_ack", "--channel", "x", "--lang", "en", *extra, "--as", "carol")
    assert result.exit_code == 0, result.output


# -- a playbook written for the test -----------------------------------------------------------


def _playbook(tmp_path, templates: dict, *, inputs: dict | None = None, identifiers: dict | None = None):
    doc = {
        "id": "posts-test", "name": "Posts test", "version": "1",
        "roles": {"lead": {"title": "Lead", "required": True},
                  "spokesperson": {"title": "Spokesperson", "required": True},
                  "legal": {"title": "Legal"}, "compliance": {"title": "Compliance"},
                  "comms": {"title": "Comms"}},
        "inputs": {"hospital": {"type": "string", "default": "St Mary's"}, **(inputs or {})},
        "stages": {"respond": {"title": "Respond", "templates": list(templates)},
                   "closed": {"title": "Closed", "terminal": True}},
        "transitions": {"close": {"from": "respond", "to": "closed", "roles": ["lead"]}},
        "templates": templates,
    }
    if identifiers:
        doc["identifiers"] = identifiers
    path = tmp_path / "posts-test.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _start(cli, path, *extra: str) -> None:
    result = cli("start", str(path), "--title", "Test", "--assign", "lead=alice",
                 "--assign", "spokesperson=bob", *extra, "--as", "alice")
    assert result.exit_code == 0, result.output
    assert cli("assign", INC, "comms", "carol", "--as", "alice").exit_code == 0


def _x(text: str, approval: dict | None = None) -> dict:
    return {"approval": approval or {"all_of": ["spokesperson"]}, "channels": {"x": {"en": text}}}


# -- render: bad input -------------------------------------------------------------------------


def test_rendering_an_unknown_template_exits_4(acknowledging, db):
    out = _refused(acknowledging, db, 4, "render", INC, "public_apology", "--as", "carol")
    assert "no template 'public_apology'" in out and "public_ack" in out


def test_rendering_a_template_of_another_stage_exits_5(acknowledging, db):
    out = _refused(acknowledging, db, 5, "render", INC, "private_reply", "--as", "carol")
    assert "template private_reply belongs to stage private_outreach" in out
    assert "the incident is in acknowledge" in out


def test_rendering_an_unknown_channel_exits_4(acknowledging, db):
    out = _refused(acknowledging, db, 4, "render", INC, "public_ack", "--channel", "sms", "--as", "carol")
    assert "template public_ack has no 'sms' channel (channels: x, facebook, bluesky)" in out
    _refused(acknowledging, db, 4, "render", INC, "public_ack", "--channel", "tiktok", "--as", "carol")


def test_rendering_an_unknown_language_exits_4(acknowledging, db):
    out = _refused(acknowledging, db, 4, "render", INC, "public_ack", "--channel", "x", "--lang", "fr",
                   "--as", "carol")
    assert "has no 'fr' text for x (languages: en, es, ar)" in out


def test_rendering_by_someone_without_a_role_exits_5(acknowledging, db):
    out = _refused(acknowledging, db, 5, "render", INC, "public_ack", "--as", "mallory")
    assert "mallory holds no role" in out


def test_a_missing_variable_exits_5_and_says_how_to_set_it(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("We are looking into concerns at {{ ward }}.")},
                     inputs={"ward": {"type": "string"}})
    _start(cli, path)
    out = _refused(cli, db, 5, "render", INC, "statement", "--as", "carol")
    assert "statement/x/en: variable 'ward' has no value: set it for the incident (playbook set INCIDENT ward=...) or for this render only (render ... --set ward=...)" in out
    result = cli("render", INC, "statement", "--set", "ward=Ward 7", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert _drafts(cli)["statement/x/en"]["text"] == "We are looking into concerns at Ward 7."


def test_an_unknown_set_override_is_a_usage_error(acknowledging, db):
    _refused(acknowledging, db, 2, "render", INC, "public_ack", "--set", "nickname=x", "--as", "carol")


# -- too long ------------------------------------------------------------------------------------


def test_an_over_long_post_is_recorded_as_too_long_and_cannot_be_approved(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("Statement: {{ statement }}")},
                     inputs={"statement": {"type": "text"}})
    _start(cli, path, "--set", "statement=" + "word " * 60)
    result = cli("render", INC, "statement", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert "TOO LONG" in result.output and "310/280" in result.output
    post = _drafts(cli)["statement/x/en"]
    assert post["status"] == "too_long"
    assert post["count"] == {"used": 310, "limit": 280, "unit": "weighted characters",
                             "detail": "", "fits": False}
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert "it does not fit x: 310/280 weighted characters" in out
    _refused(cli, db, 5, "publish", INC, "statement/x/en", "--as", "carol")


def test_a_playbook_channel_limit_applies_to_the_count(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} review.")})
    doc = yaml.safe_load(path.read_text())
    doc["channels"] = {"x": {"limit": 20}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    _start(cli, path)
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    post = _drafts(cli)["statement/x/en"]
    assert (post["text"], post["count"]["used"], post["count"]["limit"], post["status"]) == (
        "St Mary's review.", 17, 20, "draft")
    assert cli("render", INC, "statement", "--set", "hospital=St Mary's University Hospital",
               "--as", "carol").exit_code == 0
    post = _drafts(cli)["statement/x/en"]
    assert (post["count"]["used"], post["status"]) == (37, "too_long")


# -- confidential inputs ---------------------------------------------------------------------------


def test_a_public_template_using_a_confidential_input_is_refused_before_the_incident_starts(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("Sorry, {{ patient_name }}.")},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    result = cli("start", str(path), "--title", "Test", "--assign", "lead=alice",
                 "--assign", "spokesperson=bob", "--as", "alice")
    assert result.exit_code == 3, result.output
    assert "confidential input 'patient_name' would be published on the public channel 'x'" in result.output
    assert not db.exists() or _events(db) == []


def test_the_render_time_guard_refuses_a_confidential_input_on_a_public_channel(store, clock, viral):
    """Even if a template slipped past the static check, the public context lacks the input."""
    from engine.incidents import service
    from engine.errors import Refused
    from engine.posts.render import context, render_text

    state = service.start(store, clock, "alice", viral, title="T",
                          inputs={"complaint_url": "https://x.com/p/status/1", "complaint_channel": "x",
                                  "patient_name": "Jane Doe"},
                          assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    ctx = context(state, public=True, overrides={"patient_name": "Jane Override"})
    with pytest.raises(Refused) as info:
        render_text("Dear {{ patient_name }}", ctx, html=False, where="public_ack/x/en",
                    withheld=frozenset({"patient_name", "record_number"}))
    assert info.value.exit_code == 5
    assert str(info.value) == ("public_ack/x/en: confidential input 'patient_name' cannot be used on a "
                               "public channel; nothing was recorded")


@pytest.fixture
def leaky_partial(tmp_path, monkeypatch):
    """A shared partial that prints patient_name: the static check cannot see into it."""
    from engine.posts.render import _compiled
    from engine.posts.sandbox import environment

    folder = tmp_path / "templates"
    (folder / "partials").mkdir(parents=True)
    (folder / "partials" / "greeting.j2").write_text("Dear {{ patient_name }},", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_TEMPLATES", str(folder))
    environment.cache_clear()
    _compiled.cache_clear()
    yield folder
    environment.cache_clear()
    _compiled.cache_clear()


def test_a_confidential_input_reached_through_an_include_is_refused_at_render(cli, db, tmp_path, leaky_partial):
    include = '{% include "partials/greeting.j2" %} we are sorry.'
    path = _playbook(tmp_path, {"statement": {"approval": {"all_of": ["spokesperson"]},
                                              "channels": {"x": {"en": include}, "email": {"en": {
                                                  "subject": "Your visit", "body": include}}}}},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    _start(cli, path, "--set", "patient_name=Jane Doe")
    out = _refused(cli, db, 5, "render", INC, "statement", "--as", "carol")
    assert "statement/x/en: confidential input 'patient_name' cannot be used on a public channel" in out
    assert "Jane" not in out
    result = cli("render", INC, "statement", "--channel", "email", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert _drafts(cli)["statement/email/en"]["text"]["body"] == "Dear Jane Doe, we are sorry."


def test_a_confidential_set_override_never_reaches_a_public_post_or_the_log(acknowledging, db):
    _render_ack(acknowledging, "--set", "patient_name=Zelda Quigley")
    post = _drafts(acknowledging)["public_ack/x/en"]
    assert "Zelda" not in post["text"]
    assert not any("Zelda" in json.dumps(e.data) for e in _events(db))


def test_private_channels_get_confidential_inputs(acknowledging, db):
    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0
    assert cli("advance", INC, "take_private", "--as", "alice").exit_code == 0
    result = cli("render", INC, "private_reply", "--channel", "email", "--lang", "en",
                 "--set", "patient_name=Jane Doe", "--as", "carol")
    assert result.exit_code == 0, result.output
    post = _drafts(cli)["private_reply/email/en"]
    assert post["public"] is False and post["hits"] == []
    assert post["text"]["subject"] == "Your message to St Mary's Hospital"
    assert post["text"]["body"].startswith("Dear Jane Doe,")


# -- identifiers -----------------------------------------------------------------------------------


def test_an_identifier_blocks_approval_until_overridden_with_a_reason(acknowledging, db):
    cli = acknowledging
    result = cli("render", INC, "public_ack", "--channel", "facebook", "--lang", "en",
                 "--set", "hospital_name=St Mary's (switchboard +44 20 7946 0958)", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert "! possible phone number: '+44 20 7946 0958'" in result.output
    out = _refused(cli, db, 5, "approve", INC, "public_ack/facebook/en", "--version", "1", "--as", "bob")
    assert "possible identifiers in a public post: phone number '+44 20 7946 0958'" in out
    assert "--override-identifiers REASON" in out
    _refused(cli, db, 5, "approve", INC, "public_ack/facebook/en", "--version", "1", "--override-identifiers", "  ",
             "--as", "bob")

    result = cli("approve", INC, "public_ack/facebook/en", "--version", "1", "--override-identifiers",
                 "the switchboard number is public", "--as", "bob")
    assert result.exit_code == 0, result.output
    overridden = [e for e in _events(db) if e.type == "IdentifiersOverridden"]
    assert len(overridden) == 1 and overridden[0].actor == "bob"
    assert overridden[0].data["reason"] == "the switchboard number is public"
    assert overridden[0].data["hits"] == [{"kind": "phone number", "text": "+44 20 7946 0958"}]
    post = _drafts(cli)["public_ack/facebook/en"]
    assert post["status"] == "approved"
    assert post["override"]["reason"] == "the switchboard number is public"


def test_the_playbooks_own_identifier_patterns_are_scanned(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("Update on {{ hospital }}.")},
                     identifiers={"case_ref": r"\bCASE-\d{4}\b"})
    _start(cli, path, "--set", "hospital=ward CASE-2024")
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    assert _drafts(cli)["statement/x/en"]["hits"] == [{"kind": "case_ref", "text": "CASE-2024"}]
    _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "bob")


def test_the_organisations_own_public_contact_is_not_flagged_but_another_number_is(cli, db, tmp_path):
    """A helpline declared public_contact: true is ours to publish; a stranger's number is not."""
    path = _playbook(tmp_path, {"statement": _x("Questions? Call {{ helpline }}. {{ extra }}")},
                     inputs={"helpline": {"type": "phone", "public_contact": True, "default": "+44 20 7946 0000"},
                             "extra": {"type": "string", "default": "Thank you."}})
    _start(cli, path)
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    assert _drafts(cli)["statement/x/en"]["hits"] == []
    assert cli("render", INC, "statement", "--set", "extra=Or call Jo on 07700 900123.", "--as", "carol").exit_code == 0
    assert _drafts(cli)["statement/x/en"]["hits"] == [{"kind": "phone number", "text": "07700 900123"}]


def test_an_input_cannot_be_confidential_and_a_public_contact(cli, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("Update.")},
                     inputs={"line": {"type": "phone", "public_contact": True, "confidential": True}})
    result = cli("validate", str(path))
    assert result.exit_code == 3
    assert "inputs.line.public_contact: an input cannot be both confidential and a public contact" in result.stdout


# -- approve: who and which version ------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_post(acknowledging, db):
    cli = acknowledging
    result = cli("render", INC, "public_ack", "--channel", "x", "--lang", "en", "--as", "bob")
    assert result.exit_code == 0
    out = _refused(cli, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob")
    assert "bob rendered this version and cannot approve their own post" in out


def test_approving_without_the_role_is_refused(acknowledging, db):
    _render_ack(acknowledging)
    out = _refused(acknowledging, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "alice")
    assert "alice holds none of the roles still needed (approval by spokesperson)" in out
    out = _refused(acknowledging, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--role",
                   "spokesperson", "--as", "alice")
    assert "alice does not hold spokesperson in this incident" in out


def test_approving_an_unknown_post_exits_4(acknowledging, db):
    _refused(acknowledging, db, 4, "approve", INC, "public_ack/x/fr", "--version", "1", "--as", "bob")


def test_approving_a_superseded_version_is_refused(acknowledging, db):
    cli = acknowledging
    _render_ack(cli)
    _render_ack(cli)
    assert _drafts(cli)["public_ack/x/en"]["version"] == 2
    out = _refused(cli, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob")
    assert "public_ack/x/en version 1 is superseded by version 2" in out
    assert cli("approve", INC, "public_ack/x/en", "--version", "2", "--as", "bob").exit_code == 0


def test_rendering_again_after_approval_makes_a_new_draft_that_needs_approval(acknowledging, db):
    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    assert _drafts(cli)["public_ack/x/en"]["status"] == "approved"
    _render_ack(cli, "--set", "contact_url=https://example-hospital.org/talk-to-us")
    post = _drafts(cli)["public_ack/x/en"]
    assert (post["version"], post["status"], post["approvals"]) == (2, "draft", [])
    assert post["missing"] == ["approval by spokesperson"]
    assert "talk-to-us" in post["text"]
    out = _refused(cli, db, 5, "publish", INC, "public_ack/x/en", "--as", "carol")
    assert "v2 is draft, not approved" in out and "approval by spokesperson" in out


def test_any_of_needs_min_distinct_roles(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.",
                                                {"any_of": ["spokesperson", "legal", "compliance"], "min": 2})})
    _start(cli, path)
    for role, person in (("legal", "lena"), ("compliance", "carl")):
        assert cli("assign", INC, role, person, "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "lena")
    assert result.exit_code == 0 and "still needs 1 more approval(s) from spokesperson, legal, compliance" in result.output
    assert _drafts(cli)["statement/x/en"]["status"] == "draft"
    _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "lena")  # not twice
    _refused(cli, db, 5, "publish", INC, "statement/x/en", "--as", "carol")
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "carl")
    assert result.exit_code == 0 and "fully approved" in result.output
    post = _drafts(cli)["statement/x/en"]
    assert post["status"] == "approved" and post["missing"] == []
    assert [(a["by"], a["role"]) for a in post["approvals"]] == [("lena", "legal"), ("carl", "compliance")]
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert "not a draft awaiting approval" in out


def test_all_of_needs_every_role(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} has completed its review.",
                                                {"all_of": ["spokesperson", "compliance"]})})
    _start(cli, path)
    assert cli("assign", INC, "compliance", "carl", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert result.exit_code == 0 and "still needs approval by compliance" in result.output
    _refused(cli, db, 5, "publish", INC, "statement/x/en", "--as", "carol")
    assert cli("approve", INC, "statement/x/en", "--version", "1", "--as", "carl").exit_code == 0
    assert _drafts(cli)["statement/x/en"]["status"] == "approved"


def test_one_person_holding_two_needed_roles_must_choose_and_counts_once(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} has completed its review.",
                                                {"all_of": ["spokesperson", "compliance"]})})
    _start(cli, path)
    assert cli("assign", INC, "compliance", "bob", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    out = _refused(cli, db, 2, "approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert "bob could approve as spokesperson, compliance: choose one with --role" in out
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--role", "compliance", "--as", "bob")
    assert result.exit_code == 0 and "still needs approval by spokesperson" in result.output
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--role", "spokesperson", "--as", "bob")
    assert "bob has already approved this version" in out
    post = _drafts(cli)["statement/x/en"]
    assert post["status"] == "draft" and [a["role"] for a in post["approvals"]] == ["compliance"]



def test_approving_a_version_that_does_not_exist_exits_4_and_says_so(acknowledging, db):
    """Only version 1 exists: --version 3 is not 'superseded', it does not exist."""
    _render_ack(acknowledging)
    for version in ("3", "0", "-1"):
        out = _refused(acknowledging, db, 4, "approve", INC, "public_ack/x/en", "--version", version, "--as", "bob")
        assert f"public_ack/x/en has no version {version} (its current version is 1" in out
        assert "superseded" not in out
    out = _refused(acknowledging, db, 4, "reject", INC, "public_ack/x/en", "--version", "2",
                   "--reason", "x", "--as", "bob")
    assert "has no version 2" in out


def test_a_role_in_all_of_and_any_of_needs_two_approvals_and_is_offered_once(cli, db, tmp_path):
    """all_of [legal] + any_of [legal, compliance]: one approval fills one requirement."""
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} has completed its review.",
                                                {"all_of": ["legal"], "any_of": ["legal", "compliance"]})})
    _start(cli, path)
    for person in ("lena", "leo"):
        assert cli("assign", INC, "legal", person, "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "lena")
    assert result.exit_code == 0, result.output  # not "could approve as legal, legal"
    assert "still needs 1 more approval(s) from legal, compliance besides the all_of approvals" in result.output
    assert _drafts(cli)["statement/x/en"]["status"] == "draft"
    _refused(cli, db, 5, "publish", INC, "statement/x/en", "--as", "carol")
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "leo")
    assert result.exit_code == 0 and "fully approved" in result.output
    assert [(a["by"], a["role"]) for a in _drafts(cli)["statement/x/en"]["approvals"]] == [
        ("lena", "legal"), ("leo", "legal")]


def test_whoever_wrote_any_version_since_the_last_approval_cannot_approve(cli, db, tmp_path):
    """bob (spokesperson, also a writer) edits v2, carol makes v3: bob's text is still in it."""
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.")})
    _start(cli, path)
    assert cli("assign", INC, "spokesperson", "sam", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    assert cli("edit", INC, "statement/x/en", "--text", "We did nothing wrong.", "--as", "bob").exit_code == 0
    assert cli("edit", INC, "statement/x/en", "--text", "We did nothing wrong at all.", "--as", "carol").exit_code == 0
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "3", "--as", "bob")
    assert "bob wrote a version of this post since it was last approved and cannot approve it" in out
    assert cli("approve", INC, "statement/x/en", "--version", "3", "--as", "sam").exit_code == 0
    # after an approval, a new version's writers start afresh: bob may approve carol's v4
    assert cli("edit", INC, "statement/x/en", "--text", "We are reviewing what happened.", "--as", "carol").exit_code == 0
    assert cli("approve", INC, "statement/x/en", "--version", "4", "--as", "bob").exit_code == 0


def test_a_self_granted_approving_role_needs_another_manager_before_it_approves(cli, db, tmp_path):
    """The lead assigns herself spokesperson: she holds it, but cannot approve with it until
    another manager assigns it to her; the approval records who granted the role."""
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.")})
    _start(cli, path)
    assert cli("assign", INC, "spokesperson", "alice", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "alice")
    assert "alice assigned themselves spokesperson; another manager must assign it" in out
    # assigning herself again changes nothing; a second manager's assignment is a new grant
    out = _refused(cli, db, 5, "assign", INC, "spokesperson", "alice", "--as", "alice")
    assert "alice already holds spokesperson" in out
    assert cli("assign", INC, "lead", "lou", "--as", "alice").exit_code == 0
    assert cli("assign", INC, "spokesperson", "alice", "--as", "lou").exit_code == 0
    assert cli("approve", INC, "statement/x/en", "--version", "1", "--as", "alice").exit_code == 0
    approval = next(e for e in _events(db) if e.type == "PostApproved")
    assert (approval.actor, approval.data["role"], approval.data["granted_by"]) == ("alice", "spokesperson", "lou")


def test_a_role_self_assigned_at_start_does_not_approve_either(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.")})
    result = cli("start", str(path), "--title", "Test", "--assign", "lead=alice",
                 "--assign", "spokesperson=alice", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert cli("assign", INC, "comms", "carol", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "alice")
    assert "alice assigned themselves spokesperson" in out


# -- reject ---------------------------------------------------------------------------------------


def test_a_rejection_needs_a_reason(acknowledging, db):
    _render_ack(acknowledging)
    out = _refused(acknowledging, db, 2, "reject", INC, "public_ack/x/en", "--as", "bob")
    assert "--reason" in out
    out = _refused(acknowledging, db, 2, "reject", INC, "public_ack/x/en", "--reason", "   ", "--as", "bob")
    assert "a rejection needs --reason" in out


def test_only_an_approving_role_may_reject(acknowledging, db):
    _render_ack(acknowledging)
    out = _refused(acknowledging, db, 5, "reject", INC, "public_ack/x/en", "--reason", "tone", "--as", "carol")
    assert "carol holds none of the approving roles of public_ack/x/en (spokesperson)" in out


def test_a_rejected_post_cannot_be_approved_or_published_until_rendered_again(acknowledging, db):
    cli = acknowledging
    _render_ack(cli)
    result = cli("reject", INC, "public_ack/x/en", "--reason", "too formal", "--as", "bob")
    assert result.exit_code == 0, result.output
    post = _drafts(cli)["public_ack/x/en"]
    assert post["status"] == "rejected"
    assert post["rejection"]["by"] == "bob" and post["rejection"]["reason"] == "too formal"
    assert "it is rejected" in _refused(cli, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob")
    assert "is rejected, not approved" in _refused(cli, db, 5, "publish", INC, "public_ack/x/en", "--as", "carol")
    _refused(cli, db, 5, "reject", INC, "public_ack/x/en", "--reason", "again", "--as", "bob")
    _render_ack(cli)
    assert _drafts(cli)["public_ack/x/en"]["status"] == "draft"


# -- publish ----------------------------------------------------------------------------------------


def test_publishing_an_unapproved_post_is_refused(acknowledging, db, outbox):
    _render_ack(acknowledging)
    out = _refused(acknowledging, db, 5, "publish", INC, "public_ack/x/en", "--as", "carol")
    assert "public_ack/x/en v1 is draft, not approved; nothing was published" in out
    assert "approval by spokesperson" in out
    assert not outbox.exists() or not any(outbox.rglob("*.json"))


def test_publishing_an_unknown_post_exits_4(acknowledging, db):
    _refused(acknowledging, db, 4, "publish", INC, "public_ack/x/es", "--as", "carol")


def test_a_post_is_published_once(acknowledging, db):
    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0
    out = _refused(cli, db, 5, "publish", INC, "public_ack/x/en", "--as", "carol")
    assert "public_ack/x/en v1 is already published (at 2026-03-14T09:00:00.000Z)" in out


def test_the_outbox_file_holds_exactly_what_was_approved(acknowledging, db, outbox):
    from engine.posts.versions import text_hash

    cli = acknowledging
    _render_ack(cli)
    approved_text = _drafts(cli)["public_ack/x/en"]["text"]
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    result = cli("publish", INC, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 0, result.output
    (path,) = outbox.rglob("*.json")
    assert path == outbox / INC / "public_ack.x.en.v1.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    approval = next(e for e in _events(db) if e.type == "PostApproved")
    assert record["text"] == approved_text
    assert record["sha256"] == text_hash(approved_text) == approval.data["sha256"]
    assert record["approvals"] == [{"by": "bob", "role": "spokesperson", "at": "2026-03-14T09:00:00.000Z",
                                    "sha256": record["sha256"], "granted_by": "alice"}]
    assert (record["post"], record["version"], record["channel"], record["lang"]) == ("public_ack/x/en", 1, "x", "en")
    assert record["published_by"] == "carol" and record["identifier_override"] is None
    published = [e for e in _events(db) if e.type == "PostPublished"]
    assert len(published) == 1 and published[0].data["sha256"] == record["sha256"]
    assert _drafts(cli)["public_ack/x/en"]["status"] == "published"


def test_the_published_guard_opens_the_transition_only_after_publishing(acknowledging, db):
    cli = acknowledging
    out = _refused(cli, db, 5, "advance", INC, "take_private", "--as", "alice")
    assert "no post of template public_ack has been published" in out
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    out = _refused(cli, db, 5, "advance", INC, "take_private", "--as", "alice")  # approved is not published
    assert "no post of template public_ack has been published" in out
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0
    result = cli("advance", INC, "take_private", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("status", INC, "--json").output)["stage"] == "private_outreach"


# -- drafts ----------------------------------------------------------------------------------------


def test_drafts_json_lists_each_post_with_its_state(acknowledging):
    cli = acknowledging
    assert json.loads(cli("drafts", INC, "--json").output) == []
    result = cli("render", INC, "public_ack", "--lang", "en", "--as", "carol")
    assert result.exit_code == 0, result.output
    posts = json.loads(cli("drafts", INC, "--json").output)
    by_id = {p["id"]: p for p in posts}
    assert set(by_id) == {"public_ack/x/en", "public_ack/facebook/en", "public_ack/bluesky/en"}
    post = by_id["public_ack/x/en"]
    assert set(post) >= {"id", "template", "channel", "lang", "version", "text", "sha256", "public",
                         "count", "hits", "policy", "status", "author", "drafted_at", "approvals",
                         "override", "rejection", "published", "missing"}
    assert (post["template"], post["channel"], post["lang"], post["version"]) == ("public_ack", "x", "en", 1)
    assert (post["status"], post["author"], post["public"]) == ("draft", "carol", True)
    assert post["drafted_at"] == "2026-03-14T09:00:00.000Z"
    assert post["policy"] == {"all_of": ["spokesperson"], "any_of": [], "min": 1}
    assert post["missing"] == ["approval by spokesperson"]
    assert set(post["count"]) == {"used", "limit", "unit", "detail", "fits"}
    assert len(post["sha256"]) == 64 and isinstance(post["text"], str)
    assert by_id["public_ack/bluesky/en"]["count"]["unit"] == "graphemes"


def test_drafts_text_output_shows_length_and_needs(acknowledging):
    _render_ack(acknowledging)
    out = acknowledging("drafts", INC).output
    assert "== public_ack/x/en v1  [draft]  x: " in out and "/280 weighted characters" in out
    assert "needs: approval by spokesperson" in out


# -- hand edits ------------------------------------------------------------------------------------


def test_an_edit_is_a_new_version_that_needs_approval_again(acknowledging, db):
    _render_ack(cli := acknowledging)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    edited = cli("edit", INC, "public_ack/x/en", "--text", "We are sorry. Please DM us so we can help.", "--as", "carol")
    assert edited.exit_code == 0, edited.output
    assert "v2  [draft]  x: 42/280" in edited.stdout
    post = _drafts(cli)["public_ack/x/en"]
    assert post["version"] == 2 and post["approvals"] == [] and post["author"] == "carol"
    _refused(cli, db, 5, "publish", INC, "public_ack/x/en", "--as", "carol")
    _refused(cli, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob")
    assert cli("approve", INC, "public_ack/x/en", "--version", "2", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0


def test_an_edit_is_scanned_for_identifiers_and_measured(acknowledging, db):
    _render_ack(cli := acknowledging)
    cli("edit", INC, "public_ack/x/en", "--text", "Call Jo on 07700 900123. " + "x" * 300, "--as", "carol")
    post = _drafts(cli)["public_ack/x/en"]
    assert post["status"] == "too_long"
    assert post["hits"] == [{"kind": "phone number", "text": "07700 900123"}]


def test_bad_edits_change_nothing(acknowledging, db):
    _render_ack(cli := acknowledging)
    assert _refused(cli, db, 2, "edit", INC, "public_ack/x/en", "--as", "carol")
    assert _refused(cli, db, 2, "edit", INC, "public_ack/x/en", "--text", "  ", "--as", "carol")
    assert _refused(cli, db, 2, "edit", INC, "public_ack/x/en", "--text", "Hi", "--subject", "S", "--as", "carol")
    assert _refused(cli, db, 4, "edit", INC, "nope/x/en", "--text", "Hi", "--as", "carol")
    same = _drafts(cli)["public_ack/x/en"]["text"]
    assert "same as v1" in _refused(cli, db, 5, "edit", INC, "public_ack/x/en", "--text", same, "--as", "carol")
    assert _refused(cli, db, 5, "edit", INC, "public_ack/x/en", "--text", "Hi", "--as", "mallory")


def test_an_approval_names_the_version_reviewed_so_a_version_drafted_meanwhile_is_never_approved_unseen(acknowledging, db):
    """Bob reviews v1; carol edits it to v2 before bob's approval lands: bob's approval is refused."""
    _render_ack(cli := acknowledging)
    cli("edit", INC, "public_ack/x/en", "--text", "A different text bob never saw.", "--as", "carol")
    out = _refused(cli, db, 5, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob")
    assert "version 1 is superseded by version 2" in out
    result = cli("approve", INC, "public_ack/x/en", "--as", "bob")
    assert result.exit_code == 2 and "--version" in result.output


def test_a_confidential_value_typed_into_a_public_post_blocks_approval_without_override(cli, db, tmp_path):
    """An edit (or any other route) that puts a patient's name into a public post is caught by value."""
    path = _playbook(tmp_path, {"statement": _x("Update on {{ hospital }}.")},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    _start(cli, path, "--set", "patient_name=Jane  Roe")
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    cli("edit", INC, "statement/x/en", "--text", "We are sorry, jane roe, for your experience.", "--as", "carol")
    assert _drafts(cli)["statement/x/en"]["leaks"] == ["patient_name"]
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "2",
                   "--override-identifiers", "it is fine", "--as", "bob")
    assert "confidential input(s) patient_name" in out and "no override exists" in out
    assert "CONFIDENTIAL input patient_name" in cli("drafts", INC).stdout


def test_an_edit_from_a_file_that_is_not_text_is_a_usage_error(acknowledging, db, tmp_path):
    _render_ack(cli := acknowledging)
    bad = tmp_path / "edit.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    out = _refused(cli, db, 2, "edit", INC, "public_ack/x/en", "--file", str(bad), "--as", "carol")
    assert "not UTF-8 text" in out
    good = tmp_path / "good.txt"
    good.write_text("We are sorry. Please message us so we can help.", encoding="utf-8")
    assert cli("edit", INC, "public_ack/x/en", "--file", str(good), "--as", "carol").exit_code == 0


def test_the_outbox_never_follows_a_link_planted_at_its_temporary_name(acknowledging, db, outbox, tmp_path):
    """A link at the old predictable temporary name (POST.vN.tmp) must not redirect the write."""
    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (outbox / INC).mkdir(parents=True)
    (outbox / INC / "public_ack.x.en.v1.tmp").symlink_to(victim)
    result = cli("publish", INC, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert victim.read_text(encoding="utf-8") == "precious\n"
    record = json.loads((outbox / INC / "public_ack.x.en.v1.json").read_text(encoding="utf-8"))
    assert record["post"] == "public_ack/x/en"
    assert sorted(p.name for p in (outbox / INC).iterdir()) == ["public_ack.x.en.v1.json", "public_ack.x.en.v1.tmp"]


def test_publish_records_the_event_before_writing_the_file(acknowledging, db, outbox, monkeypatch):
    """A failure to write the outbox leaves a publication the log records (never a file the
    log does not), and `outbox rebuild` re-creates the file exactly from the log."""
    from engine.posts import release

    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    seen = []

    def crash(path, record):
        seen.append([e.type for e in _events(db)][-1])  # what the log held when the file was due
        raise release.StoreError(f"cannot write to the outbox {path.parent}: disk full")

    monkeypatch.setattr(release, "write_outbox_file", crash)
    failed = cli("publish", INC, "public_ack/x/en", "--as", "carol")
    assert failed.exit_code == 8, failed.output
    assert "is published (recorded in the log)" in failed.output
    assert f"playbook outbox rebuild {INC}" in failed.output
    assert seen == ["PostPublished"]
    assert not outbox.exists() or not list(outbox.rglob("*.json"))
    monkeypatch.undo()

    rebuilt = cli("outbox", "rebuild", INC, "--outbox", str(outbox))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 of 1 outbox file(s) written." in rebuilt.output
    record = json.loads((outbox / INC / "public_ack.x.en.v1.json").read_text(encoding="utf-8"))
    assert record["published_by"] == "carol" and record["approvals"][0]["by"] == "bob"
    assert record["published_at"] == next(e.at for e in _events(db) if e.type == "PostPublished")
    again = cli("outbox", "rebuild", "--outbox", str(outbox))
    assert "0 of 1 outbox file(s) written." in again.output


def test_outbox_rebuild_writes_what_publish_wrote(acknowledging, db, outbox, tmp_path):
    cli = acknowledging
    _render_ack(cli)
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0
    published = (outbox / INC / "public_ack.x.en.v1.json").read_bytes()
    other = tmp_path / "elsewhere"
    assert cli("outbox", "rebuild", INC, "--outbox", str(other)).exit_code == 0
    assert (other / INC / "public_ack.x.en.v1.json").read_bytes() == published
    assert cli("outbox", "rebuild", "INC-NOPE", "--outbox", str(other)).exit_code == 4


# -- confidential values, however disguised ---------------------------------------------------


@pytest.mark.parametrize("template", [
    "{{ incident.title|reverse }}",
    "{{ incident.title|join(' ') }}",
    "{{ incident.title|replace(' ', '') }}",
    "#{{ incident.title|replace(' ', '') }}",
])
def test_a_confidential_value_typed_into_the_title_is_caught_through_filters(cli, db, tmp_path, template):
    path = _playbook(tmp_path, {"statement": _x(template)},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    result = cli("start", str(path), "--title", "Maria Garcia", "--set", "patient_name=Maria Garcia",
                 "--assign", "lead=alice", "--assign", "spokesperson=bob", "--as", "alice")
    assert result.exit_code == 0, result.output
    assert ("warning: INC-20260314-001: the title contains the value of confidential input patient_name"
            in result.output)
    assert cli("assign", INC, "comms", "carol", "--as", "alice").exit_code == 0
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    assert "CONFIDENTIAL input patient_name appears" in cli("drafts", INC).output
    out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert "contains the value of confidential input(s) patient_name" in out


def test_a_disguised_confidential_value_in_an_edit_cannot_be_approved(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.")},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    _start(cli, path, "--set", "patient_name=Maria Garcia")
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    for version, text in ((2, "We spoke with Garcia, Maria today."), (3, "We spoke with M\u0430ria G\u0430rcia.")):
        assert cli("edit", INC, "statement/x/en", "--text", text, "--as", "carol").exit_code == 0
        out = _refused(cli, db, 5, "approve", INC, "statement/x/en", "--version", str(version), "--as", "bob")
        assert "confidential input(s) patient_name" in out


def test_setting_a_confidential_value_that_is_in_the_title_warns(cli, db, tmp_path):
    path = _playbook(tmp_path, {"statement": _x("{{ hospital }} is reviewing what happened.")},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    result = cli("start", str(path), "--title", "Complaint by GARCIA, Maria", "--assign", "lead=alice",
                 "--assign", "spokesperson=bob", "--as", "alice")
    assert result.exit_code == 0 and "warning" not in result.output
    result = cli("set", INC, "patient_name=Maria Garcia", "--as", "alice")
    assert result.exit_code == 0
    assert "warning: INC-20260314-001: the title contains the value of confidential input patient_name" in result.output


# -- audiences: an SMS is a broadcast unless the template says otherwise ------------------------


def _sms_playbook(tmp_path, text: str, audience: str | None = None):
    template = {"approval": {"all_of": ["spokesperson"]}, "channels": {"sms": {"en": text}}}
    if audience:
        template["audience"] = audience
    path = _playbook(tmp_path, {"alert": template},
                     inputs={"patient_name": {"type": "string", "confidential": True}})
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["stages"]["respond"]["deadline"] = {"within": "60m", "until": "first_public_post"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _first_public_post_met(cli) -> bool:
    clocks = json.loads(cli("status", INC, "--json").output)["clocks"]
    return next(c for c in clocks if c["label"] == "first public post in stage respond")["met_at"] is not None


def test_a_mass_sms_naming_a_confidential_input_does_not_validate(cli, tmp_path):
    result = cli("validate", str(_sms_playbook(tmp_path, "{{ patient_name }}: measles exposure alert.")))
    assert result.exit_code == 3
    assert "confidential input 'patient_name' would be published on the public channel 'sms'" in result.output


def test_a_broadcast_sms_is_scanned_and_meets_the_public_clock(cli, db, tmp_path):
    _start(cli, _sms_playbook(tmp_path, "Measles alert: call 020 7946 0958 if you have a fever."))
    assert cli("render", INC, "alert", "--as", "carol").exit_code == 0
    post = _drafts(cli)["alert/sms/en"]
    assert post["public"] is True and [h["kind"] for h in post["hits"]] == ["phone number"]
    _refused(cli, db, 5, "approve", INC, "alert/sms/en", "--version", "1", "--as", "bob")
    assert cli("approve", INC, "alert/sms/en", "--version", "1", "--as", "bob",
               "--override-identifiers", "the public hotline").exit_code == 0
    assert not _first_public_post_met(cli)
    assert cli("publish", INC, "alert/sms/en", "--as", "carol").exit_code == 0
    assert _first_public_post_met(cli)


def test_a_direct_sms_may_name_the_patient_and_is_not_a_public_post(cli, db, tmp_path):
    _start(cli, _sms_playbook(tmp_path, "{{ patient_name }}, please call us.", audience="direct"),
           "--set", "patient_name=Jane Doe")
    assert cli("render", INC, "alert", "--as", "carol").exit_code == 0
    post = _drafts(cli)["alert/sms/en"]
    assert (post["public"], post["text"], post["leaks"]) == (False, "Jane Doe, please call us.", [])
    assert cli("approve", INC, "alert/sms/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "alert/sms/en", "--as", "carol").exit_code == 0
    assert not _first_public_post_met(cli)


# -- the organisation's region: how phone numbers without a country code are read ------------


def _region_playbook(tmp_path, region: str | None):
    path = _playbook(tmp_path, {"statement": _x("Call 555-0199 for help.")})
    if region:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["region"] = region
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("region, env, hits", [
    (None, None, [{"kind": "phone number", "text": "555-0199"}]),  # default US
    ("ES", None, []),  # a Spanish number has 9 digits: 555-0199 is not one
    (None, "ES", []),
    ("US", "ES", [{"kind": "phone number", "text": "555-0199"}]),  # the playbook's own region wins
])
def test_the_region_comes_from_the_playbook_else_playbook_region(cli, db, tmp_path, monkeypatch, region, env, hits):
    if env:
        monkeypatch.setenv("PLAYBOOK_REGION", env)
    _start(cli, _region_playbook(tmp_path, region))
    assert cli("render", INC, "statement", "--as", "carol").exit_code == 0
    assert _drafts(cli)["statement/x/en"]["hits"] == hits


def test_an_unknown_region_is_refused(cli, db, tmp_path, monkeypatch):
    result = cli("validate", str(_region_playbook(tmp_path, "XX")))
    assert result.exit_code == 3 and "region: unknown region 'XX'" in result.output
    monkeypatch.setenv("PLAYBOOK_REGION", "Narnia")
    result = cli("start", str(_region_playbook(tmp_path, None)), "--title", "Test", "--assign", "lead=alice",
                 "--assign", "spokesperson=bob", "--as", "alice")
    assert result.exit_code == 2 and "PLAYBOOK_REGION: unknown region 'Narnia'" in result.output
    assert not _events(db) if db.exists() else True
