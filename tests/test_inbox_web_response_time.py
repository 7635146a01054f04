"""The live response-time figure: the median time to first reply over the last hour, the
share within target and the longest current wait, from the API (signed in) and, where the
configuration turns it on, a public page showing the figure alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("fastapi")

from server_support import Server, cheap_hasher  # noqa: E402
from test_x_bridge import INCIDENT, REPLYING  # noqa: E402

POSTED = {"M1": "08:10", "M2": "08:50", "M3": "08:55", "M4": "07:00"}


def _ok(cli, *args):
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


def _reply(cli, message):
    post = f"answer/x/en/{message}"
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", message)
    _ok(cli, "approve", INCIDENT, post, "--version", "1", "--as", "bob")
    _ok(cli, "publish", INCIDENT, post)


@pytest.fixture
def answered(cli, clock, tmp_path):
    """At 09:30: M1 answered at 09:20 (after 70m), M2 and M3 at 09:30 (after 40m and 35m),
    M4 waiting since 07:00; the target is 60m. A drill's answered message is left out."""
    pb = tmp_path / "replying-x.yaml"
    pb.write_text(REPLYING, encoding="utf-8")
    for command in ("start", "drill"):
        _ok(cli, command, str(pb), "--title", "Complaints on X", "--assign", "lead=alice",
            "--assign", "spokesperson=bob")
    for m, at in POSTED.items():
        _ok(cli, "inbound", "add", INCIDENT, "--source", "x", "--source-id", m, "--author", "@patient",
            "--text", f"complaint {m}", "--posted-at", f"2026-03-14T{at}:00Z")
    _ok(cli, "inbound", "add", "DRILL-20260314-001", "--source", "x", "--text", "drill complaint",
        "--posted-at", "2026-03-14T06:00:00Z")
    clock.advance(timedelta(minutes=20))
    _reply(cli, "M1")
    clock.advance(timedelta(minutes=10))
    _reply(cli, "M2")
    _reply(cli, "M3")
    return clock


def test_the_api_answers_the_figure_over_the_last_hour(answered, tmp_path):
    server = Server(tmp_path, answered)
    server.add_people("alice")
    r = server.call("GET", "/response-time", "alice", scope="read")
    assert r.status_code == 200, r.text
    assert r.json() == {"as_of": "2026-03-14T09:30:00.000Z", "window_seconds": 3600, "answered": 3,
                        "median_response_seconds": 2400, "with_target": 3, "within_target": 2,
                        "share_within_target": 0.6667, "waiting": 1, "longest_wait_seconds": 9000}
    answered.advance(timedelta(minutes=55))  # 10:25: M1's reply (09:20) is out of the hour
    later = server.call("GET", "/response-time", "alice").json()
    assert (later["answered"], later["median_response_seconds"], later["share_within_target"]) == (2, 2250, 1.0)
    assert later["longest_wait_seconds"] == 12300
    assert server.client.get("/api/v1/response-time").status_code == 401


def test_with_nothing_answered_the_figure_says_so(tmp_path, clock):
    server = Server(tmp_path, clock)
    server.add_people("alice")
    assert server.call("GET", "/response-time", "alice").json() == {
        "as_of": "2026-03-14T09:00:00.000Z", "window_seconds": 3600, "answered": 0, "median_response_seconds": None,
        "with_target": 0, "within_target": 0, "share_within_target": None, "waiting": 0,
        "longest_wait_seconds": None}


def _public_app(tmp_path, clock, switch: str):
    from fastapi.testclient import TestClient

    from engine.app.config import Config
    from engine.server.app import create_app

    config = Config.resolve({"PLAYBOOK_PUBLIC_RESPONSE_TIME": switch, "PLAYBOOK_OUTBOX": str(tmp_path / "outbox")},
                            db=str(tmp_path / "incidents.db"))
    return TestClient(create_app(config, clock, hasher=cheap_hasher()), base_url="http://127.0.0.1")


def test_the_public_page_shows_the_figure_alone_when_turned_on(answered, tmp_path):
    page = _public_app(tmp_path, answered, "1").get("/public/response-time")
    assert page.status_code == 200
    assert "we answered messages in <strong>40m</strong> (median of 3)" in page.text
    assert "67% of them within our target" in page.text
    assert "The longest a message is waiting now: 2h30m." in page.text
    assert "@patient" not in page.text and "complaint" not in page.text and INCIDENT not in page.text


def test_the_public_page_does_not_exist_unless_turned_on(answered, tmp_path):
    for switch in ("", "0", "off"):
        page = _public_app(tmp_path, answered, switch).get("/public/response-time")
        assert page.status_code == 404
        assert "the response time is not published here" in page.text and "40m" not in page.text


def test_a_switch_that_is_neither_on_nor_off_is_refused(tmp_path):
    from engine.app.config import Config
    from engine.errors import UsageError

    with pytest.raises(UsageError) as e:
        Config.resolve({"PLAYBOOK_PUBLIC_RESPONSE_TIME": "maybe"}, db=str(tmp_path / "incidents.db"))
    assert e.value.message == "PLAYBOOK_PUBLIC_RESPONSE_TIME: 'maybe' is not 1 (on) or 0 (off)"
    assert e.value.exit_code == 2
