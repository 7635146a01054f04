"""Shared macros and the template's language.

The partials in ``templates/partials/`` (``signature()``, ``privacy_notice()``, ...)
take a ``lang`` argument and fall back to English for a language they have no text
for, silently: a Turkish post would end with an English signature. For each call of
a shared macro with a fixed language this finds (1) a language other than the
template's, and (2) a language the macro has no text for. Whether a macro has text
for a language is found by calling it: its output in that language equals its output
in another (its default, or English), so it fell back.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

from .yamlsource import Loc, SourceMap

#: The value given to a macro's other arguments when it is called to compare languages.
_SAMPLE = "2024-05-14"


def macro_findings(ast, smap: SourceMap, loc: Loc, lang: str, html: bool) -> Iterator:
    """Findings for every call of a shared macro in one template text."""
    from jinja2 import nodes

    from .publictext import Finding, locate

    imported: dict[str, tuple[str, str]] = {}  # name in the template -> (partial, macro)
    modules: dict[str, str] = {}  # alias of an imported partial -> partial
    for node in ast.find_all((nodes.FromImport, nodes.Import)):
        if not isinstance(node.template, nodes.Const):
            continue
        ref = node.template.value
        if isinstance(node, nodes.Import):
            modules[node.target] = ref
            continue
        for name in node.names:
            macro, alias = name if isinstance(name, tuple) else (name, name)
            imported[alias] = (ref, macro)
    taken: set[tuple[int, int]] = set()
    for call in ast.find_all(nodes.Call):
        target = call.node
        if isinstance(target, nodes.Name) and target.name in imported:
            (ref, macro), shown = imported[target.name], target.name
        elif (isinstance(target, nodes.Getattr) and isinstance(target.node, nodes.Name)
              and target.node.name in modules):
            ref, macro = modules[target.node.name], target.attr
            shown = f"{target.node.name}.{macro}"
        else:
            continue
        signature = _signature(ref, macro, html)
        if signature is None:
            continue
        used = _lang_argument(call, *signature[:2])
        if used is None:
            continue  # a language chosen at render time: not knowable here
        pattern = re.compile(r"(?<![\w.])(" + re.escape(shown) + r")\s*\(")
        if used != lang:
            at = locate(smap, loc, call.lineno, pattern, taken, group=1)
            yield Finding("macro_language", loc, at, f"{shown}() is called in language "
                          f"{used!r} in a text in {lang!r}; pass {lang!r}", macro)
            continue
        fallback = falls_back(ref, macro, lang, html)
        if fallback is not None:
            at = locate(smap, loc, call.lineno, pattern, taken, group=1)
            yield Finding("macro_language", loc, at, f"{shown}() from {ref} has no {lang!r} "
                          f"text and falls back to {fallback!r}; add {lang!r} to the macro or "
                          "write the text in the template", macro)


def _lang_argument(call, arguments: tuple[str, ...], default: str | None) -> str | None:
    """The language a call passes (a constant), its default when it passes none."""
    from jinja2 import nodes

    index = arguments.index("lang")
    value = None
    if len(call.args) > index:
        value = call.args[index]
    else:
        value = next((k.value for k in call.kwargs if k.key == "lang"), None)
        if value is None:
            return default
    if isinstance(value, nodes.Const) and isinstance(value.value, str):
        return value.value
    return None


def _macro(ref: str, name: str, html: bool):
    from ..posts.sandbox import environment

    try:
        module = environment(html=html).get_template(ref).module
    except Exception:  # a missing or broken partial is reported by the template checks
        return None
    macro = getattr(module, name, None)
    return macro if hasattr(macro, "arguments") else None


@lru_cache(maxsize=256)
def _signature(ref: str, name: str, html: bool) -> tuple[tuple[str, ...], str | None, int] | None:
    """The macro's argument names, its default language and how many arguments have no
    default, if it takes a language (read from the partial's source)."""
    from jinja2 import nodes

    from ..posts.sandbox import environment

    env = environment(html=html)
    try:
        source = env.loader.get_source(env, ref)[0]
        ast = env.parse(source)
    except Exception:  # a missing or broken partial is reported by the template checks
        return None
    node = next((m for m in ast.find_all(nodes.Macro) if m.name == name), None)
    if node is None:
        return None
    arguments = tuple(a.name for a in node.args)
    if "lang" not in arguments:
        return None
    required = len(arguments) - len(node.defaults)
    defaults = dict(zip(arguments[required:], node.defaults))
    default = defaults.get("lang")
    value = default.value if isinstance(default, nodes.Const) else None
    return arguments, value if isinstance(value, str) else None, required


@lru_cache(maxsize=1024)
def falls_back(ref: str, name: str, lang: str, html: bool = False) -> str | None:
    """The language whose text the macro gives for `lang`, when it has none of its own."""
    macro = _macro(ref, name, html)
    signature = _signature(ref, name, html)
    if macro is None or signature is None:
        return None
    arguments, default, required = signature
    sample = {a: _SAMPLE for a in arguments[:required] if a != "lang"}

    def text(language: str) -> str | None:
        try:
            return str(macro(**sample, lang=language))
        except Exception:  # a macro that needs other values: cannot be compared
            return None

    mine = text(lang)
    if mine is None:
        return None
    for other in dict.fromkeys([default or "en", "en"]):
        if other != lang and text(other) == mine:
            return other
    return None
