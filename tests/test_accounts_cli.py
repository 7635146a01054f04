"""playbook user ... and playbook token ...: exit codes, what is shown, what is stored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from conftest import ROOT, T0
from engine.accounts import ACCOUNTS, Accounts
from engine.store import open_store

PASSWORD = "correct horse battery"


@pytest.fixture
def run(db, clock):
    """`playbook ...` in-process, with the fixed clock and a cheap Argon2 hasher."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        from cli import main

        result = CliRunner().invoke(main, list(args), obj={"clock": clock, "hasher": hasher}, input=input,
                                    env={"PLAYBOOK_DB": str(db), "PLAYBOOK_ACTOR": "root", **(env or {})},
                                    catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return invoke


def add(run, name="carol", password=PASSWORD, *extra):
    return run("user", "add", name, "--password-stdin", *extra, input=password + "\n")


def log(db) -> list[tuple[str, str, str]]:
    with open_store(db) as store:
        return [(e.type, e.actor, e.data["auth"]) for e in store.events(ACCOUNTS)]


def test_user_add_list_disable_enable(run, db):
    result = add(run, "carol", PASSWORD, "--display-name", "Carol Cruz", "--email", "carol@hospital.example")
    assert result.exit_code == 0, result.output
    assert result.stdout == "added account carol (Carol Cruz)\n"
    assert run("user", "disable", "carol").stdout == "disabled account carol\n"
    listing = run("user", "list").stdout
    assert listing.split() == ["carol", "disabled", "Carol", "Cruz", "<carol@hospital.example>"]
    assert run("user", "enable", "carol", "--as", "dana").exit_code == 0
    users = json.loads(run("user", "list", "--json").stdout)
    assert [(u["name"], u["disabled"], u["locked"]) for u in users] == [("carol", False, False)]
    assert "password_hash" not in users[0]
    assert log(db) == [("UserAdded", "root", "asserted"), ("UserDisabled", "root", "asserted"),
                       ("UserEnabled", "dana", "asserted")]


def test_the_password_prompt_is_hidden_and_confirmed(run, db):
    result = run("user", "add", "carol", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "Repeat for confirmation" in result.stderr
    with open_store(db) as store:
        accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        assert accounts.authenticate_password("carol", PASSWORD, T0).name == "carol"


def test_passwd_sets_a_new_password(run, db):
    add(run)
    result = run("user", "passwd", "carol", "--password-stdin", input="a brand new passphrase\n")
    assert result.exit_code == 0 and result.stdout == "password of carol changed\n"
    assert log(db)[-1] == ("PasswordReset", "root", "asserted")
    missing = run("user", "passwd", "dave", "--password-stdin", input="a brand new passphrase\n")
    assert missing.exit_code == 4 and "no account 'dave'" in missing.stderr


@pytest.mark.parametrize("args, stdin, code, message", [
    (["user", "add", "bob", "--password-stdin"], "short\n", 2, "shorter than 12 characters"),
    (["user", "add", "bob", "--password-stdin"], "", 2, "--password-stdin: standard input is empty"),
    (["user", "add", "bobbobbobbob", "--password-stdin"], "BOBBOBBOBBOB\n", 2, "is the account name"),
    (["user", "add", "system:x", "--password-stdin"], f"{PASSWORD}\n", 2, "reserved for the engine"),
    (["user", "add", "bob", "--password-stdin", "--email", "bob"], f"{PASSWORD}\n", 2, "not an email address"),
    (["user", "add", "bob", "--password-stdin", "--as", " "], f"{PASSWORD}\n", 2, "--as needs a person's name"),
    (["user", "disable", "nobody"], None, 4, "no account 'nobody'"),
    (["token", "create", "nobody", "--label", "x"], None, 4, "no account 'nobody'"),
    (["token", "create", "carol", "--label", "x", "--expires-in", "2y"], None, 2, "--expires-in: '2y' is not"),
    (["token", "create", "carol", "--label", "x", "--expires-in", "400d"], None, 2, "longer than a year"),
    (["token", "create", "carol", "--label", "x", "--scope", "root"], None, 2, "'root' is not one of"),
    (["token", "create", "carol", "--label", ""], None, 2, "needs a label"),
    (["token", "revoke", "feedfeedfeed"], None, 4, "no token 'feedfeedfeed'"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(run, db, args, stdin, code, message):
    add(run)
    result = run(*args, input=stdin)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert log(db) == [("UserAdded", "root", "asserted")]


def test_an_existing_name_is_refused(run):
    add(run)
    result = add(run)
    assert result.exit_code == 5 and "account 'carol' exists already" in result.stderr


def test_a_fixed_identity_is_not_overridden_by_as(run, db):
    result = add(run, "carol", PASSWORD, "--as", "mallory")
    assert result.exit_code == 0
    fixed = run("user", "disable", "carol", "--as", "mallory", env={"PLAYBOOK_ACTOR_FINAL": "1"})
    assert fixed.exit_code == 5 and "you are signed in as 'root'" in fixed.stderr
    assert log(db) == [("UserAdded", "mallory", "asserted")]


def test_token_create_prints_the_secret_once_alone_on_stdout(run, db):
    add(run)
    result = run("token", "create", "carol", "--label", "laptop CLI", "--scope", "approve", "--expires-in", "30d")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("pbk_") and result.stdout.count("\n") == 1
    assert "will not be shown again" in result.stderr and "expires 2026-04-13T09:00:00.000Z" in result.stderr
    listing = run("token", "list")
    assert secret not in listing.output and secret.split("_")[1] in listing.stdout
    assert "carol" in listing.stdout and "approve" in listing.stdout and "last used never" in listing.stdout
    with open_store(db) as store:
        accounts = Accounts(store)
        assert accounts.authenticate_token(secret, T0).scope == "approve"


def test_token_list_json_and_revoke(run, db):
    add(run)
    made = json.loads(run("token", "create", "carol", "--label", "ci", "--json").stdout)
    assert made["token"]["scope"] == "read" and made["secret"].startswith("pbk_")
    token_id = made["token"]["id"]
    result = run("token", "revoke", token_id)
    assert result.exit_code == 0 and result.stdout == f"revoked token {token_id} of carol (ci)\n"
    listed = json.loads(run("token", "list", "--owner", "carol", "--json").stdout)
    assert [(t["id"], t["status"]) for t in listed] == [(token_id, "revoked")]
    assert all("hash" not in t and "secret" not in t for t in listed)
    assert json.loads(run("token", "list", "--owner", "dana", "--json").stdout) == []
    assert log(db)[-1] == ("TokenRevoked", "root", "asserted")


def test_without_the_server_extra_a_password_command_says_what_to_install(db, clock, monkeypatch):
    from cli import main

    monkeypatch.setitem(sys.modules, "argon2", None)  # as if argon2-cffi were not installed
    result = CliRunner().invoke(main, ["user", "add", "carol", "--password-stdin"], input=PASSWORD + "\n",
                                obj={"clock": clock}, env={"PLAYBOOK_DB": str(db), "PLAYBOOK_ACTOR": "root"})
    assert result.exit_code == 2
    assert "accounts need the 'server' extra (argon2-cffi): pip install 'crisis-playbook[server]'" in result.stderr
    assert "Traceback" not in result.output
    assert log(db) == []  # no account was written


def test_listings_create_no_database(run, db):
    assert run("user", "list").stdout == "No accounts. Create the first with: playbook user add NAME\n"
    assert run("token", "list").stdout == "No tokens.\n"
    assert not db.exists()


def test_the_command_groups_load_no_password_library_until_a_password_is_hashed(db):
    probe = ("import sys, cli\ntry:\n    cli.main(sys.argv[1:], standalone_mode=False)\nfinally:\n"
             "    print('ARGON2=' + str('argon2' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, "user", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "", "PLAYBOOK_DB": str(db), "HOME": str(db.parent)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ARGON2=False"


def test_grant_admin_and_revoke_admin_are_recorded_and_shown(run, db):
    """The first administrator is made on the server host, by whoever holds the database."""
    add(run)
    result = run("user", "grant-admin", "carol")
    assert result.exit_code == 0 and result.stdout == "carol is now an administrator\n"
    assert run("user", "grant-admin", "carol").exit_code == 0  # already one: nothing more recorded
    assert run("user", "list").stdout.split()[:3] == ["carol", "active,", "admin"]
    assert json.loads(run("user", "list", "--json").stdout)[0]["admin"] is True
    assert run("user", "revoke-admin", "carol", "--as", "dana").stdout == "carol is no longer an administrator\n"
    assert json.loads(run("user", "list", "--json").stdout)[0]["admin"] is False
    assert log(db) == [("UserAdded", "root", "asserted"), ("AdminGranted", "root", "asserted"),
                       ("AdminRevoked", "dana", "asserted")]


@pytest.mark.parametrize("command", ["grant-admin", "revoke-admin"])
def test_grant_or_revoke_admin_of_an_unknown_account_is_exit_4_and_records_nothing(run, db, command):
    add(run)
    result = run("user", command, "dave")
    assert result.exit_code == 4 and "no account 'dave'" in result.stderr
    assert [t for t, _, _ in log(db)] == ["UserAdded"]


def test_a_disabled_account_cannot_be_made_an_administrator(run, db):
    add(run)
    run("user", "disable", "carol")
    result = run("user", "grant-admin", "carol")
    assert result.exit_code == 5 and "account 'carol' is disabled: enable it" in result.stderr
    assert [t for t, _, _ in log(db)] == ["UserAdded", "UserDisabled"]
