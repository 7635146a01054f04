"""The application layer: a principal instead of a name, token scopes, how people were
authenticated in the log, signed approvals, and the configuration resolved once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml

from conftest import ROOT, T0

INC = "INC-20260314-001"


def _playbook(tmp_path, *, signed: bool) -> str:
    doc = {
        "id": "app-test", "name": "App test", "version": "1",
        "roles": {"lead": {"title": "Lead", "required": True},
                  "spokesperson": {"title": "Spokesperson", "required": True},
                  "comms": {"title": "Comms"}},
        "stages": {"respond": {"title": "Respond", "templates": ["statement"]},
                   "closed": {"title": "Closed", "terminal": True}},
        "transitions": {"close": {"from": "respond", "to": "closed", "roles": ["lead"]}},
        "templates": {"statement": {
            "approval": {"all_of": ["spokesperson"], **({"signed": True} if signed else {})},
            "channels": {"x": {"en": "We are looking into the wait times at our emergency department."}}}},
    }
    path = tmp_path / "app-test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.fixture
def app(tmp_path, clock):
    from engine.app.config import Config
    from engine.app.context import App

    handle = App(Config.resolve({}, db=str(tmp_path / "incidents.db")), clock)
    yield handle
    handle.close()


def _person(name: str, method: str = "password", *, scope: str | None = None, signed_in=T0):
    from engine.app.principal import Principal

    return Principal(name=name, method=method, authenticated_at=signed_in, scope=scope)


def _started(app, tmp_path, *, signed: bool = False):
    from engine.app import incidents, releases

    incidents.start(app, _person("alice"), incidents.StartRequest(
        playbook=_playbook(tmp_path, signed=signed), title="Wait times",
        assign={"lead": "alice", "spokesperson": "bob", "comms": "carol"}))
    drafted = releases.render(app, _person("carol"), releases.RenderRequest(incident=INC, template="statement"))
    return drafted[0]["id"]


def _events(app) -> list:
    return list(app.store(read_only=True).events(INC))


def test_events_record_how_an_authenticated_person_signed_in(app, tmp_path):
    _started(app, tmp_path)
    events = _events(app)
    assert {e.data.get("auth") for e in events} == {"password"}
    assert [e.actor for e in events if e.type == "PostDrafted"] == ["carol"]


def test_an_asserted_name_records_no_authentication(cli):
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    from engine.store import open_store

    store = open_store(cli.db)
    try:
        assert all("auth" not in e.data for e in store.events(INC))
    finally:
        store.close()


def test_a_read_only_token_can_read_but_not_act(app, tmp_path):
    from engine.app import incidents
    from engine.errors import Refused

    _started(app, tmp_path)
    reader = _person("alice", "token", scope="read")
    assert incidents.status(app, reader, INC)["id"] == INC
    before = len(_events(app))
    with pytest.raises(Refused, match="token's scope is read"):
        incidents.note(app, reader, INC, "a note")
    assert len(_events(app)) == before


def test_an_act_token_cannot_approve(app, tmp_path):
    from engine.app import releases
    from engine.errors import Refused

    post = _started(app, tmp_path)
    with pytest.raises(Refused, match="'approve' needs a token"):
        releases.approve(app, _person("bob", "token", scope="act"), INC, post, version=1)


def test_an_approval_on_the_server_is_a_signature_with_its_meaning(app, tmp_path):
    from engine.app import releases

    post = _started(app, tmp_path)
    approved = releases.approve(app, _person("bob", signed_in=T0 - timedelta(minutes=2)), INC, post, version=1)
    assert approved.missing == []
    event = [e for e in _events(app) if e.type == "PostApproved"][0]
    assert event.data["signature"] == {
        "by": "bob", "auth": "password", "authenticated_at": "2026-03-14T08:58:00.000Z",
        "signed_at": "2026-03-14T09:00:00.000Z", "sha256": event.data["sha256"],
        "meaning": "approved for publication on x in en"}


def test_a_signature_needs_a_recent_sign_in(app, tmp_path):
    from engine.app import releases
    from engine.errors import Refused

    post = _started(app, tmp_path)
    before = len(_events(app))
    with pytest.raises(Refused) as refused:
        releases.approve(app, _person("bob", signed_in=T0 - timedelta(minutes=6)), INC, post, version=1)
    assert "sign in again" in " ".join(refused.value.reasons)
    assert len(_events(app)) == before


def test_a_playbook_requiring_signatures_refuses_an_asserted_approval(app, tmp_path, clock):
    from engine.app import releases
    from engine.errors import Refused

    post = _started(app, tmp_path, signed=True)
    with pytest.raises(Refused) as refused:
        releases.approve(app, _person("bob", "asserted"), INC, post, version=1)
    assert "must be signed" in " ".join(refused.value.reasons)
    releases.approve(app, _person("bob"), INC, post, version=1)  # signed in just now: accepted


def test_signed_approvals_verify_and_a_forged_signature_is_refused_by_the_rules(app, tmp_path):
    """verify replays each approval's signature through the same rule."""
    from engine.app import audit, releases
    from engine.audit.rules import audit as replay

    post = _started(app, tmp_path, signed=True)
    releases.approve(app, _person("bob"), INC, post, version=1)
    assert audit.verify(app, _person("auditor"), audit.VerifyRequest(incident=INC)).report.ok
    events = _events(app)
    approval = next(e for e in events if e.type == "PostApproved")
    from dataclasses import replace

    stale = {**approval.data["signature"], "authenticated_at": "2026-03-14T07:00:00.000Z"}
    forged = [replace(e, data={**e.data, "signature": stale}) if e is approval else e for e in events]
    _, problems = replay(forged)
    assert any("sign-in within the last 5 minutes" in p for p in problems)


