"""Helpers for the team-server tests: an app on a tmp database with a fixed clock,
accounts made through the account book, and a client that signs in as each of them."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT

VIRAL_BODY = {
    "playbook": "viral-complaint", "title": "ER wait time complaint",
    "inputs": {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
    "assign": {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
               "patient_relations": "petra"},
}
PEOPLE = ("alice", "bob", "carol", "cora", "petra", "dave")
PASSWORD = "correct horse battery staple"
INC = "INC-20260314-001"


def cheap_hasher():
    """Argon2id with test-sized parameters (the default is the RFC 9106 profile)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Server:
    """The app over `db`, its accounts, and tokens made for them."""

    def __init__(self, tmp_path: Path, clock, *, library: Path | None = None, oidc: Path | None = None) -> None:
        from fastapi.testclient import TestClient

        from engine.app.config import Config
        from engine.server.app import create_app

        self.tmp = tmp_path
        self.clock = clock
        self.db = tmp_path / "incidents.db"
        env = {"PLAYBOOK_OUTBOX": str(tmp_path / "outbox"), "PLAYBOOK_KEY": str(tmp_path / "signing.key")}
        if library is not None:
            env["PLAYBOOK_LIBRARY"] = str(library)
        if oidc is not None:
            env["PLAYBOOK_OIDC"] = str(oidc)
        self.config = Config.resolve(env, db=str(self.db))
        self.app = create_app(self.config, clock, hasher=cheap_hasher())
        self.client = TestClient(self.app, base_url="http://127.0.0.1")
        self.tokens: dict[tuple[str, str], str] = {}

    def accounts(self):
        from engine.accounts.book import Accounts

        return Accounts(self.app.state.stores.get(), hasher=cheap_hasher())

    def add_people(self, *names: str) -> None:
        from engine.app.principal import Principal

        admin = Principal.asserted("admin")
        book = self.accounts()
        for name in names or PEOPLE:
            book.add_user(admin, name, PASSWORD, self.clock.now())

    def token(self, name: str, scope: str = "approve") -> str:
        from engine.app.principal import Principal

        if (name, scope) not in self.tokens:
            secret, _ = self.accounts().create_token(Principal.asserted("admin"), name, f"{name}-{scope}", scope,
                                                     self.clock.now())
            self.tokens[(name, scope)] = secret
        return self.tokens[(name, scope)]

    def as_(self, name: str, scope: str = "approve") -> dict:
        return {"Authorization": f"Bearer {self.token(name, scope)}"}

    def call(self, method: str, path: str, who: str | None = None, *, scope: str = "approve", **kw):
        headers = {**(self.as_(who, scope) if who else {}), **kw.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)

    def sign_in(self, name: str, password: str = PASSWORD):
        """A separate browser: its own cookie jar. Returns (client, csrf token)."""
        from fastapi.testclient import TestClient

        browser = TestClient(self.app, base_url="http://127.0.0.1")
        r = browser.post("/api/v1/session", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        return browser, r.json()["csrf"]

    def events(self, incident: str = INC) -> list:
        from engine.store import open_store

        store = open_store(self.db)
        try:
            return list(store.events(incident))
        finally:
            store.close()

    def running_incident(self) -> None:
        """The viral-complaint incident in stage acknowledge; carol (social_media) drafts."""
        self.add_people()
        for method, path, who, body in (
                ("POST", "/incidents", "alice", VIRAL_BODY),
                ("POST", f"/incidents/{INC}/assign", "alice", {"role": "social_media", "person": "carol"}),
                ("POST", f"/incidents/{INC}/tasks/confirm_post", "alice", {"done": True}),
                ("POST", f"/incidents/{INC}/advance", "alice", {"trigger": "acknowledge"})):
            r = self.call(method, path, who, json=body)
            assert r.status_code in (200, 201), (path, r.text)


def library_with(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "library"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


OPENAPI = ROOT / "docs" / "openapi.json"
