"""Who acts, and how we know: the principal every use case takes instead of a bare name."""

from __future__ import annotations

from datetime import datetime

from .frozen import Frozen

#: How a person was identified. ``asserted`` is the local command line without a
#: server (``--as NAME``: typed, not proven); the server never accepts it.
METHODS = ("asserted", "password", "token", "oidc", "engine")

#: What a personal API token may be used for, each scope including the ones before it.
SCOPES = ("read", "act", "approve", "admin")


class Principal(Frozen):
    """A person (or the engine itself) acting through one interface.

    ``name`` is the account name (or the asserted name); ``method`` one of
    :data:`METHODS`; ``issuer`` the identity provider for ``oidc``; ``authenticated_at``
    when the credential was last proven (a signature needs a recent one); ``scope`` the
    most a token allows (``None``: no limit beyond the person's roles); ``session`` the
    web session it came from (not compared). Immutable."""

    __slots__ = _fields = ("name", "method", "issuer", "authenticated_at", "scope", "session")
    _compared = ("name", "method", "issuer", "authenticated_at", "scope")

    def __init__(self, name: str, method: str = "asserted", issuer: str | None = None,
                 authenticated_at: datetime | None = None, scope: str | None = None,
                 session: str | None = None) -> None:
        self._set(name=name, method=method, issuer=issuer, authenticated_at=authenticated_at, scope=scope,
                  session=session)
        if self.method not in METHODS:
            raise ValueError(f"unknown authentication method {self.method!r}")
        if self.method == "oidc" and not self.issuer:
            raise ValueError("an oidc principal names its issuer")
        if self.scope is not None and self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")

    @property
    def auth(self) -> str:
        """How this principal was authenticated, as recorded in the log:
        ``asserted``, ``password``, ``token`` or ``oidc:ISSUER``."""
        return f"oidc:{self.issuer}" if self.method == "oidc" else self.method

    def allows(self, scope: str) -> bool:
        """Whether a token limited to :attr:`scope` may be used for ``scope``."""
        if self.scope is None:
            return True
        return SCOPES.index(scope) <= SCOPES.index(self.scope)

    @classmethod
    def asserted(cls, name: str) -> "Principal":
        return cls(name=name, method="asserted")
