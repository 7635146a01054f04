"""Signed checkpoints: each incident's head (and, where it was verified, a digest of its
projection) at a moment, signed with the local key and chained to the one before.

What a checkpoint proves, and what it does not, is described in
:mod:`engine.audit.integrity`. The projection digests make verification incremental:
a checkpoint names, per incident, the digest of the stored projection that a verify
refolded from that exact log (the head's hash covers every event before it) and
replayed through the rules without a problem. A later verify still recomputes every
event's hash and link, but refolds only the incidents whose head or projection differs
from every trusted checkpoint's claim: for an unchanged one, the same log (same head
hash) and the same projection bytes (same digest) give the same result, as long as the
fold and the rules are the same (:func:`refold` names them; a checkpoint made by other
code claims nothing).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from engine.audit.keys import public_key_pem
from engine.errors import IntegrityError, StoreError
from engine.incidents.events import canonical, parse_iso, utc_now_iso
from engine.store import Store
from engine.store.streams import STREAMS

CHECKPOINT_VERSION = 2  # 2: counter and previous (each checkpoint names the one before)

#: Retention: how many stored checkpoints :func:`checkpoint` keeps, the new one included
#: (older ones are removed in the transaction that stores it; see :func:`kept_after`).
KEEP = 3


@lru_cache(maxsize=1)
def refold() -> str:
    """Names the fold and the rules a checkpoint's projection claims were made with: the
    SHA-256 of this tool's own source (every module of the engine package, by path), so
    that any other version of the code, a development build included, trusts none of
    them and refolds everything once."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"?"
        h.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0" + b"%d:" % len(data) + data)
    return h.hexdigest()


