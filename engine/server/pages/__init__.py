"""The web app: server-rendered pages over the same authentication and use cases as
the JSON API (sign-in, my approval queue, the board, incidents, starting one, the
auditor's view, the administrators' pages, the public response time). Templates and the
style sheet ship inside this package."""

from __future__ import annotations

from pathlib import Path


def install(app) -> None:
    """Add the pages and their static files to the FastAPI application `app`."""
    from starlette.staticfiles import StaticFiles

    from . import admin, audit, board, incident, public, queue, signin, start

    for module in (signin, board, queue, incident, start, audit, admin, public):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
