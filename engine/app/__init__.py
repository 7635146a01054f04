"""The application layer: what every interface (the CLI, the HTTP server, the listeners) calls.

It takes a :class:`~engine.app.principal.Principal` (who acts, and how they were
authenticated) and a :class:`~engine.app.config.Config` resolved once by the adapter,
and calls the domain's use cases. It never imports click, FastAPI or page templates.
"""
