"""The auditor's bundle: one incident's log, its playbook and a signed checkpoint in one file.

A bundle is a **zip archive** (readable with any unzip tool; members can be read one
at a time, so a long log streams) holding:

``events.jsonl``
    the incident's events, one per line, every field (``prev`` and ``hash``
    included), exactly as :func:`engine.audit.report.jsonl_line` writes them;
``playbook.yaml``
    the exact playbook text the incident pinned when it started;
``checkpoint.json``
    a checkpoint signed when the bundle was written, whole as signed (it lists the
    heads of every incident of the database: the signature covers all of them);
``public_key.pem``
    the Ed25519 public key the checkpoint was signed with;
``manifest.json``
    database id, incident, event count, head, and each member's size and SHA-256.

:func:`verify_bundle` checks it without the database: every hash and link of the
chain is recomputed (the database id, from the manifest, is part of every hash and
of the chain's first link), seqs run 1, 2, 3 ...; the checkpoint's signature, its
database and its head for the incident must match the log's end; the playbook text
must hash to the SHA-256 recorded in ``IncidentStarted``; the manifest's hashes must
match the members. The manifest is not signed; everything it says that matters is
checked against the signed checkpoint and the chain. Against a forger who re-signs a
whole bundle with a key of their own only an independently obtained public key
helps: pass it as ``public_key_pem``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from json.encoder import encode_basestring as _quote
from pathlib import Path

from ..errors import IntegrityError, NotFound, StoreError
from ..incidents.events import genesis, hashed_text, utc_now_iso
from .integrity import CHECKPOINT_VERSION, ProblemList, VerifyReport

__all__ = ["FORMAT", "write_bundle", "verify_bundle"]

FORMAT = "crisis-playbook-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
EVENTS, PLAYBOOK, CHECKPOINT, PUBLIC_KEY = "events.jsonl", "playbook.yaml", "checkpoint.json", "public_key.pem"
MEMBERS = (EVENTS, PLAYBOOK, CHECKPOINT, PUBLIC_KEY)
MAX_LINE = 32 * 1024 * 1024  # longest event line read back (the first one carries the playbook)
MAX_SMALL = 64 * 1024 * 1024  # largest manifest, playbook, checkpoint or key read back
CHUNK = 1 << 20  # bytes read from the archive at a time
EVENT_FIELDS = {"incident": str, "seq": int, "type": str, "at": str, "actor": str, "data": dict,
                "prev": str, "hash": str}


# -- writing --------------------------------------------------------------------------


def write_bundle(store, incident: str, path: Path, key, *, now: datetime | None = None) -> dict:
    """Write ``incident``'s bundle to ``path`` (replaced atomically); return its manifest.

    Refuses (IntegrityError) an incident whose log does not verify, and signs and
    stores a fresh checkpoint (``now``, default the system clock) before writing.
    ``key`` is the Ed25519 private key (:func:`engine.audit.integrity.load_or_create_key`).
    """
    from .integrity import checkpoint, public_key_pem, verify
    from .report import jsonl_line

    path = Path(path)
    if store.snapshot(incident) is None:
        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
    if path.is_dir():
        raise StoreError(f"cannot write the bundle to {path}: it is a folder; give a file name")
    if not path.parent.is_dir():
        why = "is not a folder" if path.parent.exists() else "does not exist"
        raise StoreError(f"cannot write the bundle to {path}: {path.parent} {why}")
    checked = verify(store, incident, public_key_pem=public_key_pem(key))
    if not checked.ok:
        raise IntegrityError(f"incident {incident}: the audit log does not verify, so no bundle was written:\n"
                             + "\n".join(f"  - {p}" for p in checked.problems))
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fh = open(tmp, "xb")
    except OSError as e:
        raise StoreError(f"cannot write the bundle to {path}: {e.strerror or e}") from None
    try:
        with fh:
            if now is None:
                from ..clock import SystemClock

                now = SystemClock().now()
            at = utc_now_iso(now)
            cp = checkpoint(store, key, at)
            head = cp["heads"][incident]
            stamp = (int(at[0:4]), int(at[5:7]), int(at[8:10]), int(at[11:13]), int(at[14:16]), int(at[17:19]))
            members: dict[str, dict] = {}
            with zipfile.ZipFile(fh, "w") as zf:
                def put(name: str, data: bytes) -> None:
                    zf.writestr(_info(name, stamp), data)
                    members[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

                with closing(store.events(incident)) as first:
                    pinned = next(first).data["playbook"]
                count, last = _write_events(zf, _info(EVENTS, stamp), store, incident, head["seq"], jsonl_line,
                                            members)
                if last != (head["seq"], head["hash"]):
                    raise IntegrityError(f"incident {incident}: the log read back does not end at the checkpoint's "
                                         f"head (seq {head['seq']}); no bundle was written")
                put(PLAYBOOK, pinned["text"].encode("utf-8"))
                put(CHECKPOINT, (json.dumps(cp, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
                put(PUBLIC_KEY, public_key_pem(key).encode("ascii"))
                manifest = {
                    "format": FORMAT, "version": BUNDLE_VERSION, "database": store.database_id,
                    "incident": incident, "events": count, "head": {"seq": head["seq"], "hash": head["hash"]},
                    "created_at": at,
                    "playbook": {k: pinned.get(k) for k in ("id", "version", "sha256")},
                    "members": members,
                }
                zf.writestr(_info(MANIFEST, stamp), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise StoreError(f"cannot write the bundle to {path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"path": str(path), **manifest}


def _info(name: str, stamp: tuple) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_events(zf, info, store, incident: str, upto: int, line, members: dict) -> tuple[int, tuple]:
    """Stream events 1..``upto`` into the archive; return (count, (last seq, last hash))."""
    sha, size, count, last = hashlib.sha256(), 0, 0, (0, "")
    batch: list[str] = []
    with zf.open(info, "w", force_zip64=True) as out, closing(store.rows(incident)) as rows:
        def flush() -> None:
            nonlocal size
            data = ("\n".join(batch) + "\n").encode("utf-8")
            sha.update(data)
            out.write(data)
            size += len(data)
            batch.clear()

        for row in rows:
            if row[1] > upto:  # appended after the checkpoint: not covered by it
                break
            batch.append(line(row))
            count, last = count + 1, (row[1], row[7])
            if len(batch) >= 1000:
                flush()
        if batch:
            flush()
    members[EVENTS] = {"bytes": size, "sha256": sha.hexdigest()}
    return count, last


# -- verifying ------------------------------------------------------------------------


def verify_bundle(path: Path, public_key_pem: str | None = None) -> VerifyReport:
    """Check a bundle without the database (see the module docstring).

    ``public_key_pem``: the signer's public key obtained independently; without it
    the checkpoint is checked with the bundle's own key. Raises NotFound for a
    missing file and IntegrityError for a file that is not a bundle at all; any
    damage to a bundle is reported as a problem naming the member and line or seq.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such bundle file") from None
    except OSError as e:
        raise IntegrityError(f"{path}: cannot read the bundle ({e.strerror or e})") from None
    if magic != b"PK\x03\x04":
        raise IntegrityError(f"{path} is not an incident bundle (not a zip archive)")
    problems = ProblemList()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        return VerifyReport(False, 0, 0, [f"{path.name}: the archive is truncated or corrupt ({e})"])
    with zf:
        names = zf.namelist()
        if MANIFEST not in names:
            raise IntegrityError(f"{path} is not an incident bundle (a zip archive without {MANIFEST})")
        manifest = _json_member(zf, MANIFEST, problems)
        if manifest is None:
            return VerifyReport(False, 0, 0, problems.listed())
        if manifest.get("format") != FORMAT:
            raise IntegrityError(f"{path} is not an incident bundle ({MANIFEST} is not a {FORMAT} manifest)")
        db, incident = manifest.get("database"), manifest.get("incident")
        if not isinstance(db, str) or not isinstance(incident, str):
            problems.add(f"{MANIFEST}: database or incident missing (modified?)")
            return VerifyReport(False, 0, 0, problems.listed())
        listed = manifest.get("members") if isinstance(manifest.get("members"), dict) else {}
        for name in names:
            if name != MANIFEST and name not in listed:
                problems.add(f"{name}: a member the manifest does not list (added?)")
        for name in MEMBERS:
            if name not in names:
                problems.add(f"{name}: missing from the bundle (removed?)")
        count, read, end, started = _check_events(zf, names, db, incident, listed, problems)
        if end is not None and manifest.get("events") != read:
            problems.add(f"{MANIFEST}: says {manifest.get('events')} events, {EVENTS} has {read} lines")
        _check_playbook(zf, names, listed, started, problems)
        checked = _check_checkpoint(zf, names, listed, db, incident, end, public_key_pem, problems)
    result = problems.listed()
    return VerifyReport(not result, 1 if count else 0, count, result, checked)


