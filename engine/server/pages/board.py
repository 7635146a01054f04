"""The incident board: open incidents with stage, severity, the next clock and the
unanswered inbound messages (how many, the oldest wait); overdue first and unmistakable;
drills marked. Live by short polling: a small script (the
package's only one) fetches ``/board/rows`` again every few seconds."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from .frame import PageRoute, app_of, now_of, page, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: How often the board reloads, in seconds.
REFRESH_S = 15


def board_rows(app, who, now) -> list[dict]:
    """One row per open incident, from the same status the API answers."""
    from datetime import timedelta

    from engine.incidents import state as inc
    from engine.app import inbound, incidents
    from engine.format.durations import format_duration
    from engine.incidents.views import status_json

    rows = []
    for state in incidents.listing(app, who, full=True):
        status = status_json(state, now, who.name)
        running = sorted((c for c in status["clocks"] if c["outcome"] == "open"), key=lambda c: c["due_at"])
        overdue = [c for c in running if c["overdue"]]
        waiting = inbound.waiting(state, now)
        oldest = waiting["oldest_wait_seconds"]
        waiting["oldest_wait"] = format_duration(timedelta(seconds=oldest)) if oldest is not None else None
        rows.append({"status": status, "next": running[0] if running else None, "overdue": len(overdue),
                     "inbox": waiting, "now": inc.effective_now(state, now)})  # a drill's own (simulated) time
    return sorted(rows, key=lambda r: (-r["overdue"], r["next"]["due_at"] if r["next"] else "~", r["status"]["id"]))


@router.get("/")
def home(request: Request):
    return RedirectResponse("/board", status_code=303)


@router.get("/board")
def board(request: Request, who=Depends(viewer)):
    now = now_of(request)
    return page(request, "board.html.j2", who=who, rows=board_rows(app_of(request), who, now), now=now,
                refresh=REFRESH_S)


@router.get("/board/rows")
def board_rows_fragment(request: Request, who=Depends(viewer)):
    """The board's rows alone, for the page's polling."""
    now = now_of(request)
    return page(request, "board_rows.html.j2", who=who, rows=board_rows(app_of(request), who, now), now=now)
