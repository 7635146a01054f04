"""The account log is audited like an incident's: verify checks it, tampering shows, and
neither a password nor a token's secret is stored anywhere."""

from __future__ import annotations

import json
import sqlite3

import pytest
from argon2 import PasswordHasher

from conftest import T0, VIRAL_START
from engine.accounts import ACCOUNTS, Accounts
from engine.app.principal import Principal
from engine.errors import AuthenticationFailed
from engine.store import open_store

ADMIN = Principal.asserted("root")
PASSWORD = "correct horse battery"


def accounts_in(store) -> Accounts:
    return Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def secret(db) -> str:
    """carol and dana with passwords, and a token of carol's; returns its secret."""
    with open_store(db) as store:
        accounts = accounts_in(store)
        accounts.add_user(ADMIN, "carol", PASSWORD, T0, email="carol@hospital.example")
        accounts.add_user(ADMIN, "dana", "dana's own passphrase", T0)
        made, _ = accounts.create_token(ADMIN, "carol", "laptop", "approve", T0)
        accounts.authenticate_token(made, T0)
        accounts.authenticate_password("carol", PASSWORD, T0)
    return made


def stored_bytes(db) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


def edit(db, *statements: str) -> None:
    """Change the database behind the store's back (the triggers dropped first)."""
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER IF EXISTS events_no_update")
    raw.execute("DROP TRIGGER IF EXISTS events_no_delete")
    for sql in statements:
        raw.execute(sql)
    raw.commit()
    raw.close()


def test_no_password_and_no_token_secret_is_stored_anywhere(db, secret):
    data = stored_bytes(db)
    assert b"correct horse" not in data and b"own passphrase" not in data
    assert secret.encode() not in data and secret.split("_", 2)[2].encode() not in data
    with open_store(db) as store:
        rows = "\n".join(json.dumps(r) for r in store.rows())  # what verify and an export read
        state = json.dumps(store.stream(ACCOUNTS).state)
    for text in (rows, state):
        assert PASSWORD not in text and secret not in text and secret.split("_", 2)[2] not in text
    assert "$argon2id$" in rows  # the hash is logged, so a rebuild from the log keeps it


def test_the_account_log_verifies_and_is_covered_by_checkpoints(cli, db, secret):
    cli(*VIRAL_START)
    result = cli("verify", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["incidents"] == 1 and report["account_events"] == 3
    assert report["checkpoint"]["heads"][ACCOUNTS]["seq"] == 3
    assert cli("list", "--all").stdout.count("INC-") == 1


def test_an_edited_account_event_is_reported_by_verify(cli, db, secret):
    edit(db, "UPDATE events SET data = replace(data, 'carol@hospital', 'mallory@evil') "
             f"WHERE incident = '{ACCOUNTS}' AND seq = 1")
    result = cli("verify")
    assert result.exit_code == 7
    assert f"incident {ACCOUNTS} event 1: hash does not match its content (modified?)" in result.stderr


def test_a_password_hash_swapped_in_the_projection_is_reported_by_verify(cli, db, secret):
    with open_store(db) as store:
        state = store.stream(ACCOUNTS).state
    users = state["users"]
    users["carol"]["password_hash"] = users["dana"]["password_hash"]  # carol's account, dana's password
    edit(db, "UPDATE snapshots SET state = '" + json.dumps(state).replace("'", "''") +
         f"' WHERE incident = '{ACCOUNTS}'")
    result = cli("verify")
    assert result.exit_code == 7
    assert "the account log: the stored accounts (users, password hashes, tokens) differ" in result.stderr


def test_a_truncated_account_log_is_reported_against_the_checkpoint(cli, db, secret):
    assert cli("verify").exit_code == 0  # signs a checkpoint: the account log's head is seq 3
    with open_store(db) as store:
        events = list(store.events(ACCOUNTS))
    second = events[1]
    rewound = json.dumps({**store_state_after(events[:2])}).replace("'", "''")
    edit(db, f"DELETE FROM events WHERE incident = '{ACCOUNTS}' AND seq = 3",
         f"UPDATE snapshots SET seq = 2, head = '{second.hash}', state = '{rewound}' WHERE incident = '{ACCOUNTS}'")
    result = cli("verify")
    assert result.exit_code == 7
    assert f"incident {ACCOUNTS}: log ends at seq 2 but checkpoint" in result.stderr
    assert "(truncated?)" in result.stderr


def store_state_after(events) -> dict:
    from engine.accounts.log import replay

    return replay(events)


def test_incident_commands_do_not_reach_the_account_log(cli, secret):
    for command in (["status", ACCOUNTS], ["log", ACCOUNTS], ["note", ACCOUNTS, "hello"],
                    ["export", ACCOUNTS], ["verify", ACCOUNTS]):
        result = cli(*command)
        assert result.exit_code == 4, command
        assert f"no incident '{ACCOUNTS}'" in result.stderr
    assert cli("list", "--all").stdout.strip() == "No incidents."


def test_db_copy_carries_the_accounts_and_they_verify_there(cli, db, secret, tmp_path):
    target = tmp_path / "copy.db"
    result = cli("db", "copy", str(db), str(target))
    assert result.exit_code == 0, result.output
    with open_store(target) as copied:
        accounts = accounts_in(copied)
        assert accounts.authenticate_password("carol", PASSWORD, T0).name == "carol"
        assert accounts.authenticate_token(secret, T0).scope == "approve"
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate_password("dana", PASSWORD, T0)
