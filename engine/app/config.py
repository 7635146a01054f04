"""The configuration, resolved once by an adapter: where everything lives.

The command line and the server build one :class:`Config` from their options and the
environment (:meth:`Config.resolve`, the only place that reads ``PLAYBOOK_*``
variables); everything below takes it, or the paths in it, as arguments.

============================  =====================================================
``PLAYBOOK_DB``               the incident database: a SQLite file (or
                              ``sqlite:///PATH``), ``postgresql://...`` or
                              ``memory:``. Default ``$XDG_DATA_HOME/crisis-playbook/
                              incidents.db`` (``~/.local/share`` if unset)
``PLAYBOOK_KEY``              the checkpoint signing key; default ``signing.key``
                              beside the database
``PLAYBOOK_OUTBOX``           the outbox folder; default ``outbox`` beside the database
``PLAYBOOK_DESTINATIONS``     delivery destinations; default ``destinations.yaml``
                              beside the database
``PLAYBOOK_ROSTER``           the on-call roster (who holds head_of_comms this week,
                              with their destination); default ``roster.yaml`` beside
                              the database
``PLAYBOOK_SOURCES``          where inbound messages come from (webhooks, feeds,
                              Mastodon; with their secrets); default ``sources.yaml``
                              beside the database
``PLAYBOOK_CHECKPOINTS``      a folder outside the database receiving every checkpoint
``PLAYBOOK_TEMPLATES``        a folder of partials searched before the shipped ones
``PLAYBOOK_REGION``           the country for reading phone numbers (ISO 3166 code)
``PLAYBOOK_LIBRARY``          the folder of playbooks people may start on the team
                              server (default: the shipped playbooks)
``PLAYBOOK_OIDC``             the team server's single sign-on settings (a YAML file:
                              issuer, client_id, client_secret, redirect_uri, ...)
``PLAYBOOK_PUBLIC_URL``       the team server's address as people open it
                              (``https://playbook.example.org``): the base of the
                              links in notifications; unset, they have no link
``PLAYBOOK_PUBLIC_RESPONSE_TIME``  ``1``: the team server shows the live response time
                              (figures only) to anyone at ``/public/response-time``
``PLAYBOOK_ACTOR``            who is acting on the local command line
``PLAYBOOK_ACTOR_FINAL``      ``1``: that identity is final (a wrapper signs people in)
``PLAYBOOK_SERVER``           the command line as a client: the team server's URL
                              (with ``PLAYBOOK_TOKEN``); set but empty: no server,
                              whatever ``playbook login`` saved
``PLAYBOOK_TOKEN``            the personal API token sent to that server
============================  =====================================================

Without ``PLAYBOOK_SERVER``, a command line client (``Config.resolve(client=True)``)
reads the server, token and account name ``playbook login`` saved in
``$XDG_CONFIG_HOME/crisis-playbook/client.json`` (``~/.config`` if unset). The server
and every other adapter never read it: only the command line is a client.

"Beside the database" is the database file's folder, or for a server URL (or
``memory:``) the default data folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..store import MEMORY, SQLITE_SCHEME, is_server_url, local_folder, sqlite_path

KEY_FILE = "signing.key"
DESTINATIONS_FILE = "destinations.yaml"
SOURCES_FILE = "sources.yaml"
ROSTER_FILE = "roster.yaml"
OUTBOX_FOLDER = "outbox"
CLIENT_FILE = "client.json"


def data_home(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME`` (absolute only, as the XDG spec says), else ``~/.local/share``."""
    given = environ.get("XDG_DATA_HOME")
    return Path(given) if given and os.path.isabs(given) else Path.home() / ".local" / "share"


def config_home(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME`` (absolute only), else ``~/.config``."""
    given = environ.get("XDG_CONFIG_HOME")
    return Path(given) if given and os.path.isabs(given) else Path.home() / ".config"


def client_file(environ: Mapping[str, str]) -> Path:
    """Where ``playbook login`` keeps the server, token and account name (mode 0600)."""
    return config_home(environ) / "crisis-playbook" / CLIENT_FILE


def _client_settings(environ: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(server, token, account name) of a command line client: the environment's
    ``PLAYBOOK_SERVER`` and ``PLAYBOOK_TOKEN``, else the saved login, else no server."""
    if "PLAYBOOK_SERVER" in environ:
        server = environ["PLAYBOOK_SERVER"].strip()
        if not server:  # set but empty: this command works on the local database
            return None, None, None
        token = environ.get("PLAYBOOK_TOKEN", "").strip()
        if not token:
            raise UsageError("PLAYBOOK_SERVER is set but PLAYBOOK_TOKEN is empty: give the personal API token "
                             "to send to the server (or sign in with: playbook login --server URL)")
        return server, token, None
    path = client_file(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None, None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the saved sign-in ({getattr(e, 'strerror', None) or e}); "
                         "sign in again with: playbook login --server URL, or sign out with: playbook logout") from None
    import json

    try:
        saved = json.loads(text)
        server, token, name = saved["server"], saved["token"], saved.get("name")
        if not (isinstance(server, str) and isinstance(token, str) and server and token):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path}: not a saved sign-in; sign in again with: playbook login --server URL, "
                         "or sign out with: playbook logout") from None
    return server, token, name if isinstance(name, str) else None


