"""Rendering one template: the sandbox's strictness, the render context, the identifier scan."""

from __future__ import annotations

import pytest

from engine.errors import Refused
from engine.posts.channels import CHANNELS, count
from engine.posts.render import context, render_text, scan
from engine.posts.sandbox import MAX_OUTPUT


@pytest.fixture
def state(store, clock, viral):
    """A started viral-complaint incident whose confidential patient_name is set."""
    from engine.incidents import service

    return service.start(
        store, clock, "alice", viral, title="ER wait time complaint",
        inputs={"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x",
                "patient_name": "Jane Doe", "record_number": "MRN 7654321"},
        assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"},
    )


def _withheld(state) -> frozenset[str]:
    return frozenset(k for k, v in state["plan"]["inputs"].items() if v["confidential"])


# -- strictness --------------------------------------------------------------------------


def test_a_missing_variable_is_an_error_that_names_it():
    with pytest.raises(Refused) as info:
        render_text("Hello {{ clinic_name }}", {}, html=False, where="statement/x/en")
    message = str(info.value)
    assert message.startswith("statement/x/en: variable 'clinic_name' has no value")
    assert "--set clinic_name=..." in message
    assert info.value.exit_code == 5


def test_a_missing_attribute_is_an_error_not_an_empty_string():
    with pytest.raises(Refused) as info:
        render_text("{{ incident.nickname }}", {"incident": {"id": "INC-1"}}, html=False, where="t")
    assert str(info.value).startswith("t: the template uses 'nickname', which that value does not have")


def test_plain_values_render_and_surrounding_whitespace_is_trimmed():
    text = render_text("\n  {{ name }} ({{ n }}): {{ tags|join(', ') }}  \n",
                       {"name": "St Mary's", "n": 3, "tags": ["a", "b"]}, html=False, where="t")
    assert text == "St Mary's (3): a, b"


@pytest.mark.parametrize("source, expected", [
    ("{{ 3 }} {{ 2.5 }} {{ true }} {{ none }}", "3 2.5 True None"),
    ("{{ [1, 'a'] }} {{ {'k': 'v'} }}", "[1, 'a'] {'k': 'v'}"),
    ("{{ name ~ ' (' ~ n ~ ')' }}", "St Mary's (3)"),
    ("{{ '%s wards, %d%%' % (name, n) }}", "St Mary's wards, 3%"),
    ("{{ '{} at {}'.format(name, n) }}", "St Mary's at 3"),
    ("{% set ns = namespace(s='') %}{% for i in range(3) %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.s }}", "012"),
    ("{{ (10 ** 6) * (10 ** 6) }}", "1000000000000"),
])
def test_ordinary_expressions_still_work_in_the_sandbox(source, expected):
    assert render_text(source, {"name": "St Mary's", "n": 3}, html=False, where="t") == expected


def test_text_that_merely_resembles_python_is_not_refused():
    ctx = {"url": "https://example.org/form?a=1&method=phone&class=b", "text": "<p class='note'>"}
    assert render_text("Form: {{ url }}", ctx, html=False, where="t") == "Form: " + ctx["url"]
    assert render_text("{{ text }}", ctx, html=True, where="t") == "&lt;p class=&#39;note&#39;&gt;"


def test_the_shared_partials_can_be_imported():
    source = '{% from "partials/common.j2" import signature %}{{ signature("St Mary\'s", "es") }}'
    assert render_text(source, {}, html=False, where="t") == "— Equipo de St Mary's"


def test_a_template_is_compiled_once_and_reused():
    from engine.posts.render import _compiled

    source = "Cached {{ n }}"
    render_text(source, {"n": 1}, html=False, where="t")
    before = _compiled.cache_info().hits
    assert render_text(source, {"n": 2}, html=False, where="t") == "Cached 2"
    assert _compiled.cache_info().hits == before + 1


# -- the context ---------------------------------------------------------------------------


def test_a_public_context_leaves_confidential_inputs_out(state):
    ctx = context(state, public=True)
    assert "patient_name" not in ctx and "record_number" not in ctx
    assert "Jane Doe" not in repr(ctx) and "7654321" not in repr(ctx)
    assert ctx["hospital_name"] == "St Mary's Hospital"
    assert ctx["incident"]["id"] == state["id"] and ctx["incident"]["stage"] == "triage"
    assert ctx["roles"] == {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                           "patient_relations": "petra"}


def test_a_per_render_override_of_a_confidential_input_stays_out_of_a_public_context(state):
    ctx = context(state, public=True, overrides={"patient_name": "Zelda Override"})
    assert "patient_name" not in ctx and "Zelda Override" not in repr(ctx)


