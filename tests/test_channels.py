"""Channel profiles and post length counting, as a comms person sees them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import NotFound, UsageError
from engine.posts.channels import CHANNELS, Count, count, profile, subject_count

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance" / "twitter-text-validate.yml"
V3_GROUPS = ("WeightedTweetsWithDiscountedEmojiCounterTest", "UnicodeDirectionalMarkerCounterTest")

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"  # man, woman, girl, boy (ZWJ)
LONG_URL = "https://example.org/press/2024/emergency-department-closure-update?lang=en"


def _conformance_cases() -> list:
    if not CONFORMANCE.is_file():
        reason = "the shared twitter-text conformance corpus is not present"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="corpus-absent")]
    import yaml

    tests = yaml.safe_load(CONFORMANCE.read_text(encoding="utf-8"))["tests"]
    cases = []
    for group in V3_GROUPS:
        for number, case in enumerate(tests[group], 1):
            slug = re.sub(r"[^a-z0-9]+", "-", case["description"].lower()).strip("-")[:60]
            cases.append(pytest.param(case, id=f"{group}-{number:02d}-{slug}"))
    return cases


@pytest.mark.parametrize("case", _conformance_cases())
def test_x_weighted_length_matches_twitter_text_conformance(case):
    assert count("x", case["text"]).used == case["expected"]["weightedLength"]


# --- X ----------------------------------------------------------------------


def test_x_counts_any_url_as_23():
    text = f"Latest update: {LONG_URL}"
    assert len(LONG_URL) > 23
    assert count("x", text).used == len("Latest update: ") + 23


def test_x_counts_cjk_and_emoji_as_2():
    assert count("x", "日本語").used == 6
    assert count("x", "\U0001F637").used == 2
    assert count("x", FAMILY).used == 2


def test_x_limit_is_280_weighted():
    assert str(count("x", "a" * 280)) == "280/280"
    assert count("x", "a" * 280).fits
    over = count("x", "a" * 281)
    assert not over.fits and over.unit == "weighted characters"


def test_x_names_a_character_it_refuses():
    assert "U+FFFF" in count("x", "ABC\uFFFF").detail


# --- Bluesky ----------------------------------------------------------------


def test_bluesky_counts_a_zwj_family_as_one_grapheme():
    assert count("bluesky", FAMILY).used == 1
    assert count("bluesky", "cafe\u0301").used == 4  # e + combining acute is one character
    assert count("bluesky", "a" * 300).fits and not count("bluesky", "a" * 301).fits


# --- Mastodon ---------------------------------------------------------------


def test_mastodon_counts_each_url_as_23():
    text = f"See {LONG_URL} and {LONG_URL}/more"
    assert count("mastodon", text).used == len("See ") + 23 + len(" and ") + 23


def test_mastodon_does_not_discount_a_bare_domain():
    assert count("mastodon", "see example.org").used == len("see example.org")


def test_mastodon_counts_a_remote_mention_by_its_local_part():
    assert count("mastodon", "thanks @alice@example.social!").used == len("thanks @alice!")


def test_mastodon_counts_code_points_with_limit_500():
    assert count("mastodon", FAMILY).used == 7
    assert count("mastodon", "a" * 500).fits and not count("mastodon", "a" * 501).fits


# --- SMS --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_sms_gsm7_segments(length, segments):
    result = count("sms", "a" * length)
    assert result.used == segments
    assert result.detail.startswith("GSM-7")


def test_sms_empty_text_is_zero_segments():
    assert count("sms", "").used == 0


def test_sms_extension_characters_take_two_septets():
    assert count("sms", "€" * 80).used == 1
    assert count("sms", "€" * 81).used == 2
    assert count("sms", "a" * 159 + "{").used == 2


def test_sms_never_splits_an_escape_pair_across_segments():
    # 306 septets would fit two 153-septet parts, but the € cannot straddle them.
    assert count("sms", "a" * 152 + "€" + "a" * 152).used == 3


def test_sms_a_curly_apostrophe_switches_to_ucs2_and_is_named():
    text = "We’re" + "a" * 65  # 70 characters
    result = count("sms", text)
    assert result.used == 1
    assert "UCS-2" in result.detail and "’" in result.detail and "U+2019" in result.detail
    assert count("sms", text + "a").used == 2  # 71 > 70
    assert count("sms", "’" + "a" * 133).used == 2  # 134 = 2 x 67
    assert count("sms", "’" + "a" * 134).used == 3
    assert count("sms", "It's fine " * 16).detail.startswith("GSM-7")  # straight apostrophe stays GSM-7


def test_sms_non_bmp_emoji_takes_two_units_and_is_not_split():
    assert count("sms", "\U0001F637" * 35).used == 1  # 70 units
    assert count("sms", "\U0001F637" * 36).used == 2
    assert count("sms", "ж" * 66 + "\U0001F637" + "ж" * 66).used == 3  # 134 units, pair not split


def test_sms_limit_is_three_segments():
    assert count("sms", "a" * 459).fits
    assert not count("sms", "a" * 460).fits


# --- other channels ---------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "limit"),
    [("facebook", 63206), ("linkedin", 3000), ("chat", 4000), ("email", 100000), ("web", 100000)],
)
def test_character_channels_count_code_points(channel, limit):
    result = count(channel, "Hi " + FAMILY)
    assert (result.used, result.limit, result.unit) == (10, limit, "characters")


def test_email_subject_has_its_own_limit():
    assert subject_count("a" * 150).fits
    assert str(subject_count("a" * 151)) == "151/150"


def test_channel_flags():
    public = {name for name, p in CHANNELS.items() if p.public}
    assert public == {"x", "bluesky", "mastodon", "facebook", "linkedin", "web", "sms"}  # broadcasts
    assert {name: p.audiences[0] for name, p in CHANNELS.items() if not p.public} == {
        "email": "direct", "chat": "internal"}
    assert [name for name, p in CHANNELS.items() if p.has_subject] == ["email"]
    assert [name for name, p in CHANNELS.items() if p.html] == ["web"]
    assert profile("x").title == "X (Twitter)"


# --- limits and errors ------------------------------------------------------


def test_a_playbook_can_override_a_limit():
    assert profile("x", limit=200).limit == 200
    assert CHANNELS["x"].limit == 280  # the built-in is untouched
    assert not count(profile("x", limit=200), "a" * 201).fits
    assert str(count("x", "a" * 201, limit=250)) == "201/250"
    assert count("sms", "a" * 200, limit=1).fits is False


@pytest.mark.parametrize("bad", [0, -5, "280", 2.5, True])
def test_a_bad_limit_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="limit"):
        profile("x", limit=bad)


def test_unknown_channel_names_the_known_ones():
    with pytest.raises(NotFound) as caught:
        count("tiktok", "hello")
    message = str(caught.value)
    assert "tiktok" in message
    assert all(name in message for name in CHANNELS)


def test_count_fits_and_prints_as_used_over_limit():
    assert Count(231, 280, "weighted characters").fits
    assert not Count(281, 280, "weighted characters").fits
    assert str(Count(231, 280, "weighted characters")) == "231/280"
    assert f"x: {count('x', 'hello')}" == "x: 5/280"


def test_importing_channels_does_not_load_the_heavy_libraries():
    code = "import sys, engine.posts.channels; print(sorted({'twitter_text', 'regex'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- X: the fast counter gives twitter-text's own results --------------------
#
# engine.posts.channels counts X posts without running twitter-text's parse_tweet (1 to 3 ms a
# post); these tests hold it to parse_tweet's weightedLength and valid flag, and to
# twitter-text's URL and emoji extractors, on generated posts.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.posts import channels, xtext  # noqa: E402


def _tt():
    twitter_text, config = xtext._twitter_text()
    return twitter_text, config["version3"]


def _x_as_parse_tweet(text: str) -> tuple[int, str]:
    """(used, detail) as engine.posts.channels computed them with parse_tweet itself."""
    twitter_text, v3 = _tt()
    from twitter_text.regexp.invalid_chars import invalid_chars

    parsed = twitter_text.parse_tweet(text, v3)
    detail = ""
    if not parsed.valid and text:
        bad = invalid_chars.search(text)
        if bad:
            detail = f"X refuses posts containing {channels._describe(bad.group(0))}"
    return parsed.weightedLength, detail


_SCHEMES = ["", "", "http://", "https://", "HTTPS://", "hTtP://", "ftp://", "https:/", "://"]
_HOSTS = ["example", "st-marys", "ex_ample", "news.example", "www.hospital", "a", "örnek", "日本",
          "xn--wgv71a119e", "münchen", "t", "sub.sub2.domain", "Example", "123", "-bad", "\U0001F637",
          "x\u2764\uFE0F", "пример", "a\u200Db"]
_TLDS = [".com", ".org", ".co.uk", ".es", ".tr", ".jp", ".net", ".COM", ".Org", ".co", ".io",
         ".bız", ".ſite", ".онлайн", ".한국", ".xyz1", ".c", ".onion", ".comx", ".gov.uk", ".de"]
_PATHS = ["", "", "/", "/feedback", "/press/2024/update?lang=en", "/wiki/Foo_(bar)", "/a/b/", "/é/ü",
          "?q=1&r=2", "#top", ":8080/x", "/path.", "/x@y/", "/ünïcode-пример", "/((a))", "/\U0001F637",
          "/x.com", "/\u00A9"]
_AFTER = ["", "", ".", ",", ")", "!", "?", "…", ":", "'", "/"]

_URL = st.builds(lambda *parts: "".join(parts), st.sampled_from(_SCHEMES), st.sampled_from(_HOSTS),
                 st.sampled_from(_TLDS), st.sampled_from(_PATHS), st.sampled_from(_AFTER))
_TCO = st.builds(lambda slug, tail: f"https://t.co/{slug}{tail}",
                 st.text("abcXYZ0129", min_size=1, max_size=45), st.sampled_from(["", "?a=b", "/x", "."]))
_EMOJI = st.sampled_from([
    "\U0001F637", "\U0001F44D\U0001F3FD", "\U0001F3FD",  # masked face, thumbs up + skin tone, lone tone
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",  # ZWJ family
    "\U0001F469\U0001F3FD\u200D\u2695\uFE0F", "\U0001F3F3\uFE0F\u200D\U0001F308",  # health worker, rainbow flag
    "\U0001F469\U0001F3FB\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468\U0001F3FC",  # kiss, two tones
    "\U0001F1EA\U0001F1F8", "\U0001F1F9\U0001F1F7", "\U0001F1EA", "\U0001F1EA\U0001F1F8\U0001F1EF",  # flags
    "1\uFE0F\u20E3", "#\uFE0F\u20E3", "*\u20E3", "0\u20E3", "7\uFE0F",  # keycaps
    "\u00A9\uFE0F", "\u00AE", "\u2122", "\u2764\uFE0F", "\u2764", "\u263A", "\u303D", "\u3297\uFE0F",
    "\u200D", "\uFE0F", "\U0001F9D1\u200D\U0001F91D\u200D\U0001F9D1", "\U0001FAE0", "\U0001F600\U0001F601",
])
_CJK = st.sampled_from(["日本語", "ご連絡ください", "。", "患者相談窓口", "한국어", "中文", "＠", "＃", "ｈｔｔｐ", "ｈｔｔｐｓ：／／"])
_LATIN = st.sampled_from(["é", "ñ", "ü", "ç", "ş", "ğ", "İ", "ı", "ſ", "\u212A", "e\u0301", "\u212B", "Ø", "ß",
                          "Yaşadığınız", "İletişim", "Lamentamos", "niño", "désolés", "\u0130stanbul", "Kelvin\u212A"])
_MARKS = st.sampled_from(["\u200E", "\u200F", "\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066",
                          "\u2067", "\u2068", "\u2069", "\u061C", "مرحبا", "שלום"])
_SPACE = st.sampled_from([" ", " ", " ", "\n", "\r\n", "\r", "\t", "\u00A0", "\u3000", "\u2028", "\u202F", "\u0085"])
_PUNCT = st.sampled_from([".", ",", "@", "#", "$", ":", "/", "-", "_", "(", ")", "!", "?", "'", "...", "@alice", "#tag"])
_RARE = st.sampled_from(["\uFFFE", "\uFEFF", "\uFFFF"])  # characters X refuses
_WORD = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=9)
_ANY = st.characters(exclude_categories=("Cs",))

_PROSE = st.sampled_from([
    "We're sorry to hear about your experience and we want to make this right.",
    "Lamentamos mucho su experiencia y queremos solucionarlo.",
    "Yaşadığınız deneyim için üzgünüz ve durumu düzeltmek istiyoruz.",
    "この度はご不快な思いをおかけし、誠に申し訳ございません。",
    "To protect patient privacy, we never discuss details in public. Please contact us:",
])
_PIECE = st.one_of(_WORD, _WORD, _SPACE, _SPACE, _URL, _URL, _TCO, _EMOJI, _EMOJI, _CJK, _LATIN, _PUNCT,
                   _PROSE, st.one_of(_MARKS, _MARKS, _ANY, _ANY, _RARE))
_POST = st.lists(_PIECE, max_size=60).map("".join)


@settings(max_examples=500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_POST)
def test_x_count_equals_parse_tweet_on_generated_posts(text):
    twitter_text, v3 = _tt()
    result = count("x", text)
    assert (result.used, result.detail) == _x_as_parse_tweet(text)
    # and the pieces it is built from equal twitter-text's own extractors
    x = xtext.x_counter()
    norm = __import__("unicodedata").normalize("NFC", text)
    assert x.urls(norm) == twitter_text.extract_urls_with_indices(norm)
    assert x.emojis(norm) == twitter_text.extract_emojis_with_indices(norm)


@settings(max_examples=250, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECE, max_size=12).map("".join))
def test_x_prechecks_keep_every_position_where_twitter_text_could_match(text):
    """Stronger than equal results: every position where twitter-text's URL or emoji
    pattern matches at all (not only where its scan happens to) is one the counter tries."""
    from twitter_text.regexp.emoji import emoji
    from twitter_text.regexp.extract_url import extract_url

    x = xtext.x_counter()
    url_starts = set(x.urls.__globals__["extract_url"].starts(text))
    emoji_starts = set(x.emojis.__globals__["emoji"].starts(text))
    for position in range(len(text)):
        if extract_url.match(text, position):
            assert position in url_starts, (text, position)
        if emoji.match(text, position):
            assert position in emoji_starts, (text, position)


@pytest.mark.parametrize("text", [
    "", " ", "\r\n", "a" * 280, "a" * 281, "日" * 140, "日" * 141, FAMILY * 140, FAMILY * 141,
    "x.com " * 12, "https://t.co/" + "a" * 41, "\uFEFF", "ABC\uFFFF" + "a" * 300, "a\uFFFEhttps://x.com",
    "https://example.com/\uFEFF", "see example.org\u2066 and \u2067example.es", "\U0001F1EA" * 5,
    "1\u20E3 2\uFE0F\u20E3", "Kelvin.\u212Aom ı.bız", "e\u0301.com", "a\ud800",
])
def test_x_count_edge_cases_match_parse_tweet(text):
    twitter_text, v3 = _tt()
    try:
        expected = _x_as_parse_tweet(text)
    except Exception as error:  # a lone surrogate: twitter-text cannot encode it, nor can we
        with pytest.raises(type(error)):
            count("x", text)
        return
    result = count("x", text)
    assert (result.used, result.detail) == expected


def test_x_fast_paths_are_in_use():
    """If a twitter-text upgrade changed its URL pattern, the counter quietly goes back to
    the full scan: exact, but 100 times slower. This says so: re-check the argument in
    engine/posts/xtext.py:_url_starts against the new pattern, then update the digest."""
    import hashlib

    from twitter_text.regexp.emoji import emoji
    from twitter_text.regexp.extract_url import extract_url

    digest = hashlib.sha256(extract_url.pattern.encode("utf-8")).hexdigest()
    assert digest == xtext._URL_PATTERN_SHA256, "twitter-text's URL pattern changed"
    x = xtext.x_counter()
    assert isinstance(x.urls.__globals__["extract_url"], xtext._Scanner)
    assert xtext._literal_alternation_starts(emoji) is not None
    assert isinstance(x.emojis.__globals__["emoji"], xtext._Scanner)


def test_x_counter_without_its_fast_paths_still_counts_the_same(monkeypatch):
    """What an upgrade of twitter-text that changed its patterns would get: the full scans."""
    twitter_text, v3 = _tt()
    monkeypatch.setattr(xtext, "_URL_PATTERN_SHA256", "0" * 64)
    monkeypatch.setattr(xtext, "_literal_alternation_starts", lambda pattern: None)
    slow = xtext._XCounter()
    assert slow.urls is twitter_text.extract_urls_with_indices
    assert slow.emojis is twitter_text.extract_emojis_with_indices
    for text in ("Update: https://example.org/a " + FAMILY, "日本語 x.com \u00A9\uFE0F", "ABC\uFFFF", ""):
        parsed = twitter_text.parse_tweet(text, v3)
        assert slow.measure(text) == xtext.x_counter().measure(text) == (parsed.weightedLength, parsed.valid)


def _first_chars(compiled) -> set[int]:
    """The first characters a (compiled, case-sensitive view of a) pattern can match."""
    from re import _constants as sre
    from re import _parser

    def first(sequence) -> set[int]:
        op, value = sequence[0]
        if op is sre.LITERAL:
            return {value}
        if op is sre.IN:
            out = set()
            for kind, item in value:
                assert kind in (sre.LITERAL, sre.RANGE), kind
                out |= {item} if kind is sre.LITERAL else set(range(item[0], item[1] + 1))
            return out
        if op is sre.BRANCH:
            return set().union(*(first(part) for part in value[1]))
        assert op is sre.SUBPATTERN, op
        return first(value[3])

    return first(_parser.parse(compiled.pattern, compiled.flags))


def test_every_top_level_domain_starts_with_a_letter_or_a_non_ascii_non_space():
    """A step of the argument in engine/posts/xtext.py:_url_starts: the character after the
    dot that ends a domain name is an ASCII letter or a non-ASCII character other than a
    space (case-insensitive matching keeps it so: the case partners of ASCII letters are
    ASCII letters and the non-ASCII İ, ı, ſ and the Kelvin sign)."""
    from twitter_text.regexp.spaces_group import spaces_group
    from twitter_text.regexp.valid_cctld import valid_cctld
    from twitter_text.regexp.valid_gtld import valid_gtld
    from twitter_text.regexp.valid_punycode import valid_punycode

    space = re.compile(f"[{spaces_group}]")
    for tlds in (valid_gtld, valid_cctld, valid_punycode):
        starters = _first_chars(tlds)
        assert starters
        for code in starters:
            char = chr(code)
            assert (char.isascii() and char.isalpha()) or (not char.isascii() and not space.match(char)), char


def test_twitter_texts_url_pattern_has_no_construct_that_depends_on_where_a_scan_starts():
    """A step of the argument in engine/posts/xtext.py:_Scanner: only forward look-ahead, and
    ^ / $ as the only anchors, without MULTILINE."""
    from re import _constants as sre
    from re import _parser

    from twitter_text.regexp.extract_url import extract_url

    assert not extract_url.flags & re.MULTILINE
    seen = set()

    def walk(sequence):
        for op, value in sequence:
            seen.add(op)
            if op is sre.BRANCH:
                for part in value[1]:
                    walk(part)
            elif op is sre.SUBPATTERN:
                walk(value[3])
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
                walk(value[2])
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                assert value[0] == 1, "look-behind"
                walk(value[1])
            elif op is sre.AT:
                assert value in (sre.AT_BEGINNING, sre.AT_END), value
            else:
                assert op in (sre.LITERAL, sre.IN, sre.NOT_LITERAL, sre.ANY), op

    walk(_parser.parse(extract_url.pattern, extract_url.flags))
    assert sre.AT in seen


def test_x_counter_weights_equal_get_character_weight_for_every_code_point():
    from twitter_text.get_character_weight import get_character_weight

    twitter_text, v3 = _tt()
    x = xtext.x_counter()
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    # one number over all code points, then every BMP one on its own
    assert x._plain_weight(everything, 0, len(everything)) == sum(get_character_weight(c, v3) for c in everything)
    for c in everything[:0xF000]:
        assert x._plain_weight(c, 0, 1) == get_character_weight(c, v3), hex(ord(c))


# --- Bluesky and SMS: faster, same results ------------------------------------


def test_bluesky_every_latin1_pair_is_two_clusters_but_cr_lf():
    """The shortcut in engine/posts/channels.py:_count_bluesky on the characters most posts are
    made of, every pair of them (the rules that look further, for emoji ZWJ sequences,
    regional indicators and Indic conjuncts, need characters outside Latin-1)."""
    import regex

    cluster = regex.compile(r"\X")
    latin1 = [chr(c) for c in range(256)]
    for a in latin1:
        for b in latin1:
            assert len(cluster.findall(a + b)) == (1 if a + b == "\r\n" else 2), (a, b)


def _sms_reference(text: str) -> tuple[int, str]:
    """engine.posts.channels._count_sms as it was: one character at a time."""
    if not text:
        return 0, "empty"
    encoding, reason, widths = "GSM-7", "", []
    for index, char in enumerate(text):
        width = 1 if char in channels.GSM7_BASIC else 2 if char in channels.GSM7_EXTENSION else None
        if width is None:
            encoding, reason = "UCS-2", f" because of {channels._describe(char)} at character {index + 1}"
            break
        widths.append(width)
    if encoding == "UCS-2":
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    segments = channels._segments(widths, channels.SMS_SINGLE[encoding], channels.SMS_PART[encoding])
    used, units = sum(widths), ("septets" if encoding == "GSM-7" else "UTF-16 units")
    size = (f"{used}/{channels.SMS_SINGLE[encoding]} {units}" if segments == 1
            else f"{used} {units}, {channels.SMS_PART[encoding]} per segment")
    return segments, f"{encoding}{reason}, {segments} segment{'' if segments == 1 else 's'} ({size})"


_GSM = st.sampled_from(sorted(channels.GSM7_BASIC))
_SMS_PIECE = st.one_of(st.lists(_GSM, min_size=1, max_size=200).map("".join), st.sampled_from(sorted(channels.GSM7_EXTENSION)),
                       _EMOJI, _CJK, _LATIN, _SPACE, st.sampled_from(["’", "“", "ж", "\U0001F637"]), st.text("a", max_size=170))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(_SMS_PIECE, max_size=8).map("".join))
def test_sms_count_equals_the_character_by_character_reference(text):
    result = count("sms", text)
    assert (result.used, result.detail) == _sms_reference(text)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.one_of(_POST, st.text(st.characters(max_codepoint=0xFF)), st.text(), st.lists(_LATIN | _SPACE | _WORD).map("".join)))
def test_bluesky_count_equals_grapheme_clusters(text):
    import regex

    assert count("bluesky", text).used == len(regex.findall(r"\X", text))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(_POST)
def test_mastodon_count_equals_counting_with_twitter_texts_own_extractor(text):
    twitter_text, _ = _tt()
    pieces, at = [], 0
    if "://" in text:
        for entity in twitter_text.extract_urls_with_indices(text):
            start, end = entity["indices"]
            if entity["url"].lower().startswith(("http://", "https://")):
                pieces += [text[at:start], "x" * channels.MASTODON_URL_LENGTH]
                at = end
    pieces.append(text[at:])
    expected = re.sub(channels._MASTODON_MENTION, r"\1@\2", "".join(pieces), flags=re.IGNORECASE | re.ASCII)
    assert count("mastodon", text).used == len(expected)


def test_bluesky_shortcut_agrees_with_grapheme_clusters_over_every_code_point_it_takes():
    """Every code point the shortcut accepts (Latin without combining marks, general
    punctuation, currency), in order, in reverse and interleaved with CR and LF: as many
    clusters as characters, less one per CR LF."""
    cluster = channels._grapheme_pattern()
    simple = "".join(c for c in map(chr, range(0x3000)) if not channels._NOT_SIMPLE.match(c))
    assert "a" in simple and "ñ" in simple and "ı" in simple and "’" in simple and "€" in simple
    assert "\u0301" not in simple and "\u200d" not in simple and "日" not in simple
    for text in (simple, simple[::-1], "\r\n".join(simple[::7]), "\r".join(simple[::5]) + "\n"):
        assert len(cluster.findall(text)) == len(text) - text.count("\r\n")
        assert count("bluesky", text).used == len(cluster.findall(text))