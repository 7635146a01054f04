"""Channel profiles and post length counting.

Each channel counts length its own way, and a comms person needs to see the
count the channel itself will apply before anyone approves a post:

* **X** counts twitter-text v3 *weighted* length: a URL counts 23 whatever its
  length, CJK characters count 2, an emoji (even a ZWJ family) counts 2.
* **Bluesky** counts extended grapheme clusters (what a reader sees as one
  character).
* **Mastodon** counts code points, but every http(s) URL counts 23 and a remote
  mention ``@alice@example.social`` counts as ``@alice``.
* **SMS** counts segments: GSM-7 (160 septets, or 153 per part when
  concatenated; extension characters such as ``€`` take two septets) unless one
  character falls outside GSM-7, which switches the whole message to UCS-2
  (70 UTF-16 units, or 67 per part).
* Every other channel counts code points.

The heavy libraries (``twitter_text``, ``regex``) are imported inside the
functions that need them, so importing this module stays cheap.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

from engine.errors import NotFound, UsageError

WEIGHTED = "weighted characters"
GRAPHEMES = "graphemes"
CHARACTERS = "characters"
SEGMENTS = "segments"


@dataclass(frozen=True)
class ChannelProfile:
    """What a channel is and how long a post on it may be."""

    name: str  # "x", "bluesky", ...
    title: str  # "X (Twitter)", ...
    public: bool  # its default audience is the public (every broadcast channel, SMS included)
    limit: int  # default limit, in `unit`
    unit: str  # WEIGHTED | GRAPHEMES | CHARACTERS | SEGMENTS
    has_subject: bool = False  # only email: a post is {"subject": ..., "body": ...}
    html: bool = False  # only web: autoescape on when rendering
    #: the audiences a template on this channel may declare; the first is the default
    audiences: tuple[str, ...] = ("public",)


CHANNELS: dict[str, ChannelProfile] = {
    p.name: p
    for p in (
        ChannelProfile("x", "X (Twitter)", True, 280, WEIGHTED),
        ChannelProfile("bluesky", "Bluesky", True, 300, GRAPHEMES),
        ChannelProfile("mastodon", "Mastodon", True, 500, CHARACTERS),
        ChannelProfile("facebook", "Facebook", True, 63206, CHARACTERS),
        ChannelProfile("linkedin", "LinkedIn", True, 3000, CHARACTERS),
        # a text alert is a broadcast unless the template says it goes to one person
        ChannelProfile("sms", "SMS", True, 3, SEGMENTS, audiences=("public", "direct", "internal")),
        ChannelProfile("email", "Email", False, 100000, CHARACTERS, has_subject=True,
                       audiences=("direct", "public", "internal")),
        ChannelProfile("web", "Web page", True, 100000, CHARACTERS, html=True),
        ChannelProfile("chat", "Internal chat", False, 4000, CHARACTERS, audiences=("internal", "direct")),
    )
}

EMAIL_SUBJECT_LIMIT = 150


@dataclass(frozen=True)
class Count:
    """A post's length on one channel, against that channel's limit."""

    used: int
    limit: int
    unit: str
    detail: str = ""  # e.g. "GSM-7, 2 segments (161 septets)"

    @property
    def fits(self) -> bool:
        return self.used <= self.limit

    def __str__(self) -> str:
        return f"{self.used}/{self.limit}"


def profile(name: str, limit: int | None = None) -> ChannelProfile:
    """The built-in channel called ``name``, with ``limit`` overriding its default."""
    try:
        found = CHANNELS[name]
    except (KeyError, TypeError):
        raise NotFound(_unknown_channel_message(name)) from None
    if limit is None:
        return found
    return replace(found, limit=_checked_limit(found.name, limit))


def count(channel: str | ChannelProfile, text: str, limit: int | None = None, *, reply: bool = False) -> Count:
    """Count ``text`` the way ``channel`` does (for email: the body). With `reply` (a
    reply in the thread of a post on the same channel), X's reply rule applies: the
    @mentions the reply begins with are not counted."""
    p = channel if isinstance(channel, ChannelProfile) else profile(channel)
    if limit is not None:
        p = replace(p, limit=_checked_limit(p.name, limit))
    if not isinstance(text, str):
        raise TypeError(f"count() needs the post text as str, not {type(text).__name__}")
    if p.unit == SEGMENTS:
        return _count_sms(text, p.limit)
    if p.unit == WEIGHTED:
        return _count_x(text, p.limit, reply=reply)
    if p.unit == GRAPHEMES:
        return _count_bluesky(text, p.limit)
    if p.name == "mastodon":
        return Count(len(_mastodon_countable(text)), p.limit, p.unit)
    return Count(len(text), p.limit, p.unit)


def subject_count(text: str) -> Count:
    """Count an email subject line (code points, limit 150)."""
    detail = "the subject contains a line break" if ("\n" in text or "\r" in text) else ""
    return Count(len(text), EMAIL_SUBJECT_LIMIT, CHARACTERS, detail)


# --- checks -----------------------------------------------------------------


def _checked_limit(name: str, limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UsageError(f"the limit for channel '{name}' must be a whole number of 1 or more, not {limit!r}")
    return limit


def _unknown_channel_message(name: object) -> str:
    import difflib

    known = ", ".join(CHANNELS)
    message = f"unknown channel {name!r}; known channels: {known}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name.lower(), CHANNELS, n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
    return message


def _describe(char: str) -> str:
    """``'’' (U+2019 RIGHT SINGLE QUOTATION MARK)``: visible even when the glyph is not."""
    name = unicodedata.name(char, "")
    shown = f"'{char}' " if char.isprintable() and not char.isspace() else ""
    return f"{shown}(U+{ord(char):04X}{' ' + name if name else ''})"


# --- X ----------------------------------------------------------------------


#: The @mentions a reply on X begins with, which X does not count.
X_LEADING_MENTIONS = r"^(?:@[A-Za-z0-9_]{1,15}\s+)+"


def _count_x(text: str, limit: int, *, reply: bool = False) -> Count:
    import re

    from .xtext import x_counter

    x = x_counter()
    lead = re.match(X_LEADING_MENTIONS, text) if reply else None
    used, valid = x.measure(text[lead.end():] if lead else text)
    detail = f"a reply: its leading {lead.group(0).strip()} not counted" if lead else ""
    if not valid and text:
        bad = x.invalid_chars.search(text)
        if bad:
            detail = f"X refuses posts containing {_describe(bad.group(0))}"
    return Count(used, limit, WEIGHTED, detail)


# --- Bluesky ----------------------------------------------------------------

BLUESKY_MAX_BYTES = 3000  # the record's text is also capped at 3000 UTF-8 bytes


def _count_bluesky(text: str, limit: int) -> Count:
    if text.isascii() or not _NOT_SIMPLE.search(text):
        # Only Latin (no combining marks), general punctuation and currency signs: in
        # every Unicode version each of those characters is a cluster of its own, but
        # CR LF, which is one. (A rule based on the Grapheme_Cluster_Break property
        # itself is not stable: Unicode 15.1 joined some Other + Other pairs.)
        used = len(text) - text.count("\r\n")
    else:
        used = len(_grapheme_pattern().findall(text))
    size = len(text.encode("utf-8", "surrogatepass"))
    detail = f"{size} bytes, over Bluesky's {BLUESKY_MAX_BYTES}-byte cap" if size > BLUESKY_MAX_BYTES else ""
    return Count(used, limit, GRAPHEMES, detail)


#: Characters outside the ranges the shortcut above trusts.
_NOT_SIMPLE = __import__("re").compile("[^\x00-\u02ff\u2010-\u2027\u2030-\u205e\u20a0-\u20c0]")
_GRAPHEME = None


def _grapheme_pattern():
    """An extended grapheme cluster (``regex``'s ``\\X``), compiled once."""
    global _GRAPHEME
    if _GRAPHEME is None:
        import regex

        _GRAPHEME = regex.compile(r"\X")
    return _GRAPHEME


# --- Mastodon ---------------------------------------------------------------

MASTODON_URL_LENGTH = 23
_MASTODON_MENTION = r"(^|[^/\w])@([a-z0-9_]+)@[a-z0-9.\-]+[a-z0-9]+"


def _mastodon_countable(text: str) -> str:
    """The text Mastodon measures: URLs as 23 placeholders, remote mentions as local."""
    import re

    pieces, at = [], 0
    if "://" in text:
        from .xtext import x_counter

        for entity in x_counter().urls(text):
            start, end = entity["indices"]
            if entity["url"].lower().startswith(("http://", "https://")):
                pieces += [text[at:start], "x" * MASTODON_URL_LENGTH]
                at = end
    pieces.append(text[at:])
    # As Mastodon does: URLs first, so a mention inside a URL is not shortened.
    text = "".join(pieces)
    if "@" not in text:  # a remote mention holds two
        return text
    return re.sub(_MASTODON_MENTION, r"\1@\2", text, flags=re.IGNORECASE | re.ASCII)


# --- SMS --------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each sent as ESC + char: 2 septets

SMS_SINGLE = {"GSM-7": 160, "UCS-2": 70}  # septets / UTF-16 units in a lone message
SMS_PART = {"GSM-7": 153, "UCS-2": 67}  # per part once concatenated (the rest is the UDH)


def _count_sms(text: str, limit: int) -> Count:
    if not text:
        return Count(0, limit, SEGMENTS, "empty")
    outside = _sms_patterns()[0].search(text)  # the first character GSM-7 cannot send
    if outside is None:
        encoding, reason = "GSM-7", ""
        doubles = sum(text.count(char) for char in GSM7_EXTENSION)
        widths = [1 + (char in GSM7_EXTENSION) for char in text] if doubles else None
    else:
        encoding = "UCS-2"
        reason = f" because of {_describe(outside.group(0))} at character {outside.start() + 1}"
        doubles = len(_sms_patterns()[1].findall(text))  # surrogate pairs
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text] if doubles else None
    used = len(text) + doubles
    if widths is None:  # every character one unit: _segments comes to a plain division
        segments = 1 if used <= SMS_SINGLE[encoding] else -(-used // SMS_PART[encoding])
    else:
        segments = _segments(widths, SMS_SINGLE[encoding], SMS_PART[encoding])
    units = "septets" if encoding == "GSM-7" else "UTF-16 units"
    if segments == 1:
        size = f"{used}/{SMS_SINGLE[encoding]} {units}"
    else:
        size = f"{used} {units}, {SMS_PART[encoding]} per segment"
    detail = f"{encoding}{reason}, {segments} segment{'' if segments == 1 else 's'} ({size})"
    return Count(segments, limit, SEGMENTS, detail)


_SMS_PATTERNS = None


def _sms_patterns():
    """(a character outside GSM-7, a character outside the BMP), compiled once."""
    global _SMS_PATTERNS
    if _SMS_PATTERNS is None:
        import re

        gsm7 = "".join(re.escape(char) for char in sorted(GSM7_BASIC | GSM7_EXTENSION))
        _SMS_PATTERNS = (re.compile(f"[^{gsm7}]"), re.compile("[\U00010000-\U0010ffff]"))
    return _SMS_PATTERNS


def _segments(widths: list[int], single: int, part: int) -> int:
    """Parts needed, never splitting an escape pair or a surrogate pair."""
    if sum(widths) <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return segments