def checkpoint_text(cp: dict) -> str:
    """A checkpoint as the command line writes it: valid JSON, one key per line and one
    line per incident's head (tens of thousands of them are written at C speed: the
    indenting encoder is pure Python)."""
    lines = []
    for key, value in cp.items():
        if key == "heads" and isinstance(value, dict) and value:
            inner = ",\n".join(f"    {json.dumps(i, ensure_ascii=False)}: {json.dumps(h, ensure_ascii=False)}"
                                for i, h in value.items())
            lines.append(f"  {json.dumps(key)}: {{\n{inner}\n  }}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def checkpoint_hash(cp: dict, parsed: bool = False) -> str:
    """The SHA-256 of a whole signed checkpoint, as the next one names it (``parsed``:
    ``cp`` was read from JSON, see :func:`parsed_canonical`)."""
    return hashlib.sha256(parsed_canonical(cp) if parsed else canonical(cp)).hexdigest()


def parsed_canonical(value) -> bytes:
    """:func:`~engine.incidents.events.canonical` of a value parsed from JSON (a stored or
    read checkpoint): made of plain JSON values by construction, so it is only written,
    not walked first to check that (the walk cost as much as the writing, for tens of
    thousands of heads, for every checkpoint of every verify); NaN or an infinity, which
    a JSON parser accepts, still fails (ValueError), as in canonical()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def checkpoint_file(folder: Path, counter: int) -> Path:
    return Path(folder) / f"checkpoint-{counter:08d}.json"


def checkpoint(store: Store, key, at: str, folder: Path | None = None,
               verified: dict[str, tuple[int, str, str]] | None = None, retain: bool = False) -> dict:
    """Sign each incident's current head (seq and hash), store the checkpoint, return it.

    Each checkpoint carries a counter and the hash of the one before, so a deleted or
    inserted checkpoint breaks the chain. With ``folder``, the checkpoint is also
    written there as ``checkpoint-NNNNNNNN.json`` (keep that folder out of reach of
    whoever can write the database). Refuses (IntegrityError) if an incident's snapshot
    does not end where its log ends, or if the last stored checkpoint was not signed
    with ``key`` (signing would bless a history someone else vouched for).

    A head also carries its incident's ``projection`` digest (see
    :meth:`engine.store.base.Store.projection_digests`) where the log up to that exact
    head was refolded into the projection of that digest and replayed through the rules
    without a problem: by the verify that gives ``verified`` (incident -> (seq, head,
    digest) it checked), or by an earlier checkpoint this key signed with the same
    :func:`refold` (carried forward while the head stays). A later verify refolds only
    the incidents whose head and stored projection no claim covers.

    With ``retain`` (the caller has just verified every incident against every stored
    checkpoint, without a problem: ``VerifyReport.extends``), the retention rule
    (:func:`kept_after`) removes the oldest stored checkpoints in the transaction that
    stores this one; without it every stored checkpoint stays.
    """
    if not isinstance(at, str) or utc_now_iso(parse_iso(at)) != at:
        raise ValueError(f"checkpoint time {at!r} is not in the form YYYY-MM-DDTHH:MM:SS.mmmZ")
    heads: dict[str, dict] = {}
    pem = public_key_pem(key)
    with store.reading():
        stored = store.checkpoints()
        ends = store.log_ends()
        for incident, seq, head in heads_with_streams(store):  # never the states: flat memory
            if ends.get(incident) != (seq, head):
                raise IntegrityError(
                    f"cannot sign a checkpoint: incident {incident}'s snapshot does not "
                    "match its log; run verify"
                )
            heads[incident] = {"seq": seq, "hash": head}
    last = stored[-1] if stored else None
    if last is not None and check_checkpoint(last, store.database_id, pem, "the last stored checkpoint",
                                             parsed=True)[0]:
        raise IntegrityError("cannot sign a checkpoint: the last stored checkpoint is not signed by this "
                             "signing key; run verify")
    # A claim says that the log up to a head, refolded, gives the projection of that digest
    # and passes the rules: true for good once made, whatever is stored later. So it is
    # signed again wherever the incident's head is still that head.
    earlier = claims_of(last) if last is not None else {}
    for incident, head in heads.items():
        at_head = (head["seq"], head["hash"])
        claim = (verified or {}).get(incident)
        if claim is None or tuple(claim[:2]) != at_head:
            claim = next((c for c in earlier.get(incident, ()) if c[:2] == at_head), None)
        if claim is not None and isinstance(claim[2], str):
            head["projection"] = claim[2]
    counter = (last.get("counter", len(stored)) if last is not None else 0) + 1
    body = {
        "version": CHECKPOINT_VERSION,
        "database": store.database_id,
        "at": at,
        "counter": counter,
        "previous": checkpoint_hash(last, parsed=True) if last is not None else None,
        "heads": heads,
        "public_key": pem,
        "refold": refold(),
    }
    cp = {**body, "signature": base64.b64encode(key.sign(canonical(body))).decode("ascii")}
    store.add_checkpoint(cp, keep=kept_after(stored) if retain else None)
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


def kept_after(stored: list) -> int | None:
    """How many checkpoints to keep once a new one is stored after ``stored`` (None: all).

    The retention rule. Incremental verification needs only the newest checkpoint: each
    one signs again every claim of the one before whose head has not moved (and a claim
    it drops is one no current projection can use), and its heads extend every older
    checkpoint's (it is signed only by a verify that found the log agreeing with them),
    so the log it vouches for contains each older one's. The rest is history, bounded to
    :data:`KEEP` checkpoints in all. Version 1 checkpoints (unchained, counted by their
    place) go all at once or not at all, so that the first stored version 2 checkpoint
    still counts its predecessors right.
    """
    drop = len(stored) + 1 - KEEP
    if drop <= 0:
        return None
    first = stored[drop] if drop < len(stored) else None
    if first is not None and not (isinstance(first, dict) and first.get("version") == CHECKPOINT_VERSION):
        return None  # the first one kept would be an old one: keep them all for now
    return KEEP


def removed_before(stored: list) -> int:
    """How many checkpoints retention removed before the first of ``stored`` (0 when it
    starts the chain): the first one's counter tells, where it names a predecessor."""
    first = stored[0] if stored else None
    if (isinstance(first, dict) and first.get("version") == CHECKPOINT_VERSION and type(first.get("counter")) is int
            and first["counter"] > 1 and isinstance(first.get("previous"), str)):
        return first["counter"] - 1
    return 0


def claims_of(cp: dict) -> dict[str, set[tuple[int, str, str]]]:
    """Incident -> {(seq, head, projection digest)} a (trusted) checkpoint says were refolded
    and replayed through the rules without a problem, by the same code as this
    (:func:`refold`); nothing for a checkpoint made by other code."""
    if cp.get("refold") != refold():
        return {}
    return {inc: {(h["seq"], h["hash"], h["projection"])} for inc, h in cp["heads"].items()
            if isinstance(h.get("projection"), str)}


def folder_checkpoints(folder: Path) -> list[tuple[str, object]]:
    """(file name, parsed JSON or None) of each checkpoint file in ``folder``, in counter order."""
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


def check_checkpoint(cp: object, database_id: str, trusted_pem: str | None, label: str,
                     parsed: bool = False) -> tuple[list[str], dict | None]:
    """(problems, heads to check the log against: None unless signature and database are right).
    ``parsed``: ``cp`` was read from JSON (see :func:`parsed_canonical`)."""
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
            and isinstance(h.get("projection", ""), str)
            for h in heads.values()
        )
    )
    if not well_formed:
        return [f"{label}: not a version {CHECKPOINT_VERSION} checkpoint (malformed)"], None
    body = {k: v for k, v in cp.items() if k != "signature"}
    try:
        public = serialization.load_pem_public_key((trusted_pem or cp["public_key"]).encode("utf-8"))
        public.verify(base64.b64decode(cp["signature"], validate=True),
                      parsed_canonical(body) if parsed else canonical(body))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, AttributeError):
        why = ""
        if trusted_pem and cp["public_key"].strip() != trusted_pem.strip():
            why = ": signed by a different key than the configured or given one (forged?)"
        return [f"checkpoint signature invalid ({label}){why}"], None
    if cp.get("database") != database_id:
        return [f"{label} is from a different database ({cp.get('database')}), not this one ({database_id})"], None
    return [], heads


