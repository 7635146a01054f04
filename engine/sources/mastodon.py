"""Mastodon mentions of the organisation's account, polled with Mastodon.py."""

from __future__ import annotations

from .feed import SourceFailed, plain


def mentions(url: str, token: str, timeout: float, limit: int = 40) -> list[dict]:
    """The account's latest mentions as message fields (oldest first), or SourceFailed."""
    from mastodon import Mastodon, MastodonError

    try:
        api = Mastodon(access_token=token, api_base_url=url, request_timeout=timeout, version_check_mode="none")
        found = api.notifications(types=["mention"], limit=limit)
    except MastodonError as e:
        raise SourceFailed(f"{url}: mentions cannot be read ({type(e).__name__})") from None
    out = []
    for n in found:
        status = n.get("status") or {}
        if not status:
            continue
        created = status.get("created_at")
        followers = (status.get("account") or {}).get("followers_count")
        out.append({
            "source_id": str(status["id"]),
            "author": "@" + str((status.get("account") or {}).get("acct", "")) if status.get("account") else None,
            "text": plain(status.get("content", ""))[:5000] or "(no text)",
            "kind": "direct" if status.get("visibility") == "direct" else "mention",
            "lang": status.get("language") or None,
            "url": status.get("url") or None,
            "posted_at": created.isoformat() if hasattr(created, "isoformat") else created,
            # the author's reach, which monitors may ask for (engine.format.monitors: min_reach)
            **({"reach": followers} if isinstance(followers, int) and not isinstance(followers, bool) else {}),
        })
    return sorted(out, key=lambda m: m["posted_at"] or "")


def reply(url: str, token: str, text: str, in_reply_to: str, timeout: float) -> str:
    """Post `text` as a reply to status `in_reply_to`; the new status's URL."""
    from mastodon import Mastodon, MastodonError

    try:
        api = Mastodon(access_token=token, api_base_url=url, request_timeout=timeout, version_check_mode="none")
        posted = api.status_post(text, in_reply_to_id=in_reply_to)
    except MastodonError as e:
        raise SourceFailed(f"{url}: the reply could not be posted ({type(e).__name__})") from None
    return str(posted.get("url") or posted.get("id"))


class InThread:
    """Delivery of a reply into the thread of the Mastodon status it answers, through the
    source that received that status (its instance and token): the transport
    :func:`engine.posts.release.deliver` takes. Its one destination is ``reply://SOURCE/STATUS``."""

    def __init__(self, source, timeout: float = 10.0) -> None:
        self.source, self.timeout = source, timeout

    def url(self, status_id: str) -> str:
        return f"reply://{self.source.name}/{status_id}"

    def redact(self, url: str) -> str:
        # no token in it: safe for the log
        return f"mastodon reply to status {url.rsplit('/', 1)[-1]} on {self.source.url} (source {self.source.name})"

    def send(self, url: str, text):
        from ..posts.delivery import Attempt

        body = text["body"] if isinstance(text, dict) else text
        try:
            reply(self.source.url, self.source.token, body, url.rsplit("/", 1)[-1], self.timeout)
        except SourceFailed as e:
            return Attempt(self.redact(url), False, e.message)
        return Attempt(self.redact(url), True)
