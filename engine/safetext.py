"""Text that could hide or reorder what a reader sees: refused on the way in, escaped on
the way out.

A terminal obeys escape sequences (``ESC [8m`` makes the rest of a line invisible), and
bidirectional overrides and isolates reorder the characters after them. An approver
reading ``playbook drafts`` must see exactly the text that will be published, so:

* :func:`refuse_unsafe` refuses C0 and C1 control characters (newline and tab excepted
  where a field may span lines), DEL, NUL and the bidirectional embeddings, overrides
  and isolates, in post text, titles, person names and inputs, naming the field and
  the character;
* :func:`for_terminal` is the one function every text view passes its output through:
  whatever such character still reaches it (an old event, a note, a playbook's own
  text) is shown as a visible ``\\uXXXX`` instead of being obeyed.

Both are cheap (one precompiled pattern), so ``status`` stays fast.
"""

from __future__ import annotations

import re

from .errors import UsageError

#: Control characters (C0 but newline and tab, DEL, C1) and the bidirectional
#: embeddings, overrides (U+202A..U+202E) and isolates (U+2066..U+2069).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: The ASCII characters _UNSAFE leaves alone: what is left of an ASCII text once they are
#: deleted is what it would escape (nothing, almost always).
_SAFE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"

_NAMES = {0x00: "NULL", 0x07: "BELL", 0x08: "BACKSPACE", 0x09: "TAB", 0x0A: "LINE FEED",
          0x0B: "LINE TABULATION", 0x0C: "FORM FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE",
          0x7F: "DELETE", 0x9B: "CONTROL SEQUENCE INTRODUCER"}


def describe(char: str) -> str:
    """``U+001B (ESCAPE)``: a character named even when it has no glyph."""
    import unicodedata

    code = ord(char)
    name = _NAMES.get(code) or unicodedata.name(char, "") or "a control character"
    return f"U+{code:04X} ({name})"


def refuse_unsafe(field: str, value: str, *, one_line: bool = False) -> str:
    """`value`, or UsageError naming `field` and the first character that could hide text."""
    found = (_UNSAFE_ONE_LINE if one_line else _UNSAFE).search(value)
    if found is not None:
        where = f" at character {found.start() + 1}" if len(value) > 1 else ""
        raise UsageError(f"{field} contains {describe(found.group(0))}{where}: control characters "
                         "and bidirectional overrides can hide or reorder text on a screen; remove it")
    return value


def first_unsafe(value: str) -> str | None:
    """The first character :func:`refuse_unsafe` would refuse in multi-line text, or None."""
    found = _UNSAFE.search(value)
    return found.group(0) if found else None


def for_terminal(text: str) -> str:
    """Text for a screen: every control character but newline and tab, and every
    bidirectional override or isolate, shown as a visible ``\\uXXXX``."""
    if text.isascii() and (text.isprintable() or not text.encode("ascii").translate(None, _SAFE_ASCII)):
        return text  # the common cases, one line or many (a listing of thousands), at C speed
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