def database_location(environ: Mapping[str, str], given: str | os.PathLike | None = None) -> str | Path:
    """The database an adapter opens: ``given`` (``--db``), else ``$PLAYBOOK_DB``, else
    the default SQLite file. URLs are returned as text, files as paths."""
    explicit = os.fspath(given) if given else environ.get("PLAYBOOK_DB")
    if explicit and (is_server_url(explicit) or explicit.startswith(SQLITE_SCHEME) or explicit == MEMORY):
        return explicit
    if explicit:
        return sqlite_path(explicit)
    return data_home(environ) / "crisis-playbook" / "incidents.db"


def _folder_of(location: str | Path, environ: Mapping[str, str]) -> Path:
    """The folder "beside the database": its file's folder, or the default data folder."""
    path = sqlite_path(location)
    if path is not None:
        return local_folder(location)
    return data_home(environ) / "crisis-playbook"


def public_url(text: str | None) -> str | None:
    """``PLAYBOOK_PUBLIC_URL`` checked: an http(s) address without a query, its
    trailing slash dropped; None when unset or empty."""
    from urllib.parse import urlsplit

    text = (text or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or any(c.isspace() for c in text):
        raise UsageError(f"PLAYBOOK_PUBLIC_URL: {text[:200]!r} is not the server's address "
                         "(expected https://HOST or https://HOST/PATH, without ? or #)")
    return text.rstrip("/")


def _switch(environ: Mapping[str, str], name: str) -> bool:
    """An on/off setting: 1, true, yes, on or 0, false, no, off (unset: off)."""
    value = environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}: {environ[name]!r} is not 1 (on) or 0 (off)")


def _path(text: str | os.PathLike | None) -> Path | None:
    return Path(text).expanduser() if text else None


@dataclass(frozen=True)
class Config:
    """Where an installation keeps its things, and its organisation-wide settings."""

    db: str | Path
    key: Path
    outbox: Path
    destinations: Path
    checkpoints: Path | None = None
    templates: Path | None = None
    region: str | None = None
    playbooks: Path | None = None
    oidc: Path | None = None
    actor: str | None = None
    actor_final: bool = False
    sources: Path | None = None  # inbound sources (engine.sources); None: none configured
    roster: Path | None = None  # the on-call roster (engine.clocks.roster); None: none
    #: the live response-time figure is public (a page anyone may read)
    public_response_time: bool = False
    #: the team server this command line is a client of (None: the local database)
    server: str | None = None
    #: the personal API token sent to it (never shown: left out of the repr)
    token: str | None = field(default=None, repr=False)
    #: the account the token belongs to, as saved at login (None: ask the server)
    server_name: str | None = None
    #: the team server's public address, the base of links sent to people (None: no links)
    public_url: str | None = None

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file the database is, or None for a server database or ``memory:``."""
        return sqlite_path(self.db)

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, *, db: str | os.PathLike | None = None,
                outbox: str | os.PathLike | None = None,
                checkpoints: str | os.PathLike | None = None, client: bool = False) -> "Config":
        """The configuration from explicit options (``db``, ``outbox``, ``checkpoints``:
        what the adapter's flags said), else the environment, else the defaults.
        ``client``: the command line, which may be a client of a team server."""
        env = os.environ if environ is None else environ
        server, token, server_name = _client_settings(env) if client else (None, None, None)
        location = database_location(env, db)
        beside = _folder_of(location, env)
        key = _path(env.get("PLAYBOOK_KEY"))
        if key is None:  # the default key belongs to the default database, --db's beside it
            key = beside / KEY_FILE
        return cls(
            db=location,
            key=key,
            outbox=_path(outbox) or _path(env.get("PLAYBOOK_OUTBOX")) or beside / OUTBOX_FOLDER,
            destinations=_path(env.get("PLAYBOOK_DESTINATIONS")) or beside / DESTINATIONS_FILE,
            checkpoints=_path(checkpoints) or _path(env.get("PLAYBOOK_CHECKPOINTS")),
            templates=_path(env.get("PLAYBOOK_TEMPLATES")),
            region=(env.get("PLAYBOOK_REGION") or "").strip() or None,
            playbooks=_path(env.get("PLAYBOOK_LIBRARY")),
            oidc=_path(env.get("PLAYBOOK_OIDC")),
            actor=env.get("PLAYBOOK_ACTOR"),
            actor_final=env.get("PLAYBOOK_ACTOR_FINAL", "").strip() not in ("", "0"),
            sources=_path(env.get("PLAYBOOK_SOURCES")) or beside / SOURCES_FILE,
            roster=_path(env.get("PLAYBOOK_ROSTER")) or beside / ROSTER_FILE,
            public_response_time=_switch(env, "PLAYBOOK_PUBLIC_RESPONSE_TIME"),
            server=server, token=token, server_name=server_name,
            public_url=public_url(env.get("PLAYBOOK_PUBLIC_URL")),
        )
