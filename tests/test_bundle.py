"""The auditor's bundle: written atomically, verified without the database, and every
kind of tampering with it reported with the member and line or seq where it is."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import struct
import zipfile
from datetime import timedelta

import pytest

from conftest import T0, VIRAL
from engine.audit.bundle import verify_bundle, write_bundle
from engine.audit.integrity import checkpoint, load_or_create_key, public_key_pem, verify
from engine.audit.report import export_events
from engine.errors import IntegrityError, NotFound, StoreError
from engine.incidents import service
from engine.incidents.events import canonical
from engine.posts import versions as posts, release
from engine.store import open_store

AT = T0 + timedelta(hours=1)


@pytest.fixture
def key(tmp_path):
    return load_or_create_key(tmp_path / "keys" / "signing.key")


@pytest.fixture
def incident(store, clock, viral, tmp_path) -> str:
    """A viral-complaint incident with a published acknowledgement and a few notes (16 events)."""
    iid = service.start(store, clock, "alice", viral, title="ER wait time complaint",
                        inputs={"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
                        assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})["id"]
    service.assign(store, clock, "alice", iid, "social_media", "carol")
    service.task(store, clock, "alice", iid, "confirm_post")
    service.advance(store, clock, "alice", iid, "acknowledge")
    posts.render(store, clock, "carol", iid, "public_ack", channels=("x",), langs=("en",))
    clock.advance(timedelta(minutes=5))
    posts.approve(store, clock, "bob", iid, "public_ack/x/en", version=1)
    release.publish(store, clock, "carol", iid, "public_ack/x/en", tmp_path / "outbox")
    for i in range(7):
        service.note(store, clock, "alice", iid, f"Patient relations update {i}")
    return iid


@pytest.fixture
def bundle(store, incident, key, tmp_path):
    path = tmp_path / "bundle.zip"
    write_bundle(store, incident, path, key, now=AT)
    return path


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def forge(src, dst, changes: dict[str, bytes | None], *, fix_manifest: bool = True):
    """Rewrite a bundle with some members replaced (None: removed), as an attacker would;
    by default also bring the manifest's hashes and event count up to date."""
    content = members(src)
    for name, data in changes.items():
        if data is None:
            content.pop(name, None)
        else:
            content[name] = data
    if fix_manifest:
        manifest = json.loads(content["manifest.json"])
        manifest["members"] = {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                               for n, d in content.items() if n != "manifest.json"}
        manifest["events"] = len(content.get("events.jsonl", b"").splitlines())
        content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return dst


def lines(path) -> list[bytes]:
    return members(path)["events.jsonl"].splitlines(keepends=True)


def problems_of(path, **kw) -> str:
    report = verify_bundle(path, **kw)
    assert not report.ok
    return "\n".join(report.problems)


# -- writing and the round trip ---------------------------------------------------------


def test_an_intact_bundle_verifies_like_the_database(store, incident, bundle, key):
    offline = verify_bundle(bundle)
    online = verify(store, incident)
    assert offline.ok and online.ok
    assert (offline.incidents, offline.events, offline.problems) == (online.incidents, online.events, online.problems)
    assert offline.events == 18 and offline.checkpoints == 1
    assert verify_bundle(bundle, public_key_pem=public_key_pem(key)).ok


def test_the_bundle_holds_the_log_the_playbook_and_a_signed_checkpoint(store, incident, bundle, key):
    content = members(bundle)
    assert set(content) == {"events.jsonl", "playbook.yaml", "checkpoint.json", "public_key.pem", "manifest.json"}
    out = io.StringIO()
    export_events(store, incident, "jsonl", out)
    assert content["events.jsonl"].decode() == out.getvalue()
    assert content["playbook.yaml"] == VIRAL.read_bytes()
    assert content["public_key.pem"].decode() == public_key_pem(key)
    cp = json.loads(content["checkpoint.json"])
    assert cp == store.checkpoints()[-1] and cp["at"] == "2026-03-14T10:00:00.000Z"
    manifest = json.loads(content["manifest.json"])
    assert (manifest["database"], manifest["incident"], manifest["events"]) == (store.database_id, incident, 18)
    assert manifest["head"] == cp["heads"][incident]
    for name, entry in manifest["members"].items():
        assert entry == {"bytes": len(content[name]), "sha256": hashlib.sha256(content[name]).hexdigest()}


