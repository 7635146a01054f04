"""Hostile templates over HTTP: each is refused (the playbook at start, or the render),
several at once from the server's worker threads, and the server goes on answering."""

from __future__ import annotations

import threading

import pytest
import yaml

pytest.importorskip("fastapi")

from server_support import Server  # noqa: E402
from test_injection import LEAKS, PAYLOADS  # noqa: E402

#: the payloads that exhaust time or memory, or reach for Python objects and files
CHOSEN = ["str-class-mro", "format-map-globals", "range-join", "repeat-1e9", "power-tower",
          "nested-loops-silent", "nested-loops-output", "recursive-macro", "concat-doubling",
          "center-1e9", "join-big-separator", "print-list-of-lists", "include-absolute", "import-escape"]


def _playbook(name: str, payload: str) -> str:
    return yaml.safe_dump({
        "id": name, "name": name, "version": "1",
        "roles": {"lead": {"title": "Lead", "required": True}},
        "stages": {"respond": {"title": "Respond", "templates": ["statement"]},
                   "closed": {"title": "Closed", "terminal": True}},
        "transitions": {"close": {"from": "respond", "to": "closed", "roles": ["lead"]}},
        "templates": {"statement": {"approval": {"all_of": ["lead"]}, "channels": {"web": {"en": payload}}}},
    }, sort_keys=False)


def test_hostile_templates_from_many_requests_at_once_are_refused_and_the_server_lives(tmp_path, clock):
    library = tmp_path / "library"
    library.mkdir()
    names = {f"p{i}": key for i, key in enumerate(CHOSEN)}
    for name, key in names.items():
        (library / f"{name}.yaml").write_text(_playbook(name, PAYLOADS[key]), encoding="utf-8")
    (library / "fine.yaml").write_text(_playbook("fine", "We are looking into it."), encoding="utf-8")
    server = Server(tmp_path, clock, library=library)
    server.add_people("alice")
    outcomes: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()

    def attempt(name: str) -> None:
        started = server.call("POST", "/incidents", "alice",
                              json={"playbook": name, "title": name, "assign": {"lead": "alice"}})
        if started.status_code == 201:
            incident = started.json()["id"]
            rendered = server.call("POST", f"/incidents/{incident}/render", "alice", json={"template": "statement"})
            result = (rendered.status_code, rendered.text)
        else:
            result = (started.status_code, started.text)
        with lock:
            outcomes[name] = result

    threads = [threading.Thread(target=attempt, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a hostile render hung a request"
    rendered = sorted(names[n] for n, (status, _) in outcomes.items() if status == 403)
    assert {"nested-loops-silent", "repeat-1e9", "center-1e9", "recursive-macro"} <= set(rendered), rendered
    for name, (status, text) in outcomes.items():
        assert status in (403, 422), (names[name], status, text[:300])  # refused render, or refused playbook
        for leak in LEAKS:
            assert leak not in text or leak in PAYLOADS[names[name]], (names[name], leak)
    assert server.client.get("/api/v1/healthz").status_code == 200
    ok = server.call("POST", "/incidents", "alice", json={"playbook": "fine", "title": "t", "assign": {"lead": "alice"}})
    assert ok.status_code == 201
    drafted = server.call("POST", f"/incidents/{ok.json()['id']}/render", "alice", json={"template": "statement"})
    assert drafted.status_code == 200 and drafted.json()[0]["text"] == "We are looking into it."
