"""The shipped playbooks: each one loads, keeps the promises its crisis needs, and
every post it drafts fits its channel when rendered with realistic values."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import pytest

from engine.format.durations import parse_duration
from engine.format.loader import load_playbook
from engine.format.playbook import EmailText
from engine.posts.channels import CHANNELS, count, subject_count
from engine.posts.sandbox import environment

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
SHIPPED = sorted(PLAYBOOKS.glob("*.yaml"))

ISSUE_PLAYBOOKS = ["privacy-breach", "medical-tourism", "public-health-cerc"]
CERC_PHASES = ["preparation", "initial", "maintenance", "resolution", "evaluation"]
HICS_COMMAND_STAFF = {"incident_commander", "public_information_officer", "liaison_officer", "safety_officer"}

#: A plausible value per input type, used when an input has no default of its own.
SAMPLE_BY_TYPE = {
    "string": "Riverside General Hospital",
    "text": "names, dates of birth, home addresses, appointment dates and the names of the clinics attended",
    "url": "https://www.example-hospital.org/news/incident-update",
    "email": "press-office@example-hospital.org",
    "phone": "+1 555 010 4477",
    "datetime": "2024-05-14T08:30:00Z",
    "date": "2024-05-14",
    "integer": 1280,
}


@lru_cache(maxsize=None)
def _load(stem: str):
    """The validated playbook model (loaded once per test run: validation renders every template)."""
    return load_playbook(PLAYBOOKS / f"{stem}.yaml").playbook


def sample_context(pb, flag: bool) -> dict:
    """Render context for ``pb``: a value for every input, plus ``incident`` and ``roles``.

    Enums take their longest value and booleans take ``flag``, so rendering with
    ``flag`` True and False walks both sides of every conditional.
    """
    values: dict = {}
    for name, spec in pb.inputs.items():
        if spec.type == "boolean":
            values[name] = flag
        elif spec.type == "enum":
            values[name] = max(spec.values, key=len)
        elif spec.default is not None:
            values[name] = spec.default
        else:
            values[name] = SAMPLE_BY_TYPE[spec.type]
    values["incident"] = {
        "id": "INC-2024-0042",
        "title": "Reports spreading on social media",
        "severity": pb.severities[-1],
        "stage": pb.initial_stage,
        "started_at": "2024-05-14T09:42:00Z",
        "drill": flag,
    }
    values["roles"] = {role: "Alexandra Okonkwo-Fitzgerald" for role in pb.roles}
    return values


def _template_texts():
    """(playbook stem, template id, channel, language, text) for every shipped template text."""
    cases = []
    for path in SHIPPED:
        try:
            pb = _load(path.stem)
        except Exception:  # reported by test_playbook_loads
            continue
        for tid, template in pb.templates.items():
            for channel, langs in template.channels.items():
                for lang, text in langs.items():
                    cases.append(pytest.param(path.stem, tid, channel, lang, text,
                                              id=f"{path.stem}:{tid}:{channel}:{lang}"))
    return cases


TEMPLATE_TEXTS = _template_texts()
#: every text a broadcast reaches: its template's audience (sms is public unless it says direct)
PUBLIC_TEXTS = [case for case in TEMPLATE_TEXTS
                if _load(case.values[0]).audience(case.values[1], case.values[2]) == "public"]


# -- every shipped playbook ---------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_playbook_loads(path):
    load_playbook(path)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_playbook_id_matches_file_name(path):
    assert _load(path.stem).id == path.stem


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_template_is_sent_in_some_stage(path):
    pb = _load(path.stem)
    used = {t for stage in pb.stages.values() for t in stage.templates}
    assert set(pb.templates) - used == set()


def test_the_issue_playbooks_are_shipped():
    assert set(ISSUE_PLAYBOOKS) <= {p.stem for p in SHIPPED}


def test_at_least_one_shipped_playbook_speaks_more_than_one_language():
    def languages(pb):
        return {lang for t in pb.templates.values() for langs in t.channels.values() for lang in langs}

    assert any(len(languages(_load(p.stem))) > 1 for p in SHIPPED)


def test_validate_command_accepts_the_shipped_folder():
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["validate", "--strict", str(PLAYBOOKS)])
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} valid, 0 invalid" in result.output


# -- what each crisis needs ---------------------------------------------------------


@pytest.mark.parametrize("stem", ISSUE_PLAYBOOKS)
def test_the_team_required_at_start_can_clear_every_post(stem):
    """Approvers come from the roles that must be filled at start, and at least one
    of those roles is left over to write the draft (no one approves their own post)."""
    pb = _load(stem)
    required = {rid for rid, role in pb.roles.items() if role.required}
    for tid, template in pb.templates.items():
        approval = template.approval
        assert set(approval.all_of) <= required, tid
        if approval.any_of:
            assert len(set(approval.any_of) & required) >= approval.min, tid
        assert (len(approval.all_of) + (approval.min if approval.any_of else 0)) < len(required), tid


def test_privacy_breach_needs_legal_and_privacy_approval_on_every_public_template():
    pb = _load("privacy-breach")
    public = [tid for tid, t in pb.templates.items() if any(CHANNELS[ch].public for ch in t.channels)]
    assert public, "the breach playbook has no public template"
    for tid in public:
        assert {"legal", "privacy_officer"} <= set(pb.templates[tid].approval.all_of), tid


def test_privacy_breach_notifies_the_regulator_within_72_hours_of_discovery():
    """The stage clocks from discovery to the regulator's notification add up to 72 hours at most."""
    pb = _load("privacy-breach")
    path = ["contain", "assess", "notify_regulator"]
    assert all(pb.stages[s].deadline is not None for s in path)
    total = sum((parse_duration(pb.stages[s].deadline.within) for s in path), timedelta())
    assert total <= timedelta(hours=72)
    assert "legal" in pb.stages["notify_regulator"].deadline.escalate.notify


