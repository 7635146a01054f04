"""The HTTP application: :func:`create_app` builds it from a resolved configuration.

Every endpoint takes the authenticated principal (:mod:`engine.server.auth`), calls one
function of the application layer and returns its result as JSON. Errors are RFC 9457
problem details with the CLI's exit code beside the HTTP status (one table:
:data:`engine.errors.HTTP_STATUS`).
"""

from __future__ import annotations

from engine.app.config import Config

#: Largest request body accepted (a playbook's post text is at most 100 kB).
MAX_BODY = 1_000_000


def create_app(config: Config, clock=None, *, hasher=None, lockout=None, oidc=None):
    """The FastAPI application over the database `config` names.

    `clock`: injected for tests (default: the system clock); `hasher`, `lockout`:
    the password hasher and lockout policy of :class:`engine.accounts.book.Accounts`;
    `oidc`: an OIDC relying-party configuration for single sign-on, or None."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from engine.clock import SystemClock
    from engine.errors import PlaybookError

    from . import api, auth, errors, sso, webhooks
    from .stores import StorePerThread

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        app.state.stores.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Crisis playbook team server",
        version=_version(),
        description="The playbook engine's use cases for people who signed in: incidents, posts and "
                    "their approvals, clocks, drills and the audit log. Errors are problem details "
                    "(RFC 9457) carrying the command line's exit code.",
        docs_url=None, redoc_url=None,
    )
    app.state.config = config
    app.state.clock = clock or SystemClock()
    app.state.stores = StorePerThread(config.db)
    app.state.hasher = hasher
    app.state.lockout = lockout
    app.state.oidc = oidc if oidc is not None else sso_client(config)
    app.add_exception_handler(PlaybookError, errors.playbook_error)
    app.add_exception_handler(RequestValidationError, errors.invalid_request)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(Exception, errors.internal_error)
    app.include_router(auth.router)
    app.include_router(api.router)
    app.include_router(sso.router, responses=errors.COMMON)
    app.include_router(webhooks.router, responses=errors.COMMON)
    from .pages import install as install_pages

    install_pages(app)  # the web app: pages over the same sign-in and use cases
    app.add_middleware(errors.LimitsMiddleware, max_body=MAX_BODY)
    app.openapi = errors.openapi_with_problem(app)

    return app


def sso_client(config: Config):
    """The single sign-on client the configuration's settings file describes, or None."""
    if config.oidc is None:
        return None
    import yaml

    from engine.accounts.oidc import OidcClient, OidcConfig
    from engine.errors import NotFound, UsageError

    try:
        settings = yaml.safe_load(config.oidc.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"PLAYBOOK_OIDC: no such file {config.oidc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UsageError(f"PLAYBOOK_OIDC: {config.oidc} is not a readable YAML file ({type(e).__name__})") from None
    if not isinstance(settings, dict):
        raise UsageError(f"PLAYBOOK_OIDC: {config.oidc} must be a mapping of settings (issuer: ..., client_id: ...)")
    return OidcClient(OidcConfig.from_mapping(settings))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("crisis-playbook")
    except Exception:  # a checkout that was never installed
        return "0"
