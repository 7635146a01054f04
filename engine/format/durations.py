"""Human durations: ``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_PART = re.compile(r"(\d+)([smhd])")
_WHOLE = re.compile(r"(?:\d+[smhd])+")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: Longest duration a playbook may name; anything longer is a typo, not a plan.
MAX = timedelta(days=365)


def parse_duration(text: str) -> timedelta:
    """Parse ``15m`` / ``2h`` / ``1h30m`` into a timedelta.

    Raises ValueError with a message a playbook author can act on.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 15m, 2h or 1d, got {text!r}")
    s = text.strip().lower()
    if not _WHOLE.fullmatch(s):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit "
            "(s, m, h, d), e.g. 15m, 2h, 1d or 1h30m"
        )
    seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(s))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    if seconds > MAX.total_seconds():  # checked before timedelta() can overflow
        raise ValueError(f"duration {text!r} is longer than a year")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta compactly: ``1h30m``, ``45s``, ``-5m`` for negatives."""
    return _whole_seconds(int(value.total_seconds()))


@lru_cache(maxsize=4096)
def _whole_seconds(total: int) -> str:
    """:func:`format_duration` of a whole number of seconds: its two largest units that are
    not zero. Cached (bounded, so a long-running server does not grow with it): ``due`` and
    ``list`` print thousands of lines whose durations are often a few distinct values; and
    branches rather than a loop over the units, for those that are not."""
    if total < 0:
        return "-" + _whole_seconds(-total)
    m, s = divmod(total, 60)
    if not m:
        return f"{s}s"
    h, m = divmod(m, 60)
    if not h:
        return f"{m}m{s}s" if s else f"{m}m"
    d, h = divmod(h, 24)
    if not d:
        return f"{h}h{m}m" if m else f"{h}h{s}s" if s else f"{h}h"
    return f"{d}d{h}h" if h else f"{d}d{m}m" if m else f"{d}d{s}s" if s else f"{d}d"
