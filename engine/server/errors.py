"""Errors as problem details, and the limits every request is held to."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

PROBLEM = "application/problem+json"
log = logging.getLogger("playbook.server")

#: An RFC 9457 problem detail as the API sends it: the CLI's exit code beside the
#: status, and the error's own fields (incident, post, reasons, problems, ...).
PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status"], "additionalProperties": True,
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "exit_code": {"type": "integer"}},
}


def documented(*statuses: int) -> dict:
    """`responses=` for FastAPI: each status answered with a problem detail."""
    return {status: {"description": PROBLEMS[status],
                     "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


PROBLEMS = {
    400: "Wrong usage: a body or parameter that does not fit the API (exit code 2)",
    401: "Not signed in: no valid token or session",
    403: "Refused: a guard, a role, a scope, the CSRF token or a closed incident (exit code 5)",
    404: "Not found: the incident, post, template, trigger or playbook (exit code 4)",
    409: "Conflict: changed at the same moment (6), an integrity failure (7), something overdue (9)",
    413: "The request body is over the limit",
    422: "An invalid playbook or drill scenario (exit code 3)",
    502: "Delivery failed, or the identity provider could not be reached (exit code 10)",
    503: "The store is unavailable: locked for too long, corrupt or unwritable (exit code 8)",
}
#: What any request may be answered with.
COMMON = documented(400, 401, 403, 404, 409, 413, 422, 503)


def problem(status: int, title: str, detail: str | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}),
            **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="playbook"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def playbook_error(request, exc) -> JSONResponse:
    body = exc.problem()
    status = body["status"] = exc.http_status
    headers = {"WWW-Authenticate": 'Bearer realm="playbook"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def invalid_request(request, exc) -> JSONResponse:
    """A body or parameter that does not fit the API: 400, each problem with its place
    (never echoing the value, which may be a password)."""
    problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                for e in exc.errors()]
    shown = "; ".join(f"{p['where']}: {p['message']}" for p in problems[:10])
    return problem(400, "the request does not fit the API", shown, exit_code=2, problems=problems[:50])


async def http_error(request, exc) -> JSONResponse:
    response = problem(exc.status_code, str(exc.detail))
    response.headers.update(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # Allow lists every method of the path (RFC 9110), not one route's
        response.headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
    return response


def allowed_methods(request) -> set[str]:
    from starlette.routing import Match

    scope = request.scope
    return {method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in request.app.routes)}


def openapi_with_problem(app):
    """``app.openapi`` with the problem detail's schema in the document's components,
    where every documented error response refers to it."""
    make = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            make().setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return app.openapi_schema

    return openapi


async def internal_error(request, exc) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return problem(500, "internal error", "this is a bug; the server's log has the details", exit_code=1)


class LimitsMiddleware:
    """Refuses request bodies over `max_body` bytes (413) and adds security headers to
    every response (no sniffing, no framing, no referrer, a strict content policy)."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"content-security-policy",
         b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
         b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    ]

    def __init__(self, app, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await _too_large(send, self.max_body)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge()
            return message

        async def secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited, secured)
        except _TooLarge:
            await _too_large(send, self.max_body)


class _TooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    import json

    body = json.dumps({"type": "about:blank", "title": "request body too large", "status": 413,
                       "detail": f"at most {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode()),
                            *LimitsMiddleware.HEADERS]})
    await send({"type": "http.response.body", "body": body})