def test_using_a_confidential_input_on_a_public_channel_is_refused_by_name(state):
    ctx = context(state, public=True)
    with pytest.raises(Refused) as info:
        render_text("We are sorry, {{ patient_name }}.", ctx, html=False, where="ack/x/en",
                    withheld=_withheld(state))
    assert "confidential input 'patient_name' cannot be used on a public channel" in str(info.value)
    assert "Jane Doe" not in str(info.value)
    assert info.value.exit_code == 5


@pytest.mark.parametrize("channel", ["email", "chat"])
def test_confidential_inputs_are_available_on_private_channels(state, channel):
    assert CHANNELS[channel].public is False
    ctx = context(state, public=CHANNELS[channel].public)
    text = render_text("Dear {{ patient_name }} ({{ record_number }})", ctx, html=False,
                       where=f"t/{channel}/en", withheld=_withheld(state))
    assert text == "Dear Jane Doe (MRN 7654321)"


@pytest.mark.parametrize("channel", ["x", "bluesky", "mastodon", "facebook", "linkedin", "web"])
def test_every_public_channel_gets_the_public_context(state, channel):
    assert "patient_name" not in context(state, public=CHANNELS[channel].public)


def test_the_web_channel_escapes_html_from_an_input():
    ctx = {"hospital_name": "<script>alert('x')</script>"}
    html = render_text("<p>{{ hospital_name }}</p>", ctx, html=CHANNELS["web"].html, where="t/web/en")
    assert html == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
    assert "<script>" not in html
    plain = render_text("{{ hospital_name }}", ctx, html=CHANNELS["x"].html, where="t/x/en")
    assert plain == "<script>alert('x')</script>"  # not HTML: shown as typed


# -- limits -------------------------------------------------------------------------------


def test_output_longer_than_the_limit_is_refused():
    source = "{% for i in range(200) %}{{ 'x' * 1000 }}{% endfor %}"
    with pytest.raises(Refused) as info:
        render_text(source, {}, html=False, where="t/x/en")
    assert f"output is longer than {MAX_OUTPUT} characters" in str(info.value)
    assert "nothing was recorded" in str(info.value)


def test_output_just_under_the_limit_renders():
    text = render_text("{% for i in range(99) %}{{ 'x' * 1000 }}{% endfor %}", {}, html=False, where="t")
    assert len(text) == 99_000


def test_the_process_limits_are_put_back_after_a_render_is_stopped():
    """The time and memory limits are process-wide; a refused render must not leave them set."""
    import resource
    import signal

    before = resource.getrlimit(resource.RLIMIT_AS)
    for source in ("{{ 'a'.center(10**9) }}",
                   "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"):
        with pytest.raises(Refused):
            render_text(source, {}, html=False, where="t")
        assert resource.getrlimit(resource.RLIMIT_AS) == before
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert len("x" * (200 * 2**20)) == 200 * 2**20  # the process may allocate again


def test_a_render_in_another_thread_still_has_the_output_limit():
    import threading

    outcome = {}

    def work():
        try:
            render_text("{% for i in range(200) %}{{ 'x' * 1000 }}{% endfor %}", {}, html=False, where="t")
        except Refused as e:
            outcome["error"] = str(e)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert "output is longer than" in outcome["error"]


# -- identifier scan ---------------------------------------------------------------------------


def _kinds(text: str, extra: dict | None = None) -> set[str]:
    return {h.kind for h in scan(text, extra)}


@pytest.mark.parametrize("text, kind, found", [
    ("Call her on +44 20 7946 0958 today", "phone number", "+44 20 7946 0958"),
    ("Call (555) 123-4567", "phone number", "(555) 123-4567"),
    ("Write to jane.doe@example.org", "email address", "jane.doe@example.org"),
    ("Born 03/04/1985 in Leeds", "date (of birth?)", "03/04/1985"),
    ("DOB 1985-04-03", "date (of birth?)", "1985-04-03"),
    ("Patient MRN 1234567 was seen", "record or account number", "MRN 1234567"),
    ("see record #99812 for details", "record or account number", "record #99812"),
    ("Reference 123456789012", "long number", "123456789012"),
])
def test_scan_finds_obvious_identifiers(text, kind, found):
    hits = scan(text)
    # the reported text may leave out a leading "(" of an area code; the digits are there
    assert any(h.kind == kind and found.endswith(h.text) and len(h.text) >= len(found) - 1
               for h in hits), hits


def test_scan_uses_the_playbooks_extra_patterns():
    extra = {"ward_bed": r"\bbed\s+\d+[A-Z]?\b", "case_ref": r"\bCASE-\d{4}\b"}
    hits = scan("She was in bed 12B; see CASE-2024.", extra)
    assert [(h.kind, h.text) for h in hits] == [("ward_bed", "bed 12B"), ("case_ref", "CASE-2024")]