def test_the_cli_refuses_an_asserted_approval_when_the_playbook_requires_signatures(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    path = _playbook(tmp_path, signed=True)
    for args in (("start", path, "--title", "T", "--assign", "lead=alice", "--assign", "spokesperson=bob",
                  "--assign", "comms=carol", "--as", "alice"),
                 ("render", INC, "statement", "--as", "carol")):
        assert cli(*args).exit_code == 0
    result = cli("approve", INC, "statement/x/en", "--version", "1", "--as", "bob")
    assert result.exit_code == 5
    assert "must be signed: approve on the team server" in result.output


def test_the_engine_below_the_adapters_reads_no_environment():
    """Only the configuration (engine/app/config.py) and the adapters read PLAYBOOK_*."""
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "engine/app/config.py" or rel.startswith(("engine/cli/", "engine/server/")):
            continue
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "getenv(" in text:
            offenders.append(rel)
    assert offenders == []


def test_status_loads_only_what_it_needs(tmp_path, cli):
    """The commands are imported on demand: status never imports the renderer or the report."""
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    code = ("import sys\nfrom cli import main\n"
            "try:\n    main(['status', sys.argv[1], '--db', sys.argv[2], '--as', 'alice'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('jinja2', 'engine.audit.report', 'engine.cli.posts', 'engine.cli.audit') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, INC, str(cli.db)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_every_command_without_running_any(cli):
    from cli import COMMANDS

    result = cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output or f"  {name}\n" in result.output, name
    assert cli("no-such-command").exit_code == 2


def test_help_gives_every_command_its_short_help(cli):
    """The commands' modules load only when one runs, but `--help` still lists each command,
    in order, with the start of its own help text."""
    from cli import COMMANDS, main

    result = cli("--help")
    assert result.exit_code == 0
    listed = [line.split(None, 1) for line in result.output.split("Commands:\n", 1)[1].splitlines() if line.strip()]
    assert [name for name, _ in listed] == list(COMMANDS)
    for name, shown in listed:
        own = main.get_command(None, name).get_short_help_str(limit=1000)
        assert shown.strip() and own.startswith(shown.strip().removesuffix("...")), (name, shown, own)


#: What `status INCIDENT` must not load: the writing side (the service, building and appending
#: events, the index row, the ladders and roster, the policy), the other commands and use
#: cases, and what only reading a playbook needs. Without cached bytecode every module loaded
#: is compiled on each start, which is most of status's start-up time.
NOT_FOR_STATUS = (
    "engine.incidents.service", "engine.incidents.act", "engine.incidents.index", "engine.incidents.policy",
    "engine.incidents.machine", "engine.incidents.monitors", "engine.incidents.event_types",
    "engine.clocks.ladder", "engine.clocks.roster", "engine.clocks.breaches",
    "engine.cli.incidents", "engine.cli.clocks", "engine.app.incidents", "engine.app.starting",
    "engine.app.remote", "engine.diagnostics", "engine.format.loader", "engine.posts", "engine.audit",
)


def test_status_loads_no_writing_code(tmp_path, cli):
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    code = ("import sys\nfrom cli import main\n"
            "try:\n    main(['status', sys.argv[1], '--db', sys.argv[2], '--as', 'alice'])\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({NOT_FOR_STATUS!r})))")
    out = subprocess.run([sys.executable, "-c", code, INC, str(cli.db)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={"PATH": "", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "Stage:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_due_json_keeps_its_shape(cli):
    """`due --json` is built from the application's typed result."""
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    result = cli("due", "--json", "--no-record")
    assert set(json.loads(result.output)) == {"items", "recorded", "notified", "climbed"}


def test_render_and_edit_read_the_recorded_writing_plan_instead_of_parsing_the_playbook(app, tmp_path, monkeypatch):
    """Starting records what rendering needs; render and edit never parse the pinned YAML again."""
    from engine.format import loader
    from engine.app import releases

    post = _started(app, tmp_path)
    parsed = []
    monkeypatch.setattr(loader, "load_playbook_text", lambda *a, **k: parsed.append(a) or None)
    releases.render(app, _person("carol"), releases.RenderRequest(incident=INC, template="statement"))
    releases.edit(app, _person("carol"), INC, post, text="We are looking into the wait times today.")
    assert parsed == []
    started = _events(app)[0]
    assert [tid for tid, _ in started.data["writing"]["templates"]] == ["statement"]
