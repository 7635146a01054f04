"""Where inbound messages come from: the sources file, outside every playbook.

Sources carry secrets (a webhook's signing secret, a Mastodon access token), so like
delivery destinations they live in a YAML file of their own, never in a playbook or the
log: ``$PLAYBOOK_SOURCES``, else ``sources.yaml`` beside the database::

    bridge:                       # a social-listening tool pushing to the team server
      kind: webhook
      secret: 8f1c...             # HMAC-SHA256 key, at least 16 characters
      channel: x                  # what its messages are recorded as (default: the name)
      playbook: viral-complaint   # feed that playbook's newest open incident (none open:
                                  # kept for the playbook's monitors, which may open one)
    reviews:
      kind: feed                  # RSS or Atom, polled by `playbook listen`
      url: https://reviews.example.org/hospital.atom
      incident: INC-20260314-001  # or feed one incident
    mastodon:
      kind: mastodon              # mentions of the account, polled
      url: https://mastodon.example.org
      token: ...
    rehearsal:
      kind: webhook               # drill: true feeds drills of its playbook only (its
      secret: 3a9d...             # monitors open DRILL incidents and page nobody)
      playbook: viral-complaint
      drill: true
    bluesky:
      kind: bluesky               # mentions and replies of the account, polled
      url: https://bsky.social    # its PDS
      handle: stmarys.bsky.social
      password: xxxx-xxxx-xxxx-xxxx   # an app password, never the account's own
      playbook: viral-complaint

No file means no sources. :func:`load_sources` checks the whole file and names every
problem by source and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

KINDS = ("webhook", "feed", "mastodon", "bluesky")
SETTINGS = ("channel", "incident", "playbook", "url", "secret", "token", "handle", "password")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MIN_SECRET = 16


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    channel: str  # recorded as the message's source (its respond_within and reply channel)
    incident: str | None = None
    playbook: str | None = None
    url: str | None = None
    secret: str | None = None  # webhook
    token: str | None = None  # mastodon
    drill: bool = False  # its messages feed drills of its playbook (and its monitors open drills)
    handle: str | None = None  # bluesky
    password: str | None = None  # bluesky: an app password

    def __repr__(self) -> str:  # never show a secret in a traceback or a log line
        return f"Source({self.name!r}, {self.kind!r})"


def load_sources(path: Path | None) -> dict[str, Source]:
    """The sources the file declares, by name; {} when there is no file."""
    import yaml

    if path is None or not path.exists():
        return {}
    where = f"sources file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UsageError(f"{where}: not a readable YAML file ({type(e).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{where}: must map source names to their settings (bridge: {{kind: webhook, ...}})")
    out, problems = {}, []
    for name, spec in data.items():
        at = f"{name}"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"{name!r}: a source name is lower-case letters, digits, '-' or '_'")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{at}: must be a mapping (kind: webhook, ...)")
            continue
        kind = spec.get("kind")
        unknown = set(spec) - {"kind", "drill", *SETTINGS}
        if kind != "bluesky":  # a Bluesky account's sign-in is no setting of any other kind
            unknown |= set(spec) & {"handle", "password"}
        unknown = sorted(unknown, key=str)
        if unknown:
            problems.append(f"{at}: unknown setting(s) {', '.join(map(str, unknown))}")
        if kind not in KINDS:
            problems.append(f"{at}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        text = {k: spec.get(k) for k in SETTINGS}
        for k, v in text.items():
            if v is not None and not isinstance(v, str):
                problems.append(f"{at}.{k}: must be text")
        drill = spec.get("drill", False)
        if not isinstance(drill, bool):
            problems.append(f"{at}.drill: true or false, not {drill!r}")
        elif drill and text["playbook"] is None:
            problems.append(f"{at}.drill: a drill source feeds a playbook (playbook: NAME), not an incident")
        if problems:
            continue
        if (text["incident"] is None) == (text["playbook"] is None):
            problems.append(f"{at}: give incident (an incident id) or playbook (feed its newest open incident)")
        channel = text["channel"] or name
        if not NAME.match(channel):
            problems.append(f"{at}.channel: {channel!r} is not a channel or source name")
        if kind == "webhook" and len(text["secret"] or "") < MIN_SECRET:
            problems.append(f"{at}.secret: a webhook needs a secret of at least {MIN_SECRET} characters")
        if kind in ("feed", "mastodon", "bluesky") and not re.match(r"^https?://[^\s/]+", text["url"] or ""):
            problems.append(f"{at}.url: a {kind} source needs an http(s) url")
        if kind == "mastodon" and not text["token"]:
            problems.append(f"{at}.token: a mastodon source needs an access token")
        if kind == "bluesky" and not text["handle"]:
            problems.append(f"{at}.handle: a bluesky source needs the account's handle")
        if kind == "bluesky" and not text["password"]:
            problems.append(f"{at}.password: a bluesky source needs an app password of the account")
        out[name] = Source(name, kind, channel, text["incident"], text["playbook"], text["url"],
                           text["secret"], text["token"], drill=drill, handle=text["handle"],
                           password=text["password"])
    if problems:
        raise UsageError(f"{where}: " + (problems[0] if len(problems) == 1 else
                                         f"{len(problems)} problems\n" + "\n".join(f"  - {p}" for p in problems)))
    return out


def poll(source: Source, timeout: float) -> list[dict]:
    """What a polled source (feed, mastodon, bluesky) holds now, as message fields, or
    :class:`~engine.sources.feed.SourceFailed`."""
    from . import bluesky, feed, mastodon

    if source.kind == "feed":
        return feed.entries(feed.fetch(source.url, timeout), source.url)
    if source.kind == "mastodon":
        return mastodon.mentions(source.url, source.token, timeout)
    if source.kind == "bluesky":
        return bluesky.mentions(source.url, source.handle, source.password, timeout)
    raise ValueError(f"source {source.name}: a {source.kind} source is not polled")