def _read_member(zf, name: str, listed: dict, problems: ProblemList) -> bytes | None:
    """A small member's bytes, checked against the manifest's hash; None if unreadable."""
    try:
        info = zf.getinfo(name)
        if info.file_size > MAX_SMALL:
            problems.add(f"{name}: {info.file_size} bytes, too large for a bundle member")
            return None
        data = zf.read(info)
    except KeyError:
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as e:
        problems.add(f"{name}: damaged in the archive ({e})")
        return None
    if listed is not None:
        _check_listed(name, len(data), hashlib.sha256(data).hexdigest(), listed, problems)
    return data


def _check_listed(name: str, size: int, digest: str, listed: dict, problems: ProblemList) -> None:
    entry = listed.get(name)
    if not isinstance(entry, dict):
        problems.add(f"{MANIFEST}: no entry for {name}")
    elif entry.get("sha256") != digest or entry.get("bytes") != size:
        problems.add(f"{name}: its SHA-256 does not match the one in {MANIFEST} (modified after bundling?)")


def _json_member(zf, name: str, problems: ProblemList, listed: dict | None = None) -> dict | None:
    data = _read_member(zf, name, listed, problems)
    if data is None:
        return None
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        problems.add(f"{name}: not valid JSON ({e})")
        return None
    if not isinstance(value, dict):
        problems.add(f"{name}: not a JSON object")
        return None
    return value


