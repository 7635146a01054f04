"""People's accounts on a team server: passwords, personal API tokens, signing in, and
the tamper-evident account log.

* :mod:`engine.accounts.book`: :class:`Accounts`, the accounts of one database (add,
  disable, enable, reset a password, issue and revoke tokens, list; ``exists`` and
  ``active`` for role assignments) and signing in;
* :mod:`engine.accounts.signin`: password and token authentication, lockout;
* :mod:`engine.accounts.oidc` (and ``oidc_token``): single sign-on with OpenID Connect;
* :mod:`engine.accounts.passwords`: the password policy and Argon2id hashing;
* :mod:`engine.accounts.tokens`: token secrets, hashes, scopes and lifetimes;
* :mod:`engine.accounts.log`: the account log's events and their fold;
* :mod:`engine.accounts.commands`: the ``user`` and ``token`` command groups.

Importing this package is cheap: argon2 is loaded when a password is first hashed.
"""

from engine.accounts.book import Accounts
from engine.accounts.log import ACCOUNTS
from engine.accounts.signin import Lockout

__all__ = ["ACCOUNTS", "Accounts", "Lockout"]
