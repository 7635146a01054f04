"""Checking an OpenID Connect ID token (for :mod:`engine.accounts.oidc`).

The signature must be RS256 or ES256 by a key the provider publishes in its JWKS
(``none`` and HMAC are refused before any key is looked at: with a public key as the
HMAC secret anyone could sign). The claims are then checked with joserfc's registry
against this sign-in: issuer, audience (and ``azp`` when there are several), subject,
nonce, ``exp`` / ``iat`` within the allowed clock skew, ``iat`` not before the sign-in
began, and ``auth_time`` when the sign-in asked for a fresh authentication. Every
failure is :class:`~engine.errors.SignInFailed`; no message shows the token.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..errors import SignInFailed

#: The ID token signatures accepted (asymmetric only).
ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


def _refuse(message: str, side: str = "provider") -> SignInFailed:
    return SignInFailed(message, side=side)


class ProviderKeys:
    """The provider's signing keys, fetched with ``fetch()`` -> ``(url, JWKS document)``,
    cached, and fetched again once when a token names a key id the cache does not hold."""

    def __init__(self, fetch: Callable[[], tuple[str, dict]]) -> None:
        self._fetch = fetch
        self._keys: list | None = None
        self._lock = threading.Lock()

    def _load(self, refresh: bool) -> list:
        from joserfc import jwk
        from joserfc.errors import JoseError

        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        url, document = self._fetch()
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise _refuse(f"the key set at {url} has no list of keys")
        usable = []
        for data in keys:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig" or data.get("kty") not in ("RSA", "EC"):
                continue
            try:
                usable.append((data, jwk.import_key(data)))
            except (JoseError, ValueError, TypeError):
                continue  # a key we cannot use is no reason to refuse the others
        with self._lock:
            self._keys = usable
        return usable

    def key_for(self, kid: object, alg: str):
        """The published key for a token's ``kid`` and ``alg``."""
        kty, crv = _KEY_TYPES[alg]
        for refresh in (False, True):
            keys = self._load(refresh)
            fits = [key for data, key in keys if data.get("kty") == kty and data.get("alg", alg) == alg
                    and (crv is None or data.get("crv") == crv)]
            if kid is None:
                if len(fits) == 1:
                    return fits[0]
                continue
            named = [key for data, key in keys if data.get("kid") == kid]
            if named:
                if not any(k is n for k in fits for n in named):
                    raise _refuse(f"the ID token names key {str(kid)[:60]!r}, which is not a {alg} key")
                return named[0]
        if kid is None:
            raise _refuse(f"the ID token names no key (kid) and the provider does not publish exactly one {alg} key")
        raise _refuse(f"the ID token is signed with a key ({str(kid)[:60]!r}) that the provider does not publish "
                      "in its key set")


@dataclass(frozen=True)
class Expected:
    """What an ID token must say for one sign-in."""

    issuer: str
    client_id: str
    nonce: str
    started: datetime  # when the sign-in began
    fresh: bool  # the person had to authenticate again
    skew: int  # seconds of clock difference allowed


def _header(id_token: str) -> dict:
    segment = id_token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError) as e:
        raise _refuse("the ID token's header is not readable") from e
    if not isinstance(header, dict):
        raise _refuse("the ID token's header is not a JSON object")
    return header


def verify(id_token: str, keys: ProviderKeys, expected: Expected, now: datetime) -> dict:
    """The ID token's claims, once its signature and claims hold for ``expected``."""
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError

    header = _header(id_token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _refuse(f"the ID token is signed with {str(alg)[:20]!r}; only {', '.join(ALGORITHMS)} signatures "
                      "are accepted")
    key = keys.key_for(header.get("kid"), alg)
    try:
        claims = jwt.decode(id_token, key, algorithms=[alg]).claims
    except BadSignatureError as e:
        raise _refuse("the ID token's signature does not verify with the provider's published key") from e
    except (JoseError, ValueError) as e:
        raise _refuse(f"the ID token is malformed ({type(e).__name__})") from e
    x, ts = expected, int(now.timestamp())
    registry = jwt.JWTClaimsRegistry(
        now=ts, leeway=x.skew, iss={"essential": True, "value": x.issuer},
        aud={"essential": True, "value": x.client_id}, sub={"essential": True}, exp={"essential": True},
        iat={"essential": True}, nonce={"essential": True, "value": x.nonce})
    try:
        registry.validate(claims)
    except ExpiredTokenError as e:
        raise _refuse(f"the ID token expired at {_when(claims['exp'])} (now {now.isoformat()}, {x.skew} s of "
                      "clock skew allowed); check this server's clock") from e
    except ClaimError as e:
        raise _refuse(_claim_problem(e.claim, claims, x, now)) from e
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != x.client_id:
        raise _refuse(f"the ID token was issued to {str(claims.get('azp'))[:100]!r} (azp), not this client "
                      f"{x.client_id!r}")
    started = int(x.started.timestamp()) - x.skew
    if claims["iat"] < started:
        raise _refuse("the ID token was issued before this sign-in began (a replayed token)")
    auth_time = claims.get("auth_time")
    if auth_time is None:
        if x.fresh:
            raise _refuse("the identity provider did not say when the person authenticated (auth_time), which "
                          "a signature needs")
        return claims
    if isinstance(auth_time, bool) or not isinstance(auth_time, (int, float)) or auth_time > ts + x.skew:
        raise _refuse(f"the ID token's auth_time {str(auth_time)[:30]} is not a time in the past")
    if x.fresh and auth_time < started:
        raise _refuse(f"the identity provider did not make the person sign in again (they last did at "
                      f"{_when(auth_time)}); a signature needs it", side="refused")
    return claims


def authenticated_at(claims: dict, now: datetime) -> datetime:
    """When the person proved who they are: ``auth_time`` if the provider says, else now."""
    auth_time = claims.get("auth_time")
    return now if auth_time is None else datetime.fromtimestamp(auth_time, timezone.utc)


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(ts)[:30]


def _claim_problem(claim: str, claims: dict, expected: Expected, now: datetime) -> str:
    """What is wrong with one claim, in words an administrator can act on."""
    if claim not in claims or claims.get(claim) is None:
        return f"the ID token lacks the claim(s) {claim.replace(',', ', ')}"
    value = str(claims.get(claim))[:200]
    return {
        "iss": f"the ID token's issuer {value!r} is not the configured {expected.issuer!r}",
        "aud": f"the ID token is for the audience {value}, not this client {expected.client_id!r}",
        "nonce": "the ID token's nonce does not match this sign-in (a replayed or mixed-up sign-in)",
        "iat": f"the ID token is issued in the future ({_when(claims.get('iat'))}, now {now.isoformat()}); "
               "check this server's clock",
        "nbf": "the ID token is not valid yet; check this server's clock",
    }.get(claim, f"the ID token's {claim} claim is not valid")
