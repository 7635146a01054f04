"""Delivery of published posts to real services, through apprise.

Where posts go is configured outside the playbook, because destination URLs carry
secrets: a YAML file mapping channel names to apprise URLs, e.g.::

    x: ["json://hooks.example.org/x-bridge"]
    chat: ["slack://TokenA/TokenB/TokenC/#incident-room"]
    email: ["mailtos://user:password@mail.example.org?to=press@example.org"]

found at ``$PLAYBOOK_DESTINATIONS``, else ``destinations.yaml`` beside the database.
No file means no delivery: published posts stay in the outbox for a person to post.
The log records each attempt with the target's redacted URL (no secrets), and a
failed delivery never marks the post delivered. Drill incidents are never delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

#: Seconds to wait for one destination.
TIMEOUT = 10


@dataclass(frozen=True)
class Attempt:
    target: str  # redacted URL (safe for the log)
    ok: bool
    error: str = ""


def load_destinations(path: Path) -> dict[str, list[str]]:
    """channel -> apprise URLs; {} when the file does not exist."""
    if not path.exists():  # the usual case for `due`: no YAML parser to load
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: cannot read the destinations file ({e})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(u, str) for u in v)
        for k, v in data.items()
    ):
        raise UsageError(f"{path}: expected a mapping of channel names to lists of URLs")
    return data


def redact(url: str) -> str:
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return url.split("://", 1)[0] + "://(unrecognised URL)"
    return plugin.url(privacy=True)


def send(url: str, text, *, drill: bool = False) -> Attempt:
    """Send one post to one destination; never raises for a failed delivery."""
    import apprise

    target = redact(url)
    if isinstance(text, dict):
        title, body = text["subject"], text["body"]
    else:
        title, body = "", text
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return Attempt(target, False, "not a URL apprise understands")
    plugin.socket_connect_timeout = plugin.socket_read_timeout = TIMEOUT
    sender = apprise.Apprise()
    sender.add(plugin)
    with apprise.LogCapture(level=apprise.logging.WARNING) as log:
        ok = sender.notify(body=body, title=title)
        detail = " ".join(log.getvalue().split())
    return Attempt(target, bool(ok), "" if ok else (detail[-300:] or "the service refused the post"))
