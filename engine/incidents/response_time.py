"""The live response-time figure: how fast the organisation answers right now.

Over every real incident (drills run on a clock of their own and are left out): the
median time from a message's posting to its first published reply, for the replies
published in the last hour; the share of those within their playbook's target; and
the longest wait of a message still unanswered. Figures only: no text, no handle, so
the figure may be shown in public (as airlines show their live response time).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median

from .events import parse_iso, utc_now_iso
from .inbound import allowance

#: The window the figure looks back over, in seconds.
WINDOW_SECONDS = 3600


def live(states, now: datetime, window_seconds: int = WINDOW_SECONDS) -> dict:
    """The figure at `now` over the incidents' states (closed ones too: a reply counts
    for the hour it went out in)."""
    since = now - timedelta(seconds=window_seconds)
    answered: list[tuple[int, int | None]] = []
    waits: list[int] = []
    for s in states:
        if s["drill"]:
            continue
        for m in (s.get("inbound") or {}).values():
            posted = parse_iso(m["posted_at"])
            if m["answered"]:
                at = parse_iso(m["answered"]["at"])
                if since < at <= now:
                    answered.append((max(int((at - posted).total_seconds()), 0), allowance(s["plan"], m["source"])))
            elif m["status"] == "waiting":
                waits.append(max(int((now - posted).total_seconds()), 0))
    targeted = [(took, target) for took, target in answered if target is not None]
    within = sum(1 for took, target in targeted if took <= target)
    return {"as_of": utc_now_iso(now), "window_seconds": window_seconds, "answered": len(answered),
            "median_response_seconds": round(median(t for t, _ in answered)) if answered else None,
            "with_target": len(targeted), "within_target": within,
            "share_within_target": round(within / len(targeted), 4) if targeted else None,
            "waiting": len(waits), "longest_wait_seconds": max(waits, default=None)}
