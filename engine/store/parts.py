"""Parts of a projection kept apart from its snapshot row: the plan once per incident, and
posts and messages one row per entry, read only where a command looks.

An incident's posts (each holding every published version and delivery) and its inbound
messages are most of a long-running incident's state, and most events change none of
them, or one. So the store keeps each entry of these mappings (:data:`PARTS`) as its own
row of ``projection_parts`` and the snapshot row holds, in the mapping's place, a
reference listing its keys (``{"$part": "posts", "keys": [...]}``).

Inside a write transaction the state's mappings are :class:`LazyParts`: an entry is read
(on the transaction's connection, under its lock) and parsed when it is first looked up,
and a fold's copy of the state copies only the entries it touches. At the append, only
the entries looked up and changed are written, and the keys added or removed; a note on an
incident holding a thousand published versions writes the small rest of the state and
its event, nothing else. Outside a transaction the store reads states whole (plain dicts).

A LazyParts is a read-only-shaped :class:`collections.abc.MutableMapping`, not a dict:
anything that needs plain JSON (``canonical``, ``json.dumps``) gets the whole state from
``engine.incidents.state.plain``. It reads nothing once its transaction is over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, MutableMapping

from engine.errors import IntegrityError
from engine.incidents.events import canonical

#: The mappings of a state stored one row per entry.
PARTS = ("posts", "inbound", "inbound_keys")
#: Those whose entries a fold replaces and never edits (engine.incidents.state._copy shares
#: them between copies): an entry is changed exactly when it is not the object read.
REPLACED = frozenset({"inbound", "inbound_keys"})
_MISSING = object()


def is_ref(value) -> bool:
    """Whether a stored state's value is the reference to a part kept in rows."""
    return type(value) is dict and len(value) == 2 and type(value.get("$part")) is str and \
        type(value.get("keys")) is list


