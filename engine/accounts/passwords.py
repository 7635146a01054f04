"""Passwords: the policy a new one must meet, and Argon2id hashing (argon2-cffi).

The default hasher uses RFC 9106's second recommended option (the "low-memory" profile:
Argon2id, t=3, m=64 MiB, p=4). Tests inject a cheaper :class:`argon2.PasswordHasher`;
the default is never weakened. argon2 compares in constant time, and a hash made with
other parameters than the hasher's is renewed at the next successful sign-in.
"""

from __future__ import annotations

from engine.errors import UsageError

MIN_LENGTH = 12
MAX_BYTES = 1024


def default_hasher():
    """The production hasher: Argon2id with RFC 9106's low-memory parameters."""
    try:
        from argon2 import PasswordHasher, profiles
    except ImportError:
        raise UsageError("accounts need the 'server' extra (argon2-cffi): "
                         "pip install 'crisis-playbook[server]'") from None

    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def check_password(name: str, password: str) -> str:
    """The password if it meets the policy, else UsageError naming the rule it breaks.
    The message never repeats the password."""
    if not isinstance(password, str) or not password:
        raise UsageError(f"the password of {name!r} is empty")
    if not encodable(password):
        raise UsageError(f"the password of {name!r} is not valid UTF-8 text")
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise UsageError(f"the password of {name!r} is longer than {MAX_BYTES} bytes; choose a shorter one")
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password of {name!r} is shorter than {MIN_LENGTH} characters "
                         f"(it has {len(password)}); choose a longer one")
    if password.strip().casefold() == name.strip().casefold():
        raise UsageError(f"the password of {name!r} is the account name; choose another")
    return password


def encodable(text: str) -> bool:
    """Whether ``text`` is UTF-8 text (undecodable bytes reach Python as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def acceptable(password: object) -> bool:
    """Whether a password given at sign-in is worth checking at all: text, UTF-8, at most
    MAX_BYTES (anything else is refused at once, whatever the account)."""
    return isinstance(password, str) and encodable(password) and len(password.encode("utf-8")) <= MAX_BYTES


def hash_password(hasher, password: str) -> str:
    return hasher.hash(password)


def verify_password(hasher, stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant time). With no stored hash
    (an unknown account) the same work is done against a dummy hash, so a sign-in
    takes as long whether or not the name exists."""
    from argon2.exceptions import InvalidHashError, VerificationError

    target = stored if stored is not None else dummy_hash(hasher)
    try:
        hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


_DUMMIES: dict[tuple, str] = {}


def dummy_hash(hasher) -> str:
    """A hash of a random password with ``hasher``'s parameters (made once per parameters)."""
    import secrets

    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len, hasher.type)
    if key not in _DUMMIES:
        _DUMMIES[key] = hasher.hash(secrets.token_urlsafe(32))
    return _DUMMIES[key]


def needs_rehash(hasher, stored: str) -> bool:
    return hasher.check_needs_rehash(stored)
