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
inserting a stored one breaks their chain (retention removes the oldest ones, which
the newest subsumes: :func:`engine.audit.checkpoints.kept_after`); a folder of
copies kept outside the database (``checkpoint_dir``) shows the deletion of the
latest ones too, and :func:`checkpoint` refuses to continue a chain another key
signed.

Incremental refolds
-------------------
The hash chain is always checked in full. The refold and rules replay (``audit``)
are skipped for an incident whose head and stored projection are exactly what a
trusted checkpoint says a verify refolded without a problem; see
:mod:`engine.audit.checkpoints` for the claim and why it is sound. ``full`` refolds
every incident, and one incident verified alone is always refolded.

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

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from json.encoder import encode_basestring as _quote
from pathlib import Path

from engine.audit.checkpoints import (CHECKPOINT_VERSION, KEEP, checkpoint, checkpoint_file,  # noqa: F401 (re-exported)
                                      checkpoint_hash, checkpoint_heads, folder_checkpoints, heads_with_streams)
from engine.audit.keys import (load_or_create_key, public_key_path, public_key_pem,  # noqa: F401 (re-exported)
                               trusted_public_key)
from engine.errors import IntegrityError, PlaybookError
from engine.incidents.events import Event, genesis
from engine.incidents.state import is_current
from engine.store import Store
from engine.store.streams import LISTENING, STREAMS

MAX_PROBLEMS = 1000

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
    refolded: int = 0  # incidents (and streams) refolded and replayed through the rules
    unchanged: int = 0  # left as a trusted checkpoint says they were refolded (same head, same projection)
    #: incident -> (seq, head, projection digest) refolded without a problem, or unchanged:
    #: what a checkpoint signed after this verify may claim (see engine.audit.checkpoints)
    verified: dict = field(default_factory=dict, repr=False)
    #: every incident's log was checked against every stored checkpoint (and those in the
    #: checkpoint folder) with a trusted key, without a problem: a checkpoint signed now
    #: extends them all, so the retention rule may remove the oldest (engine.audit.checkpoints)
    extends: bool = field(default=False, repr=False)

    def to_json(self) -> dict:
        out = asdict(self)
        del out["verified"], out["extends"]
        return out


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
    full: bool = False,
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

    Incremental: when every incident is verified, an incident whose head and stored
    projection are exactly those a trusted checkpoint says were refolded without a
    problem (:mod:`engine.audit.checkpoints`) is neither parsed nor refolded again (its
    chain is still checked, with every other event's); ``full`` refolds every one.
    """
    problems = ProblemList()
    verified: dict[str, tuple[int, str, str]] = {}
    refolded = unchanged = 0
    refold = replay is not None or audit is not None
    with store.reading():
        db = store.database_id
        sources, unchecked, claims = checkpoint_heads(store, db, checkpoint, public_key_pem, checkpoint_dir,
                                                      problems)
        if full or incident is not None or problems:
            claims = {}  # a checkpoint in doubt vouches for nothing: every problem is looked for
        wanted: dict[str, list[tuple[int, str, str]]] = {}  # incident -> sorted (seq, hash, label)
        for label, heads in sources:
            for inc, head in heads.items():
                if incident is None or inc == incident:
                    wanted.setdefault(inc, []).append((head["seq"], head["hash"], label))
        for want in wanted.values():
            want.sort()
        ends, count = _scan(store.hash_rows(incident), db, wanted, problems)
        # (seq, head) of each snapshot; each state is read only when its turn comes, so
        # memory does not grow with the number of incidents
        if incident is None:
            snaps = {i: (seq, head) for i, seq, head in heads_with_streams(store)}
        else:
            try:
                one = _snapshot_or_stream(store, incident)
            except IntegrityError as e:
                problems.add(str(e))
                one = None
            snaps = {} if one is None else {one.incident: (one.seq, one.head)}
        digests = store.projection_digests() if incident is None else {}
        todo = []
        for inc, (seq, head) in snaps.items():
            now = (seq, head, digests.get(inc))
            if now in claims.get(inc, ()) and ends.get(inc) == (seq, head):
                verified[inc] = now  # the same log and projection bytes a trusted checkpoint vouches for
                unchanged += 1
            else:
                todo.append((inc, now))
        rows: dict = {}
        if refold and todo:
            try:
                rows = dict(store.summaries())
            except IntegrityError as e:
                problems.add(str(e))
        for inc, now in todo:
            try:
                state = _snapshot_or_stream(store, inc).state  # parsed even by --fast: a damaged one is named
            except IntegrityError as e:
                problems.add(str(e))
                continue
            if inc in ends and refold:
                before = len(problems) + problems.dropped
                _check_state(store, inc, state, replay, audit, problems, rows.get(inc))
                refolded += 1
                if len(problems) + problems.dropped == before and now[2] is not None:
                    verified[inc] = now

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
    extends = not listed and incident is None and checkpoint is None and public_key_pem is not None
    return VerifyReport(not listed, len(ends) - len(streams), count, listed, len(sources), unchecked,
                        sum(ends[s][0] for s in streams), refolded, unchanged, verified if not listed else {},
                        extends)


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


def _scan(rows, db: str, wanted: dict, problems: ProblemList) -> tuple[dict[str, tuple[int, str]], int]:
    """Recompute every hash and link of ``rows`` (:meth:`engine.store.base.Store.hash_rows`,
    ordered by incident, seq).

    Returns each incident's (last seq, last hash) and the number of events. This is
    the hot loop: the hashed bytes are built inline, exactly as events.hashed_text()
    encodes them: the data as the UTF-8 bytes stored (a stored value that is not text
    is written as :meth:`~engine.store.base.Store.rows` gives it, as before), the rest
    from the strings read, so one event is one bytes object and one hash.
    """
    sha = hashlib.sha256
    quote = _quote
    dbq = quote(db)
    ends: dict[str, tuple[int, str]] = {}
    count = 0
    cur = None
    mid = b""
    # the actor's and the type's parts of the text, which repeat from event to event
    actors: dict = {}
    tails: dict = {}
    expect, last_hash, want, next_want = 1, "", [], -1
    for inc, seq, typ, at, actor, data, raw, prev, h in rows:
        if inc != cur:
            if cur is not None:
                ends[cur] = (expect - 1, last_hash)
            cur = inc
            try:
                mid = f',"db":{dbq},"incident":{quote(inc)},"prev":"'.encode("utf-8")
            except (TypeError, UnicodeEncodeError):
                mid = None
            expect, last_hash = 1, genesis(db, inc)
            want = list(wanted.get(inc, ()))
            next_want = want[0][0] if want else -1
        count += 1
        try:
            head = actors.get(actor)
            if head is None:
                head = actors[actor] = f'{{"actor":{quote(actor)},"at":'.encode("utf-8")
            tail = tails.get(typ)
            if tail is None:
                tail = tails[typ] = f',"type":{quote(typ)}}}'.encode("utf-8")
            if data is None:
                data = f"{raw}".encode("utf-8")
            # exactly events.hashed_text(), encoded: keys in order, the data's canonical text as stored
            text = b'%b%b,"data":%b%b%b%b' % (head, quote(at).encode("utf-8"), data, mid,
                                             f'{prev}","seq":{seq}'.encode("utf-8"), tail)
            good = sha(text).hexdigest() == h
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
