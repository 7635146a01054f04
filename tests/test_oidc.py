"""Single sign-on with OpenID Connect against an identity provider on loopback
(tests/oidc_idp.py): a good sign-in gives the person's principal; every way an answer
can be wrong, late, replayed or forged is refused with SignInFailed (refused, exit 5),
and no message ever shows a code, a token or a secret."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import ROOT, T0
from engine.accounts.oidc import OidcClient, OidcConfig, PendingSignIn
from engine.errors import SignInFailed, UsageError
from oidc_idp import CLIENT_SECRET as SECRET, REDIRECT_URI as REDIRECT, IdentityProvider


@pytest.fixture
def idp(oidc_idp):
    return oidc_idp


def make_client(idp, **settings) -> OidcClient:
    values = {"issuer": idp.issuer, "client_id": "playbook", "client_secret": SECRET, "redirect_uri": REDIRECT}
    return OidcClient(OidcConfig.from_mapping(values | settings))


@pytest.fixture
def client(idp):
    c = make_client(idp)
    yield c
    c.close()


def browse(url: str) -> dict:
    """What a browser does with the authorization URL: the provider's redirect, as the
    callback's query parameters."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(client, clock, **begin):
    url, pending = client.begin(clock.now(), **begin)
    return client.finish(browse(url), pending, clock.now())


def refused(idp, call, says: str, side: str, *secrets: str) -> SignInFailed:
    """``call()`` fails with SignInFailed saying ``says``, and the message holds no
    code, token or secret."""
    with pytest.raises(SignInFailed) as caught:
        call()
    error = caught.value
    assert says in error.message
    assert error.exit_code == 5 and error.side == side
    for secret in [*idp.issued, SECRET, *secrets]:
        assert secret not in error.message
    return error


def test_a_good_sign_in_gives_the_persons_principal(idp, client, clock):
    url, pending = client.begin(clock.now())
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{idp.issuer}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [pending.state]
    assert query["scope"] == ["openid profile email"]
    assert pending.code_verifier not in url and SECRET not in url
    principal = client.finish(browse(url), pending, clock.now())
    assert (principal.name, principal.method, principal.issuer) == ("alice", "oidc", idp.issuer)
    assert principal.authenticated_at == T0
    assert principal.auth == f"oidc:{idp.issuer}"


def test_the_provider_checks_the_client_and_its_redirect_uri(idp, clock):
    """(So that the good sign-in above proves the client sends the registered ones.)"""
    url, _ = make_client(idp, redirect_uri="https://elsewhere.example/callback").begin(clock.now())
    assert httpx.get(url).status_code == 400
    url, _ = make_client(idp, client_id="another-client").begin(clock.now())
    assert httpx.get(url).status_code == 400
    assert idp.issued == []


def test_one_client_serves_sign_ins_from_several_threads(idp, client, clock):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: sign_in(client, clock).name, range(16)))
    assert names == ["alice"] * 16
    assert idp.hits["/.well-known/openid-configuration"] == 1
    assert len(idp.codes) == 16 and all(grant["used"] for grant in idp.codes.values())


def test_a_public_client_signs_in_with_pkce_alone(clock):
    with IdentityProvider(clock, client_secret=None, redirect_uri=REDIRECT) as idp:
        c = OidcClient(OidcConfig(issuer=idp.issuer, client_id="playbook", redirect_uri=REDIRECT))
        assert sign_in(c, clock).name == "alice"


def test_the_provider_may_only_take_the_client_secret_in_the_form(idp, client, clock):
    idp.discovery = {"token_endpoint_auth_methods_supported": ["client_secret_post"]}
    assert sign_in(client, clock).name == "alice"


def test_a_wrong_client_secret_is_refused_with_a_hint(idp, clock):
    c = make_client(idp, client_secret="not-the-secret")
    refused(idp, lambda: sign_in(c, clock), "invalid_client; check oidc.client_id", "refused", "not-the-secret")


def test_a_discovery_document_naming_another_issuer_is_refused(idp, client, clock):
    idp.discovery = {"issuer": "https://login.evil.example"}
    refused(idp, lambda: client.begin(clock.now()), "names the issuer 'https://login.evil.example', not the "
            f"configured '{idp.issuer}'; correct oidc.issuer", "provider")