def test_medical_tourism_speaks_three_languages_with_two_of_three_spokespeople_and_a_cadence():
    pb = _load("medical-tourism")
    languages = {lang for t in pb.templates.values() for langs in t.channels.values() for lang in langs}
    assert len(languages) >= 3
    assert any(t.approval.any_of and t.approval.min >= 2 for t in pb.templates.values())
    assert any(stage.updates is not None for stage in pb.stages.values())
    assert parse_duration(pb.targets["first_public_post"].within) <= timedelta(minutes=60)


def test_medical_tourism_main_public_posts_are_in_three_languages_on_every_channel():
    pb = _load("medical-tourism")
    for tid in ("holding_statement", "situation_update", "rumour_correction", "scam_warning"):
        for channel, langs in pb.templates[tid].channels.items():
            assert CHANNELS[channel].public
            assert len(langs) >= 3, (tid, channel)


def test_cerc_playbook_follows_the_five_cerc_phases_with_hics_roles():
    pb = _load("public-health-cerc")
    assert list(pb.stages) == CERC_PHASES
    assert pb.terminal_stages() == ["evaluation"]
    assert HICS_COMMAND_STAFF <= set(pb.roles)
    assert pb.roles["incident_commander"].required and pb.roles["public_information_officer"].required


def test_cerc_initial_phase_is_first_and_maintenance_keeps_a_rhythm():
    pb = _load("public-health-cerc")
    first = pb.stages["initial"].deadline
    assert first.until == "first_public_post"
    assert parse_duration(first.within) <= timedelta(hours=1)
    assert "incident_commander" in first.escalate.notify
    assert pb.stages["maintenance"].updates is not None


def test_cerc_playbook_alerts_by_sms_and_email_in_english_and_spanish():
    pb = _load("public-health-cerc")
    for channel in ("sms", "email", "web", "x", "facebook"):
        langs = {lang for t in pb.templates.values() for lang in t.channels.get(channel, {})}
        assert {"en", "es"} <= langs, channel


# -- every template -----------------------------------------------------------------


def _parts(text):
    return [("subject", text.subject), ("body", text.body)] if isinstance(text, EmailText) else [(None, text)]


@pytest.mark.parametrize("stem, tid, channel, lang, text", PUBLIC_TEXTS)
def test_confidential_inputs_never_reach_a_public_channel(stem, tid, channel, lang, text):
    """Independently of the validator: no confidential input is referenced in a public template."""
    from jinja2 import meta

    pb = _load(stem)
    confidential = {name for name, spec in pb.inputs.items() if spec.confidential}
    env = environment(html=CHANNELS[channel].html)
    for _, source in _parts(text):
        used = meta.find_undeclared_variables(env.parse(source))
        assert used & confidential == set()


@pytest.mark.parametrize("stem, tid, channel, lang, text", PUBLIC_TEXTS)
def test_public_posts_flag_no_identifier_but_our_own_contact_details(stem, tid, channel, lang, text):
    """The identifier scan finds nothing in a public post except the organisation's own
    helpline numbers and mailboxes, which approvers clear knowingly."""
    from engine.posts.render import scan

    pb = _load(stem)
    ctx = sample_context(pb, True)
    ours = [ctx[name] for name, spec in pb.inputs.items() if spec.type in ("phone", "email")]
    post = environment(html=CHANNELS[channel].html).from_string(text).render(**ctx)
    for hit in scan(post, pb.identifiers):
        assert any(hit.text in value for value in ours), f"{hit.kind} {hit.text!r} in:\n{post}"


@pytest.mark.parametrize("flag", [True, False], ids=["flags-on", "flags-off"])
@pytest.mark.parametrize("stem, tid, channel, lang, text", TEMPLATE_TEXTS)
def test_rendered_post_fits_its_channel(stem, tid, channel, lang, text, flag):
    pb = _load(stem)
    ctx = sample_context(pb, flag)
    env = environment(html=CHANNELS[channel].html)
    if isinstance(text, EmailText):
        subject = env.from_string(text.subject).render(**ctx)
        used = subject_count(subject)
        assert used.fits and not used.detail, f"subject {used} {used.detail}: {subject!r}"
        body = env.from_string(text.body).render(**ctx)
    else:
        body = env.from_string(text).render(**ctx)
    assert body.strip(), "renders to nothing"
    used = count(channel, body, limit=pb.channel_limit(channel))
    assert used.fits, f"{used} {used.unit} {used.detail}:\n{body}"
    if channel == "x":
        assert not used.detail, used.detail  # X refuses some characters outright


def test_medical_tourism_turkish_posts_are_approved_by_the_turkish_speaking_liaison():
    """Every public template with Turkish text names the liaison for its Turkish posts,
    instead of letting two English or Spanish speakers approve a text neither can read."""
    pb = _load("medical-tourism")
    public_tr = [tid for tid, t in pb.templates.items()
                 if any("tr" in langs for ch, langs in t.channels.items() if ch != "chat")
                 and t.approval.any_of and "spokesperson_en" in t.approval.any_of]
    assert len(public_tr) >= 5
    for tid in public_tr:
        policy = pb.templates[tid].approval.languages.get("tr")
        assert policy is not None and "partner_liaison" in policy.all_of, tid