class LazyParts(MutableMapping):
    """One part of a state read in a transaction: its keys known, its entries read and
    parsed on first lookup through ``fetch(keys) -> {key: stored text}``."""

    def __init__(self, incident: str, part: str, keys: list[str], fetch: Callable[[list[str]], dict[str, str]],
                 texts: dict[str, str] | None = None) -> None:
        self.incident, self.part = incident, part
        self._fetch = fetch
        self.stored = frozenset(keys)  # the keys as stored: what the rows are
        self._keys = dict.fromkeys(keys)  # the keys now, in order
        self._texts = {} if texts is None else texts  # stored texts read so far (shared, never changed)
        self._own: dict = {}  # entries looked up (or set) here: this state's own, mutable
        self._read: dict = {}  # key -> the object parsed from its stored text (REPLACED parts)

    # -- reading ----------------------------------------------------------------------

    def _load(self, keys: list[str]) -> None:
        wanted = [k for k in keys if k not in self._texts and k in self.stored]
        if wanted:
            found = self._fetch(wanted)
            missing = [k for k in wanted if k not in found]
            if missing:
                raise IntegrityError(f"incident {self.incident}: its stored {self.part} {missing[0]!r} is "
                                     "missing (deleted?); run verify")
            self._texts.update(found)
        todo = [k for k in keys if k not in self._own]
        parsed = dict(zip(todo, self._parsed(todo)))
        self._own.update(parsed)
        if self.part in REPLACED:
            self._read.update(parsed)

    def _parsed(self, keys: list[str]) -> list:
        """The stored entries of ``keys``, freshly parsed: as one JSON array (one call for
        hundreds of messages), or one by one to name a damaged one."""
        if not keys:
            return []
        try:
            found = json.loads("[" + ",".join(self._texts[k] for k in keys) + "]")
            if len(found) == len(keys):
                return found
        except (TypeError, ValueError):
            pass
        return [self._parse(k) for k in keys]

    def _parse(self, key: str):
        try:
            return json.loads(self._texts[key])
        except (TypeError, ValueError):
            raise IntegrityError(f"incident {self.incident}: its stored {self.part} {key!r} is not valid "
                                 "JSON (modified?)") from None

    def __getitem__(self, key):
        value = self._own.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if key not in self._keys:
            raise KeyError(key)
        self._load([key])
        return self._own[key]

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def items(self):
        self._load(list(self._keys))
        return [(k, self._own[k]) for k in self._keys]

    def values(self):
        return [v for _, v in self.items()]

    def plain(self) -> dict:
        """Every entry, as a plain dict (this state's own objects)."""
        return dict(self.items())

    def __eq__(self, other) -> bool:
        if isinstance(other, LazyParts):
            other = other.plain()
        return isinstance(other, dict) and self.plain() == other

    __hash__ = None

    def __repr__(self) -> str:
        return f"LazyParts({self.incident!r}, {self.part!r}, {len(self._keys)} entries)"

    # -- writing ----------------------------------------------------------------------

    def __setitem__(self, key, value) -> None:
        if type(key) is not str:
            raise TypeError(f"{self.part}: key {key!r} is not a string")
        self._keys[key] = None
        self._own[key] = value

    def __delitem__(self, key) -> None:
        if key not in self._keys:
            raise KeyError(key)
        del self._keys[key]
        self._own.pop(key, None)

    def child(self) -> LazyParts:
        """A copy for a fold to change: the entries looked up here are copied (as a copy
        of a plain state copies everything), the others are read when the copy looks."""
        from engine.incidents.state import plain_copy

        copy = LazyParts(self.incident, self.part, [], self._fetch, self._texts)
        copy.stored = self.stored
        copy._keys = dict(self._keys)
        if self.part in REPLACED:  # shared, as the fold replaces them
            copy._own, copy._read = dict(self._own), dict(self._read)
        else:
            copy._own = {k: plain_copy(v) for k, v in self._own.items()}
        return copy

    def changes(self) -> tuple[list[tuple[str, str]], list[str]]:
        """(key, text) of the entries to write (new, or looked up and changed) and the keys
        to delete, relative to the rows as stored."""
        if self.part in REPLACED:
            writes = [(key, canonical(value).decode("utf-8")) for key, value in self._own.items()
                      if key not in self.stored or value is not self._read.get(key, _MISSING)]
            return writes, [k for k in self.stored if k not in self._keys]
        known = [k for k in self._own if k in self.stored and k in self._texts]
        before = dict(zip(known, self._parsed(known)))
        writes = [(key, canonical(value).decode("utf-8")) for key, value in self._own.items()
                  if key not in before or value != before[key]]  # else looked up, not changed
        return writes, [k for k in self.stored if k not in self._keys]

    def close(self) -> None:
        """The transaction is over: nothing more may be read through it."""
        self._fetch = _closed(self.incident, self.part)


def _closed(incident: str, part: str):
    def fetch(keys):
        raise RuntimeError(f"incident {incident}: its {part} were read in a write transaction that is "
                           "over; read the incident again (store.snapshot) to see them")
    return fetch


def whole(incident: str, part: str, ref: dict, texts: dict[str, str]) -> dict:
    """A part read in full: {key: parsed entry} for a reference and its rows' texts."""
    out = {}
    for key in ref["keys"]:
        text = texts.get(key)
        if text is None:
            raise IntegrityError(f"incident {incident}: its stored {part} {key!r} is missing (deleted?); "
                                 "run verify")
        try:
            out[key] = json.loads(text)
        except (TypeError, ValueError):
            raise IntegrityError(f"incident {incident}: its stored {part} {key!r} is not valid JSON "
                                 "(modified?)") from None
    return out


