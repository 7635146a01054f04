"""Text as a reader sees it: Unicode confusable skeletons and scripts (UTS #39).

``cаrol`` with a Cyrillic ``а`` and ``carol`` look the same; so do ``Maria`` and
``Mаrіа``. :func:`skeleton` maps both to one string, so that names can be compared and
confidential values found the way a reader would recognise them. The confusable data
is the Unicode consortium's (``confusables.txt``), as shipped by the
``confusable-homoglyphs`` package; it is loaded only when a text is not plain ASCII,
so commands that only read (``status``) never pay for it.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Scripts that UTS #39 ("highly restrictive") lets one identifier mix.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each non-ASCII character that looks like one ASCII character -> that character."""
    from confusable_homoglyphs.confusables import confusables_data

    table = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_ = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isprintable()]
        if ascii_:  # a letter of the same case first, then any letter
            best = min(ascii_, key=lambda c: (not c.isalpha(), c.isupper() != char.isupper(), c))
            # confusables.txt's prototype of I is l; here case is folded, so a capital
            # that looks like I (Greek Ι, Cyrillic І) must become I, as Latin I does
            table[char] = "I" if best == "l" and char.isupper() else best
    return table


def skeleton(text: str) -> str:
    """A reader's view of `text` for comparison: compatibility forms folded (NFKC: full-
    width letters, ligatures), accents and invisible format characters dropped, look-alike
    letters of other scripts mapped to Latin, case folded."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text.casefold()
    table = _prototypes()  # before and after case folding: Greek Μ looks like M, its μ does not
    text = "".join(table.get(c, c) for c in text).casefold()
    return "".join(table.get(c, c) for c in text)


def scripts(text: str) -> set[str]:
    """The scripts of `text`'s letters (COMMON and INHERITED characters left out)."""
    if text.isascii():
        return {"LATIN"} if any(c.isalpha() for c in text) else set()
    from confusable_homoglyphs.categories import alias

    return {alias(c) for c in text} - {"COMMON", "INHERITED"}


def mixed_script(text: str) -> bool:
    """Letters of scripts that no one writes together (Latin with Cyrillic, Greek ...)."""
    found = scripts(text)
    return len(found) > 1 and not any(found <= allowed for allowed in _ALLOWED_MIXES)
