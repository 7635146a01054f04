"""RSS and Atom feeds (review sites, alert feeds): each entry is an inbound message.

:func:`fetch` gets the feed over HTTP with a time limit; :func:`entries` reads it with
feedparser. A feed that cannot be fetched or is not a feed raises
:class:`SourceFailed`, which the listener reports and tries again at its next poll.
"""

from __future__ import annotations

import calendar
import html
import re

from ..errors import PlaybookError
from ..incidents.events import utc_now_iso

#: Largest feed read, in bytes.
MAX_FEED = 5_000_000


class SourceFailed(PlaybookError):
    """A source could not be read this time (unreachable, too slow, not what it should be)."""

    exit_code = 8


def fetch(url: str, timeout: float) -> bytes:
    import httpx

    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            r = client.get(url, headers={"Accept": "application/atom+xml, application/rss+xml, */*"})
    except httpx.TimeoutException:
        raise SourceFailed(f"{url}: no answer within {timeout:g}s") from None
    except httpx.HTTPError as e:
        raise SourceFailed(f"{url}: cannot be fetched ({type(e).__name__})") from None
    if r.status_code != 200:
        raise SourceFailed(f"{url}: answered HTTP {r.status_code}")
    if len(r.content) > MAX_FEED:
        raise SourceFailed(f"{url}: the feed is over {MAX_FEED} bytes")
    return r.content


def plain(markup: str) -> str:
    """Text from an HTML fragment (a feed's summary, a Mastodon status), for the log."""
    from ..safetext import for_terminal

    text = re.sub(r"<br\s*/?>|</p>\s*<p[^>]*>", "\n", markup or "", flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return for_terminal(text).strip()  # control characters kept visible, never obeyed


def entries(data: bytes, where: str) -> list[dict]:
    """The feed's entries as message fields (newest last), or SourceFailed."""
    import feedparser

    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        raise SourceFailed(f"{where}: not an RSS or Atom feed ({type(parsed.bozo_exception).__name__})")
    out = []
    for e in parsed.entries:
        when = e.get("published_parsed") or e.get("updated_parsed")
        title, summary = plain(e.get("title", "")), plain(e.get("summary", ""))
        text = "\n".join(t for t in (title, summary) if t)[:5000] or "(no text)"
        link = e.get("link")
        out.append({
            "source_id": (e.get("id") or link or title)[:200] or None,
            "author": (plain(e.get("author", "")).replace("\n", " ")[:200]) or None,
            "text": text, "kind": "review",
            "url": link if isinstance(link, str) and re.match(r"^https?://", link) and len(link) <= 2000 else None,
            "posted_at": utc_now_iso(_utc(when)) if when else None,
        })
    return sorted(out, key=lambda m: m["posted_at"] or "")


def _utc(struct):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(calendar.timegm(struct), tz=timezone.utc)
