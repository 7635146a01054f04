"""People's accounts on a team server: passwords, personal API tokens, signing in, and
the tamper-evident account log.

* :mod:`engine.accounts.book`: :class:`Accounts`, the accounts of one database (add,
  disable, enable, reset a password, make an administrator or no longer one, issue and
  revoke tokens, list; ``exists`` and ``active`` for role assignments) and signing in;
* :mod:`engine.accounts.trail`: one account's trail in the account log;
* :mod:`engine.accounts.signin`: password and token authentication, lockout;
* :mod:`engine.accounts.oidc` (and ``oidc_token``): single sign-on with OpenID Connect;
* :mod:`engine.accounts.passwords`: the password policy and Argon2id hashing;
* :mod:`engine.accounts.tokens`: token secrets, hashes, scopes and lifetimes;
* :mod:`engine.accounts.log`: the account log's events and their fold;
* :mod:`engine.accounts.commands`: the ``user`` and ``token`` command groups.

Importing the package loads nothing else (the names below load on first use), so the
command line can list the command groups without them; argon2 is loaded when a
password is first hashed.
"""

from importlib import import_module

__all__ = ["ACCOUNTS", "Accounts", "Lockout"]

_WHERE = {"ACCOUNTS": "engine.store.streams", "Accounts": "engine.accounts.book", "Lockout": "engine.accounts.signin"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
