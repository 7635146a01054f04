"""Finding a confidential value in a text the way a reader would recognise it.

A patient's name must not reach a public post, however it got there (typed into the
title, an edit, a render override) and however it was disguised: ``|reverse``,
``|join(' ')``, ``Garcia, Maria``, ``#MariaGarcia``, ``M.a.r.i.a``, Cyrillic look-alike
letters, combining accents, a right-to-left override. Both the value and the text are
compared as a reader sees them (:func:`engine.lookalike.skeleton`: NFKC, case folded,
accents and invisible characters dropped, look-alike letters mapped), then cut into
words (punctuation and spacing ignored; a run of single letters is one spelled-out
word). The value is found when its words, in any order, make up consecutive whole words
of the text, read forwards or backwards. A long number in the value (a record number)
is found on its own.

What it does not find: a part of the value alone ("Maria"), initials, and spellings a
reader decodes but a machine cannot (``Mar1a``). Values shorter than 3 letters or
digits are not looked for.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import permutations

_WORD = re.compile(r"[^\W_]+")
#: A word of the value this long that holds a digit identifies on its own (a record number).
_NUMBER_ALONE = 6


def reader_view(text: str) -> str:
    """`text` as a reader sees it (HTML entities decoded too, for web posts)."""
    import html

    from ..lookalike import skeleton

    return skeleton(html.unescape(text))


def _words(view: str) -> list[str]:
    out, run = [], []
    for word in _WORD.findall(view):
        if len(word) == 1:  # "M a r i a", "M.a.r.i.a": one spelled-out word
            run.append(word)
            continue
        if run:
            out.append("".join(run))
            run = []
        out.append(word)
    if run:
        out.append("".join(run))
    return out


def _whole_words(needle: str, words: list[str]) -> bool:
    """Whether `needle` is the concatenation of consecutive whole words in `words`."""
    joined = "".join(words)
    bounds, at = {0}, 0
    for word in words:
        at += len(word)
        bounds.add(at)
    start = joined.find(needle)
    while start != -1:
        if start in bounds and start + len(needle) in bounds:
            return True
        start = joined.find(needle, start + 1)
    return False


@lru_cache(maxsize=1024)
def candidates(value: str) -> frozenset[str]:
    """The strings whose presence (as whole words) in a text reveals `value` (pure, so
    cached: verify asks it again for every approval and publication it replays)."""
    words = _words(reader_view(value))
    if sum(len(w) for w in words) < 3:
        return frozenset()
    orders = permutations(words) if len(words) <= 4 else (words, words[::-1])
    found = {"".join(order) for order in orders}
    found |= {w for w in words if len(w) >= _NUMBER_ALONE and any(c.isdigit() for c in w)}
    return frozenset(found)


class Text:
    """A text prepared once for looking up several values."""

    def __init__(self, text: str) -> None:
        view = reader_view(text)
        self.forwards = _words(view)
        self.backwards = _words(view[::-1])

    def reveals(self, value: str) -> bool:
        return any(_whole_words(c, self.forwards) or _whole_words(c, self.backwards)
                   for c in candidates(value))


@lru_cache(maxsize=128)  # posts are at most 100,000 characters: a bounded cache
def prepared(text: str) -> Text:
    """``Text(text)``, cached: the same post text is checked at approval and publication,
    and again by every replay of the log."""
    return Text(text)


def appears(value: str, text: str) -> bool:
    """Whether a reader of `text` would recognise `value` in it."""
    return Text(text).reveals(value)


def echoes(state: dict) -> list[tuple[str, str]]:
    """(field, confidential input) pairs: a confidential value that also appears in the
    incident's title or in a non-confidential input, from where it can reach a public post."""
    spec = state["plan"]["inputs"]
    secrets = {k: str(v) for k, v in state["inputs"].items()
               if k in spec and spec[k]["confidential"] and v not in (None, "")}
    if not secrets:
        return []
    fields = {"title": state["title"]}
    fields.update({k: str(v) for k, v in state["inputs"].items()
                   if k in spec and not spec[k]["confidential"] and v not in (None, "")})
    found = []
    for field, text in fields.items():
        prepared = Text(text)
        found += [(field, name) for name, value in sorted(secrets.items()) if prepared.reveals(value)]
    return found