@pytest.mark.parametrize("override, says", [
    ({"token_endpoint": "http://idp.example/token"}, "no usable token_endpoint"),
    ({"jwks_uri": None}, "no usable jwks_uri"),
    ({"code_challenge_methods_supported": ["plain"]}, "does not support PKCE with S256"),
])
def test_a_discovery_document_this_server_cannot_use_is_refused(idp, client, clock, override, says):
    idp.discovery = override
    refused(idp, lambda: client.begin(clock.now()), says, "provider")


def test_an_issuer_without_a_discovery_document_is_refused(idp, clock):
    c = make_client(idp, issuer=idp.issuer + "/tenant")
    refused(idp, lambda: c.begin(clock.now()), "answered HTTP 404 for the discovery document", "provider")


@pytest.mark.parametrize("claims, says", [
    ({"iss": "https://login.evil.example"}, "issuer 'https://login.evil.example' is not the configured"),
    ({"aud": "someone-else"}, "is for the audience someone-else, not this client 'playbook'"),
    ({"aud": ["playbook", "someone-else"]}, "issued to 'None' (azp), not this client"),
    ({"aud": ["playbook", "someone-else"], "azp": "someone-else"}, "issued to 'someone-else' (azp)"),
    ({"exp": int((T0 - timedelta(minutes=2)).timestamp())}, "expired at 2026-03-14T08:58:00+00:00"),
    ({"iat": int((T0 + timedelta(minutes=5)).timestamp())}, "issued in the future"),
    ({"iat": int((T0 - timedelta(hours=1)).timestamp())}, "issued before this sign-in began"),
    ({"nonce": None}, "lacks the claim(s) nonce"),
    ({"nonce": "guessed"}, "nonce does not match this sign-in"),
    ({"sub": None}, "lacks the claim(s) sub"),
    ({"iat": None, "exp": None}, "lacks the claim(s) exp, iat"),
    ({"exp": "tomorrow"}, "the ID token's exp claim is not valid"),
    ({"nbf": int((T0 + timedelta(minutes=5)).timestamp())}, "not valid yet; check this server's clock"),
    ({"auth_time": int((T0 + timedelta(hours=1)).timestamp())}, "auth_time 1773482400 is not a time in the past"),
])
def test_an_id_token_with_a_wrong_claim_is_refused(idp, client, clock, claims, says):
    idp.claims = claims
    refused(idp, lambda: sign_in(client, clock), says, "provider")


def test_an_id_token_for_several_audiences_names_this_client_as_authorized_party(idp, client, clock):
    idp.claims = {"aud": ["playbook", "reporting"], "azp": "playbook"}
    assert sign_in(client, clock).name == "alice"


def test_the_allowed_clock_skew_is_the_limit_of_expiry(idp, clock):
    idp.claims = {"exp": int((T0 - timedelta(seconds=50)).timestamp())}
    assert sign_in(make_client(idp, clock_skew=60), clock).name == "alice"
    refused(idp, lambda: sign_in(make_client(idp, clock_skew=30), clock), "30 s of clock skew allowed", "provider")


@pytest.mark.parametrize("signing, says", [
    ("other-key", "signature does not verify with the provider's published key"),
    ("none", "signed with 'none'; only RS256, ES256 signatures are accepted"),
    ("hs256", "signed with 'HS256'; only RS256, ES256"),
])
def test_a_forged_id_token_is_refused(idp, client, clock, signing, says):
    idp.signing = signing
    refused(idp, lambda: sign_in(client, clock), says, "provider")


def test_an_id_token_whose_payload_is_not_a_claims_object_is_refused(idp, client, clock):
    idp.payload = b'["alice"]'
    refused(idp, lambda: sign_in(client, clock), "the ID token is malformed (InvalidPayloadError)", "provider")


def test_an_es256_signature_is_accepted(idp, client, clock):
    idp.rotate("ES256")
    assert sign_in(client, clock).name == "alice"


