"""Tamper evidence for the audit log: hash-chain verification and signed checkpoints.

What :func:`verify` guarantees
------------------------------
Each event's hash covers its content, its seq, its incident, the database id
and the previous event's hash (see :mod:`engine.incidents.events`). Verification reads
every event, recomputes every hash and link, checks that seqs run 1, 2, 3 ...
without gaps, and that each incident's snapshot (projection) ends where its log
ends. So, **always, with no checkpoint needed**, it reports:

* an event whose content was modified but whose stored hash was not updated;
* an event deleted from the middle of a log (a gap in seq);
* an event inserted, or events reordered (a hash or a link no longer fits);
* an event copied in from another incident or another database;
* a log whose end disagrees with its snapshot (events added or removed
  without also rewriting the projection).

The account log (the store's reserved stream ``ACCOUNTS``, :mod:`engine.accounts.log`)
is checked the same way, is covered by every checkpoint, and its projection (who may
sign in, with which password hash and tokens) is refolded and compared like an
incident's.

**Only relative to a checkpoint** (a signed list of each incident's head
seq and hash at a moment) does it report what a careful attacker can hide from
the chain alone: a modified event *with every later hash recomputed*, a
truncated tail (last events deleted and the snapshot rewound), or a whole
incident removed. A checkpoint protects the log up to its heads, and only if
the attacker could not re-sign it: so only checkpoints signed by the configured
key (or a public key an auditor obtained independently, ``public_key_pem=...``)
count; one signed by any other key is a problem, never trusted for its embedded
key. Each checkpoint names its predecessor's hash and a counter, so deleting or
inserting a stored one breaks their chain; a folder of copies kept outside the
database (``checkpoint_dir``) shows the deletion of the latest ones too, and
:func:`checkpoint` refuses to continue a chain another key signed.

What it does **not** guarantee
------------------------------
* It does not prevent anything: the triggers stop accidents and casual
  edits, not someone with write access to the file, who can drop them.
* Events appended after the last checkpoint can be changed and re-chained
  undetectably (take checkpoints often; hand them to auditors).
* Deleting or replacing the whole database file (and the checkpoints stored
  in it) is not detected without a checkpoint held elsewhere (``checkpoint_dir``,
  or a copy an auditor keeps).
* By default the signing key sits beside the database (``signing.key`` in the
  database's folder, mode 0600), so anyone who can read it can forge new
  checkpoints. Keep it elsewhere with ``$PLAYBOOK_KEY`` (another account, a
  mounted secret) and give the public key and checkpoints to the auditors.
* Timestamps are what the writing process's clock said; they are covered by
  the hashes, but nothing proves they were true.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from json.encoder import encode_basestring as _quote
from pathlib import Path

from engine.errors import IntegrityError, PlaybookError, StoreError
from engine.incidents.events import Event, canonical, genesis, parse_iso, utc_now_iso
from engine.incidents.state import is_current
from engine.store import Store
from engine.store.streams import LISTENING, STREAMS

KEY_FILE = "signing.key"
CHECKPOINT_VERSION = 2  # 2: counter and previous (each checkpoint names the one before)
MAX_PROBLEMS = 1000

# --- the signing key ---------------------------------------------------------------


def load_or_create_key(path: Path):
    """The Ed25519 private key at ``path`` (the configuration's ``key``), created on first use.

    A new key is written to a temporary file with mode 0600 and moved into place
    atomically; if two processes create one at once, both end up using the first.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        data = _create_file(path, pem)
        if data == pem:  # ours: publish its public half beside it, for readers without the key
            _write_public_half(path, key)
    except OSError as e:
        raise StoreError(f"cannot read the signing key {path}: {e.strerror or e}") from e
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise StoreError(f"{path} is not a usable signing key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise StoreError(f"{path} is not an Ed25519 signing key")
    return key


def _create_file(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (0600) unless it appears meanwhile; return what is there."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never overwrites a key another process just made
        except FileExistsError:
            return path.read_bytes()
        except OSError:
            os.replace(tmp, path)  # file systems without hard links
        return content
    except OSError as e:
        raise StoreError(f"cannot create the signing key {path}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def public_key_path(key_path: Path) -> Path:
    """Where the public half of the signing key at ``key_path`` is kept (``signing.key.pub``)."""
    return key_path.with_name(key_path.name + ".pub")


def _write_public_half(path: Path, key) -> None:
    try:
        public_key_path(path).write_text(public_key_pem(key), encoding="ascii")
    except OSError:
        pass  # a convenience for readers: the private key can always give it again


def trusted_public_key(key_path: Path) -> str | None:
    """The PEM of the configured signing key's public half, from the key if this user may
    read it, else from the ``.pub`` file beside it; None if there is neither."""
    key_path = Path(key_path)
    try:
        if key_path.exists() and os.access(key_path, os.R_OK):
            return public_key_pem(load_or_create_key(key_path))
        return public_key_path(key_path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def public_key_pem(key) -> str:
    """The PEM (SubjectPublicKeyInfo) text of a private or public Ed25519 key."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# --- checkpoints -------------------------------------------------------------------


def checkpoint_hash(cp: dict) -> str:
    """The SHA-256 of a whole signed checkpoint, as the next one names it."""
    return hashlib.sha256(canonical(cp)).hexdigest()


def checkpoint_file(folder: Path, counter: int) -> Path:
    return Path(folder) / f"checkpoint-{counter:08d}.json"


def checkpoint(store: Store, key, at: str, folder: Path | None = None) -> dict:
    """Sign each incident's current head (seq and hash), store the checkpoint, return it.

    Each checkpoint carries a counter and the hash of the one before, so a deleted or
    inserted checkpoint breaks the chain. With ``folder``, the checkpoint is also
    written there as ``checkpoint-NNNNNNNN.json`` (keep that folder out of reach of
    whoever can write the database). Refuses (IntegrityError) if an incident's snapshot
    does not end where its log ends, or if the last stored checkpoint was not signed
    with ``key`` (signing would bless a history someone else vouched for).
    """
    if not isinstance(at, str) or utc_now_iso(parse_iso(at)) != at:
        raise ValueError(f"checkpoint time {at!r} is not in the form YYYY-MM-DDTHH:MM:SS.mmmZ")
    heads: dict[str, dict] = {}
    pem = public_key_pem(key)
    with store.reading():
        stored = store.checkpoints()
        for incident, seq, head in _heads_with_streams(store):  # never the states: flat memory
            tail = [(e.seq, e.hash) for e in store.events(incident, after=max(seq - 1, 0))]
            if tail != [(seq, head)]:
                raise IntegrityError(
                    f"cannot sign a checkpoint: incident {incident}'s snapshot does not "
                    "match its log; run verify"
                )
            heads[incident] = {"seq": seq, "hash": head}
    last = stored[-1] if stored else None
    if last is not None and _check_checkpoint(last, store.database_id, pem, "the last stored checkpoint")[0]:
        raise IntegrityError("cannot sign a checkpoint: the last stored checkpoint is not signed by this "
                             "signing key; run verify")
    counter = (last.get("counter", len(stored)) if last is not None else 0) + 1
    body = {
        "version": CHECKPOINT_VERSION,
        "database": store.database_id,
        "at": at,
        "counter": counter,
        "previous": checkpoint_hash(last) if last is not None else None,
        "heads": heads,
        "public_key": pem,
    }
    cp = {**body, "signature": base64.b64encode(key.sign(canonical(body))).decode("ascii")}
    store.add_checkpoint(cp)
    if folder is not None:
        target = checkpoint_file(folder, counter)
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with open(target, "x", encoding="utf-8") as f:
                f.write(canonical(cp).decode("utf-8") + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise StoreError(f"checkpoint #{counter} is stored in the database, but cannot be written to "
                             f"{target}: {e.strerror or e}") from None
    return cp


def folder_checkpoints(folder: Path) -> list[tuple[str, object]]:
    """(file name, parsed JSON or None) of each checkpoint file in ``folder``, in counter order."""
    import json

    out = []
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("checkpoint-")
                       and p.name.endswith(".json"))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"cannot read the checkpoint folder {folder}: {e.strerror or e}") from None
    for name in names:
        try:
            out.append((name, json.loads((Path(folder) / name).read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            out.append((name, None))
    return out


def _check_checkpoint(cp: object, database_id: str, trusted_pem: str | None, label: str) -> tuple[list[str], dict | None]:
    """(problems, heads to check the log against: None unless signature and database are right)."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not isinstance(cp, dict):
        return [f"{label}: not a checkpoint (expected a JSON object)"], None
    heads = cp.get("heads")
    well_formed = (
        cp.get("version") in (1, CHECKPOINT_VERSION)
        and isinstance(cp.get("signature"), str)
        and isinstance(cp.get("public_key"), str)
        and isinstance(heads, dict)
        and all(
            isinstance(h, dict) and type(h.get("seq")) is int and isinstance(h.get("hash"), str)
            for h in heads.values()
        )
    )
    if not well_formed:
        return [f"{label}: not a version {CHECKPOINT_VERSION} checkpoint (malformed)"], None
    body = {k: v for k, v in cp.items() if k != "signature"}
    try:
        public = serialization.load_pem_public_key((trusted_pem or cp["public_key"]).encode("utf-8"))
        public.verify(base64.b64decode(cp["signature"], validate=True), canonical(body))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, AttributeError):
        why = ""
        if trusted_pem and cp["public_key"].strip() != trusted_pem.strip():
            why = ": signed by a different key than the configured or given one (forged?)"
        return [f"checkpoint signature invalid ({label}){why}"], None
    if cp.get("database") != database_id:
        return [f"{label} is from a different database ({cp.get('database')}), not this one ({database_id})"], None
    return [], heads


# --- verification ------------------------------------------------------------------


@dataclass
class VerifyReport:
    ok: bool
    incidents: int
    events: int
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0  # checkpoints whose heads the log was checked against
    unchecked: int = 0  # stored checkpoints not checked: no trusted public key was given
    account_events: int = 0  # of ``events``, those of the account log (not an incident)

    def to_json(self) -> dict:
        return asdict(self)


class ProblemList(list):
    """The problems found, capped so that a wholly rewritten log still fits in memory."""

    dropped = 0

    def add(self, text: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(text)
        else:
            self.dropped += 1

    def listed(self) -> list[str]:
        return list(self) + ([f"... and {self.dropped} more problems"] if self.dropped else [])


def verify(
    store: Store,
    incident: str | None = None,
    checkpoint: dict | None = None,
    public_key_pem: str | None = None,
    *,
    replay: Callable[[Iterator[Event]], object] | None = None,
    audit: Callable[[Iterator[Event]], tuple[object, list[str]]] | None = None,
    checkpoint_dir: Path | None = None,
) -> VerifyReport:
    """Check the log of ``incident`` (default: every incident) against its hashes, its
    snapshots and the given checkpoint, else every checkpoint stored in the database
    and in ``checkpoint_dir``.

    Only checkpoints signed by ``public_key_pem`` (the configured signing key's public
    half, or one an auditor obtained independently) count: one signed by another key,
    a break in the stored checkpoints' chain (counter and previous hash), or a
    checkpoint in ``checkpoint_dir`` that the database no longer holds is a problem.
    Without ``public_key_pem`` the stored checkpoints are not checked at all, and
    ``unchecked`` says how many there were (the caller decides whether that is fatal).

    With ``replay`` (the service's fold: events -> state), also refold each incident
    from its events and compare with its snapshot's state; this is a second pass
    that parses every event, so it is much slower than the hash check alone. With
    ``audit`` (events -> (state, problems): :func:`engine.audit.rules.audit`), the refold
    also replays every event through the rules and reports each one they refuse.
    """
    problems = ProblemList()
    with store.reading():
        db = store.database_id
        sources, unchecked = _checkpoint_heads(store, db, checkpoint, public_key_pem, checkpoint_dir, problems)
        wanted: dict[str, list[tuple[int, str, str]]] = {}  # incident -> sorted (seq, hash, label)
        for label, heads in sources:
            for inc, head in heads.items():
                if incident is None or inc == incident:
                    wanted.setdefault(inc, []).append((head["seq"], head["hash"], label))
        for want in wanted.values():
            want.sort()
        ends, count = _scan(store.rows(incident), db, wanted, problems)
        # (seq, head) of each snapshot; each state is read only when its turn comes, so
        # memory does not grow with the number of incidents
        if incident is None:
            snaps = {i: (seq, head) for i, seq, head in _heads_with_streams(store)}
        else:
            try:
                one = _snapshot_or_stream(store, incident)
            except IntegrityError as e:
                problems.add(str(e))
                one = None
            snaps = {} if one is None else {one.incident: (one.seq, one.head)}
        rows: dict = {}
        if replay is not None or audit is not None:
            try:
                rows = dict(store.summaries())
            except IntegrityError as e:
                problems.add(str(e))
        for inc in snaps:
            try:
                state = _snapshot_or_stream(store, inc).state  # parsed even by --fast: a damaged one is named
            except IntegrityError as e:
                problems.add(str(e))
                continue
            if inc in ends and (replay is not None or audit is not None):
                _check_state(store, inc, state, replay, audit, problems, rows.get(inc))

    for inc, (last_seq, last_hash) in ends.items():
        snap = snaps.get(inc)
        if snap is None:
            problems.add(f"incident {inc}: has events but no snapshot (projection deleted?)")
        elif snap[0] != last_seq:
            problems.add(f"incident {inc}: snapshot says seq {snap[0]} but the log ends at {last_seq}")
        elif snap[1] != last_hash:
            problems.add(f"incident {inc}: snapshot head does not match the hash of event {last_seq}")
    for inc, snap in snaps.items():
        if inc not in ends:
            problems.add(f"incident {inc}: snapshot says seq {snap[0]} but the log has no events (deleted?)")
    for inc, want in wanted.items():
        last_seq = ends.get(inc, (0, ""))[0]
        for seq, _, label in want:
            if inc not in ends:
                problems.add(f"incident {inc} in the {label} is missing from the log (deleted?)")
            elif seq > last_seq:
                problems.add(
                    f"incident {inc}: log ends at seq {last_seq} but {label} recorded seq {seq} (truncated?)"
                )
    listed = problems.listed()
    streams = [s for s in STREAMS if s in ends]
    return VerifyReport(not listed, len(ends) - len(streams), count, listed, len(sources), unchecked,
                        sum(ends[s][0] for s in streams))


def _heads_with_streams(store: Store) -> list[tuple[str, int, str]]:
    """(id, seq, head) of the incidents' snapshots and of the streams that are not incidents."""
    return store.heads() + [(s.incident, s.seq, s.head) for s in (store.stream(name) for name in STREAMS)
                            if s is not None]


def _snapshot_or_stream(store: Store, name: str):
    return store.stream(name) if name in STREAMS else store.snapshot(name)


def _check_stream(store: Store, name: str, state: dict, problems: ProblemList) -> None:
    if name == LISTENING:
        from engine.incidents.monitors import disagreement
    else:
        from engine.accounts.log import disagreement

    found = disagreement(store.events(name), state)
    if found:
        problems.add(found)


def _check_state(store: Store, incident: str, state: dict, replay, audit, problems: ProblemList,
                 row: dict | None = None) -> None:
    if incident in STREAMS:
        return _check_stream(store, incident, state, problems)
    try:
        if audit is not None:
            folded, refused = audit(store.events(incident))
            for text in refused:
                problems.add(text)
        else:
            folded = replay(store.events(incident))
        # A projection stored by an older version of the tool has another shape: the log
        # is the source of truth, and the projection is rebuilt from it (db upgrade, or
        # the incident's next write), so only a current one is compared.
        same = not is_current(state) or _text(folded) == _text(state)
    except (PlaybookError, LookupError, TypeError, ValueError, AttributeError) as e:
        problems.add(f"incident {incident}: its events cannot be folded into a state ({type(e).__name__}: {e})")
        return
    if not same:
        problems.add(f"incident {incident}: snapshot state differs from the state folded from its events (edited?)")
    # The index row is what due, watch and list read instead of the state: an edited one
    # could hide an overdue incident from cron. One of another shape is not used at all.
    from ..incidents.index import SUMMARY_VERSION, summary

    if row is not None and row.get("v") == SUMMARY_VERSION and isinstance(folded, dict) and "plan" in folded:
        try:
            expected = summary(folded)
        except (LookupError, TypeError, ValueError, AttributeError):
            expected = None
        if _text(expected) != _text(row):
            problems.add(f"incident {incident}: its index row (what due, watch and list read) differs from "
                         "the state folded from its events (edited?)")


def _text(value) -> str:
    """The canonical JSON text of a value parsed from JSON (or folded from such values),
    for comparing two of them: as engine.incidents.events.canonical writes it, without checking
    again, for every incident, that parsed JSON is JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _checkpoint_heads(
    store: Store, db: str, given: dict | None, trusted_pem: str | None, folder: Path | None,
    problems: ProblemList,
) -> tuple[list[tuple[str, dict]], int]:
    """(label, heads) of each checkpoint to check the log against, and how many stored
    ones went unchecked for want of a trusted key; reports every untrustworthy one."""
    if given is not None:
        at = given.get("at") if isinstance(given, dict) else "?"
        found, heads = _check_checkpoint(given, db, trusted_pem, f"checkpoint of {at}")
        for text in found:
            problems.add(text)
        return ([(f"checkpoint of {at}", heads)] if heads is not None else []), 0
    try:
        stored = store.checkpoints()
    except IntegrityError as e:
        problems.add(str(e))
        stored = []
    external = folder_checkpoints(folder) if folder is not None else []
    if trusted_pem is None:
        return [], len(stored) + len(external)
    sources = []
    previous = None
    chained = False  # a version 2 checkpoint was seen: every later one must chain too
    for i, cp in enumerate(stored, 1):
        label = f"checkpoint of {cp.get('at') if isinstance(cp, dict) else '?'} (stored #{i})"
        found, heads = _check_checkpoint(cp, db, trusted_pem, label)
        for text in found:
            problems.add(text)
        if heads is not None:
            sources.append((label, heads))
            if cp.get("version") != CHECKPOINT_VERSION:
                # Version 1 checkpoints (from before checkpoints were chained) are accepted
                # as the chain's prefix: the first version 2 checkpoint counts them and
                # names the last one, so a later deletion among them still shows.
                if chained:
                    problems.add(f"{label}: an old (version 1) checkpoint after chained ones "
                                 "(inserted?); it names no predecessor")
            else:
                chained = True
                if cp.get("counter") != (previous or {}).get("counter", i - 1) + 1 or cp.get("previous") != (
                        checkpoint_hash(previous) if previous is not None else None):
                    problems.add(f"{label}: does not follow the stored checkpoint before it "
                                 "(a checkpoint was deleted or inserted?)")
        previous = cp if isinstance(cp, dict) else None
    hashes = {checkpoint_hash(cp): n for n, cp in enumerate(stored, 1) if isinstance(cp, dict)}
    for name, cp in external:
        label = f"checkpoint {name} in {folder}"
        found, heads = _check_checkpoint(cp, db, trusted_pem, label)
        for text in found:
            problems.add(text)
        if heads is None:
            continue
        sources.append((label, heads))
        if checkpoint_hash(cp) not in hashes:
            problems.add(f"{label} is missing from the database's checkpoints (deleted?)")
    return sources, 0


def _scan(rows, db: str, wanted: dict, problems: ProblemList) -> tuple[dict[str, tuple[int, str]], int]:
    """Recompute every hash and link of ``rows`` (ordered by incident, seq).

    Returns each incident's (last seq, last hash) and the number of events. This is
    the hot loop: the hashed text is built inline, exactly as events.hashed_text() does.
    """
    sha = hashlib.sha256
    quote = _quote
    dbq = quote(db)
    ends: dict[str, tuple[int, str]] = {}
    count = 0
    cur = None
    incq = ""
    expect, last_hash, want, next_want = 1, "", [], -1
    for inc, seq, typ, at, actor, data, prev, h in rows:
        if inc != cur:
            if cur is not None:
                ends[cur] = (expect - 1, last_hash)
            cur, incq = inc, quote(inc)
            expect, last_hash = 1, genesis(db, inc)
            want = list(wanted.get(inc, ()))
            next_want = want[0][0] if want else -1
        count += 1
        try:
            text = (
                f'{{"actor":{quote(actor)},"at":{quote(at)},"data":{data},"db":{dbq},'
                f'"incident":{incq},"prev":"{prev}","seq":{seq},"type":{quote(typ)}}}'
            )
            good = sha(text.encode("utf-8")).hexdigest() == h
        except (TypeError, UnicodeEncodeError):
            good = False
        if not good:
            problems.add(f"incident {inc} event {seq}: hash does not match its content (modified?)")
        if seq != expect:
            if type(seq) is not int or seq < expect:
                problems.add(f"incident {inc} event {seq}: out of order (reordered?)")
                continue
            gap = f"event {expect}" if seq == expect + 1 else f"events {expect}-{seq - 1}"
            problems.add(f"incident {inc}: {gap} missing (deleted?)")
        elif prev != last_hash:
            if seq == 1:
                problems.add(f"incident {inc} event 1: does not start this incident's chain in this database (copied?)")
            else:
                problems.add(f"incident {inc}: chain broken between {seq - 1} and {seq} (inserted or reordered?)")
        while seq >= next_want >= 0:
            want_seq, want_hash, label = want.pop(0)
            if want_seq == seq and want_hash != h:
                problems.add(f"incident {inc} event {seq}: hash differs from the {label} (chain recomputed?)")
            next_want = want[0][0] if want else -1
        expect, last_hash = seq + 1, h
    if cur is not None:
        ends[cur] = (expect - 1, last_hash)
    return ends, count
