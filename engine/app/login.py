"""Signing the command line in to a team server, and out: the saved sign-in.

``playbook login`` checks a personal API token with the server (``GET /api/v1/me``)
and saves {server, token, name} where :func:`engine.app.config.client_file` says,
readable by its owner only; ``playbook logout`` removes it. The token keeps working
until it is revoked on the server.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import StoreError, UsageError

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def check_server_url(url: str) -> str:
    """The server's base URL, or UsageError: http(s) only, and plain http only on loopback
    (a token must not cross a network in clear)."""
    from urllib.parse import urlsplit

    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise UsageError(f"--server {url!r}: give the server's address, e.g. https://playbook.hospital.example")
    if parts.scheme == "http" and host not in LOOPBACK:
        raise UsageError(f"--server {url!r}: use https:// (a token must not cross the network in clear; "
                         "plain http is for a server on this machine only)")
    return text


def check_token(server: str, token: str) -> dict:
    """Who `token` signs in as on `server` (GET /me), or the error that says why not."""
    from .remote import Remote

    remote = Remote(server, token)
    try:
        return remote.me()
    finally:
        remote.close()


def save_login(path: Path, server: str, token: str, name: str) -> None:
    """Write {server, token, name} to `path` atomically, readable by its owner only
    (file 0600, folder 0700)."""
    import os
    import tempfile

    data = json.dumps({"server": server, "token": token, "name": name}, indent=2) + "\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise StoreError(f"{path}: cannot save the sign-in ({e.strerror or e}); nothing was saved") from None


def remove_login(path: Path) -> bool:
    """Forget the saved sign-in; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StoreError(f"{path}: cannot remove the saved sign-in ({e.strerror or e})") from None
    return True