def test_a_rotated_key_is_fetched_once_and_an_unknown_one_refused(idp, client, clock):
    assert sign_in(client, clock).name == "alice"
    assert idp.hits["/jwks"] == 1
    assert sign_in(client, clock).name == "alice"
    assert idp.hits["/jwks"] == 1, "the key set is cached"
    idp.rotate()
    assert sign_in(client, clock).name == "alice"
    assert idp.hits["/jwks"] == 2, "one fetch for the new key"
    hidden = idp.rotate(published=False)
    refused(idp, lambda: sign_in(client, clock), f"a key ({hidden.kid!r}) that the provider does not "
            "publish", "provider")
    assert idp.hits["/jwks"] == 3, "one more fetch, not a loop"


def test_a_replayed_code_is_refused(idp, client, clock):
    url, pending = client.begin(clock.now())
    callback = browse(url)
    assert client.finish(callback, pending, clock.now()).name == "alice"
    refused(idp, lambda: client.finish(callback, pending, clock.now()), "refused the code: invalid_grant "
            "(the code was used already", "refused", pending.code_verifier)


def test_a_callback_replayed_into_another_sign_in_is_refused_even_if_the_provider_would_take_it(
        idp, client, clock):
    idp.reuse_codes = True
    url, pending = client.begin(clock.now())
    callback = browse(url)
    _, other = client.begin(clock.now())
    refused(idp, lambda: client.finish(callback, other, clock.now()), "state does not match", "request")
    refused(idp, lambda: client.finish({"code": callback["code"]}, other, clock.now()), "state does not match",
            "request")
    assert client.finish(callback, pending, clock.now()).name == "alice"


def test_a_pkce_verifier_that_does_not_match_the_challenge_is_refused(idp, client, clock):
    url, pending = client.begin(clock.now())
    stolen = dataclasses.replace(pending, code_verifier="x" * 64)
    refused(idp, lambda: client.finish(browse(url), stolen, clock.now()), "invalid_grant", "refused")


def test_a_sign_in_finished_too_late_is_refused(idp, client, clock):
    url, pending = client.begin(clock.now())
    callback = browse(url)
    clock.advance(timedelta(minutes=11))
    refused(idp, lambda: client.finish(callback, pending, clock.now()), "started more than 600 s ago",
            "request")
    assert idp.hits.get("/token") is None, "nothing is sent to the provider"


def test_a_refusal_by_the_provider_is_reported(idp, client, clock):
    _, pending = client.begin(clock.now())
    callback = {"error": "access_denied", "state": pending.state}
    refused(idp, lambda: client.finish(callback, pending, clock.now()), "refused the sign-in: access_denied",
            "refused")
    refused(idp, lambda: client.finish({"state": pending.state}, pending, clock.now()), "no authorization code",
            "request")
    refused(idp, lambda: client.finish({"state": pending.state, "code": "c", "iss": "https://evil.example"},
                                       pending, clock.now()), "comes from the issuer 'https://evil.example'",
            "request")


def test_a_provider_that_is_down_is_unreachable(clock):
    idp = IdentityProvider(clock)
    with idp:
        issuer = idp.issuer
    c = OidcClient(OidcConfig(issuer=issuer, client_id="playbook", redirect_uri=REDIRECT))
    error = refused(idp, lambda: c.begin(clock.now()), f"could not be reached for the discovery document "
                    f"request at {issuer}/.well-known/openid-configuration (ConnectError)", "unreachable")
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_over_http_a_refused_sign_in_is_401_and_an_unreachable_provider_502(idp, client, clock):
    idp.signing = "none"
    forged = refused(idp, lambda: sign_in(client, clock), "signed with 'none'", "provider")
    assert forged.http_status == 401
    assert forged.problem()["side"] == "provider" and forged.problem()["status"] == 401
    assert forged.problem()["type"].endswith(":refused")
    idp.stop()
    down = refused(idp, lambda: sign_in(make_client(idp), clock), "could not be reached", "unreachable")
    assert down.http_status == 502 and down.problem()["status"] == 502


