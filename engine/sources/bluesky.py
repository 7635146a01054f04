"""Bluesky mentions and replies to the organisation's account, polled with atproto.

The source signs in to its PDS (``url``) with the account's handle and an app
password, reads ``app.bsky.notification.listNotifications`` and keeps the mentions and
replies; each becomes a message whose source id is the post's AT URI (so a post is
recorded once) and whose posted-at is the record's ``createdAt``. A reply goes into the
thread with ``com.atproto.repo.createRecord``: a post whose ``reply`` names the thread's
root and the answered post (URI and CID, read back with ``com.atproto.repo.getRecord``),
with a link facet for each URL of its text (without one, Bluesky shows a link as plain
text). Mentions in a reply are left as text: a mention facet needs the handle's DID.

Anything that goes wrong (no answer in time, a refused password, an answer that is not
what the protocol says) raises :class:`~engine.sources.feed.SourceFailed`, which the
listener reports and polls again next time. The password never appears in a message.
A session is kept between polls and replies (a PDS limits how often an account signs
in) and dropped when a call fails.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

from .feed import SourceFailed

#: The notifications kept, and the kind of message each is recorded as.
REASONS = {"mention": "mention", "reply": "reply"}
POST = "app.bsky.feed.post"


#: Signed-in clients by (url, handle, password digest, timeout). A PDS limits how often an
#: account may sign in (bsky.social: 300 times a day), far less than a listener polls, so
#: a session is kept and refreshed by atproto; it is dropped when a call fails.
_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _key(url: str, handle: str, password: str, timeout: float) -> tuple:
    import hashlib

    return url, handle, hashlib.sha256(password.encode()).hexdigest(), timeout


def _client(url: str, handle: str, password: str, timeout: float):
    """A signed-in atproto client of `url` (kept from an earlier call), or SourceFailed."""
    from atproto import Client
    from atproto_client.request import Request

    key = _key(url, handle, password, timeout)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
    if client is None:
        client = Client(base_url=url, request=Request(timeout=timeout))
        _call(url, "sign-in", lambda: client.login(handle, password, fetch_bsky_profile=False))
        with _CLIENTS_LOCK:
            _CLIENTS[key] = client
    return client


def _signed_in(url: str, handle: str, password: str, timeout: float, work):
    """`work(client)` with a signed-in client; a failure drops the session (the next
    call signs in again)."""
    client = _client(url, handle, password, timeout)
    try:
        return work(client)
    except SourceFailed:
        with _CLIENTS_LOCK:
            _CLIENTS.pop(_key(url, handle, password, timeout), None)
        raise


def _call(url: str, what: str, call):
    """`call()`, with every failure of the service translated into SourceFailed."""
    import httpx
    from atproto_client.exceptions import AtProtocolError, InvokeTimeoutError, ModelError, UnauthorizedError

    try:
        return call()
    except InvokeTimeoutError:
        raise SourceFailed(f"{url}: {what}: no answer in time") from None
    except UnauthorizedError:
        raise SourceFailed(f"{url}: {what}: the handle or app password was refused") from None
    except (ModelError, ValueError, TypeError, AttributeError, KeyError) as e:  # pydantic's errors are ValueErrors
        raise SourceFailed(f"{url}: {what}: the answer is not what the protocol says ({type(e).__name__})") from None
    except (AtProtocolError, httpx.HTTPError) as e:
        raise SourceFailed(f"{url}: {what} failed ({type(e).__name__})") from None


def mentions(url: str, handle: str, password: str, timeout: float, limit: int = 50) -> list[dict]:
    """The account's latest mentions and replies as message fields (oldest first)."""
    from ..incidents.inbound import LANG  # a language the checks would refuse is left out, not the post
    from ..safetext import for_terminal

    def listed(client):
        found = _call(url, "listNotifications",
                      lambda: client.app.bsky.notification.list_notifications(params={"limit": limit}))
        return _call(url, "listNotifications", lambda: list(found.notifications))

    out = []
    for n in _signed_in(url, handle, password, timeout, listed):
        kind = REASONS.get(n.reason)
        record = n.record
        text = getattr(record, "text", None)
        if kind is None or not isinstance(text, str):
            continue
        langs = getattr(record, "langs", None) or []
        author = getattr(n.author, "handle", None)
        rkey = n.uri.rsplit("/", 1)[-1]
        out.append({
            "source_id": n.uri,
            "author": f"@{author}" if author else None,
            "text": for_terminal(text).strip()[:5000] or "(no text)",  # control characters shown, never obeyed
            "kind": kind,
            "lang": langs[0] if langs and isinstance(langs[0], str) and LANG.match(langs[0]) else None,
            "url": f"https://bsky.app/profile/{quote(author, safe='')}/post/{quote(rkey, safe='')}" if author else None,
            "posted_at": getattr(record, "created_at", None),
        })
    return sorted(out, key=lambda m: m["posted_at"] or "")


