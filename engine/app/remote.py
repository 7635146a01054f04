"""The command line as a client of the team server: the use cases over HTTP.

When the configuration names a server (``playbook login``, or ``PLAYBOOK_SERVER`` and
``PLAYBOOK_TOKEN``), every use case of :mod:`engine.app` starts by handing its call to
:class:`Remote`, which sends it to the server's API with the personal API token and
returns the same typed values the local path returns, so an interface shows the same
text. Who acts is the token's account: the server never takes an asserted name.

Errors come back as problem details carrying the command line's exit code; they are
raised again as the engine's own classes (same message, same exit code). A server that
cannot be reached is a :class:`~engine.errors.StoreError` (exit 8) naming the server.
The token is never part of a message, a log line or a repr.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import (Conflict, DeliveryFailed, Diagnostic, IntegrityError, NotFound, Overdue, PlaybookError,
                      PlaybookInvalid, Refused, StoreError, UsageError)
from .principal import Principal

API = "/api/v1"
TIMEOUT_S = 60.0
_BY_EXIT = {2: UsageError, 4: NotFound, 6: Conflict, 7: IntegrityError, 8: StoreError, 9: Overdue,
            10: DeliveryFailed}
_BY_STATUS = {400: 2, 401: 5, 403: 5, 404: 4, 405: 2, 409: 6, 413: 2, 422: 2, 502: 8, 503: 8}


def error_from(response, server: str) -> PlaybookError:
    """The engine error a problem detail stands for: same class family, message, exit code."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("exit_code")
    if not isinstance(code, int) or code < 1:
        code = _BY_STATUS.get(response.status_code, 1)
    detail = body.get("detail") or body.get("title") or f"the server {server} answered HTTP {response.status_code}"
    detail = str(detail)
    if code == 5:
        reasons = body.get("reasons")
        if isinstance(reasons, list) and isinstance(body.get("title"), str):
            return Refused(body["title"], [str(r) for r in reasons])
        return Refused(detail)
    if code == 3:
        found = [Diagnostic(**{k: d[k] for k in ("path", "line", "col", "field", "message", "severity") if k in d})
                 for d in body.get("diagnostics") or [] if isinstance(d, dict)]
        error = PlaybookInvalid(found)
        error.message = detail  # the server's wording, source lines included
        return error
    if code == 10 and isinstance(body.get("published"), dict):  # published, then the delivery failed
        return DeliveryFailed(detail, published=body["published"])
    return _BY_EXIT.get(code, PlaybookError)(detail)