def test_a_provider_that_does_not_answer_in_time_is_unreachable(idp, clock):
    c = make_client(idp, timeout=0.2)
    url, pending = c.begin(clock.now())
    callback = browse(url)
    idp.hold_token = threading.Event()
    error = refused(idp, lambda: c.finish(callback, pending, clock.now()),
                    f"did not answer the token request at {idp.issuer}/token within 0.2 s", "unreachable",
                    pending.code_verifier)
    assert isinstance(error.__cause__, httpx.TimeoutException)


def test_the_email_can_name_the_account_and_domains_can_be_limited(idp, clock):
    idp.user["email"] = "Alice@Hospital.Example"
    assert sign_in(make_client(idp, username_claim="email"), clock).name == "alice@hospital.example"
    assert sign_in(make_client(idp, allowed_domains="hospital.example, clinic.example"), clock).name == "alice"
    refused(idp, lambda: sign_in(make_client(idp, allowed_domains=["clinic.example"]), clock),
            "the email domain 'hospital.example' may not sign in here (allowed: clinic.example)", "refused")
    idp.user["email_verified"] = False
    refused(idp, lambda: sign_in(make_client(idp, username_claim="email"), clock),
            "has not verified this person's email", "refused")


@pytest.mark.parametrize("user, says, side", [
    ({"preferred_username": None}, "no preferred_username to name the account by", "provider"),
    ({"preferred_username": "system:deadline"}, "reserved for the engine; it cannot be an account name",
     "refused"),
    ({"preferred_username": "cаrol"}, "mixes letters of several scripts", "refused"),
])
def test_a_name_that_cannot_be_an_account_is_refused(idp, client, clock, user, says, side):
    idp.user.update(user)
    idp.user = {k: v for k, v in idp.user.items() if v is not None}
    refused(idp, lambda: sign_in(client, clock), says, side)


def test_a_fresh_sign_in_for_a_signature_needs_the_person_to_authenticate_again(idp, client, clock):
    url, pending = client.begin(clock.now(), fresh=True)
    assert parse_qs(urlsplit(url).query)["prompt"] == ["login"] and pending.fresh
    assert client.finish(browse(url), pending, clock.now()).authenticated_at == T0
    idp.auth_time = int((T0 - timedelta(hours=2)).timestamp())  # the provider kept its old session
    refused(idp, lambda: sign_in(client, clock, fresh=True), "did not make the person sign in again (they "
            "last did at 2026-03-14T07:00:00+00:00)", "refused")
    assert sign_in(client, clock).authenticated_at == T0 - timedelta(hours=2)
    idp.claims = {"auth_time": None}
    refused(idp, lambda: sign_in(client, clock, fresh=True), "did not say when the person authenticated",
            "provider")


def test_a_kept_sign_in_survives_a_round_trip_and_hides_its_secrets(client, clock):
    _, pending = client.begin(clock.now())
    assert PendingSignIn.from_dict(pending.to_dict()) == pending
    assert pending.nonce not in repr(pending) and pending.code_verifier not in repr(pending)
    with pytest.raises(SignInFailed, match="the kept sign-in is unreadable") as caught:
        PendingSignIn.from_dict({**pending.to_dict(), "created_at": "yesterday"})
    assert caught.value.side == "request"
    assert SECRET not in repr(client.config)


@pytest.mark.parametrize("settings, says", [
    ({"issuer": "http://idp.example"}, "oidc.issuer: 'http://idp.example' is not an https URL"),
    ({"issuer": "https://idp.example/?tenant=1"}, "oidc.issuer: 'https://idp.example/?tenant=1'"),
    ({"redirect_uri": "/callback"}, "oidc.redirect_uri: '/callback' is not an https URL"),
    ({"client_id": " "}, "oidc.client_id: is empty"),
    ({"client_secret": ""}, "oidc.client_secret: is empty (leave it out for a public client)"),
    ({"scopes": "profile email"}, "oidc.scopes: must include 'openid' (got profile email)"),
    ({"clock_skew": 3600}, "oidc.clock_skew: 3600 is not a whole number of seconds from 0 to 300"),
    ({"clock_skew": "60"}, "oidc.clock_skew: '60' is not a whole number"),
    ({"username_claim": "sub"}, "oidc.username_claim: 'sub' is not one of preferred_username, email"),
    ({"allowed_domains": ["@hospital"]}, "oidc.allowed_domains: ('@hospital',) is not a list of domain names"),
    ({"timeout": 0}, "oidc.timeout: 0 is not a number of seconds above 0, at most 3600"),
    ({"clientid": "x"}, "oidc.clientid: unknown setting (known: allowed_domains, client_id"),
])
def test_a_bad_setting_is_a_usage_error_naming_it(settings, says):
    good = {"issuer": "https://login.hospital.example", "client_id": "playbook",
            "redirect_uri": "https://playbook.hospital.example/auth/callback"}
    with pytest.raises(UsageError) as caught:
        OidcConfig.from_mapping(good | settings)
    assert says in caught.value.message and caught.value.exit_code == 2


