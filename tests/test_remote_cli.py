"""The command line as a client of the team server: the README's walkthrough gives the
same output and exit codes through a real server on loopback as on a local database;
identity comes from the token, never from --as; the token is kept private."""

from __future__ import annotations

import json
import re
import stat
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from click.testing import CliRunner  # noqa: E402

from conftest import ROOT, T0  # noqa: E402
from server_support import Server  # noqa: E402

README_PEOPLE = ("alice", "bob", "carol", "dana", "erin", "dave")


def readme_commands() -> list[list[str]]:
    """Every `$ playbook ...` line of the README's console blocks, in order (the same
    lines tests/test_readme.py runs on a local database)."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for block in re.findall(r"```console\n(.*?)```", text, flags=re.S) for line in block.splitlines()]
    return [shlex.split(line[2:].partition("#")[0])[1:] for line in lines if line.startswith("$ playbook ")]


class Uvicorn:
    """The team server's app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            self.thread.join(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


@pytest.fixture
def team(tmp_path):
    """A server over a tmp SQLite database on a fixed clock, its people with tokens."""
    from engine.clock import FixedClock

    folder = tmp_path / "server"
    folder.mkdir()
    server = Server(folder, FixedClock(T0))
    server.add_people(*README_PEOPLE)
    served = Uvicorn(server.app)
    server.url = served.url
    yield server
    served.stop()
    server.client.close()


