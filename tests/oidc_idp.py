"""A small OpenID Connect identity provider on loopback, for the sign-in tests.

It serves discovery, a JWKS, ``/authorize`` (approves the configured user at once:
redirects to the redirect URI with a code and the state) and ``/token`` (each code
once, client authentication, the PKCE verifier against the challenge) and signs ID
tokens itself with :mod:`cryptography`, not with the library the client verifies them
with, so a shared mistake cannot hide. Tests make it misbehave through its attributes:
``claims`` (claims to set; ``None`` removes one), ``signing`` (``rs256``, ``es256``,
``other-key``, ``none``, ``hs256`` with the public key as the secret),
``header`` (ID token header entries; ``None`` removes one), ``payload`` (raw bytes), ``discovery`` (entries to
override in the discovery document), ``answers`` (path -> status and body, answered
instead of the real thing), ``hold_token`` (an event the token endpoint waits for)
and ``reuse_codes`` (accept a code twice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


#: What the provider knows about its one client unless told otherwise.
CLIENT_ID = "playbook"
CLIENT_SECRET = "s3cret-Of-the-client"
REDIRECT_URI = "http://127.0.0.1:8080/auth/callback"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


class SigningKey:
    """An RS256 or ES256 key with its public JWK."""

    def __init__(self, alg: str = "RS256", kid: str | None = None, published: bool = True) -> None:
        self.alg, self.kid, self.published = alg, kid or secrets.token_hex(4), published
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256", "x": _int(numbers.x, 32), "y": _int(numbers.y, 32)}
        self.jwk |= {"kid": self.kid, "use": "sig", "alg": alg}

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


class IdentityProvider:
    """``with IdentityProvider(clock, ...) as idp:`` serves on ``idp.issuer`` until the end."""

    def __init__(self, clock, *, client_id: str = CLIENT_ID, client_secret: str | None = CLIENT_SECRET,
                 redirect_uri: str = REDIRECT_URI, user: dict | None = None) -> None:
        self.clock, self.client_id, self.client_secret = clock, client_id, client_secret
        self.redirect_uri = redirect_uri
        self.user = user or {"sub": "u-1001", "preferred_username": "alice", "email": "alice@hospital.example",
                             "email_verified": True}
        self.keys = [SigningKey("RS256")]
        self.claims: dict = {}
        self.signing = "rs256"
        self.header: dict = {}
        self.payload: bytes | None = None  # the ID token's payload as is, instead of its claims
        self.answers: dict[str, tuple[int, object]] = {}
        self.discovery: dict = {}
        self.hold_token: threading.Event | None = None
        self.reuse_codes = False
        self.codes: dict[str, dict] = {}
        self.issued: list[str] = []  # every code and ID token handed out (tests look for leaks)
        self.hits: dict[str, int] = {}
        self.auth_time = None  # when the user last signed in (default: at /authorize)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "IdentityProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (the port is closed: a client now finds the provider down)."""
        if not self._thread.is_alive():
            return
        if self.hold_token is not None:
            self.hold_token.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def rotate(self, alg: str = "RS256", published: bool = True) -> SigningKey:
        """A new signing key, published beside the old one (unless not ``published``);
        tokens are signed with it from now on."""
        self.keys.insert(0, SigningKey(alg, published=published))
        return self.keys[0]

    # -- what the endpoints answer ---------------------------------------------------

    def metadata(self) -> dict:
        doc = {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
               "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
               "response_types_supported": ["code"], "subject_types_supported": ["public"],
               "id_token_signing_alg_values_supported": ["RS256", "ES256"],
               "code_challenge_methods_supported": ["S256"],
               "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"]}
        return doc | self.discovery

    def authorize(self, query: dict) -> tuple[int, dict, str]:
        q = {k: v[0] for k, v in query.items()}
        if q.get("client_id") != self.client_id or q.get("redirect_uri") != self.redirect_uri:
            return 400, {}, "unknown client or redirect URI"
        if (q.get("response_type") != "code" or "openid" not in q.get("scope", "").split()
                or q.get("code_challenge_method") != "S256" or not q.get("code_challenge")):
            return 302, {"Location": f"{self.redirect_uri}?"
                         + urlencode({"error": "invalid_request", "state": q.get("state", "")})}, ""
        now = int(self.clock.now().timestamp())
        code = secrets.token_urlsafe(24)
        self.issued.append(code)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce"), "used": False,
                            "auth_time": now if self.auth_time is None else self.auth_time}
        return 302, {"Location": f"{self.redirect_uri}?" + urlencode({"code": code, "state": q.get("state", "")})}, ""

    def token(self, headers, form: dict) -> tuple[int, dict]:
        if self.hold_token is not None:
            self.hold_token.wait()
        f = {k: v[0] for k, v in form.items()}
        client_id, secret = f.get("client_id"), f.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if client_id != self.client_id or (self.client_secret is not None and not hmac.compare_digest(
                (secret or "").encode(), self.client_secret.encode())):
            return 401, {"error": "invalid_client"}
        grant = self.codes.get(f.get("code", ""))
        if (f.get("grant_type") != "authorization_code" or grant is None or (grant["used"] and not self.reuse_codes)
                or f.get("redirect_uri") != self.redirect_uri):
            return 400, {"error": "invalid_grant", "error_description": "code unknown, used or not for this client"}
        grant["used"] = True
        challenge = b64(hashlib.sha256(f.get("code_verifier", "").encode()).digest())
        if not hmac.compare_digest(challenge, grant["challenge"]):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        id_token = self.id_token(grant)
        self.issued.append(id_token)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}

    def id_token(self, grant: dict) -> str:
        now = self.clock.now()
        claims = {"iss": self.issuer, "aud": self.client_id, "sub": self.user["sub"], "nonce": grant["nonce"],
                  "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp()),
                  "auth_time": grant["auth_time"],
                  **{k: v for k, v in self.user.items() if k != "sub"}}
        claims.update(self.claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.keys[0]
        if self.signing == "other-key":  # the published key's kid on a key nobody published
            key = SigningKey(key.alg, kid=key.kid, published=False)
        alg = {"none": "none", "hs256": "HS256"}.get(self.signing, key.alg)
        header = {"alg": alg, "typ": "JWT"} | ({"kid": key.kid} if alg != "none" else {}) | self.header
        header = {k: v for k, v in header.items() if v is not None}
        payload = self.payload or json.dumps(claims).encode()
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}".encode()
        if alg == "none":
            signature = b""
        elif alg == "HS256":  # the old trick: the public key, which anyone has, as an HMAC secret
            signature = hmac.new(key.public_pem(), signing_input, hashlib.sha256).digest()
        else:
            signature = key.sign(signing_input)
        return f"{signing_input.decode()}.{b64(signature)}"

    def _handler(self):
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: object = "", headers: dict | None = None) -> None:
                text = isinstance(body, str)
                data = (body if text else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                idp.hits[url.path] = idp.hits.get(url.path, 0) + 1
                if url.path in idp.answers:
                    self._send(*idp.answers[url.path])
                elif url.path == "/.well-known/openid-configuration":
                    self._send(200, idp.metadata())
                elif url.path == "/jwks":
                    self._send(200, {"keys": [k.jwk for k in idp.keys if k.published]})
                elif url.path == "/authorize":
                    status, headers, text = idp.authorize(parse_qs(url.query))
                    self._send(status, text, headers)
                else:
                    self._send(404, "not found")

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                idp.hits[url.path] = idp.hits.get(url.path, 0) + 1
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                if url.path in idp.answers:
                    self._send(*idp.answers[url.path])
                    return
                if url.path != "/token":
                    self._send(404, "not found")
                    return
                status, body = idp.token(self.headers, form)
                self._send(status, body)

        return Handler