def test_every_problem_of_the_settings_is_listed_at_once():
    with pytest.raises(UsageError) as caught:
        OidcConfig.from_mapping({"issuer": "ftp://x", "client_id": "", "redirect_uri": "https://a.example/cb",
                                 "scopes": ["email"], "clock_skew": -1})
    assert [p.split(":")[0] for p in caught.value.message.split("; ")] == [
        "oidc.issuer", "oidc.client_id", "oidc.scopes", "oidc.clock_skew"]
    with pytest.raises(UsageError, match="oidc.issuer: is required; oidc.redirect_uri: is required"):
        OidcConfig.from_mapping({"client_id": "playbook"})


def test_a_token_naming_a_key_of_another_type_is_refused(idp, client, clock):
    es = idp.rotate("ES256")
    idp.header = {"alg": "RS256"}
    refused(idp, lambda: sign_in(client, clock), f"names key {es.kid!r}, which is not a RS256 key", "provider")


def test_a_token_without_a_key_id_uses_the_one_key_published_for_its_algorithm(idp, client, clock):
    idp.header = {"kid": None}
    assert sign_in(client, clock).name == "alice"
    idp.rotate()
    refused(idp, lambda: sign_in(make_client(idp), clock), "names no key (kid) and the provider does not publish "
            "exactly one RS256 key", "provider")


def test_keys_the_client_cannot_use_do_not_hide_the_one_it_can(idp, client, clock):
    idp.answers["/jwks"] = (200, {"keys": [{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                                           {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                                           {**idp.keys[0].jwk, "use": "enc", "kid": "for-encryption"},
                                           "not a key", idp.keys[0].jwk]})
    assert sign_in(client, clock).name == "alice"


@pytest.mark.parametrize("path, answer, says", [
    ("/.well-known/openid-configuration", (500, "down for maintenance"), "answered HTTP 500 for the discovery"),
    ("/.well-known/openid-configuration", (200, "<html>sign in</html>"), "openid-configuration is not JSON"),
    ("/.well-known/openid-configuration", (200, ["issuer"]), "is not a JSON object"),
    ("/jwks", (200, {"nokeys": []}), "/jwks has no list of keys"),
    ("/token", (502, "Bad Gateway"), "/token answered HTTP 502 without a JSON object"),
    ("/token", (200, {"access_token": "abc", "token_type": "Bearer"}), "returned no ID token"),
    ("/token", (200, {"id_token": "!!!.e30.c2ln"}), "the ID token's header is not readable"),
    ("/token", (200, {"id_token": "WyJhbGciXQ.e30.c2ln"}), "the ID token's header is not a JSON object"),
])
def test_an_answer_the_client_cannot_use_is_refused(idp, client, clock, path, answer, says):
    idp.answers[path] = answer
    refused(idp, lambda: sign_in(client, clock), says, "provider")


def test_an_error_code_that_is_not_plain_text_is_not_repeated(idp, client, clock):
    idp.answers["/token"] = (400, {"error": "invalid_request\n\x1b[31mcall +1 555", "error_description": "x"})
    error = refused(idp, lambda: sign_in(client, clock), "refused the code: unknown", "refused")
    assert "\x1b" not in error.message and "555" not in error.message


def test_importing_the_sign_in_module_loads_no_http_or_jose_library():
    code = ("import sys, engine.accounts.oidc; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'joserfc', 'authlib', 'cryptography'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