def run(args, *, env: dict, clock=None, input: str | None = None):
    from cli import main
    from engine.clock import FixedClock

    clock = clock or FixedClock(T0)
    result = CliRunner().invoke(main, list(args), obj={"clock": clock}, env=env, input=input,
                                catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def acting(args: list[str]) -> str:
    """Who a README command acts as: its --as, else alice (readers need a token too)."""
    return args[args.index("--as") + 1] if "--as" in args else "alice"


def walkthrough(folder, env_for, clock) -> list[tuple[list[str], int, str, str]]:
    """Every `$ playbook ...` line of the README run in order in `folder`: (args, exit
    code, stdout, stderr), with the run's own folder written as <RUN>."""
    import os

    (folder / "playbooks").symlink_to(ROOT / "playbooks")
    before = os.getcwd()
    os.chdir(folder)
    try:
        out = []
        for args in readme_commands():
            result = run(args, env=env_for(args), clock=clock)
            shown = [text.replace(str(folder), "<RUN>") for text in (result.stdout, result.stderr)]
            out.append((args, result.exit_code, *shown))
        return out
    finally:
        os.chdir(before)


def test_the_readme_walkthrough_is_the_same_through_the_server_as_on_a_local_database(tmp_path, team):
    from engine.clock import FixedClock

    local_run, remote_run = tmp_path / "local", tmp_path / "remote"
    local_run.mkdir()
    remote_run.mkdir()
    local_env = {"PLAYBOOK_DB": str(local_run / "incidents.db"), "PLAYBOOK_OUTBOX": str(local_run / "outbox"),
                 "PLAYBOOK_KEY": str(local_run / "signing.key")}
    # the server's outbox: where the local run keeps its own, so the messages can match
    team.config = team.app.state.config = _with_outbox(team.app.state.config, remote_run / "outbox")
    local = walkthrough(local_run, lambda args: local_env, FixedClock(T0))
    remote = walkthrough(remote_run, lambda args: {"PLAYBOOK_SERVER": team.url,
                                                   "PLAYBOOK_TOKEN": team.token(acting(args))}, team.clock)
    assert len(local) == len(remote) >= 20
    for (args, code, out, err), (_, r_code, r_out, r_err) in zip(local, remote):
        assert (r_code, r_err) == (code, err), args
        if args[:1] == ["verify"] and "INC-" not in " ".join(args):
            # every incident verifies; the server's count also has its account log's events
            out, r_out = (re.sub(r"OK: \d+ events", "OK: N events", t) for t in (out, r_out))
        assert r_out == out, args
    assert [code for _, code, _, _ in remote].count(5) == 3  # the README's three promised refusals
    assert list((remote_run / "outbox").rglob("public_ack.x.en.v1.json"))
    assert (remote_run / "checkpoint.json").is_file() and (remote_run / "audit-bundle.zip").is_file()
    by_actor = {(e.actor, e.data.get("auth")) for e in team.events("INC-20260314-001")}
    assert by_actor == {("alice", "token"), ("bob", "token"), ("carol", "token")}


def _with_outbox(config, folder):
    from dataclasses import replace

    return replace(config, outbox=folder)


def test_events_made_on_a_local_database_say_asserted_and_carry_no_auth(cli, tmp_path):
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    from engine.store import open_store

    store = open_store(cli.db)
    try:
        events = list(store.events("INC-20260314-001"))
    finally:
        store.close()
    assert events and all("auth" not in e.data for e in events)


# -- login, logout, whoami ---------------------------------------------------------------


def _client_file(config_home):
    return config_home / "crisis-playbook" / "client.json"


def test_login_saves_the_token_for_its_owner_only_and_whoami_names_the_account(tmp_path, team):
    home = tmp_path / "home-config"
    env = {"XDG_CONFIG_HOME": str(home)}
    secret = team.token("bob")
    result = run(["login", "--server", team.url, "--token-stdin"], env=env, clock=team.clock, input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert f"Signed in to {team.url} as bob" in result.stdout
    saved = _client_file(home)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert json.loads(saved.read_text()) == {"server": team.url, "token": secret, "name": "bob"}
    who = run(["whoami"], env=env, clock=team.clock)
    assert who.exit_code == 0 and who.stdout == f"bob on {team.url} (signed in by token, token scope approve)\n"
    assert secret not in result.output + who.output
    out = run(["logout"], env=env, clock=team.clock)
    assert out.exit_code == 0 and "keeps working until it is revoked" in out.stdout
    assert not saved.exists()
    again = run(["whoami"], env={**env, "PLAYBOOK_ACTOR": "bob"}, clock=team.clock)
    assert again.stdout.startswith("bob (asserted, not authenticated: the local database ")


def test_login_asks_for_the_token_without_echoing_it(tmp_path, team):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "c")}
    secret = team.token("carol")
    result = run(["login", "--server", team.url], env=env, clock=team.clock, input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert "Personal API token:" in result.stdout and secret not in result.output


def test_after_login_the_commands_go_to_the_server_as_the_token_s_account(tmp_path, team):
    home = tmp_path / "c"
    env = {"XDG_CONFIG_HOME": str(home), "PLAYBOOK_DB": str(tmp_path / "local.db")}
    run(["login", "--server", team.url, "--token-stdin"], env=env, clock=team.clock, input=team.token("alice"))
    started = run(["start", "viral-complaint", "--title", "Complaint", "--set", "complaint_url=https://x.com/p/1",
                   "--set", "complaint_channel=x", "--assign", "incident_lead=alice", "--assign", "spokesperson=bob",
                   "--assign", "compliance=dana", "--assign", "patient_relations=erin"], env=env, clock=team.clock)
    assert started.exit_code == 0, started.output
    assert started.stdout.startswith("Started INC-20260314-001.")
    assert {(e.actor, e.data.get("auth")) for e in team.events()} == {("alice", "token")}
    assert not (tmp_path / "local.db").exists()  # nothing was written locally
    listed = run(["list"], env=env, clock=team.clock)
    assert listed.exit_code == 0 and "INC-20260314-001" in listed.stdout


# -- what the client refuses, and how it fails --------------------------------------------


def test_as_another_name_is_refused_with_a_server(team):
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("carol")}
    result = run(["status", "INC-20260314-001", "--as", "bob"], env=env, clock=team.clock)
    assert result.exit_code == 2
    assert ("--as 'bob': you are signed in to " + team.url + " as 'carol'; the server does not accept asserted "
            "names") in result.stderr
    same = run(["status", "INC-20260314-001", "--as", "carol"], env=env, clock=team.clock)
    assert same.exit_code == 4  # accepted as carol; the incident does not exist


