"""One interface's handle on the product: configuration, clock and store, opened once.

An adapter builds an :class:`App` from a resolved :class:`~engine.app.config.Config`
and passes it, with a :class:`~engine.app.principal.Principal`, to the use cases in
:mod:`engine.app.incidents`, :mod:`engine.app.releases`, :mod:`engine.app.clocks` and
:mod:`engine.app.audit`.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from ..errors import Refused, StoreError, UsageError
from .config import Config
from .principal import Principal


class App:
    """The configuration, the clock and the stores a set of use cases share.

    ``store()`` opens the database for writing (creating it if new); ``store(read_only=
    True)`` for reading only: a missing SQLite file reads as an empty store (a typo in
    the location creates nothing) and an existing one is opened without write access.
    ``writes=True`` with ``read_only``: mostly reads, may append (due, bundle)."""

    def __init__(self, config: Config, clock=None, *, shared_store=None, directory=None) -> None:
        if clock is None:
            from ..clock import SystemClock

            clock = SystemClock()
        self.config = config
        self.clock = clock
        self._stores: dict[tuple[bool, bool], object] = {}
        self._shared = shared_store  # a server keeps one store (and its pool) for every request
        #: the accounts people are (on a server: role assignments must name an active
        #: one); None on the local command line, where names are asserted
        self.directory = directory
        #: the team server the use cases go to instead of a local store (engine.app.remote)
        self.remote = None
        if config.server is not None:
            from .remote import Remote

            self.remote = Remote(config.server, config.token, config.server_name)
        # The partials' folder matters only to a process that renders: one that has not
        # loaded the sandbox yet has nothing to change (its default is no folder), and
        # a command that never renders (status) does not load it for nothing.
        if config.templates or "engine.posts.sandbox" in sys.modules:
            from ..posts import sandbox

            sandbox.use_partials(config.templates)

    def check_people(self, names) -> None:
        """On a server, UsageError unless every name is an active account."""
        if self.directory is None:
            return
        unknown = sorted({n for n in names if not self.directory.active(n)})
        if unknown:
            raise UsageError(f"not an active account: {', '.join(unknown)} (roles are held by people who "
                             "sign in; see: playbook user list)")

    def store(self, *, read_only: bool = False, writes: bool = False):
        if self.remote is not None:  # never a local write under the token's identity
            raise UsageError(f"this command works on a database on this machine, but the command line is "
                             f"signed in to {self.remote.server}: run it with PLAYBOOK_SERVER= (empty) to use "
                             "the local database, or sign out first (playbook logout)")
        if self._shared is not None:
            return self._shared
        mode = (read_only, writes)
        if mode not in self._stores:
            self._stores[mode] = self._open(read_only, writes)
        return self._stores[mode]

    def _open(self, read_only: bool, writes: bool):
        from ..store import open_store, sqlite_path
        from ..store.sqlite import shown

        location = self.config.db
        path = sqlite_path(location)
        try:
            missing = path is not None and not path.exists()
        except OSError as e:  # a name too long for the file system, say
            raise StoreError(f"cannot use the database {shown(path)}: {e.strerror or e}") from None
        if read_only and missing:
            return open_store("memory:")
        return open_store(location, read_only=read_only and not writes)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()


@contextmanager
def acting(who: Principal, scope: str) -> Iterator[str]:
    """Run a use case as `who`: refused if their token does not allow `scope`; every event
    they cause records how they were authenticated (``auth``, unless asserted). Yields
    the name the domain checks roles against."""
    from ..incidents.reading import authenticated_as

    if not who.allows(scope):
        raise Refused(f"this token's scope is {who.scope}; {scope!r} needs a token with that scope or more",
                      ["create one with: playbook token create --scope " + scope])
    token = authenticated_as.set(None if who.method == "asserted" else who)
    try:
        yield who.name
    finally:
        authenticated_as.reset(token)