@pytest.mark.parametrize("text", [
    "Our reply: https://x.com/a/status/1234567890123",
    "Details at https://example-hospital.org/news/2026-03-14/update?id=98765432101",
    "We're sorry to hear about your experience. Please contact us: https://example.org/feedback",
    "Updated at 09:30 on 14 March 2026; 3 wards affected.",
])
def test_scan_does_not_flag_links_or_ordinary_text(text):
    assert scan(text) == []


def test_scan_reports_each_identifier_once():
    hits = scan("jane@example.org, again jane@example.org")
    assert [h.to_json() for h in hits] == [{"kind": "email address", "text": "jane@example.org"}]


def test_an_identifier_next_to_a_link_is_still_found():
    assert _kinds("https://x.com/a/status/1 call +1 555 123 4567") == {"phone number"}


# -- channel length ------------------------------------------------------------------------


def test_x_length_is_weighted_urls_count_23():
    url = "https://example-hospital.org/patients/feedback/a-very-long-path-that-is-over-23"
    c = count("x", f"Details: {url}")
    assert (c.used, c.limit, c.unit) == (len("Details: ") + 23, 280, "weighted characters")
    assert c.fits and str(c) == "32/280"


def test_x_length_counts_cjk_as_two():
    assert count("x", "病院").used == 4
    assert count("x", "a" * 141 + "病院" * 70).fits is False  # 141 + 280


def test_a_rendered_x_post_is_measured_as_x_measures_it(cli):
    """The draft shows the weighted count: the viral acknowledgement's link counts 23."""
    from conftest import VIRAL_START

    inc = "INC-20260314-001"
    assert cli(*VIRAL_START).exit_code == 0
    assert cli("task", inc, "confirm_post").exit_code == 0
    assert cli("advance", inc, "acknowledge").exit_code == 0
    result = cli("render", inc, "public_ack", "--channel", "x", "--lang", "en", "--as", "alice", "--json")
    assert result.exit_code == 0, result.output
    import json

    (post,) = json.loads(result.output)
    assert "https://example-hospital.org/feedback" in post["text"]
    expected = len(post["text"]) - len("https://example-hospital.org/feedback") + 23
    assert post["count"] == {"used": expected, "limit": 280, "unit": "weighted characters",
                             "detail": "", "fits": True}


#: Our corpus of identifiers around the phone-number library: (text, region, every hit
#: expected as (kind, text)). An upgrade of `phonenumbers` that reads one differently fails here.
IDENTIFIER_CORPUS = [
    ("Call 555-0199 now.", "US", [("phone number", "555-0199")]),
    ("Call +1 (555) 555-0199.", "US", [("phone number", "+1 (555) 555-0199")]),
    ("Call (555) 555-0199.", "US", [("phone number", "(555) 555-0199")]),
    ("Call 1-800-555-0199 toll free.", "US", [("phone number", "1-800-555-0199")]),
    ("Call +1 555 555 0199 ext. 4", "US", [("phone number", "+1 555 555 0199 ext. 4")]),
    ("On 2019-03-02 the clinic closed.", "US", [("date (of birth?)", "2019-03-02")]),
    ("On 2019-03-02 the clinic closed.", "GB", [("date (of birth?)", "2019-03-02")]),
    ("Born 02/03/2019.", "US", [("date (of birth?)", "02/03/2019")]),
    ("Call 020 7946 0958.", "GB", [("phone number", "020 7946 0958")]),
    ("Call 020 7946 0958.", "US", [("phone number", "020 7946 0958")]),  # the broad net, another region's format
    ("Call +44 20 7946 0958.", "US", [("phone number", "+44 20 7946 0958")]),
    ("Llame al 911 234 567.", "ES", [("phone number", "911 234 567")]),
    ("Llame al +34 911 234 567.", "US", [("phone number", "+34 911 234 567")]),
    ("Text 07700 900123.", "GB", [("phone number", "07700 900123")]),
    ("Rooms 101-110 are closed in 2019.", "GB", []),
    ("Open 10:30-11:45 today.", "GB", []),
    ("Version 1.2.3 of the form.", "US", []),
    ("Ref 12345678.", "US", [("long number", "12345678")]),
    ("See https://example.org/ward/5550199 for details.", "US", []),
]


@pytest.mark.parametrize("text, region, expected", IDENTIFIER_CORPUS,
                         ids=[f"{region}:{text}" for text, region, _ in IDENTIFIER_CORPUS])
def test_identifier_corpus(text, region, expected):
    assert [(h.kind, h.text) for h in scan(text, region=region)] == expected
