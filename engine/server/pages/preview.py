"""How a post is shown to the person approving it: its text with the flagged
identifiers marked, its length against the channel, and the change since the version
before. Presentation only: what may be approved is the engine's decision."""

from __future__ import annotations

import difflib

from markupsafe import Markup, escape


def marked(text: str, hits: list[dict]) -> Markup:
    """`text` escaped, each flagged identifier wrapped in ``<mark>``."""
    spans = []
    for hit in hits:
        needle = hit.get("text") or ""
        start = text.find(needle) if needle else -1
        while start >= 0:
            spans.append((start, start + len(needle), hit.get("kind", "identifier")))
            start = text.find(needle, start + len(needle))
    out, at = [], 0
    for start, end, kind in sorted(spans):
        if start < at:
            continue
        out.append(escape(text[at:start]))
        out.append(Markup('<mark title="possible {}">{}</mark>').format(kind, text[start:end]))
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out)


def body_of(text) -> str:
    return text.get("body", "") if isinstance(text, dict) else str(text)


def subject_of(text) -> str | None:
    return text.get("subject") if isinstance(text, dict) else None


def diff(before, after) -> list[tuple[str, str]]:
    """Line changes from `before` to `after` as (mark, line): ``+`` added, ``-`` removed,
    `` `` unchanged; empty when there is no version before."""
    if before is None:
        return []
    old = ([f"Subject: {subject_of(before)}"] if subject_of(before) is not None else []) + body_of(before).splitlines()
    new = ([f"Subject: {subject_of(after)}"] if subject_of(after) is not None else []) + body_of(after).splitlines()
    return [(line[0], line[2:]) for line in difflib.ndiff(old, new) if line[:1] in "+- "]


def earlier_versions(events, post_id: str) -> dict[int, dict]:
    """The drafted versions of a post from its incident's log: version -> event data."""
    return {e.data["version"]: {**e.data, "by": e.actor, "at": e.at}
            for e in events if e.type == "PostDrafted" and e.data.get("post") == post_id}


def preview(post: dict, versions: dict[int, dict]) -> dict:
    """What the queue and the incident page show of one post."""
    text = post["text"]
    before = versions.get(post["version"] - 1)
    count = post["count"]
    return {
        "body": marked(body_of(text), post.get("hits", [])),
        "subject": subject_of(text),
        "html": post["channel"] == "web",
        "raw": body_of(text),
        "count": count,
        "diff": diff(before["text"] if before else None, text),
        "history": [{"version": v, "by": d["by"], "at": d["at"], "edited": bool(d.get("edited"))}
                    for v, d in sorted(versions.items())],
    }