def test_writing_replaces_atomically_and_leaves_no_temporary_file(store, incident, bundle, key):
    before = bundle.read_bytes()
    write_bundle(store, incident, bundle, key, now=AT + timedelta(minutes=1))
    assert bundle.read_bytes() != before and verify_bundle(bundle).ok
    assert sorted(p.name for p in bundle.parent.iterdir() if p.name.startswith(".")) == []


def test_an_unknown_incident_writes_nothing(store, incident, key, tmp_path):
    with pytest.raises(NotFound, match="INC-19990101-001"):
        write_bundle(store, "INC-19990101-001", tmp_path / "b.zip", key, now=AT)
    assert not (tmp_path / "b.zip").exists() and store.checkpoints() == []


@pytest.mark.parametrize("where, why", [
    ("nowhere/b.zip", "does not exist"),
    (".", "it is a folder"),
    ("file.txt/b.zip", "is not a folder"),
    ("x" * 250 + ".zip", "File name too long"),
])
def test_an_unwritable_path_is_a_store_error_naming_it(store, incident, key, tmp_path, where, why):
    (tmp_path / "file.txt").write_text("not a folder")
    target = tmp_path / where
    with pytest.raises(StoreError, match=why) as caught:
        write_bundle(store, incident, target, key, now=AT)
    assert str(target) in str(caught.value)
    assert store.checkpoints() == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_store_error(store, incident, key, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="locked"):
            write_bundle(store, incident, locked / "b.zip", key, now=AT)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_a_log_that_does_not_verify_is_not_bundled(store, db, incident, key, tmp_path):
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("UPDATE events SET actor = 'mallory' WHERE seq = 3")
    raw.commit()
    raw.close()
    with pytest.raises(IntegrityError, match="event 3: hash does not match"):
        write_bundle(store, incident, tmp_path / "b.zip", key, now=AT)
    assert not (tmp_path / "b.zip").exists()


# -- tampering ------------------------------------------------------------------------


def test_a_modified_event_byte_is_found_at_its_line(bundle, tmp_path):
    events = lines(bundle)
    events[11] = events[11].replace(b"Patient relations", b"Patient relationz")
    forged = forge(bundle, tmp_path / "f.zip", {"events.jsonl": b"".join(events)})
    assert "events.jsonl line 12 (event 12): hash does not match its content" in problems_of(forged)
    unfixed = forge(bundle, tmp_path / "g.zip", {"events.jsonl": b"".join(events)}, fix_manifest=False)
    found = problems_of(unfixed)
    assert "events.jsonl: its SHA-256 does not match the one in manifest.json" in found
    assert "events.jsonl line 12 (event 12): hash does not match" in found