def split(state: dict, before: dict | None) -> tuple[dict, list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(state with a reference in place of each part, rows to write as (part, key, text),
    rows to delete as (part, key)) for storing ``state``, whose transaction read ``before``
    (None: nothing stored yet, or write everything)."""
    core, writes, deletes = dict(state), [], []
    for part in PARTS:
        value = state.get(part, _MISSING)
        old = before.get(part) if isinstance(before, dict) else None
        stored = old.stored if isinstance(old, LazyParts) else frozenset()
        if value is _MISSING:
            deletes += [(part, k) for k in stored]
            continue
        if isinstance(value, LazyParts) and value.stored is stored and stored:
            changed, removed = value.changes()
            keys = list(value)
        elif isinstance(value, (dict, LazyParts)):
            entries = value.plain() if isinstance(value, LazyParts) else value
            for key in entries:
                if type(key) is not str:
                    raise TypeError(f"{part}: key {key!r} is not a string")
            changed = [(k, canonical(v).decode("utf-8")) for k, v in entries.items()]
            keys = list(entries)
            removed = [k for k in stored if k not in entries]
        else:
            continue  # not a mapping: stored in the row as it is (and checked there)
        writes += [(part, k, text) for k, text in changed]
        deletes += [(part, k) for k in removed]
        core[part] = {"$part": part, "keys": sorted(keys)}
    return core, writes, deletes


def has_parts(text: str) -> bool:
    """Whether a stored state's text refers to entries stored one row each (a cheap test
    before reading them: a part without entries has none; :func:`snapshot_of` checks
    what it finds)."""
    return '"$part"' in text and _KEYS.search(text) is not None


_KEYS = re.compile(r'"keys"\s*:\s*\[\s*"')


#: The part of a state kept apart from the snapshot row (``projection_parts``), and what
#: the stored state holds in its place.
PLAN = "plan"
PLAN_REF = {"$part": PLAN}
_PLANS: dict[str, dict] = {}  # plan text -> parsed plan, shared by the states read (see plan_of)


def plan_of(incident: str, text: str) -> dict:
    """The parsed plan of a stored plan text. Incidents of one playbook version store the
    same text, so it is parsed once per process and the parsed plan shared, as every copy
    of a state already shares its plan (a fold never changes it; nothing may)."""
    plan = _PLANS.get(text)
    if plan is None:
        try:
            plan = json.loads(text)
        except (TypeError, ValueError):
            plan = None
        if type(plan) is not dict:
            raise IntegrityError(f"incident {incident}: its stored plan is not valid JSON (modified?)") from None
        if len(_PLANS) >= 64:
            _PLANS.clear()
        _PLANS[text] = plan
    return plan


class Stored:
    """What storing a state writes: the snapshot row's state text, the plan text (None:
    unchanged, or none), and the rows of the parts stored per entry to write (part, key,
    text) and to delete (part, key). (A plain class, not a dataclass: every command that
    reads a snapshot imports this module, and building a dataclass costs start-up.)"""

    __slots__ = ("state_text", "plan_text", "writes", "deletes")

    def __init__(self, state_text: str, plan_text: str | None = None, writes=(), deletes=()) -> None:
        self.state_text, self.plan_text, self.writes, self.deletes = state_text, plan_text, writes, deletes


def stored_parts(snapshot, state: dict, parts: bool = True) -> Stored:
    """What to write for storing ``state`` (see :class:`Stored`).

    With ``parts`` (a schema with ``projection_parts``) a state's plan is kept apart: the
    row holds PLAN_REF in its place, and the plan is written only when it is not the one
    read in this transaction (the same object, which every fold shares, or the same text);
    and each mapping of engine.store.parts.PARTS is stored one row per entry, of which only
    those changed are written. So an event re-encodes and re-checks the small rest of the
    state and what it changed. ``snapshot`` is what the transaction read (None for a new
    incident, or to write everything)."""
    if not parts or type(state) is not dict:
        return Stored(canonical(state).decode("utf-8"))
    core, writes, deletes = split(state, snapshot.state if snapshot is not None else None)
    plan = core.get(PLAN)
    if type(plan) is not dict:
        return Stored(canonical(core).decode("utf-8"), None, writes, deletes)
    core[PLAN] = PLAN_REF
    core_text = canonical(core).decode("utf-8")
    if snapshot is not None and snapshot.plan_text is not None:
        if type(snapshot.state) is dict and snapshot.state.get(PLAN) is plan:
            return Stored(core_text, None, writes, deletes)
        text = canonical(plan).decode("utf-8")
        return Stored(core_text, None if text == snapshot.plan_text else text, writes, deletes)
    return Stored(core_text, canonical(plan).decode("utf-8"), writes, deletes)


def loaded_parts(incident: str, state_text: str, parts: bool = True) -> Stored:
    """:func:`stored_parts` of a whole state's text (``db copy``), checked to be JSON."""
    try:
        state = json.loads(state_text)
    except (TypeError, ValueError):
        raise IntegrityError(f"incident {incident}: the state to load is not valid JSON") from None
    if type(state) is dict and state.get(PLAN) == PLAN_REF:
        raise IntegrityError(f"incident {incident}: the state to load lacks its plan")
    return stored_parts(None, state, parts)

