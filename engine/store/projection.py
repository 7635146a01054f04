"""The texts a store keeps as an incident's projection, beside its log: what every backend
digests them as (for verify's checkpoints) and how the index row's clocks moved into a
column of their own (schema 4). Shared by the backends; no SQL here."""

from __future__ import annotations

import json
from collections.abc import Iterable

from engine.incidents.events import canonical

#: The first schema whose index keeps a summary's ``clocks`` text in a column of its own
#: (migration 004), so that a listing parses only the small rest of each summary.
CLOCKS_COLUMN = 4


def projection_digest(state: str, summary: str | None = None, clocks: str | None = None,
                      parts: Iterable[tuple[str, str, str]] = ()) -> str:
    """SHA-256 (hex) of an incident's stored projection texts: the state, then the index
    row's summary and clocks texts (each absent, or its UTF-8 length and bytes), then each
    (part, key, text) row kept apart in ``projection_parts`` (schema 5: the plan, the posts
    and inbound messages stored per entry), in (part, key) order, each text length-prefixed
    too; so that no two different stored projections share a digest, and one with no rows
    apart digests as it did before there were any."""
    import hashlib  # here: reads that do not digest never load OpenSSL

    h = hashlib.sha256()
    for text in (state, summary, clocks):
        if text is None:
            h.update(b"-")
        else:
            _text(h, text)
    for row in sorted(parts):
        for text in row:
            _text(h, text)
    return h.hexdigest()


def _text(h, text) -> None:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    h.update(b"%d:" % len(data) + data)


#: The kinds of row :func:`digests_of` reads: a snapshot's (id, CORE, state, summary,
#: clocks), then each of its parts kept apart (id, PART, part, key, text).
CORE, PART = 0, 1


def digests_of(rows: Iterable[tuple]) -> dict[str, str]:
    """Id -> :func:`projection_digest` of rows ordered by id then kind (:data:`CORE` first),
    one snapshot and its parts at a time (flat memory); parts without a snapshot are not a
    projection and are left out."""
    out: dict[str, str] = {}
    current, core, parts = None, None, []
    for incident, kind, *texts in rows:
        if incident != current:
            if core is not None:
                out[current] = projection_digest(*core, parts)
            current, core, parts = incident, None, []
        if kind == CORE:
            core = texts
        else:
            parts.append(tuple(texts))
    if core is not None:
        out[current] = projection_digest(*core, parts)
    return out


def joined(indexed: tuple) -> str:
    """The whole summary's canonical text of an :func:`index_row`, clocks included (what a
    schema before :data:`CLOCKS_COLUMN` stores)."""
    _, _, text, clocks = indexed
    return text if clocks is None else canonical(dict(json.loads(text), clocks=clocks)).decode("utf-8")


def split_summary(text: str) -> tuple[str, str] | None:
    """(text without clocks, clocks) of a stored whole summary that holds a clocks text
    (written before :data:`CLOCKS_COLUMN`), else None (also for a damaged one, which is
    left as it is for verify to name)."""
    try:
        row = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("clocks"), str):
        return None
    clocks = row.pop("clocks")
    return canonical(row).decode("utf-8"), clocks


def move_clocks(rows, update) -> int:
    """For each stored (incident, whole summary text) row that holds its clocks (written
    before :data:`CLOCKS_COLUMN`), ``update((text without clocks, clocks, incident))``:
    what upgrading to that schema does, in the upgrade's transaction. How many moved."""
    moved = 0
    for incident, text in rows:
        split = split_summary(text)
        if split is not None:
            update((*split, incident))
            moved += 1
    return moved
