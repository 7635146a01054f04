"""Use cases for auditors: verify the log, sign checkpoints, report, export, bundle.

Only a verify of every incident signs a checkpoint, and only where the database can
be written: that is decided here, not by an interface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import IntegrityError, NotFound, UsageError
from .context import App, acting
from .principal import Principal


@dataclass(frozen=True)
class VerifyRequest:
    incident: str | None = None
    checkpoint: dict | None = None  # a checkpoint taken earlier, to detect truncation
    public_key_pem: str | None = None  # the signer's public key, obtained independently
    fast: bool = False  # skip the refold through the rules
    full: bool = False  # refold every incident, also those a checkpoint vouches for


@dataclass(frozen=True)
class Verified:
    report: object  # engine.audit.integrity.VerifyReport (ok)
    #: whether a new checkpoint may be signed now: every incident was verified and the
    #: database can be written by this user
    can_sign: bool


def verify(app: App, who: Principal, request: VerifyRequest) -> Verified:
    """Verify the audit log (one incident or all); IntegrityError (exit 7) if anything
    was modified, inserted, reordered or removed, or the checkpoints cannot be checked."""
    if app.remote is not None:
        return app.remote.verify(request)
    from ..audit import integrity
    from ..audit.rules import audit

    with acting(who, "read"):
        store = app.store(read_only=True)
        if request.incident is not None and store.snapshot(request.incident) is None:
            raise NotFound(f"no incident {request.incident!r} in this database (see: playbook list --all)")
        key_path = app.config.key
        trusted = request.public_key_pem or integrity.trusted_public_key(key_path)
        report = integrity.verify(store, request.incident, checkpoint=request.checkpoint, public_key_pem=trusted,
                                  audit=None if request.fast else audit, checkpoint_dir=app.config.checkpoints,
                                  full=request.full)
    if report.unchecked:
        report.ok = False
        report.problems.append(
            f"{report.unchecked} checkpoint(s) cannot be checked: the signing key {key_path} is missing or "
            "unreadable (restore it, or give the signer's public key with --public-key FILE)")
    if not report.ok:
        raise VerifyFailed(report)
    path = app.config.sqlite_file
    writable = path is None or (path.exists() and os.access(path, os.W_OK))
    return Verified(report, request.incident is None and writable)


class VerifyFailed(IntegrityError):
    """The log does not verify; carries the report (its problems) for the interface."""

    def __init__(self, report) -> None:
        super().__init__("the audit log does NOT verify:\n" + "\n".join(f"  - {p}" for p in report.problems))
        self.report = report


def sign_checkpoint(app: App, who: Principal, verified: Verified | None = None) -> dict:
    """Sign a checkpoint of every incident now (after a :func:`verify` of every incident,
    whose result ``verified`` says which projections it refolded without a problem, so
    that the next verify need not refold them again)."""
    if app.remote is not None:
        return app.remote.sign_checkpoint()
    from ..audit import integrity
    from ..incidents.events import utc_now_iso

    claims = verified.report.verified if verified is not None and verified.report.ok else None
    # the oldest checkpoints are removed only after a verify that checked the log against them all
    retain = verified is not None and verified.report.ok and verified.report.extends
    with acting(who, "read"):
        return integrity.checkpoint(app.store(), integrity.load_or_create_key(app.config.key),
                                    utc_now_iso(app.clock.now()), app.config.checkpoints, verified=claims,
                                    retain=retain)


def verify_bundle(path: Path, public_key_pem: str | None = None):
    """Verify an auditor's bundle offline (no database); the report, ok or not."""
    from ..audit.bundle import verify_bundle as check

    return check(path, public_key_pem=public_key_pem)


def public_key(app: App) -> str:
    """The PEM of the key that signs checkpoints (created on first use)."""
    if app.remote is not None:
        return app.remote.public_key()
    from ..audit.integrity import load_or_create_key, public_key_pem

    return public_key_pem(load_or_create_key(app.config.key))


def report(app: App, who: Principal, incident: str, fmt: str) -> str:
    """The auditor's report as text (md, html or json)."""
    if app.remote is not None:
        return app.remote.report(incident, fmt)
    from ..audit.integrity import trusted_public_key
    from ..audit.report import build_report, render_report

    if fmt not in ("md", "html", "json"):
        raise UsageError(f"report format {fmt!r}: choose md, html or json")
    with acting(who, "read"):
        built = build_report(app.store(read_only=True), incident, app.clock.now(),
                             public_key_pem=trusted_public_key(app.config.key))
    return render_report(built, fmt)


def require_incident(app: App, who: Principal, incident: str) -> None:
    """NotFound unless the incident exists (checked before an output file is created)."""
    if app.remote is not None:
        return app.remote.require_incident(incident)
    from ..incidents.service import status

    with acting(who, "read"):
        status(app.store(read_only=True), incident)


def export(app: App, who: Principal, incident: str, fmt: str, out: IO[str]) -> int:
    """Stream the incident's events to `out` as JSON Lines or CSV; the number written."""
    if app.remote is not None:
        return app.remote.export(incident, fmt, out)
    from ..audit.report import export_events

    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"export format {fmt!r}: choose jsonl or csv")
    with acting(who, "read"):
        return export_events(app.store(read_only=True), incident, fmt, out)


def bundle(app: App, who: Principal, incident: str, path: Path) -> dict:
    """Write the incident's bundle (events, pinned playbook, signed checkpoint, public
    key) to `path`; its manifest."""
    if app.remote is not None:
        return app.remote.bundle(incident, path)
    from ..audit.bundle import write_bundle
    from ..audit.integrity import load_or_create_key

    require_incident(app, who, incident)  # an unknown incident: refuse before a key is created
    with acting(who, "read"):
        return write_bundle(app.store(read_only=True, writes=True), incident, path,
                            load_or_create_key(app.config.key), now=app.clock.now())
