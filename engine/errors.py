"""The engine's one exception family.

Every error a user can provoke is a subclass of :class:`PlaybookError`. Each class
carries the process exit code the CLI uses for it, so the CLI catches the family in
one place and commands need no try/except of their own.

Exit codes (also documented in the README):

====  =======================================================================
0     success
1     unexpected internal error (a bug: please report it)
2     wrong command usage (unknown option, missing argument)
3     invalid playbook (every problem listed with file:line:col)
4     not found (incident, template, trigger, post, file)
5     refused (a guard is not met, a role is missing, the incident is closed)
6     conflict (someone else changed the incident first; run the command again)
7     integrity failure (the audit log or a bundle does not verify)
8     store unavailable (database corrupt, foreign, locked or unwritable)
9     something is overdue (``playbook due``)
10    delivery failed (the post is published to the outbox, not delivered)
====  =======================================================================

The same codes map to HTTP statuses in one table (:data:`HTTP_STATUS`), and every error
can be given as an RFC 9457 problem detail (:meth:`PlaybookError.problem`), so the
server and the command line report one refusal the same way.
"""

from __future__ import annotations


#: exit code -> the HTTP status the server answers with.
HTTP_STATUS = {1: 500, 2: 400, 3: 422, 4: 404, 5: 403, 6: 409, 7: 409, 8: 503, 9: 409, 10: 502}

#: exit code -> a stable name for the kind of error (the problem's ``type`` ends in it).
KIND = {1: "internal", 2: "usage", 3: "invalid-playbook", 4: "not-found", 5: "refused", 6: "conflict",
        7: "integrity", 8: "store-unavailable", 9: "overdue", 10: "delivery-failed"}


def __getattr__(name: str):
    """Diagnostic, a playbook problem's record: made only by what reads playbooks, so that
    every other command (status) does not build its dataclass at start-up."""
    if name == "Diagnostic":
        from .diagnostics import Diagnostic

        return Diagnostic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PlaybookError(Exception):
    """Base of every error the engine reports to a user.

    ``message`` says what happened; ``fields`` (incident, post, action, ...) say about
    what, for interfaces that show them in their own way."""

    exit_code = 1

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message

    @property
    def kind(self) -> str:
        return KIND[self.exit_code]

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.exit_code]

    def problem(self) -> dict:
        """This error as an RFC 9457 problem detail (JSON)."""
        head, _, _ = self.message.partition("\n")
        return {"type": f"urn:crisis-playbook:error:{self.kind}", "title": head, "status": self.http_status,
                "detail": self.message, "exit_code": self.exit_code, **self._extra(), **self.fields}

    def _extra(self) -> dict:
        return {}


class UsageError(PlaybookError):
    """A command was given a malformed value (for example ``--set x``)."""

    exit_code = 2


class PlaybookInvalid(PlaybookError):
    """A playbook failed to load; carries every diagnostic found in one pass."""

    exit_code = 3

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))

    def _extra(self) -> dict:
        return {"diagnostics": [d.to_json() for d in self.diagnostics]}


class NotFound(PlaybookError):
    exit_code = 4


class Refused(PlaybookError):
    """The action is understood but not allowed now; nothing was written."""

    exit_code = 5

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        self.reasons = list(reasons or [])
        text = message
        if self.reasons:
            text += "\n" + "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(text)
        self.title = message

    def _extra(self) -> dict:
        return {"title": self.title, "reasons": self.reasons}


class AuthenticationFailed(Refused):
    """A sign-in or an API token was refused. One message whatever the reason (unknown
    name, wrong password, disabled or locked account; unknown, expired or revoked
    token), so that nobody learns which names exist. A server answers it with 401."""

    MESSAGE = "authentication failed: the credentials are not valid, or the account cannot sign in now"
    #: the HTTP status a server answers with (a subclass that is not about who one is,
    #: such as a missing CSRF token, says 403)
    STATUS = 401

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)

    @property
    def kind(self) -> str:
        return "authentication-failed"

    @property
    def http_status(self) -> int:
        return self.STATUS


class Conflict(PlaybookError):
    """Another writer changed the incident first; the action can be retried."""

    exit_code = 6


class IntegrityError(PlaybookError):
    """The audit log or a bundle failed verification."""

    exit_code = 7


class StoreError(PlaybookError):
    """The event store cannot be used (corrupt, foreign, locked, unwritable)."""

    exit_code = 8


class Overdue(PlaybookError):
    exit_code = 9


class DeliveryFailed(PlaybookError):
    exit_code = 10


class SignInFailed(Refused):
    """A single sign-on did not prove who someone is; nobody was signed in.

    Unlike a refused password, the message says what went wrong (the identity provider
    decides who exists, so there is nothing to enumerate here) in words an administrator
    can act on, and never contains a code, a token or a secret. ``side`` says where to
    look: ``request`` (the callback does not belong to a sign-in in progress, or came
    too late), ``refused`` (the provider or this server's rules said no), ``provider``
    (the provider's answer or set-up is not acceptable) or ``unreachable`` (it could not
    be reached). Over HTTP it is 401, or 502 when the provider could not be reached."""

    def __init__(self, message: str, side: str = "refused") -> None:
        super().__init__(message)
        self.side = side

    @property
    def http_status(self) -> int:
        return 502 if self.side == "unreachable" else 401

    def _extra(self) -> dict:
        return {**super()._extra(), "side": self.side}
