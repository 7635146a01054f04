"""The sandboxed Jinja2 environment every playbook template is parsed and rendered in.

Playbook templates are untrusted input. They run in an
``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (a missing variable is an
error, never an empty string), with arithmetic and ``~`` concatenation that could
allocate gigabytes intercepted, with only plain values printable (never a function,
class or macro, whose text would show Python internals), and with only a few harmless
globals. Rendering adds time, memory and output limits on top (see
:mod:`engine.posts.render`).

Filters and tests never run at compile time: Jinja folds constant expressions while
compiling (in ``parse``/``compile`` and in ``meta.find_undeclared_variables``), so
``{{ 'a'|center(600000000) }}`` would allocate 600 MB before and outside every render
limit. Every filter and test is wrapped so that Jinja sees it as needing the render
context, which it cannot fold; it runs only when rendering, within the limits.
"""

from __future__ import annotations

import os
from functools import lru_cache

#: Longest text a template may produce, and longest string/list arithmetic may build.
MAX_OUTPUT = 100_000
#: Largest exponent and operand size allowed in ``**``.
MAX_POWER = 128
#: Largest whole number ``*`` may build, in bits (repeated squaring must not run away).
MAX_INT_BITS = 4096

#: Names every template may use besides the playbook's inputs.
CONTEXT_NAMES = frozenset({"incident", "roles"})
#: Globals left in the environment (jinja's lipsum, cycler and joiner are removed).
SAFE_GLOBALS = ("range", "dict", "namespace")


#: The organisation's own partials folder (the configuration's ``templates``), set once
#: by the adapter that resolved the configuration (:func:`use_partials`).
_partials: list[str | None] = [None]


def use_partials(folder: str | os.PathLike | None) -> None:
    """Search ``folder`` for partials before the shipped ones (None: shipped only).

    Called once by an adapter from its :class:`~engine.app.config.Config`; the render
    workers receive the same folder when they start."""
    chosen = os.fspath(folder) if folder else None
    if chosen != _partials[0]:
        _partials[0] = chosen
        environment.cache_clear()
        from . import render

        render.forget_compiled()


def partials_folder() -> str | None:
    return _partials[0]


def templates_dirs() -> list[str]:
    """Folders searched for shared partials (signature, privacy notice, hashtags): the
    organisation's folder first, when configured, so it can add its own partials or
    replace a shipped one, then the partials shipped with the tool."""
    from ..resources import shipped_folder

    override = _partials[0]
    return [*([override] if override else []), str(shipped_folder("templates"))]


@lru_cache(maxsize=2)
def environment(html: bool = False):
    """The shared sandboxed environment (one per autoescape mode, built once)."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.compiler import CodeGenerator, optimizeconst
    from jinja2.runtime import markup_join, str_join
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class Generator(CodeGenerator):
        @optimizeconst
        def visit_Concat(self, node, frame):
            # ``a ~ b`` is not a binop, so the sandbox never sees it: route it through
            # Sandbox.checked_concat, which checks the operands and the size of the result.
            escaping = "context.eval_ctx.autoescape" if frame.eval_ctx.volatile else repr(
                bool(frame.eval_ctx.autoescape))
            self.write("environment.checked_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write(f"), {escaping})")

    class Sandbox(ImmutableSandboxedEnvironment):
        code_generator_class = Generator
        intercepted_binops = frozenset({"*", "**", "+", "%"})

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
                elif isinstance(left, int) and isinstance(right, int):
                    if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                        raise SecurityError("multiplying numbers this large is not allowed")
            elif operator == "+":
                if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                    if len(left) + len(right) > MAX_OUTPUT:
                        raise SecurityError(f"text longer than {MAX_OUTPUT} characters is not allowed")
            elif operator == "%" and isinstance(left, str):
                printable_size(right)  # '%s' % x prints x: only plain values
            return super().call_binop(context, operator, left, right)

        def checked_concat(self, values, autoescape):
            if sum(len(v) if isinstance(v, str) else printable_size(v) for v in values) > MAX_OUTPUT:
                raise SecurityError(f"text longer than {MAX_OUTPUT} characters is not allowed")
            return markup_join(values) if autoescape else str_join(values)

    env = Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        finalize=_finalize,
        loader=FileSystemLoader(templates_dirs()),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in list(env.globals):
        if name not in SAFE_GLOBALS:
            del env.globals[name]
    env.filters["tojson"] = _bounded_tojson
    for table in (env.filters, env.tests):
        for name, func in list(table.items()):
            table[name] = _at_render_time(func)
    return env


def _at_render_time(func):
    """`func`, marked as needing the render context, so that Jinja never calls it while
    compiling (constant folding) but only while rendering, inside the limits."""
    from functools import wraps

    from jinja2.utils import _PassArg, pass_context

    kind = _PassArg.from_obj(func)
    if kind is _PassArg.context:
        return func
    if kind is _PassArg.eval_context:
        def call(context, *args, **kwargs):
            return func(context.eval_ctx, *args, **kwargs)
    elif kind is _PassArg.environment:
        def call(context, *args, **kwargs):
            return func(context.environment, *args, **kwargs)
    else:
        def call(context, *args, **kwargs):
            return func(*args, **kwargs)
    call = wraps(func)(call)
    call.__dict__.pop("jinja_pass_arg", None)  # copied by wraps: the wrapper takes the context
    return pass_context(call)


def _bounded_tojson(value, indent=None):
    """Jinja's ``tojson``, but it stops as soon as the output passes MAX_OUTPUT instead of
    building gigabytes first (``(['x' * 99999] * 100000)|tojson``)."""
    import json

    from jinja2.sandbox import SecurityError
    from markupsafe import Markup

    size, parts = 0, []
    for chunk in json.JSONEncoder(indent=indent, sort_keys=True).iterencode(value):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise SecurityError(f"tojson output longer than {MAX_OUTPUT} characters is not allowed")
        parts.append(chunk)
    text = "".join(parts)  # escaped like jinja's htmlsafe_json_dumps: safe inside <script> too
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(raw, safe)
    return Markup(text)


def _big(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_POWER


def _finalize(value):
    """What ``{{ ... }}`` may print: plain values only, and not too much of them."""
    if isinstance(value, str):  # the render's output limit bounds text
        return value
    if printable_size(value) > MAX_OUTPUT:
        from jinja2.sandbox import SecurityError

        raise SecurityError(f"printing a value longer than {MAX_OUTPUT} characters is not allowed")
    return value


def printable_size(value) -> int:
    """Roughly how long ``str(value)`` is; refuse anything but plain JSON-like values.

    Functions, classes, macros, generators and other objects would print as
    ``<function ... at 0x...>``: Python internals that have no place in a post. The
    walk stops once the total passes :data:`MAX_OUTPUT`, so it is cheap even for a
    list that repeats a big list many times.
    """
    from jinja2 import Undefined
    from jinja2.sandbox import SecurityError

    total, todo = 0, [value]
    while todo and total <= MAX_OUTPUT:
        item = todo.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            todo.extend(item)
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, Undefined):
            str(item)  # StrictUndefined: raises, naming the missing variable
        else:
            kind = ("macro (call it)" if type(item).__name__ == "Macro" else "type" if isinstance(item, type)
                    else "function or method" if callable(item) else type(item).__name__)
            raise SecurityError(f"a template can print only text, numbers, lists and mappings, not a {kind}")
    return total