#: a link in a post's text: up to a space, without the punctuation that ends a sentence
LINK = re.compile(r"https?://[^\s<>\"]+")
TRAILING = ".,;:!?)]}'\""
#: a closing bracket ends a link only when the link did not open it (as Bluesky's own client)
OPENS = {")": "(", "]": "[", "}": "{"}


def link_facets(text: str) -> list[dict]:
    """Bluesky's rich-text facets for the links in `text` (a link is a link there only
    when a facet names its UTF-8 byte range): one ``#link`` facet per http(s) URL."""
    facets = []
    for found in LINK.finditer(text):
        link = found.group()
        while link and link[-1] in TRAILING and not (
                link[-1] in OPENS and link.count(OPENS[link[-1]]) >= link.count(link[-1])):
            link = link[:-1]
        if "://" not in link or len(link) <= len(link.split("://")[0]) + 3:
            continue
        start = len(text[:found.start()].encode("utf-8"))
        facets.append({"index": {"byteStart": start, "byteEnd": start + len(link.encode("utf-8"))},
                       "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link}]})
    return facets


def _strong_ref(value) -> dict:
    return {"uri": value.uri, "cid": value.cid}


def reply(url: str, handle: str, password: str, text: str, parent_uri: str, at: str, timeout: float) -> str:
    """Post `text` as a reply to the post `parent_uri` (in its thread); the new post's URI."""
    from atproto import models

    parts = parent_uri.removeprefix("at://").split("/")
    if not parent_uri.startswith("at://") or len(parts) != 3 or parts[1] != POST:
        raise SourceFailed(f"{url}: {parent_uri!r} is not the AT URI of a post")

    def post(client):
        parent = _call(url, "getRecord", lambda: client.com.atproto.repo.get_record(
            params={"repo": parts[0], "collection": POST, "rkey": parts[2]}))

        def build():
            thread = getattr(parent.value, "reply", None)
            root = _strong_ref(thread.root) if thread is not None else _strong_ref(parent)
            facets = link_facets(text)
            return {"$type": POST, "text": text, "createdAt": at,
                    "reply": {"root": root, "parent": _strong_ref(parent)}, **({"facets": facets} if facets else {})}

        record = _call(url, "getRecord", build)
        return _call(url, "createRecord", lambda: client.com.atproto.repo.create_record(
            models.ComAtprotoRepoCreateRecord.Data(repo=handle, collection=POST, record=record)))

    return str(_signed_in(url, handle, password, timeout, post).uri)


class InThread:
    """Delivery of a reply into the thread of the Bluesky post it answers, through the
    source that received that post: the transport :func:`engine.posts.release.deliver`
    takes. Its one destination is ``reply://SOURCE/AT-URI`` (the URI quoted)."""

    def __init__(self, source, clock, timeout: float = 10.0) -> None:
        self.source, self.clock, self.timeout = source, clock, timeout

    def url(self, post_uri: str) -> str:
        return f"reply://{self.source.name}/{quote(post_uri, safe='')}"

    def redact(self, url: str) -> str:
        # no password in it: safe for the log
        return (f"bluesky reply to {unquote(url.rsplit('/', 1)[-1])} on {self.source.url} "
                f"(source {self.source.name})")

    def send(self, url: str, text):
        from ..incidents.events import utc_now_iso
        from ..posts.delivery import Attempt

        body = text["body"] if isinstance(text, dict) else text
        try:
            reply(self.source.url, self.source.handle, self.source.password, body,
                  unquote(url.rsplit("/", 1)[-1]), utc_now_iso(self.clock.now()), self.timeout)
        except SourceFailed as e:
            return Attempt(self.redact(url), False, e.message)
        return Attempt(self.redact(url), True)
