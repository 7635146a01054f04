"""Replies on X through a bridge: the post and the id of the post it answers.

The engine does not talk to X itself. A bridge (a small service holding the X
credentials, or a social-media management tool) receives posts as apprise's JSON
notifications, the channel's ``json://`` or ``jsons://`` destinations. A reply to a
message from X is sent to those destinations with one more field in the payload,
``in_reply_to_tweet_id``: the message's source id, which the bridge passes to X's
``reply.in_reply_to_tweet_id``. Other kinds of destination cannot carry it, so a reply is
not sent there (it would go out as a post of its own, outside the thread): it stays in
the outbox for a person to post.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

#: The payload field naming the post a reply answers.
REPLY_FIELD = "in_reply_to_tweet_id"
BRIDGE_SCHEMES = ("json", "jsons")


class XBridge:
    """The transport :func:`engine.posts.release.deliver` takes for a reply on X."""

    def __init__(self, reply_id: str) -> None:
        self.reply_id = reply_id

    def targets(self, urls: list[str]) -> list[str]:
        """The bridge destinations among `urls`, each with the reply id in its payload."""
        out = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme.lower() not in BRIDGE_SCHEMES:
                continue
            extra = f"%3A{REPLY_FIELD}={quote(self.reply_id, safe='')}"  # apprise: ':key=value' adds to the payload
            query = f"{parts.query}&{extra}" if parts.query else extra
            out.append(urlunsplit(parts._replace(query=query)))
        return out

    def redact(self, url: str) -> str:
        from .delivery import redact

        return redact(url)

    def send(self, url: str, text):
        from .delivery import send

        return send(url, text)