def test_a_bad_token_is_exit_5_with_the_server_s_message(tmp_path, team):
    from engine.errors import AuthenticationFailed

    secret = "pbk_" + "x" * 43
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": secret}
    result = run(["list"], env=env, clock=team.clock)
    assert result.exit_code == 5
    assert result.stderr == f"error: {AuthenticationFailed.MESSAGE}\n"
    login = run(["login", "--server", team.url, "--token-stdin"], env={"XDG_CONFIG_HOME": str(tmp_path / "c")},
                clock=team.clock, input=secret)
    assert login.exit_code == 5 and secret not in login.output
    assert not _client_file(tmp_path / "c").exists()


def test_a_server_that_cannot_be_reached_is_exit_8_naming_the_server_not_the_token(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    secret = "pbk_secret-never-shown"
    for args in (["list"], ["status", "INC-1"], ["drafts", "INC-1"]):
        result = run(args, env={"PLAYBOOK_SERVER": url, "PLAYBOOK_TOKEN": secret})
        assert result.exit_code == 8, result.output
        assert result.stderr.startswith(f"error: cannot reach the server {url}")
        assert secret not in result.output


def test_a_local_playbook_file_the_server_has_not_is_refused(tmp_path, team):
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("alice")}
    mine = tmp_path / "our-own.yaml"
    mine.write_text((ROOT / "playbooks" / "viral-complaint.yaml").read_text())
    result = run(["start", str(mine), "--title", "t"], env=env, clock=team.clock)
    assert result.exit_code == 2
    assert "starts only playbooks of its library, and has none named 'our-own'" in result.stderr
    changed = tmp_path / "viral-complaint.yaml"
    changed.write_text((ROOT / "playbooks" / "viral-complaint.yaml").read_text() + "\n# edited\n")
    result = run(["start", str(changed), "--title", "t"], env=env, clock=team.clock)
    assert result.exit_code == 2 and "differs from the playbook 'viral-complaint'" in result.stderr
    assert team.events() == []


def test_an_unknown_library_name_is_not_found_with_the_names_there_are(team):
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("alice")}
    result = run(["start", "no-such-playbook", "--title", "t"], env=env, clock=team.clock)
    assert result.exit_code == 4
    assert "no playbook 'no-such-playbook' in the library (there are: " in result.stderr


@pytest.mark.parametrize("url, why", [
    ("ftp://example.org", "give the server's address"),
    ("http://playbook.example.org", "use https://"),
    ("not a url", "give the server's address"),
])
def test_login_refuses_a_server_address_that_is_not_one_or_not_private(tmp_path, url, why):
    result = run(["login", "--server", url, "--token-stdin"], env={"XDG_CONFIG_HOME": str(tmp_path)},
                 clock=None, input="pbk_x")
    assert result.exit_code == 2 and why in result.stderr
    assert not _client_file(tmp_path).exists()


def test_a_server_without_a_token_in_the_environment_is_a_usage_error():
    result = run(["list"], env={"PLAYBOOK_SERVER": "http://127.0.0.1:9", "PLAYBOOK_TOKEN": ""})
    assert result.exit_code == 2 and "PLAYBOOK_TOKEN is empty" in result.stderr


def test_a_damaged_saved_sign_in_is_named_and_can_be_removed(tmp_path):
    saved = _client_file(tmp_path)
    saved.parent.mkdir(parents=True)
    saved.write_text("{not json")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    result = run(["list"], env=env)
    assert result.exit_code == 2 and "not a saved sign-in" in result.stderr and "playbook logout" in result.stderr
    assert run(["logout"], env=env).exit_code == 0 and not saved.exists()


def test_an_empty_playbook_server_works_locally_whatever_was_saved(tmp_path, cli):
    saved = _client_file(tmp_path / "c")
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"server": "http://127.0.0.1:9", "token": "pbk_x", "name": "alice"}))
    result = run(["list"], env={"XDG_CONFIG_HOME": str(tmp_path / "c"), "PLAYBOOK_SERVER": "",
                                "PLAYBOOK_DB": str(tmp_path / "i.db")})
    assert result.exit_code == 0 and result.stdout == "No incidents.\n"


