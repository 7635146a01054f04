"""The team server: the application layer over HTTP, for people who signed in.

``playbook serve`` runs :func:`engine.server.app.create_app` on uvicorn. Every request
is made by an authenticated :class:`~engine.app.principal.Principal` (a personal API
token, or a browser session after a password or single sign-on); the server never
accepts an asserted name. It keeps no state of its own beyond the store, so several
can run against one database.
"""
