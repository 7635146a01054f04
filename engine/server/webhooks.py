"""Inbound webhooks: social-listening tools and bridges push messages to the server.

``POST /webhooks/{source}`` with a JSON object (text, source_id, author, posted_at, url,
lang, kind), signed as :mod:`engine.sources.webhook` describes with the secret the
sources file gives that source. An unknown source and a bad signature get the same
401, and the reason goes to the server's log only; a malformed body is a 400 problem
naming the field; a message already received answers 200 with ``"new": false``. With
no incident of the source's playbook open, the message is kept for the playbook's
monitors (engine.incidents.monitors) and answers 202 with ``"incident": null`` and its
``kept`` id, or 201 naming the incident a monitor opened with it (``opened_by``).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/webhooks")
log = logging.getLogger("engine.server.webhooks")


@router.post("/{source}", tags=["inbound"], summary="Receive an inbound message from a configured source",
             status_code=201, responses={200: {"description": "already received (not recorded again)"},
                                         202: {"description": "kept for the playbook's monitors: no incident of it "
                                               "is open (\"incident\": null)"}})
async def receive(source: str, request: Request):
    from starlette.concurrency import run_in_threadpool

    from engine.sources import webhook as hook

    from .errors import problem

    body = await request.body()
    if len(body) > hook.MAX_BODY:
        return problem(413, "request body too large",
                       f"the body is {len(body)} bytes; a webhook message is at most {hook.MAX_BODY}")
    return await run_in_threadpool(_record, request, source, body)


def _record(request: Request, name: str, body: bytes):
    from engine.app import inbound
    from engine.app.context import App
    from engine.sources import webhook as hook

    state = request.app.state
    app = App(state.config, state.clock, shared_store=state.stores.get())
    configured = inbound.sources(app).get(name)
    secret = configured.secret if configured is not None and configured.kind == "webhook" else None
    why = "no webhook source of that name" if secret is None else hook.check_signature(
        secret, request.headers.get(hook.TIMESTAMP), request.headers.get(hook.SIGNATURE), body, app.clock.now())
    if why is not None:
        client = request.client.host if request.client else "?"
        log.warning("webhook %r from %s refused: %s", name, client, why)
        raise hook.SignatureRefused()
    got = inbound.ingest(app, configured, hook.read_payload(body))
    if got.incident is None:  # no incident of its playbook open: kept for the playbook's monitors
        return JSONResponse({"incident": None, "kept": got.message, "new": got.new, "monitors": got.monitors,
                             "fired": got.fired["monitor"] if got.fired else None,
                             "paged": [p for p in got.pages if p["ok"]] if got.fired else []},
                            status_code=202 if got.new else 200)
    return JSONResponse({"incident": got.incident, "message": got.message, "new": got.new,
                         **({"opened_by": got.fired["monitor"]} if got.opened else {})},
                        status_code=201 if got.new else 200)