def test_the_server_s_refusal_keeps_its_reasons_and_exit_code(team):
    from conftest import VIRAL_START

    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("alice")}
    args = [a.replace(str(ROOT / "playbooks" / "viral-complaint.yaml"), "viral-complaint") for a in VIRAL_START]
    assert run(args, env=env, clock=team.clock).exit_code == 2  # cora and petra have no accounts here
    args = [a.replace("cora", "dana").replace("petra", "erin") for a in args]
    assert run(args, env=env, clock=team.clock).exit_code == 0
    refused = run(["advance", "INC-20260314-001", "acknowledge"], env=env, clock=team.clock)
    assert refused.exit_code == 5
    assert refused.stderr.startswith("error: ") and "\n  - " in refused.stderr and "confirm_post" in refused.stderr


def _approved_ack(team, env) -> None:
    """The README's incident through the server, up to bob's approval of public_ack/x/en."""
    for args, who in (
            (["start", "viral-complaint", "--title", "t", "--set", "complaint_url=https://x.com/p/1", "--set",
              "complaint_channel=x", "--assign", "incident_lead=alice", "--assign", "spokesperson=bob",
              "--assign", "compliance=dana", "--assign", "patient_relations=erin"], "alice"),
            (["assign", "INC-20260314-001", "social_media", "carol"], "alice"),
            (["task", "INC-20260314-001", "confirm_post"], "alice"),
            (["advance", "INC-20260314-001", "acknowledge"], "alice"),
            (["render", "INC-20260314-001", "public_ack", "--channel", "x", "--lang", "en"], "carol"),
            (["approve", "INC-20260314-001", "public_ack/x/en", "--version", "1"], "bob")):
        result = run(args, env={**env, "PLAYBOOK_TOKEN": team.token(who)}, clock=team.clock)
        assert result.exit_code == 0, (args, result.output)


def test_a_delivery_that_fails_after_publishing_still_says_what_was_published(tmp_path, team):
    from dataclasses import replace

    destinations = tmp_path / "destinations.yaml"
    destinations.write_text('x: ["json://127.0.0.1:9/hook"]\n', encoding="utf-8")
    team.app.state.config = replace(team.app.state.config, destinations=destinations)
    env = {"PLAYBOOK_SERVER": team.url}
    _approved_ack(team, env)
    result = run(["publish", "INC-20260314-001", "public_ack/x/en"],
                 env={**env, "PLAYBOOK_TOKEN": team.token("carol")}, clock=team.clock)
    assert result.exit_code == 10
    assert result.stdout.startswith("INC-20260314-001: public_ack/x/en v1 published to ")
    assert "published (outbox) but delivery failed" in result.stderr and "playbook deliver" in result.stderr


def test_commands_on_a_database_of_this_machine_refuse_while_signed_in(tmp_path, team):
    home = tmp_path / "c"
    env = {"XDG_CONFIG_HOME": str(home), "PLAYBOOK_DB": str(tmp_path / "local.db")}
    run(["login", "--server", team.url, "--token-stdin"], env=env, clock=team.clock, input=team.token("alice"))
    result = run(["user", "list"], env=env, clock=team.clock)
    assert result.exit_code == 2
    assert f"signed in to {team.url}: run it with PLAYBOOK_SERVER= (empty)" in result.stderr
    assert not (tmp_path / "local.db").exists()
    local = run(["user", "list"], env={**env, "PLAYBOOK_SERVER": ""}, clock=team.clock)
    assert local.exit_code == 0, local.output


def test_verify_against_a_local_checkpoint_or_key_is_refused_with_a_server(tmp_path, team):
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("alice")}
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text("{}")
    result = run(["verify", "--checkpoint", str(checkpoint)], env=env, clock=team.clock)
    assert result.exit_code == 2 and "verify --bundle FILE" in result.stderr


def test_key_prints_the_server_s_public_key(team):
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("dave", "read")}
    result = run(["key"], env=env, clock=team.clock)
    assert result.exit_code == 0
    assert result.stdout == team.call("GET", "/key", "dave", scope="read").text
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----")


START = ["viral-complaint", "--set", "complaint_url=https://x.com/p/1", "--set", "complaint_channel=x",
         "--assign", "incident_lead=alice", "--assign", "spokesperson=bob", "--assign", "compliance=dana",
         "--assign", "patient_relations=erin"]


