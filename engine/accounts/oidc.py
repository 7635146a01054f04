"""Single sign-on with OpenID Connect: the relying party, as plain Python.

A hospital signs its people in with the identity provider it already runs. The server
calls :meth:`OidcClient.begin`, keeps the returned :class:`PendingSignIn` on its side
(never in the browser) and redirects the browser to the URL; the provider sends the
browser back to the redirect URI, and :meth:`OidcClient.finish` turns that callback
into a :class:`~engine.app.principal.Principal` (``method="oidc"``), or refuses it with
:class:`~engine.errors.SignInFailed` (refused, exit 5).

The flow is the authorization code flow with PKCE (S256), a ``state`` and a ``nonce``,
all drawn from :mod:`secrets`. The ID token must be signed with RS256 or ES256 by a
key from the provider's JWKS (``none`` and HMAC are refused), name the configured
issuer and this client as its audience (and as ``azp`` when there are several),
carry the nonce of this sign-in, and be within its lifetime, give or take the allowed
clock skew. Error messages never contain a code, a token or a secret.

What the server around it must do: keep each PendingSignIn for one callback only
(delete it when :meth:`~OidcClient.finish` is called, whatever the outcome); accept the
principal only if its name is an active account (signing in at the provider is not
permission to use this server); call :meth:`~OidcClient.discover` at start-up to find
a wrong issuer early; pass ``fresh=True`` to :meth:`~OidcClient.begin` when the
sign-in is for a signature (the provider is asked to authenticate the person again,
and ``auth_time`` must show it did).

Settings (:meth:`OidcConfig.from_mapping` reads them from a mapping, for example the
``[oidc]`` table of a configuration file; a bad value is a UsageError, exit 2, naming
the setting):

=================  ========================================================================
issuer             the provider's issuer URL, exactly as its discovery document names it
                   (``https://``; ``http://`` only to a loopback address). Required.
client_id          this server's client id at the provider. Required.
client_secret      its secret; leave it out for a public client (PKCE only). Sent with
                   HTTP Basic, or in the form if the provider only supports that.
redirect_uri       the callback URL registered at the provider (``https://``, or
                   ``http://`` to loopback). Required.
scopes             space-separated or a list; must include ``openid``
                   (default ``openid profile email``).
clock_skew         seconds of clock difference tolerated on ``exp``, ``iat`` and
                   ``auth_time``, 0 to 300 (default 60).
username_claim     the claim that is the account name: ``preferred_username`` (default)
                   or ``email`` (lower-cased). An email the provider marks
                   ``email_verified: false`` is refused.
allowed_domains    optional; if given, only people whose ``email`` is in exactly one of
                   these domains (no subdomains) may sign in (comma/space separated or a
                   list).
timeout            seconds to wait for the provider on each request (default 10).
sign_in_lifetime   seconds a begun sign-in stays valid (default 600).
=================  ========================================================================

The discovery document (``ISSUER/.well-known/openid-configuration``) is fetched once
and its ``issuer`` must equal the configured one; the JWKS is cached and fetched again
once when an ID token names a key id it does not hold (the provider rotated its keys).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

from ..app.principal import Principal
from ..errors import SignInFailed, UsageError
from .oidc_token import Expected, ProviderKeys, authenticated_at, verify

CLAIMS = ("preferred_username", "email")
MAX_SKEW = 300


def _secure_url(url: object) -> bool:
    """An absolute https URL, or http to a loopback address (a test or a laptop)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.scheme not in ("https", "http"):
        return False
    if parts.scheme == "https":
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _oauth_error(value: object) -> str:
    """An OAuth error code as the provider sent it (RFC 6749: printable ASCII), or "unknown"."""
    return value[:64] if isinstance(value, str) and value.isascii() and value.isprintable() else "unknown"


