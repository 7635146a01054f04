"""The Ed25519 key that signs checkpoints: created on first use, its public half beside it.

By default the key sits beside the database (``signing.key``, mode 0600); see
:mod:`engine.audit.integrity` for what a checkpoint proves and what it does not.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from engine.errors import StoreError

def load_or_create_key(path: Path):
    """The Ed25519 private key at ``path`` (the configuration's ``key``), created on first use.

    A new key is written to a temporary file with mode 0600 and moved into place
    atomically; if two processes create one at once, both end up using the first.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        data = _create_file(path, pem)
        if data == pem:  # ours: publish its public half beside it, for readers without the key
            _write_public_half(path, key)
    except OSError as e:
        raise StoreError(f"cannot read the signing key {path}: {e.strerror or e}") from e
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise StoreError(f"{path} is not a usable signing key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise StoreError(f"{path} is not an Ed25519 signing key")
    return key


def _create_file(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (0600) unless it appears meanwhile; return what is there."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never overwrites a key another process just made
        except FileExistsError:
            return path.read_bytes()
        except OSError:
            os.replace(tmp, path)  # file systems without hard links
        return content
    except OSError as e:
        raise StoreError(f"cannot create the signing key {path}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def public_key_path(key_path: Path) -> Path:
    """Where the public half of the signing key at ``key_path`` is kept (``signing.key.pub``)."""
    return key_path.with_name(key_path.name + ".pub")


def _write_public_half(path: Path, key) -> None:
    try:
        public_key_path(path).write_text(public_key_pem(key), encoding="ascii")
    except OSError:
        pass  # a convenience for readers: the private key can always give it again


def trusted_public_key(key_path: Path) -> str | None:
    """The PEM of the configured signing key's public half, from the key if this user may
    read it, else from the ``.pub`` file beside it; None if there is neither."""
    key_path = Path(key_path)
    try:
        if key_path.exists() and os.access(key_path, os.R_OK):
            return public_key_pem(load_or_create_key(key_path))
        return public_key_path(key_path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def public_key_pem(key) -> str:
    """The PEM (SubjectPublicKeyInfo) text of a private or public Ed25519 key."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