class Remote:
    """One team server, reached with one personal API token (one method per use case)."""

    def __init__(self, server: str, token: str, name: str | None = None) -> None:
        self.server = server.rstrip("/")
        self._token = token
        self.name = name
        self._client = None

    def __repr__(self) -> str:
        return f"Remote({self.server!r}, name={self.name!r})"

    # -- HTTP --------------------------------------------------------------------------

    def call(self, method: str, path: str, *, body=None, params=None):
        """The server's response to one request, or the engine error it stands for."""
        import httpx

        if self._client is None:
            if not (self._token.isascii() and self._token.isprintable()) or any(c.isspace() for c in self._token):
                raise UsageError("the token is not a personal API token (those are pbk_ and letters, digits, "
                                 "- and _); create one on the server with: playbook token create NAME")
            self._client = httpx.Client(base_url=self.server, timeout=TIMEOUT_S, follow_redirects=False,
                                        headers={"Authorization": f"Bearer {self._token}",
                                                 "Accept": "application/json"})
        try:
            response = self._client.request(method, API + path, json=body, params=params)
        except httpx.TimeoutException:
            raise StoreError(f"the server {self.server} did not answer within {TIMEOUT_S:.0f} s; a change may or "
                             "may not have been made (look with status or log before running it again)") from None
        except httpx.HTTPError as e:
            raise StoreError(f"cannot reach the server {self.server}: {_reason(e)}") from None
        if response.status_code >= 400:
            raise error_from(response, self.server)
        return response

    def json(self, method: str, path: str, *, body=None, params=None):
        response = self.call(method, path, body=body, params=params)
        try:
            return response.json()
        except ValueError:
            raise StoreError(f"the server {self.server} did not answer with JSON (is it a playbook server?)") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def me(self) -> dict:
        return self.json("GET", "/me")

    def principal(self, given: str | None) -> Principal:
        """Who acts: the token's account. ``--as`` another name is refused (exit 2)."""
        name = self.name or self.me()["name"]
        if given is not None and given.strip() != name:
            raise UsageError(f"--as {given!r}: you are signed in to {self.server} as {name!r}; "
                             "the server does not accept asserted names")
        return Principal(name=name, method="token")

    def _incident(self, incident: str, action: str = "") -> str:
        from urllib.parse import quote

        return f"/incidents/{quote(incident, safe='')}" + (f"/{action}" if action else "")

    def _state(self, method: str, incident: str, action: str, body=None) -> dict:
        return self.json(method, self._incident(incident, action), body=body, params={"full": "true"})["state"]

    # -- incidents ---------------------------------------------------------------------

    def start(self, request):
        from .incidents import Started

        body = {"playbook": self.library_name(request.playbook), "title": request.title,
                "severity": request.severity, "inputs": dict(request.inputs), "assign": dict(request.assign)}
        if request.drill:
            scenario = request.scenario_text
            if request.scenario:
                scenario = _read_text(request.scenario, "scenario")
            body["scenario"] = scenario
        got = self.json("POST", "/drills" if request.drill else "/incidents", body=body, params={"full": "true"})
        return Started(got["state"], [(w["field"], w["confidential_input"]) for w in got.get("warnings", [])])

    def library_name(self, playbook: str) -> str:
        """The server's library playbook that `playbook` names: a name (``viral-complaint``),
        or a local file whose name is one of the library's and whose text is the same."""
        given = Path(playbook)
        if given.suffix not in (".yaml", ".yml") and given.name == playbook:
            return playbook  # a library name: the server says if there is no such playbook
        library = {p["name"]: p for p in self.json("GET", "/playbooks")}
        names = ", ".join(library) or "none"
        found = library.get(given.stem)
        if found is None:
            raise UsageError(f"{playbook}: the server {self.server} starts only playbooks of its library, and "
                             f"has none named {given.stem!r} (there are: {names}); ask its administrator to add "
                             "the file to the library")
        try:
            local = hashlib.sha256(given.read_bytes()).hexdigest()
        except OSError:
            return given.stem  # no such file here: the name alone says which one
        if found.get("sha256") not in (None, local):
            raise UsageError(f"{playbook}: this file differs from the playbook {given.stem!r} of the server's "
                             f"library; the server starts its own copy only (start it by name: {given.stem}, "
                             "or ask its administrator to update the library)")
        return given.stem

    def status(self, incident: str) -> dict:
        return self._state("GET", incident, "")

    def listing(self, *, include_closed: bool = False, stage: str | None = None, playbook: str | None = None,
                full: bool = False) -> list:
        params = {"all": str(include_closed).lower(), "full": str(full).lower()}
        params.update({k: v for k, v in (("stage", stage), ("playbook", playbook)) if v is not None})
        return self.json("GET", "/incidents", params=params)

    def assign(self, incident: str, role: str, person: str) -> dict:
        return self._state("POST", incident, "assign", {"role": role, "person": person})

    def unassign(self, incident: str, role: str, person: str) -> dict:
        return self._state("POST", incident, "unassign", {"role": role, "person": person})

    def task(self, incident: str, name: str, *, done: bool = True) -> dict:
        from urllib.parse import quote

        return self._state("POST", incident, f"tasks/{quote(name, safe='')}", {"done": done})

    def note(self, incident: str, text: str) -> dict:
        return self._state("POST", incident, "notes", {"text": text})

    def set_inputs(self, incident: str, values: dict[str, str]) -> dict:
        return self._state("POST", incident, "inputs", {"values": dict(values)})

    def advance(self, incident: str, trigger: str, reason: str | None = None) -> dict:
        return self._state("POST", incident, "advance", {"trigger": trigger, "reason": reason})

    def close_incident(self, incident: str, trigger: str | None = None, reason: str | None = None) -> dict:
        return self._state("POST", incident, "close", {"trigger": trigger, "reason": reason})

    def reopen(self, incident: str, trigger: str | None = None, reason: str | None = None) -> dict:
        return self._state("POST", incident, "reopen", {"trigger": trigger, "reason": reason})

    def log(self, incident: str):
        from ..incidents.events import Event

        return iter([Event(**e) for e in self.json("GET", self._incident(incident, "log"))])

    # -- posts -------------------------------------------------------------------------

    def render(self, request) -> list[dict]:
        recipients = None if request.recipients is None else [[r, dict(v)] for r, v in request.recipients]
        return self.json("POST", self._incident(request.incident, "render"), body={
            "template": request.template, "channels": list(request.channels), "langs": list(request.langs),
            "overrides": dict(request.overrides), "recipients": recipients})

    def drafts(self, incident: str) -> list[dict]:
        return self.json("GET", self._incident(incident, "posts"))

    def edit(self, incident: str, post: str, *, text: str, subject: str | None = None) -> dict:
        return self.json("POST", self._incident(incident, "edit"),
                         body={"post": post, "text": text, "subject": subject})

    def approve(self, incident: str, post: str, *, version: int, role: str | None = None,
                override: str | None = None):
        from .releases import Approved

        got = self.json("POST", self._incident(incident, "approve"), body={
            "post": post, "version": version, "role": role, "override_identifiers": override})
        missing = got.pop("missing", [])
        return Approved(got, missing)

    def reject(self, incident: str, post: str, reason: str, version: int | None = None) -> dict:
        return self.json("POST", self._incident(incident, "reject"),
                         body={"post": post, "reason": reason, "version": version})

    def publish(self, incident: str, post: str):
        from .releases import DeliveryAfterPublish, Published

        try:
            got = self.json("POST", self._incident(incident, "publish"), body={"post": post})
        except DeliveryFailed as e:
            if "published" not in e.fields:
                raise
            got = dict(e.fields.pop("published"))
            raise DeliveryAfterPublish(Published(got, got.pop("outbox"), []), e) from None
        outbox, deliveries = got.pop("outbox"), got.pop("deliveries", [])
        return Published(got, outbox, deliveries)

    def deliver(self, incident: str, post: str) -> list[dict]:
        return self.json("POST", self._incident(incident, "deliver"), body={"post": post})

    def rebuild_outbox(self, incident: str | None = None) -> list[dict]:
        return self.json("POST", "/outbox/rebuild", params={"incident": incident} if incident else None)

    # -- clocks and drills -------------------------------------------------------------

    def due(self, within_seconds: int = 0, *, record: bool = True):
        from .clocks import Due

        got = self.json("POST" if record else "GET", "/due", params={"within": f"{within_seconds}s"})
        return Due([_due_item(i) for i in got["items"]], got["recorded"], got["notified"], got["overdue"],
                   got.get("climbed", []))

    def acknowledge(self, incident: str, clock: str | None, note: str):
        from .clocks import Acknowledged

        got = self.json("POST", self._incident(incident, "ack"), body={"clock": clock, "note": note},
                        params={"full": "true"})
        return Acknowledged(got["status"]["state"], got["acknowledged"])

    def advance_clock(self, incident: str, seconds: int) -> dict:
        got = self.json("POST", self._incident(incident, "advance-clock"), body={"duration": f"{seconds}s"},
                        params={"full": "true"})
        return {"state": got["status"]["state"], "recorded": got["recorded"], "injects": got["injects"]}

    def drill_summary(self, incident: str) -> dict:
        return self.json("GET", self._incident(incident, "drill-summary"))

    # -- audit -------------------------------------------------------------------------

    def verify(self, request):
        from ..audit.integrity import VerifyReport
        from .audit import Verified

        if request.checkpoint is not None or request.public_key_pem is not None:
            raise UsageError("--checkpoint and --public-key are checked on this machine only: take a bundle "
                             "(playbook bundle INCIDENT -o FILE) and verify it here with: "
                             "playbook verify --bundle FILE")
        got = self.json("POST", "/verify", body={"incident": request.incident, "fast": request.fast,
                                                         "full": request.full})
        return Verified(VerifyReport(**got), request.incident is None)

    def sign_checkpoint(self) -> dict:
        return self.json("POST", "/checkpoints")

    def require_incident(self, incident: str) -> None:
        self.json("GET", self._incident(incident, ""))

    def report(self, incident: str, fmt: str) -> str:
        if fmt not in ("md", "html", "json"):
            raise UsageError(f"report format {fmt!r}: choose md, html or json")
        return self.call("GET", self._incident(incident, "report"), params={"format": fmt}).text

    def export(self, incident: str, fmt: str, out) -> int:
        if fmt not in ("jsonl", "csv"):
            raise UsageError(f"export format {fmt!r}: choose jsonl or csv")
        response = self.call("GET", self._incident(incident, "export"), params={"format": fmt})
        out.write(response.text)
        return int(response.headers.get("x-event-count", "0"))

    def bundle(self, incident: str, path: Path) -> dict:
        import io
        import os
        import tempfile
        import zipfile

        from ..audit.bundle import MANIFEST

        data = self.call("GET", self._incident(incident, "bundle")).content
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                manifest = json.loads(z.read(MANIFEST))
        except (zipfile.BadZipFile, KeyError, ValueError):
            raise IntegrityError(f"the server {self.server} sent a bundle that is not one "
                                 "(no readable manifest)") from None
        path = Path(path)
        try:
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temporary, path)
        except OSError as e:
            raise StoreError(f"{path}: cannot write ({e.strerror or e})") from None
        return manifest

    def public_key(self) -> str:
        return self.call("GET", "/key").text


def _due_item(item: dict):
    """A due item as the server listed it, with its clock at the server's moment (a
    drill's simulated time for a drill)."""
    from datetime import timedelta

    from ..clocks.breaches import DueItem
    from ..clocks.deadlines import ClockStatus
    from ..incidents.events import parse_iso

    due_at = parse_iso(item["due_at"])
    status = ClockStatus(
        key=item["key"], label=item["label"], due_at=due_at, met_at=item["met_at"],
        now=due_at - timedelta(seconds=item["seconds_left"]), kind=item["kind"], stage=item["stage"],
        visit=item["visit"], anchor=item["from"],
        anchor_at=item["from_at"], closed_at=item["closed_at"], every_seconds=item.get("every_seconds"),
        late_updates=item.get("late_updates", 0), gap_seconds=item.get("longest_gap_seconds"),
        result=item["outcome"] if item["kind"] == "updates" and item["outcome"] != "open" else None)
    return DueItem(item["incident"], item["title"], item["drill"], status, count=item.get("count"))


def _reason(error) -> str:
    """Why a request failed, in words (never the request's headers)."""
    text = str(error).strip()
    return text or type(error).__name__


def _read_text(path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the {what} ({getattr(e, 'strerror', None) or e})") from None