def _words(value: object) -> object:
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class OidcConfig:
    """How this server signs people in with one identity provider (see the module)."""

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    clock_skew: int = 60
    username_claim: str = "preferred_username"
    allowed_domains: tuple[str, ...] = ()
    timeout: float = 10.0
    sign_in_lifetime: int = 600

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", _words(self.scopes))
        object.__setattr__(self, "allowed_domains", _words(self.allowed_domains))
        problems = []
        if not _secure_url(self.issuer) or urlsplit(self.issuer).query or urlsplit(self.issuer).fragment:
            problems.append(f"oidc.issuer: {self.issuer!r} is not an https URL without query or "
                            "fragment (http only to a loopback address)")
        if not _secure_url(self.redirect_uri) or urlsplit(self.redirect_uri).fragment:
            problems.append(f"oidc.redirect_uri: {self.redirect_uri!r} is not an https URL without "
                            "fragment (http only to a loopback address)")
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            problems.append("oidc.client_id: is empty")
        if self.client_secret is not None and (not isinstance(self.client_secret, str) or not self.client_secret):
            problems.append("oidc.client_secret: is empty (leave it out for a public client)")
        if not isinstance(self.scopes, tuple) or not all(isinstance(s, str) for s in self.scopes):
            problems.append("oidc.scopes: must be a list of words")
        elif "openid" not in self.scopes:
            problems.append(f"oidc.scopes: must include 'openid' (got {' '.join(self.scopes) or 'none'})")
        if type(self.clock_skew) is not int or not 0 <= self.clock_skew <= MAX_SKEW:
            problems.append(f"oidc.clock_skew: {self.clock_skew!r} is not a whole number of seconds "
                            f"from 0 to {MAX_SKEW}")
        if self.username_claim not in CLAIMS:
            problems.append(f"oidc.username_claim: {self.username_claim!r} is not one of {', '.join(CLAIMS)}")
        if not isinstance(self.allowed_domains, tuple) or not all(
                isinstance(d, str) and "." in d and "@" not in d for d in self.allowed_domains):
            problems.append(f"oidc.allowed_domains: {self.allowed_domains!r} is not a list of domain names")
        else:
            object.__setattr__(self, "allowed_domains", tuple(d.lower().lstrip("@") for d in self.allowed_domains))
        for name in ("timeout", "sign_in_lifetime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
                problems.append(f"oidc.{name}: {value!r} is not a number of seconds above 0, at most 3600")
        if problems:
            raise UsageError("; ".join(problems))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "OidcConfig":
        """The configuration from settings as a configuration file holds them."""
        known = {f.name for f in fields(cls)}
        problems = [f"oidc.{k}: unknown setting (known: {', '.join(sorted(known))})"
                    for k in data if k not in known]
        problems += [f"oidc.{k}: is required" for k in ("issuer", "client_id", "redirect_uri") if k not in data]
        if problems:
            raise UsageError("; ".join(problems))
        return cls(**dict(data))


@dataclass(frozen=True)
class PendingSignIn:
    """What the server keeps between :meth:`OidcClient.begin` and :meth:`OidcClient.finish`
    (server side: the verifier and the nonce are secrets of this sign-in)."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    created_at: datetime
    fresh: bool = False  # the person had to authenticate again (for a signature)

    def to_dict(self) -> dict:
        return {"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier,
                "created_at": self.created_at.isoformat(), "fresh": self.fresh}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PendingSignIn":
        try:
            created = datetime.fromisoformat(data["created_at"])
            if created.tzinfo is None or not all(isinstance(data[k], str) for k in ("state", "nonce", "code_verifier")):
                raise ValueError("malformed")
            return cls(data["state"], data["nonce"], data["code_verifier"], created, bool(data.get("fresh")))
        except (KeyError, TypeError, ValueError) as e:
            raise SignInFailed("the kept sign-in is unreadable; start the sign-in again",
                                       side="request") from e


class OidcClient:
    """The relying party for one :class:`OidcConfig`. Thread-safe; one per server process.

    ``http`` is an ``httpx.Client`` to use (the client makes its own otherwise)."""

    def __init__(self, config: OidcConfig, *, http=None) -> None:
        self.config = config
        if http is None:
            import httpx

            http = httpx.Client(timeout=config.timeout, follow_redirects=False)
        self._http = http
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._keys = ProviderKeys(self._key_set)

    def close(self) -> None:
        self._http.close()

    # -- talking to the provider --------------------------------------------------

    def _request(self, what: str, method: str, url: str, **kwargs):
        import httpx

        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as e:
            raise SignInFailed(f"the identity provider did not answer the {what} request at {url} "
                                       f"within {self.config.timeout:g} s", side="unreachable") from e
        except httpx.HTTPError as e:
            raise SignInFailed(f"the identity provider could not be reached for the {what} "
                                       f"request at {url} ({type(e).__name__})", side="unreachable") from e

    def _json(self, what: str, url: str) -> dict:
        response = self._request(what, "GET", url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise SignInFailed(f"the identity provider answered HTTP {response.status_code} for "
                                       f"the {what} at {url}", side="provider")
        try:
            document = response.json()
        except ValueError as e:
            raise SignInFailed(f"the {what} at {url} is not JSON", side="provider") from e
        if not isinstance(document, dict):
            raise SignInFailed(f"the {what} at {url} is not a JSON object", side="provider")
        return document

    def discover(self) -> dict:
        """The provider's discovery document, checked and cached (a server can call it at
        start-up to find a wrong issuer before anyone tries to sign in)."""
        with self._lock:
            if self._metadata is None:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = self._json("discovery document", url)
                if document.get("issuer") != self.config.issuer:
                    raise SignInFailed(
                        f"the discovery document at {url} names the issuer {document.get('issuer')!r}, "
                        f"not the configured {self.config.issuer!r}; correct oidc.issuer",
                        side="provider")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not _secure_url(document.get(key)):
                        raise SignInFailed(f"the discovery document at {url} has no usable {key} "
                                                   f"(got {document.get(key)!r})", side="provider")
                methods = document.get("code_challenge_methods_supported")
                if isinstance(methods, list) and "S256" not in methods:
                    raise SignInFailed(f"the identity provider at {url} does not support PKCE "
                                               "with S256, which this server requires", side="provider")
                self._metadata = document
            return self._metadata

    def _key_set(self) -> tuple[str, dict]:
        url = self.discover()["jwks_uri"]
        return url, self._json("key set", url)

    # -- the flow -------------------------------------------------------------------

    def begin(self, now: datetime, *, fresh: bool = False) -> tuple[str, PendingSignIn]:
        """The URL to send the browser to, and the sign-in to keep until it comes back.
        ``fresh``: the person must authenticate again now (``prompt=login``, ``max_age=0``),
        as an approval's signature needs."""
        from authlib.common.urls import add_params_to_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        pending = PendingSignIn(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                                code_verifier=secrets.token_urlsafe(48), created_at=now, fresh=fresh)
        params = [("response_type", "code"), ("client_id", self.config.client_id),
                  ("redirect_uri", self.config.redirect_uri), ("scope", " ".join(self.config.scopes)),
                  ("state", pending.state), ("nonce", pending.nonce),
                  ("code_challenge", create_s256_code_challenge(pending.code_verifier)),
                  ("code_challenge_method", "S256")]
        if fresh:
            params += [("prompt", "login"), ("max_age", "0")]
        return add_params_to_uri(self.discover()["authorization_endpoint"], params), pending

    def finish(self, params: Mapping[str, str], pending: PendingSignIn, now: datetime) -> Principal:
        """The person the provider's callback (its query parameters) proves, for the sign-in
        ``pending`` that :meth:`begin` started; SignInFailed otherwise."""
        if now - pending.created_at > timedelta(seconds=self.config.sign_in_lifetime):
            raise SignInFailed(f"the sign-in was started more than {self.config.sign_in_lifetime} s "
                                       "ago; start it again", side="request")
        state = params.get("state")
        if not isinstance(state, str) or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise SignInFailed("the callback's state does not match the sign-in in progress (it was "
                                       "started in another browser, or is replayed); start it again",
                                       side="request")
        if "error" in params:
            error = _oauth_error(params.get("error"))
            raise SignInFailed(f"the identity provider refused the sign-in: {error}", side="refused")
        if "iss" in params and params["iss"] != self.config.issuer:
            raise SignInFailed(f"the callback comes from the issuer {str(params['iss'])[:200]!r}, "
                                       f"not {self.config.issuer!r}", side="request")
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise SignInFailed("the callback carries no authorization code", side="request")
        c = self.config
        expected = Expected(issuer=c.issuer, client_id=c.client_id, nonce=pending.nonce,
                            started=pending.created_at, fresh=pending.fresh, skew=c.clock_skew)
        claims = verify(self._exchange(code, pending), self._keys, expected, now)
        return Principal(name=self._account(claims), method="oidc", issuer=c.issuer,
                         authenticated_at=authenticated_at(claims, now))

    def _exchange(self, code: str, pending: PendingSignIn) -> str:
        metadata = self.discover()
        url = metadata["token_endpoint"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": pending.code_verifier, "client_id": self.config.client_id}
        auth = None
        if self.config.client_secret is not None:
            methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" not in methods and "client_secret_post" in methods:
                form["client_secret"] = self.config.client_secret
            else:  # RFC 6749 2.3.1: both parts form-encoded before Basic
                auth = (quote(self.config.client_id, safe=""), quote(self.config.client_secret, safe=""))
        response = self._request("token", "POST", url, data=form, auth=auth, headers={"Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SignInFailed(f"the token endpoint at {url} answered HTTP {response.status_code} "
                                       "without a JSON object", side="provider")
        if response.status_code != 200:
            error = _oauth_error(body.get("error"))
            hint = {"invalid_grant": " (the code was used already, has expired, or the PKCE verifier does not "
                                     "match); start the sign-in again",
                    "invalid_client": "; check oidc.client_id and oidc.client_secret"}.get(error, "")
            raise SignInFailed(f"the token endpoint at {url} refused the code: {error}{hint}",
                                       side="refused")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise SignInFailed(f"the token endpoint at {url} returned no ID token (is 'openid' among "
                                       "the client's allowed scopes at the provider?)", side="provider")
        return id_token

    def _account(self, claims: dict) -> str:
        """The account name the claims give, under the configured mapping."""
        from ..names import check_person

        c = self.config
        email = claims.get("email")
        if (c.username_claim == "email" or c.allowed_domains) and claims.get("email_verified") is False:
            raise SignInFailed("the identity provider has not verified this person's email "
                                       "address", side="refused")
        if c.allowed_domains:
            domain = email.rpartition("@")[2].lower() if isinstance(email, str) and "@" in email else None
            if domain not in c.allowed_domains:
                raise SignInFailed(f"the email domain {domain!r} may not sign in here (allowed: "
                                           f"{', '.join(c.allowed_domains)})", side="refused")
        value = claims.get(c.username_claim)
        if not isinstance(value, str) or not value.strip():
            raise SignInFailed(f"the ID token has no {c.username_claim} to name the account by; ask "
                                       "the provider to release it, or change oidc.username_claim",
                                       side="provider")
        try:
            return check_person(f"the {c.username_claim}", value.lower() if c.username_claim == "email" else value)
        except UsageError as e:
            raise SignInFailed(f"{e.message}; it cannot be an account name", side="refused") from e

