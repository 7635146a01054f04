"""The confidential-value scanner finds a value as a reader would recognise it.

A corpus of disguises of one patient's name, each with the expected outcome: a post
containing one of the first group can never be approved; the second group are
near-misses that must not block a post (a false alarm here has no override).
"""

from __future__ import annotations

import pytest

from engine.posts.leaks import appears, echoes

NAME = "Maria Garcia"

#: Variants a reader recognises as the name (how it could get there in brackets).
REVEALING = {
    "plain": "Our thoughts are with Maria Garcia.",
    "lower": "maria garcia",
    "upper": "MARIA GARCIA",
    "mixed-case": "mARIA gARCIA",
    "surname-first-comma": "Garcia, Maria",
    "surname-first": "Garcia Maria",
    "hyphen": "Maria-Garcia",
    "underscore": "Maria_Garcia",
    "no-space (replace(' ',''))": "MariaGarcia",
    "hashtag": "#MariaGarcia",
    "handle": "@MariaGarcia",
    "spaced letters (|join(' '))": "M a r i a   G a r c i a",
    "spaced letters, one space": "M a r i a G a r c i a",
    "dotted letters": "M.a.r.i.a G.a.r.c.i.a",
    "hyphenated letters": "M-a-r-i-a G-a-r-c-i-a",
    "reversed (|reverse)": "aicraG airaM",
    "reversed lower": "aicrag airam",
    "reversed and spaced": "a i c r a G   a i r a M",
    "reversed surname first": "airaM aicraG",
    "cyrillic a": "M\u0430ria G\u0430rcia",
    "cyrillic a, i, c": "M\u0430r\u0456\u0430 G\u0430r\u0441\u0456\u0430",
    "greek capitals": "\u039cARIA GARCIA",
    "precomposed accents": "María García",
    "combining accents": "Mari\u0301a Garci\u0301a",
    "rtl override": "\u202eaicraG airaM\u202c",
    "zero-width space": "Ma\u200bria Gar\u200bcia",
    "soft hyphen": "Ma\u00adria Garcia",
    "word joiner": "Mar\u2060ia Garcia",
    "fullwidth": "\uff2d\uff41\uff52\uff49\uff41\u3000\uff27\uff41\uff52\uff43\uff49\uff41",
    "mathematical bold": "\U0001d40c\U0001d41a\U0001d42b\U0001d422\U0001d41a \U0001d406\U0001d41a\U0001d42b\U0001d41c\U0001d422\U0001d41a",
    "circled letters": "\u24c2\u24d0\u24e1\u24d8\u24d0 \u24bc\u24d0\u24e1\u24d2\u24d8\u24d0",
    "html entity space": "Maria&nbsp;Garcia",
    "html numeric entity": "&#77;aria Garcia",
    "line break": "Maria\nGarcia",
    "tab": "Maria\tGarcia",
    "double space": "Maria  Garcia",
    "full stop between": "Maria. Garcia",
    "slash": "Garcia/Maria",
    "brackets": "(Maria) (Garcia)",
    "quoted surname": "Maria 'Garcia'",
    "double-barrelled": "Our patient Maria Garcia-Lopez",
    "spaced, surname first": "G a r c i a, M a r i a",
}

#: Near-misses: not the name as a reader sees it, or not all of it.
NOT_REVEALING = {
    "first name alone": "Maria is one of our nurses.",
    "surname alone": "The Garcia wing is open.",
    "initial": "M. Garcia",
    "another surname": "Maria Garza",
    "longer names": "Mariana Garcias",
    "not adjacent": "Garcia Hospital's Maria ward",
    "digit look-alikes (known miss)": "Mar1a Garc1a",
}


@pytest.mark.parametrize("text", list(REVEALING.values()), ids=list(REVEALING))
def test_a_disguised_confidential_value_is_found(text):
    assert appears(NAME, text)


@pytest.mark.parametrize("text", list(NOT_REVEALING.values()), ids=list(NOT_REVEALING))
def test_a_near_miss_is_not_a_leak(text):
    assert not appears(NAME, text)


def test_the_corpus_counts():
    """The figures quoted for this scanner: every revealing variant found, no near-miss."""
    found = sum(appears(NAME, t) for t in REVEALING.values())
    false = sum(appears(NAME, t) for t in NOT_REVEALING.values())
    assert (found, len(REVEALING), false) == (len(REVEALING), 42, 0)


@pytest.mark.parametrize("value, text, expected", [
    ("MRN-00123456", "Your record 00123456 was affected.", True),  # a long number on its own
    ("MRN-00123456", "Quote 0012 3456 when you call.", True),  # spaced digits are the same number
    ("MRN-00123456", "Quote 0012 3457 when you call.", False),
    ("12345", "Call 555 123 4567", False),  # short values: whole words only
    ("Ana Li", "Thanks, Ana Li", True),
    ("Ana Li", "banana lime", False),
    ("Jo", "Jo was here", False),  # under 3 characters: not looked for
])
def test_numbers_and_short_values(value, text, expected):
    assert appears(value, text) is expected


def test_echoes_name_the_field_and_the_input():
    state = {"title": "Complaint by Garcia, Maria", "inputs": {"patient_name": NAME, "ward": "Maria-Garcia ward"},
             "plan": {"inputs": {"patient_name": {"confidential": True}, "ward": {"confidential": False}}}}
    assert echoes(state) == [("title", "patient_name"), ("ward", "patient_name")]
