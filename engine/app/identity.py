"""Who is acting on the local command line (no server): asserted, not proven.

``--as NAME``, else ``$PLAYBOOK_ACTOR``, else the login name. Where the installation
sets ``PLAYBOOK_ACTOR_FINAL=1`` (a wrapper that signs people in), the environment's
identity is final and a different ``--as`` is refused. A server never takes these:
it authenticates people (:mod:`engine.accounts`).
"""

from __future__ import annotations

from ..errors import Refused, UsageError
from ..names import check_person
from .config import Config
from .principal import Principal


def local_principal(config: Config, given: str | None) -> Principal:
    """The asserted principal of a local command (see the module docstring); with a
    team server configured, the token's account instead (engine.app.remote)."""
    if config.server is not None:
        from .remote import Remote

        remote = Remote(config.server, config.token, config.server_name)
        try:
            return remote.principal(given)
        finally:
            remote.close()
    name = given
    if name is not None and not name.strip():
        raise UsageError("--as needs a person's name (it is empty)")
    env_name = config.actor
    if config.actor_final:
        if not (env_name or "").strip():
            raise UsageError("PLAYBOOK_ACTOR_FINAL is set but PLAYBOOK_ACTOR is empty: "
                             "the wrapper that signs you in must set who you are")
        if name is not None and name.strip() != env_name.strip():
            raise Refused(f"--as {name!r}: this installation fixes who is acting "
                          f"(PLAYBOOK_ACTOR_FINAL); you are signed in as {env_name.strip()!r}")
        name = env_name
    if not name:
        name = env_name
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except Exception:  # no login name (containers): say so rather than guess
            raise UsageError("who is acting? give --as NAME or set PLAYBOOK_ACTOR") from None
    return Principal.asserted(check_person("--as", name))