def both_ways(tmp_path, team, steps, between=None) -> dict:
    """`steps` ((args, who) pairs) run on a local database and through the server, each
    on its fixed clock: {mode: [(command, exit code, stdout, stderr)]}. `between(n,
    clock)` runs before step n (to move the clock)."""
    from engine.clock import FixedClock

    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "viral-complaint.yaml").symlink_to(ROOT / "playbooks" / "viral-complaint.yaml")
    local_env = {"PLAYBOOK_DB": str(tmp_path / "local.db"), "PLAYBOOK_OUTBOX": str(tmp_path / "outbox")}
    outputs = {}
    for mode, clock in (("local", FixedClock(T0)), ("remote", team.clock)):
        outputs[mode] = []
        for n, (args, who) in enumerate(steps):
            if between is not None:
                between(n, clock)
            if mode == "local":
                args = [str(tmp_path / "library" / "viral-complaint.yaml") if a == "viral-complaint" else a
                        for a in args]
                env = {**local_env, "PLAYBOOK_ACTOR": who}
            else:
                env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token(who)}
            result = run(args, env=env, clock=clock)
            outputs[mode].append((args[0], result.exit_code, result.stdout, result.stderr))
    return outputs


def test_due_and_drill_summary_are_the_same_through_the_server(tmp_path, team):
    from datetime import timedelta

    steps = [(["drill", *START, "--title", "Tabletop"], "alice"),
             (["start", *START, "--title", "Real"], "alice"),
             (["advance-clock", "DRILL-20260314-001", "90m"], "alice"),
             (["due", "--no-record", "--within", "2h"], "alice"),
             (["due"], "alice"),
             (["drill-summary", "DRILL-20260314-001"], "alice"),
             (["list", "--all"], "alice")]

    def later(n, clock):
        if n == 3:
            clock.advance(timedelta(minutes=75))  # the real incident's first post is now overdue

    outputs = both_ways(tmp_path, team, steps, later)
    assert outputs["remote"] == outputs["local"]
    assert [code for _, code, _, _ in outputs["remote"]][3:5] == [9, 9]
    assert "OVERDUE" in outputs["remote"][3][2]


def test_the_other_incident_and_post_commands_are_the_same_through_the_server(tmp_path, team):
    inc, post = "INC-20260314-001", "public_ack/x/en"
    steps = [(["start", *START, "--title", "Real", "--json"], "alice"),
             (["assign", inc, "social_media", "carol", "--json"], "alice"),
             (["set", inc, "severity=high"], "alice"),
             (["task", inc, "confirm_post"], "alice"),
             (["task", inc, "confirm_post", "--undone"], "alice"),
             (["task", inc, "confirm_post"], "alice"),
             (["advance", inc, "acknowledge", "--reason", "seen", "--json"], "alice"),
             (["render", inc, "public_ack", "--channel", "x", "--lang", "en", "--json"], "carol"),
             (["edit", inc, post, "--text", "We are sorry. Please contact us privately."], "carol"),
             (["reject", inc, post, "--reason", "too short", "--version", "2"], "bob"),
             (["approve", inc, post, "--version", "2"], "bob"),
             (["drafts", inc, "--json"], "alice"),
             (["unassign", inc, "social_media", "carol"], "alice"),
             (["note", inc, "a note"], "carol"),
             (["close", inc], "alice"),
             (["reopen", inc], "alice"),
             (["status", inc, "--json"], "dave"),
             (["status", "--json"], "dave"),
             (["status"], "dave"),
             (["outbox", "rebuild"], "dave"),
             (["advance", "INC-20990101-001", "acknowledge"], "alice"),
             (["approve", inc, "no/such/post", "--version", "1"], "bob")]
    outputs = both_ways(tmp_path, team, steps)
    for local, remote in zip(outputs["local"], outputs["remote"]):
        assert remote == local
    codes = [code for _, code, _, _ in outputs["remote"]]
    assert codes[-2:] == [4, 4] and 5 in codes and codes[:9] == [0] * 9


@pytest.mark.parametrize("secret", ["pbk_caf\u00e9", "pbk_a b", "pbk_\u0007"])
def test_a_token_that_cannot_be_one_is_a_usage_error_without_showing_it(team, secret):
    result = run(["list"], env={"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": secret})
    assert result.exit_code == 2 and "not a personal API token" in result.stderr
    assert secret not in result.output
