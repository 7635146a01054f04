"""X (Twitter) weighted length, exactly as twitter-text v3 counts it, but fast.

twitter-text's own ``parse_tweet`` costs 1 to 3 ms a post; this module gives the same
``weightedLength`` and ``valid`` in tens of microseconds by trying twitter-text's own
compiled patterns only where a match can begin (see ``_XCounter``).
tests/test_channels.py checks it against ``parse_tweet`` on generated posts and the
v3 conformance cases. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import unicodedata

from engine.errors import PlaybookError

def _pkg_resources_shim() -> None:
    """twitter-text-parser reads its emoji table through setuptools' ``pkg_resources``,
    which newer setuptools releases no longer ship. Provide the one function it uses."""
    import importlib.util
    import sys
    import types

    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources"):
        return
    from importlib.resources import files

    shim = types.ModuleType("pkg_resources")
    shim.resource_string = lambda package, name: files(package.rpartition(".")[0] or package).joinpath(name).read_bytes()
    sys.modules["pkg_resources"] = shim


def _twitter_text():
    try:
        _pkg_resources_shim()
        import twitter_text
        from twitter_text.config import config
    except ImportError as e:  # the package needs setuptools' pkg_resources at import
        raise PlaybookError(
            f"cannot measure this post: the 'twitter-text-parser' package failed to import ({e}); "
            "reinstall the project's dependencies"
        ) from e
    return twitter_text, config


# twitter-text's own ``parse_tweet`` runs its emoji pattern (about 1,400 alternatives) at
# every position of the text and its URL pattern from every position too: 1 to 3 ms a
# post, nearly all of it proving that there is no emoji and no URL at most positions.
# ``_XCounter`` gives the same two results (``weightedLength`` and ``valid``) while trying
# those same compiled patterns only at the positions where a match can begin, and weighs
# the plain characters in between with one character-class scan instead of a Python loop.
# tests/test_channels.py checks it against ``parse_tweet`` on generated posts.

_X_COUNTER = None

# SHA-256 of the URL pattern (``twitter_text.regexp.extract_url``) that the argument in
# ``_url_starts`` was checked against. If an upgrade of twitter-text changes that pattern,
# URLs are found by twitter-text's full scan again (slower, still exact) until someone
# re-checks the argument and updates the digest; a test fails to say so.
_URL_PATTERN_SHA256 = "f4303babfce753be0007d37ee2126fe2f5e07aea6860e092524394230bc42347"


def x_counter() -> _XCounter:
    global _X_COUNTER
    if _X_COUNTER is None:
        _X_COUNTER = _XCounter()
    return _X_COUNTER


class _XCounter:
    """twitter-text v3 weighted length, equal to ``parse_tweet(text, config["version3"])``."""

    def __init__(self) -> None:
        import hashlib
        import importlib
        import re

        _, config = _twitter_text()
        from twitter_text.get_character_weight import get_character_weight
        from twitter_text.regexp.emoji import emoji
        from twitter_text.regexp.extract_url import extract_url
        from twitter_text.regexp.invalid_chars import invalid_chars
        from twitter_text.regexp.spaces_group import spaces_group

        # The package's __init__ rebinds these names to functions; we want the modules.
        urls_module = importlib.import_module("twitter_text.extract_urls")
        emojis_module = importlib.import_module("twitter_text.extract_emojis")
        parse_module = importlib.import_module("twitter_text.parse_tweet")

        options = config["version3"]
        self.options = options
        self.scale = options["scale"]
        self.url_weight = options["transformed_url_length"] * options["scale"]
        self.emoji_weight = options["default_weight"]
        self.emoji_enabled = options["emoji_parsing_enabled"]
        self.max_length = options["max_weighted_tweet_length"]
        self.invalid_chars = invalid_chars
        self.parse_tweet = parse_module.parse_tweet
        self.surrogate = re.compile(r"[\ud800-\udfff]")
        self.convert_line_ending = parse_module.convert_line_ending
        self.base_weight, self.heavier = _weight_classes(options, get_character_weight)

        # twitter-text's own extractor functions, run with a stand-in for the pattern they
        # scan (the same compiled pattern, tried only where a match can begin).
        digest = hashlib.sha256(extract_url.pattern.encode("utf-8")).hexdigest()
        if digest == _URL_PATTERN_SHA256 and extract_url.flags == re.IGNORECASE | re.UNICODE:
            self.urls = _with_globals(
                urls_module.extract_urls_with_indices, extract_url=_Scanner(extract_url, _url_starts(spaces_group))
            )
        else:
            self.urls = urls_module.extract_urls_with_indices
        starts = _literal_alternation_starts(emoji)
        if starts is not None:
            self.emojis = _with_globals(emojis_module.extract_emojis_with_indices, emoji=_Scanner(emoji, starts))
        else:
            self.emojis = emojis_module.extract_emojis_with_indices

    def measure(self, text: str) -> tuple[int, bool]:
        """``(weightedLength, valid)`` exactly as ``parse_tweet`` computes them."""
        if not text.isascii() and self.surrogate.search(text):
            # parse_tweet encodes the text as UTF-16, which fails on a lone surrogate:
            # let it fail as it always has.
            parsed = self.parse_tweet(text, self.options)
            return parsed.weightedLength, parsed.valid
        norm = unicodedata.normalize("NFC", text)
        if "\r" in norm:  # without one, convert_line_ending returns the text unchanged
            norm = self.convert_line_ending(norm)
        # As parse_tweet: entities keyed by where they start (a later one with the same
        # start wins), and a URL or emoji moves the scan on by the length of its text.
        urls = {entity["indices"][0]: len(entity["url"]) for entity in self.urls(norm)}
        emojis = {entity["indices"][0]: len(entity["emoji"]) for entity in self.emojis(norm)} if self.emoji_enabled else {}
        invalid = self.invalid_chars.search
        suspect = invalid(norm) is not None
        valid, total, at = True, 0, 0
        for start in sorted(urls.keys() | emojis.keys()) if (urls or emojis) else ():
            if start < at:  # inside a URL or emoji already counted: parse_tweet never looks here
                continue
            total += self._plain_weight(norm, at, start)
            size = urls[start] if start in urls else emojis[start]
            total += self.url_weight if start in urls else self.emoji_weight
            # parse_tweet checks each plain character, and of a URL or emoji only its last one.
            if suspect and valid and (invalid(norm, at, start) or invalid(norm, start + size - 1, start + size)):
                valid = False
            at = start + size
        total += self._plain_weight(norm, at, len(norm))
        if suspect and valid and invalid(norm, at):
            valid = False
        used = int(total / self.scale)
        return used, valid and 0 < used <= self.max_length

    def _plain_weight(self, text: str, start: int, end: int) -> int:
        """The summed ``get_character_weight`` of ``text[start:end]``."""
        weight = self.base_weight * (end - start)
        for extra, chars in self.heavier:
            weight += extra * len(chars.findall(text, start, end))
        return weight


def _weight_classes(options: dict, get_character_weight) -> tuple[int, list]:
    """``(base, [(extra, character class), ...])``: a run of characters weighs ``base`` each
    plus ``extra`` for each one in that class. Each weight is read from twitter-text's own
    ``get_character_weight`` at the start of every span between two range boundaries (the
    weight cannot change inside such a span), so the classes reproduce it exactly."""
    import re

    cuts = {0, 0x110000}
    for span in options["ranges"]:
        cuts.update(min(max(bound, 0), 0x110000) for bound in (span["start"], span["end"] + 1))
    cuts = sorted(cuts)
    by_weight: dict[int, list[tuple[int, int]]] = {}
    for low, high in zip(cuts, cuts[1:]):
        by_weight.setdefault(get_character_weight(chr(low), options), []).append((low, high - 1))
    base = get_character_weight("a", options)
    heavier = [(weight - base, re.compile(_char_class(spans))) for weight, spans in by_weight.items() if weight != base]
    return base, heavier


def _char_class(spans) -> str:
    return "[" + "".join(f"\\U{low:08x}" + (f"-\\U{high:08x}" if high > low else "") for low, high in spans) + "]"


def _spans(code_points) -> list[tuple[int, int]]:
    """Sorted code points as ``(low, high)`` runs."""
    spans: list[tuple[int, int]] = []
    for c in sorted(code_points):
        if spans and c == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], c)
        else:
            spans.append((c, c))
    return spans


def _with_globals(function, **names):
    """A copy of ``function`` (same code) that sees ``names`` instead of its module's globals."""
    import types

    scope = dict(function.__globals__, **names)
    copy = types.FunctionType(function.__code__, scope, function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


class _Scanner:
    """Stands in for a compiled pattern: ``finditer(text)`` yields the matches
    ``pattern.finditer(text)`` would, trying ``pattern.match`` only at ``starts(text)``.

    Exact when ``starts(text)`` yields, in increasing order, every position where the
    pattern can match, and the pattern never matches the empty string: a scan resumed at
    ``end`` finds its next match at the first position p >= end where it matches, and
    ``pattern.match(text, p)`` tries exactly what the scan tries there. (The patterns used
    here look only ahead, never behind, and their anchors mean the same either way: ``^``
    holds at 0 only, ``$`` at the end.)
    """

    def __init__(self, pattern, starts) -> None:
        self.pattern = pattern
        self.starts = starts

    def finditer(self, text: str):
        match, end = self.pattern.match, 0
        for position in self.starts(text):
            if position >= end:
                found = match(text, position)
                if found:
                    end = found.end()
                    yield found


def _url_starts(spaces_group: str):
    """Where twitter-text's URL pattern can match (a superset), for ``_Scanner``.

    The pattern is: a preceding character (or ``^``), ``https?://`` (optional), a domain
    ``sub.``* ``name.`` and a top-level domain, then port, path and query. Its domain
    characters exclude every ``spaces_group`` character and the dot, so a match at p holds
    a dot q > p, right before the top-level domain, with no space in ``text[p+1:q]``. Every
    top-level domain it knows starts with an ASCII letter or a non-ASCII character that is
    not a space (ignoring case keeps it so; tests/test_channels.py checks the lists). And
    past position 0 the preceding character cannot be an ASCII letter or digit, ``@``,
    ``$`` or ``#``. So p lies between the character before a space-free run and the last
    such dot in that run, and is 0 or not one of those characters.
    """
    import re
    import string

    not_space = f"[^{spaces_group}]"
    # From the start of a space-free run to its last dot followed by a letter or a
    # non-ASCII character other than a space (anchored at run starts, so linear).
    run = re.compile(rf"(?<!{not_space}){not_space}*\.(?![{spaces_group}])[A-Za-z\x80-\U0010ffff]")
    dot = re.compile(r"\.[A-Za-z\x80-\U0010ffff]")  # a quick scan: sre looks for the "." first
    preceding = re.compile("[^" + re.escape(string.ascii_letters + string.digits + "@$#") + "]")

    def starts(text: str):
        first = dot.search(text)
        if first is None:
            return
        # No run holding such a dot starts before the last " " ahead of the first one.
        for found in run.finditer(text, text.rfind(" ", 0, first.start()) + 1):
            low = found.start() - 1
            if low < 0:
                yield 0
                low = 1
            for position in preceding.finditer(text, low, found.end() - 2):
                yield position.start()

    return starts


def _literal_alternation_starts(pattern):
    """Where ``pattern`` can match (a superset), for ``_Scanner``, or None if ``pattern`` is
    not built only of literals, character sets and alternations (twitter-text's emoji
    pattern is: each emoji sequence spelled out, longest first, then a set of single ones).

    Read from the compiled pattern itself: every match is at most ``widest`` characters
    long, starts with one of ``first`` and holds a non-ASCII character of the pattern
    (checked for every alternative), so a match at p has such a character at some h with
    p <= h < p + widest.
    """
    import re

    try:
        from re import _constants as sre
        from re import _parser
    except ImportError:  # a Python whose re module is laid out otherwise: scan everywhere
        return None

    def chars(op, value):
        if op is sre.LITERAL:
            return {value}
        if op is sre.IN:
            out = set()
            for kind, item in value:
                if kind is sre.LITERAL:
                    out.add(item)
                elif kind is sre.RANGE:
                    out.update(range(item[0], item[1] + 1))
                else:  # NEGATE, CATEGORY, ...
                    raise ValueError(kind)
            return out
        return None

    def parts(op, value):
        if op is sre.BRANCH:
            return value[1]
        if op is sre.SUBPATTERN and not value[1] and not value[2]:  # a group that changes no flags
            return [value[3]]
        raise ValueError(op)

    def every_char(sequence, into: set) -> None:
        for op, value in sequence:
            one = chars(op, value)
            if one is not None:
                into |= one
            else:
                for part in parts(op, value):
                    every_char(part, into)

    def first(sequence) -> set:
        if not len(sequence):  # an empty alternative: give up rather than reason about it
            raise ValueError("empty")
        op, value = sequence[0]
        one = chars(op, value)
        if one is not None:
            return one
        return set().union(*(first(part) for part in parts(op, value)))

    def holds_hint(sequence, hints: set) -> bool:
        for op, value in sequence:
            one = chars(op, value)
            if one is not None:
                if one <= hints:
                    return True
            elif op is sre.BRANCH:
                if all(holds_hint(part, hints) for part in parts(op, value)):
                    return True
            elif holds_hint(parts(op, value)[0], hints):
                return True
        return False

    try:
        if pattern.flags & re.IGNORECASE or not isinstance(pattern.pattern, str):
            return None
        tree = _parser.parse(pattern.pattern, pattern.flags)
        if tree.state.flags & re.IGNORECASE:
            return None
        shortest, widest = tree.getwidth()
        if shortest < 1 or widest > 1000:
            return None
        everything: set = set()
        every_char(tree, everything)
        hints = {c for c in everything if c > 0x7F}
        if not holds_hint(tree, hints):
            return None
        starters = frozenset(map(chr, first(tree)))
    except (ValueError, AttributeError, TypeError, IndexError):  # not of that shape: scan everywhere
        return None

    # The hint set, as a class sre checks quickly: its BMP part (a bitmap) and, rather
    # than some hundred ranges tried one by one, every non-BMP character (a superset:
    # more hints cost a few more tries, never a missed match).
    spans = _spans(c for c in hints if c <= 0xFFFF) + [(0x10000, 0x10FFFF)]
    hint = re.compile(_char_class(spans))

    def starts(text: str):
        if text.isascii():  # no hint is ASCII
            return ()
        found = set()
        for marker in hint.finditer(text):
            at = marker.start()
            for position in range(max(at - widest + 1, 0), at + 1):
                if text[position] in starters:
                    found.add(position)
        return sorted(found)

    return starts