def _parse_event(raw: bytes, line: int, problems: ProblemList) -> tuple[dict, str] | tuple[None, None]:
    """(the event, the line's text) if the line is one; else reports why."""
    try:
        text = raw.decode("utf-8")
        ev = json.loads(text)
    except ValueError as e:  # UnicodeDecodeError included
        problems.add(f"{EVENTS} line {line}: not valid JSON ({e})")
        return None, None
    if type(ev) is not dict or ev.keys() != EVENT_FIELDS.keys():
        problems.add(f"{EVENTS} line {line}: not an event (expected the fields {', '.join(EVENT_FIELDS)})")
        return None, None
    for field, kind in EVENT_FIELDS.items():
        if type(ev[field]) is not kind:
            problems.add(f"{EVENTS} line {line}: field {field} is not a {kind.__name__}")
            return None, None
    return ev, text


def _hash_ok(db: str, ev: dict, line: str) -> bool:
    """Whether the event's hash covers its content (see engine.incidents.events).

    Fast path: a line as the bundle writes it (canonical, sorted keys) holds the
    canonical data text verbatim between its "at" and "hash" fields; hashing that
    slice proves the line is what was hashed. Any other spelling of the same event
    is re-serialised canonically instead.
    """
    inc, seq, h = ev["incident"], ev["seq"], ev["hash"]
    text = line.rstrip("\n")
    head = f'{{"actor":{_quote(ev["actor"])},"at":{_quote(ev["at"])},"data":'
    tail = (f',"hash":{_quote(h)},"incident":{_quote(inc)},"prev":{_quote(ev["prev"])},'
            f'"seq":{seq},"type":{_quote(ev["type"])}}}')
    try:
        if text.startswith(head) and text.endswith(tail):
            data_text = text[len(head):len(text) - len(tail)]
            if _sha(hashed_text(db, inc, seq, ev["type"], ev["at"], ev["actor"], data_text, ev["prev"])) == h:
                return True
        data_text = json.dumps(ev["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False)
        return _sha(hashed_text(db, inc, seq, ev["type"], ev["at"], ev["actor"], data_text, ev["prev"])) == h
    except (TypeError, ValueError, UnicodeEncodeError):
        return False


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lines(member, sha) -> Iterator[bytes]:
    """The member's lines (with their newline, if any), read in large chunks; hashes every byte."""
    rest = b""
    while True:
        chunk = member.read(CHUNK)
        if not chunk:
            break
        sha.update(chunk)
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part + b"\n"
        if len(rest) > MAX_LINE:
            yield rest  # too long: the caller stops here
            return
    if rest:
        yield rest


def _check_events(zf, names, db: str, incident: str, listed: dict, problems: ProblemList):
    """Recompute the chain line by line.

    Returns (events, lines, (last seq, last hash) or None if the member is damaged,
    the IncidentStarted data)."""
    count, started = 0, None
    expect, last_hash = 1, genesis(db, incident)
    if EVENTS not in names:
        return 0, 0, None, None
    sha, size, n = hashlib.sha256(), 0, 0
    try:
        with zf.open(EVENTS) as member:
            for n, raw in enumerate(_lines(member, sha), 1):
                size += len(raw)
                if len(raw) > MAX_LINE:
                    problems.add(f"{EVENTS} line {n}: longer than {MAX_LINE} bytes; not checked further")
                    return count, n, None, started
                if raw[-1:] != b"\n":
                    problems.add(f"{EVENTS} line {n}: the last line is cut short (truncated?)")
                ev, text = _parse_event(raw, n, problems)
                if ev is None:
                    continue
                count += 1
                seq, h = ev["seq"], ev["hash"]
                if ev["incident"] != incident:
                    problems.add(f"{_at(n, seq)}: belongs to incident {ev['incident']}, the bundle is of {incident}")
                if not _hash_ok(db, ev, text):
                    problems.add(f"{_at(n, seq)}: hash does not match its content (modified?)")
                if seq == 1 and ev["type"] == "IncidentStarted":
                    started = ev["data"]
                if seq != expect:
                    if seq < expect:
                        problems.add(f"{_at(n, seq)}: out of order, after event {expect - 1} (reordered?)")
                        continue
                    gap = f"event {expect}" if seq == expect + 1 else f"events {expect}-{seq - 1}"
                    problems.add(f"{_at(n, seq)}: {gap} missing before it (dropped or reordered?)")
                elif ev["prev"] != last_hash:
                    if seq == 1:
                        problems.add(f"{_at(n, seq)}: does not start incident {incident}'s chain in database {db} "
                                     "(copied from elsewhere, or the manifest's database changed?)")
                    else:
                        problems.add(f"{_at(n, seq)}: chain broken between events {seq - 1} and {seq} "
                                     "(inserted, modified or reordered?)")
                expect, last_hash = seq + 1, h
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        problems.add(f"{EVENTS}: damaged in the archive near line {n + 1} ({e}); not checked further")
        return count, n, None, started
    _check_listed(EVENTS, size, sha.hexdigest(), listed, problems)
    if count and started is None:
        problems.add(f"{EVENTS}: does not begin with the incident's IncidentStarted event")
    return count, n, (expect - 1, last_hash), started


def _at(line: int, seq: int) -> str:
    return f"{EVENTS} line {line} (event {seq})"


def _check_playbook(zf, names, listed: dict, started: dict | None, problems: ProblemList) -> None:
    if PLAYBOOK not in names:
        return
    data = _read_member(zf, PLAYBOOK, listed, problems)
    if data is None or started is None:
        return
    pinned = started.get("playbook") if isinstance(started.get("playbook"), dict) else {}
    if hashlib.sha256(data).hexdigest() != pinned.get("sha256"):
        problems.add(f"{PLAYBOOK}: its SHA-256 is not the one recorded in IncidentStarted (event 1): "
                     "not the playbook this incident ran")


def _check_checkpoint(zf, names, listed, db, incident, end, trusted_pem, problems) -> int:
    """Check signature, database and head; return 1 if the log was checked against it, else 0."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ..incidents.events import canonical

    if CHECKPOINT not in names:
        return 0
    cp = _json_member(zf, CHECKPOINT, problems, listed)
    bundled = _read_member(zf, PUBLIC_KEY, listed, problems) if PUBLIC_KEY in names else None
    bundled_pem = bundled.decode("utf-8", "replace") if bundled is not None else None
    if cp is None:
        return 0
    heads = cp.get("heads")
    if not (cp.get("version") in (1, CHECKPOINT_VERSION) and isinstance(cp.get("signature"), str)
            and isinstance(cp.get("public_key"), str) and isinstance(heads, dict)):
        problems.add(f"{CHECKPOINT}: not a version {CHECKPOINT_VERSION} checkpoint (malformed)")
        return 0
    if bundled_pem is not None and bundled_pem.strip() != cp["public_key"].strip():
        problems.add(f"{PUBLIC_KEY}: not the key recorded in {CHECKPOINT} (swapped?)")
    if trusted_pem is not None and bundled_pem is not None and bundled_pem.strip() != trusted_pem.strip():
        problems.add(f"{PUBLIC_KEY}: not the public key you gave (swapped, or signed by someone else?)")
    pem, which = ((trusted_pem, "the public key you gave") if trusted_pem is not None
                  else (bundled_pem, PUBLIC_KEY) if bundled_pem is not None else (cp["public_key"], "its own key"))
    body = {k: v for k, v in cp.items() if k != "signature"}
    try:
        public = serialization.load_pem_public_key(pem.encode("utf-8"))
        if not isinstance(public, Ed25519PublicKey):
            raise TypeError("not an Ed25519 key")
        public.verify(base64.b64decode(cp["signature"], validate=True), canonical(body))
        signed = True
    except (InvalidSignature, ValueError, TypeError, AttributeError) as e:
        reason = "the signature does not match" if isinstance(e, InvalidSignature) else f"{type(e).__name__}: {e}"
        problems.add(f"{CHECKPOINT}: signature invalid when checked with {which} ({reason})")
        signed = False
    if cp.get("database") != db:
        problems.add(f"{CHECKPOINT}: from a different database ({cp.get('database')}), "
                     f"not the one the events belong to ({db})")
        return 0
    head = heads.get(incident)
    if not isinstance(head, dict) or type(head.get("seq")) is not int:
        problems.add(f"{CHECKPOINT}: has no head for incident {incident}")
        return 0
    if end is None:  # the log could not be read to its end: nothing to compare the head with
        return 0
    last_seq, last_hash = end
    if head["seq"] > last_seq:
        problems.add(f"{EVENTS}: ends at event {last_seq} but {CHECKPOINT} records event {head['seq']} "
                     "as the head (events dropped from the end?)")
    elif head["seq"] < last_seq:
        problems.add(f"{EVENTS}: has events after event {head['seq']}, the head {CHECKPOINT} signed (added?)")
    elif head.get("hash") != last_hash:
        problems.add(f"{EVENTS} event {last_seq}: hash differs from the head in {CHECKPOINT} (log rewritten?)")
    return 1 if signed else 0
