"""The sandboxed Jinja2 environment every playbook template is parsed and rendered in.

Playbook templates are untrusted input. They run in an
``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (a missing variable is an
error, never an empty string), with arithmetic that could allocate gigabytes
intercepted, and with only a few harmless globals. Rendering adds time and output
limits on top (see :mod:`engine.render`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

#: Longest text a template may produce, and longest string/list arithmetic may build.
MAX_OUTPUT = 100_000
#: Largest exponent and operand size allowed in ``**``.
MAX_POWER = 128

#: Names every template may use besides the playbook's inputs.
CONTEXT_NAMES = frozenset({"incident", "roles"})
#: Globals left in the environment (jinja's lipsum, cycler and joiner are removed).
SAFE_GLOBALS = ("range", "dict", "namespace")


def templates_dir() -> Path:
    """Folder of the shared partials (signature, privacy notice, hashtags)."""
    override = os.environ.get("PLAYBOOK_TEMPLATES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=2)
def environment(html: bool = False):
    """The shared sandboxed environment (one per autoescape mode, built once)."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+"})

        def call_binop(self, context, operator, left, right):
            if operator == "**":
                if _big(left) or _big(right):
                    raise SecurityError(f"'**' with operands this large is not allowed (max {MAX_POWER})")
            elif operator == "*":
                if isinstance(left, int) and isinstance(right, (str, list, tuple)):
                    left, right = right, left
                if isinstance(left, (str, list, tuple)) and isinstance(right, int):
                    if len(left) * right > MAX_OUTPUT:
                        raise SecurityError(f"repeating text beyond {MAX_OUTPUT} characters is not allowed")
            elif operator == "+":
                if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                    if len(left) + len(right) > MAX_OUTPUT:
                        raise SecurityError(f"text longer than {MAX_OUTPUT} characters is not allowed")
            return super().call_binop(context, operator, left, right)

    env = Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        loader=FileSystemLoader(str(templates_dir())),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in list(env.globals):
        if name not in SAFE_GLOBALS:
            del env.globals[name]
    return env


def _big(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_POWER
