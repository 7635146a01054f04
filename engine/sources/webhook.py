"""A webhook's message: its signature checked, its JSON read into a message's fields.

The sender signs ``TIMESTAMP + "." + BODY`` with HMAC-SHA256 under the source's secret
and sends::

    X-Playbook-Timestamp: 1773478800            (Unix seconds)
    X-Playbook-Signature-256: sha256=<hex digest>

like GitHub's ``X-Hub-Signature-256``, with the time inside what is signed so that a
captured request cannot be replayed outside :data:`WINDOW` (and a replay inside it is
the same message, recorded once by its ``source_id``). The digest is compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from ..errors import AuthenticationFailed, UsageError

#: Largest webhook body accepted, in bytes.
MAX_BODY = 64 * 1024
#: How far the signed timestamp may be from the server's clock, in seconds.
WINDOW = 300
SIGNATURE = "X-Playbook-Signature-256"
TIMESTAMP = "X-Playbook-Timestamp"


class SignatureRefused(AuthenticationFailed):
    """A webhook request that is not signed, or not signed by the source's secret now."""

    MESSAGE = ("webhook refused: the request is not signed with this source's secret, or its "
               "timestamp is outside the replay window")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (senders and tests)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_signature(secret: str, timestamp: str | None, signature: str | None, body: bytes,
                    now: datetime) -> str | None:
    """None if the request is signed by `secret` within the window, else why not (for the
    server's log only: the sender is told no more than :class:`SignatureRefused`)."""
    if not timestamp or not signature:
        return "missing signature or timestamp header"
    try:
        sent = int(timestamp)
    except ValueError:
        return "timestamp is not Unix seconds"
    if abs(now.timestamp() - sent) > WINDOW:
        return f"timestamp {sent} is outside the {WINDOW}s replay window"
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace")):
        return "signature does not match"
    return None


def read_payload(body: bytes) -> dict:
    """The message fields of a webhook's JSON body, or UsageError saying what is wrong."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"the body is not JSON in UTF-8 ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise UsageError("the body must be a JSON object: {\"text\": ..., \"source_id\": ..., ...}")
    if "source" in data:
        raise UsageError("source: set by the server from the webhook's URL, not by the sender")
    return data