def test_a_flipped_byte_inside_the_archive_is_found(bundle):
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("events.jsonl")
    raw = bytearray(bundle.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    assert "events.jsonl: damaged in the archive" in problems_of(bundle)


def test_a_dropped_event_is_found(bundle, tmp_path):
    events = lines(bundle)
    forged = forge(bundle, tmp_path / "f.zip", {"events.jsonl": b"".join(events[:4] + events[5:])})
    assert "events.jsonl line 5 (event 6): event 5 missing before it" in problems_of(forged)


def test_a_dropped_last_event_is_found_by_the_checkpoint(bundle, tmp_path):
    forged = forge(bundle, tmp_path / "f.zip", {"events.jsonl": b"".join(lines(bundle)[:-1])})
    assert "events.jsonl: ends at event 17 but checkpoint.json records event 18" in problems_of(forged)


def test_reordered_lines_are_found(bundle, tmp_path):
    events = lines(bundle)
    events[5], events[6] = events[6], events[5]
    found = problems_of(forge(bundle, tmp_path / "f.zip", {"events.jsonl": b"".join(events)}))
    assert "events.jsonl line 6 (event 7): event 6 missing before it" in found
    assert "events.jsonl line 7 (event 6): out of order" in found


def test_a_line_that_is_not_an_event_is_found(bundle, tmp_path):
    events = lines(bundle)
    events[2] = b'{"oops": true}\n'
    forged = forge(bundle, tmp_path / "f.zip", {"events.jsonl": b"".join(events)})
    assert "events.jsonl line 3: not an event" in problems_of(forged)


def test_a_swapped_public_key_is_found(bundle, tmp_path):
    other = public_key_pem(load_or_create_key(tmp_path / "other.key")).encode()
    found = problems_of(forge(bundle, tmp_path / "f.zip", {"public_key.pem": other}))
    assert "public_key.pem: not the key recorded in checkpoint.json (swapped?)" in found
    assert "checkpoint.json: signature invalid when checked with public_key.pem" in found


def test_a_checkpoint_with_a_swapped_key_no_longer_verifies(bundle, tmp_path):
    other = public_key_pem(load_or_create_key(tmp_path / "other.key"))
    cp = json.loads(members(bundle)["checkpoint.json"])
    cp["public_key"] = other
    forged = forge(bundle, tmp_path / "f.zip",
                   {"checkpoint.json": json.dumps(cp).encode(), "public_key.pem": other.encode()})
    assert "checkpoint.json: signature invalid when checked with public_key.pem" in problems_of(forged)


def test_a_bundle_re_signed_by_someone_else_fails_against_the_trusted_key(store, bundle, key, tmp_path):
    """Self-consistent forgeries pass on their own key: the auditor's own copy of the key catches them."""
    mallory = load_or_create_key(tmp_path / "mallory.key")
    cp = json.loads(members(bundle)["checkpoint.json"])
    body = {k: v for k, v in cp.items() if k != "signature"} | {"public_key": public_key_pem(mallory)}
    cp = body | {"signature": base64.b64encode(mallory.sign(canonical(body))).decode()}
    forged = forge(bundle, tmp_path / "f.zip",
                   {"checkpoint.json": json.dumps(cp).encode(), "public_key.pem": public_key_pem(mallory).encode()})
    assert verify_bundle(forged).ok
    found = problems_of(forged, public_key_pem=public_key_pem(key))
    assert "checkpoint.json: signature invalid when checked with the public key you gave" in found
    assert "public_key.pem: not the public key you gave" in found


def test_a_checkpoint_from_another_database_is_found(store, bundle, key, clock, viral, tmp_path):
    other = open_store(tmp_path / "other.db")
    service.start(other, clock, "alice", viral, title="Elsewhere",
                  inputs={"complaint_url": "https://x.com/p/2", "complaint_channel": "x"},
                  assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    foreign = checkpoint(other, key, "2026-03-14T10:00:00.000Z")
    other.close()
    found = problems_of(forge(bundle, tmp_path / "f.zip", {"checkpoint.json": json.dumps(foreign).encode()}))
    assert f"checkpoint.json: from a different database ({foreign['database']})" in found
    assert store.database_id in found


def test_a_changed_playbook_is_found(bundle, tmp_path):
    text = members(bundle)["playbook.yaml"].replace(b"within: 60m", b"within: 6h")
    found = problems_of(forge(bundle, tmp_path / "f.zip", {"playbook.yaml": text}))
    assert "playbook.yaml: its SHA-256 is not the one recorded in IncidentStarted" in found


def test_a_missing_or_extra_member_is_found(bundle, tmp_path):
    found = problems_of(forge(bundle, tmp_path / "f.zip", {"playbook.yaml": None}, fix_manifest=False))
    assert "playbook.yaml: missing from the bundle" in found
    extra = problems_of(forge(bundle, tmp_path / "g.zip", {"notes.txt": b"hi"}, fix_manifest=False))
    assert "notes.txt: a member the manifest does not list" in extra


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_a_truncated_archive_is_found(bundle, keep):
    raw = bundle.read_bytes()
    bundle.write_bytes(raw[: int(len(raw) * keep)])
    assert "bundle.zip: the archive is truncated or corrupt" in problems_of(bundle)


@pytest.mark.parametrize("content", [b"", b"hello, auditor\n", b"SQLite format 3\x00" + bytes(100)])
def test_a_file_that_is_not_a_bundle_is_an_integrity_error(tmp_path, content):
    path = tmp_path / "thing.zip"
    path.write_bytes(content)
    with pytest.raises(IntegrityError, match="is not an incident bundle"):
        verify_bundle(path)


def test_a_zip_that_is_not_a_bundle_is_an_integrity_error(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat.txt", "meow")
    with pytest.raises(IntegrityError, match=r"not an incident bundle \(a zip archive without manifest.json\)"):
        verify_bundle(path)


def test_a_missing_bundle_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="no such bundle file"):
        verify_bundle(tmp_path / "absent.zip")
