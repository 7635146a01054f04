"""Channel profiles and post length counting, as a comms person sees them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.channels import CHANNELS, Count, count, profile, subject_count
from engine.errors import NotFound, UsageError

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
    assert public == {"x", "bluesky", "mastodon", "facebook", "linkedin", "web"}
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
    code = "import sys, engine.channels; print(sorted({'twitter_text', 'regex'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
