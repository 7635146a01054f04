"""The ``playbook`` command line's commands, one module per area, loaded on demand.

``cli.py`` (the entry point) lists them; each module parses its commands' options,
calls one function of the application layer (:mod:`engine.app`) and prints the
result. Options and output helpers shared by several commands are in
:mod:`engine.cli.common`.
"""