def checkpoint_heads(
    store: Store, db: str, given: dict | None, trusted_pem: str | None, folder: Path | None, problems,
) -> tuple[list[tuple[str, dict]], int, dict[str, set[tuple[int, str, str]]]]:
    """(label, heads) of each checkpoint to check the log against, how many stored ones
    went unchecked for want of a trusted key, and the projection claims (see
    :func:`claims_of`) of the trusted ones; reports every untrustworthy one to
    ``problems`` (``add(text)``)."""
    sources, unchecked, trusted = _trusted(store, db, given, trusted_pem, folder, problems)
    claims: dict[str, set[tuple[int, str, str]]] = {}
    for cp in trusted:
        for inc, found in claims_of(cp).items():
            claims.setdefault(inc, set()).update(found)
    return sources, unchecked, claims


def _trusted(store: Store, db: str, given: dict | None, trusted_pem: str | None, folder: Path | None, problems):
    """(sources, unchecked, the trusted checkpoints themselves) for checkpoint_heads."""
    if given is not None:
        at = given.get("at") if isinstance(given, dict) else "?"
        found, heads = check_checkpoint(given, db, trusted_pem, f"checkpoint of {at}")
        for text in found:
            problems.add(text)
        return ([(f"checkpoint of {at}", heads)] if heads is not None else []), 0, [given] if heads else []
    try:
        stored = store.checkpoints()
    except IntegrityError as e:
        problems.add(str(e))
        stored = []
    external = folder_checkpoints(folder) if folder is not None else []
    if trusted_pem is None:
        return [], len(stored) + len(external), []
    sources, trusted = [], []
    previous = None
    chained = False  # a version 2 checkpoint was seen: every later one must chain too
    # Retention removes the oldest checkpoints (kept_after): the first one stored may then
    # follow a removed one, whose counter it names and whose hash it holds; from it on,
    # each must follow the one before.
    pruned = removed_before(stored)
    # each stored checkpoint's hash, written once: the next one names it, a copy in the folder has it
    own = [checkpoint_hash(cp, parsed=True) if isinstance(cp, dict) else None for cp in stored]
    for i, cp in enumerate(stored, 1):
        label = f"checkpoint of {cp.get('at') if isinstance(cp, dict) else '?'} (stored #{i + pruned})"
        found, heads = check_checkpoint(cp, db, trusted_pem, label, parsed=True)
        for text in found:
            problems.add(text)
        if heads is not None:
            sources.append((label, heads))
            trusted.append(cp)
            if cp.get("version") != CHECKPOINT_VERSION:
                # Version 1 checkpoints (from before checkpoints were chained) are accepted
                # as the chain's prefix: the first version 2 checkpoint counts them and
                # names the last one, so a later deletion among them still shows.
                if chained:
                    problems.add(f"{label}: an old (version 1) checkpoint after chained ones "
                                 "(inserted?); it names no predecessor")
            else:
                chained = True
                if i == 1 and pruned:
                    pass  # follows one removed by retention: counter and hash named above
                elif cp.get("counter") != (previous or {}).get("counter", i - 1) + 1 or cp.get("previous") != (
                        own[i - 2] if previous is not None else None):
                    problems.add(f"{label}: does not follow the stored checkpoint before it "
                                 "(a checkpoint was deleted or inserted?)")
        previous = cp if isinstance(cp, dict) else None
    hashes = {h: n for n, h in enumerate(own, 1) if h is not None}
    for name, cp in external:
        label = f"checkpoint {name} in {folder}"
        found, heads = check_checkpoint(cp, db, trusted_pem, label, parsed=True)
        for text in found:
            problems.add(text)
        if heads is None:
            continue
        sources.append((label, heads))
        trusted.append(cp)
        removed = pruned and type(cp.get("counter")) is int and cp["counter"] <= pruned  # by retention
        if checkpoint_hash(cp, parsed=True) not in hashes and not removed:
            problems.add(f"{label} is missing from the database's checkpoints (deleted?)")
    return sources, 0, trusted


def heads_with_streams(store: Store) -> list[tuple[str, int, str]]:
    """(id, seq, head) of the incidents' snapshots and of the streams that are not incidents."""
    return store.heads() + [(s.incident, s.seq, s.head) for s in (store.stream(name) for name in STREAMS)
                            if s is not None]


