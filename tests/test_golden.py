"""Every post the shipped playbooks draft, rendered with plausible inputs, is kept in
``tests/golden/<playbook>/<template>.<channel>.<lang>.txt`` so that a reviewer (a
privacy officer, a spokesperson) reads all the texts in one place, and a change to a
text shows up in the diff.

After changing a shipped text on purpose, regenerate the files and review the diff:

    UPDATE_GOLDEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.format.playbook import EmailText
from engine.posts.channels import CHANNELS
from engine.posts.sandbox import environment

from test_shipped_playbooks import SHIPPED, _load, sample_context

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

#: Inputs a real incident would have, where the generic samples would read oddly.
PLAUSIBLE = {
    "viral-complaint": {"complaint_url": "https://x.com/someone/status/1800000000000000000",
                        "patient_name": "Jane Doe", "record_number": "7654321"},
    "privacy-breach": {"patient_name": "Jane Doe", "record_number": "7654321",
                       "patient_data_items": "your name, date of birth and the date of one appointment",
                       "regulator_reference": "IC-123456-A1B2"},
    "medical-tourism": {"partner_clinic": "Bosphorus Aesthetic Clinic", "destination_city": "Istanbul",
                        "affected_count": 14, "independent_reviewer": "Northgate Clinical Review",
                        "patient_name": "Jane Doe", "patient_case_ref": "MHT-2024-0193"},
    "public-health-cerc": {"health_department": "Northfield County Public Health",
                           "exposure_location": "Northfield Hospital Emergency Department",
                           "exposure_times": "10:00-16:30", "case_count": 3,
                           "index_case_mrn": "7654321", "short_url": "https://nfh.example/measles"},
}


def _render(stem: str, text, channel: str, flag: bool) -> str:
    pb = _load(stem)
    ctx = {**sample_context(pb, flag), **PLAUSIBLE.get(stem, {})}
    env = environment(html=CHANNELS[channel].html)
    if isinstance(text, EmailText):
        subject = env.from_string(text.subject).render(**ctx)
        return f"Subject: {subject}\n\n{env.from_string(text.body).render(**ctx).strip()}\n"
    return env.from_string(text).render(**ctx).strip() + "\n"


def _posts():
    for path in SHIPPED:
        pb = _load(path.stem)
        for tid, template in pb.templates.items():
            for channel, langs in template.channels.items():
                for lang, text in langs.items():
                    yield pytest.param(path.stem, tid, channel, lang, text,
                                       id=f"{path.stem}/{tid}.{channel}.{lang}")


POSTS = list(_posts())


def expected_text(stem, text, channel) -> str:
    """The post with every yes/no input true, and, when it differs, with them all false."""
    on, off = _render(stem, text, channel, True), _render(stem, text, channel, False)
    if off == on:
        return on
    return on + "\n--- with every yes/no input false ---\n\n" + off


@pytest.mark.parametrize("stem, tid, channel, lang, text", POSTS)
def test_rendered_post_matches_its_golden_file(stem, tid, channel, lang, text):
    path = GOLDEN / stem / f"{tid}.{channel}.{lang}.txt"
    want = expected_text(stem, text, channel)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(want, encoding="utf-8")
    assert path.is_file(), f"no golden file {path.name}; run: UPDATE_GOLDEN=1 pytest tests/test_golden.py"
    assert path.read_text(encoding="utf-8") == want, "run UPDATE_GOLDEN=1 pytest tests/test_golden.py and review the diff"


def test_no_golden_file_is_left_over_from_a_removed_post():
    wanted = {GOLDEN / p.values[0] / f"{p.values[1]}.{p.values[2]}.{p.values[3]}.txt" for p in POSTS}
    assert set(GOLDEN.rglob("*.txt")) - wanted == set()
