"""The HTML report as a person sees it: rendered and printed by a real headless Chromium.

Skipped only when no Chromium is installed (CI installs Debian's `chromium`).
A copy of the report gets a small probe script appended (the report itself has no
scripts) that reads the laid-out page; Chromium prints the resulting DOM.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import VIRAL_START

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (CI installs one)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

PROBE = """<script>
const banner = document.querySelector('.drill-banner');
const box = banner ? banner.getBoundingClientRect() : null;
const facts = {
  title: document.title,
  h1: document.querySelector('h1').innerText,
  bannerText: banner ? banner.innerText : null,
  bannerVisible: !!box && box.height > 0 && getComputedStyle(banner).visibility !== 'hidden',
  bannerFixed: banner ? getComputedStyle(banner).position : null,
  timelineRows: document.querySelectorAll('table.timeline tbody tr').length,
  scripts: document.querySelectorAll('script').length,
  externalAssets: [...document.querySelectorAll('link[href], img[src], script[src]')].length,
  noteShownAsText: document.body.innerText.includes('<img src=x onerror=alert(1)>'),
  wide: document.documentElement.scrollWidth <= window.innerWidth + 1,
};
document.body.setAttribute('data-facts', JSON.stringify(facts));
</script>"""


def _chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def _page_facts(html_path, tmp_path) -> dict:
    probe = tmp_path / "probed.html"
    probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                     encoding="utf-8")
    result = _chromium("--window-size=1024,768", "--virtual-time-budget=5000", "--dump-dom",
                       probe.as_uri(), tmp_path=tmp_path)
    found = re.search(r"data-facts=\"([^\"]*)\"", result.stdout)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


@pytest.fixture
def drill_report(cli, store, tmp_path):
    incident = "DRILL-20260314-001"
    assert cli("drill", *VIRAL_START[1:]).exit_code == 0
    assert cli("note", incident, "<img src=x onerror=alert(1)>").exit_code == 0
    assert cli("task", incident, "confirm_post").exit_code == 0
    assert cli("advance-clock", incident, "20m").exit_code == 0
    out = tmp_path / "report.html"
    assert cli("report", incident, "--format", "html", "-o", str(out)).exit_code == 0
    return out, len(list(store.events(incident)))


def test_the_rendered_report_shows_the_drill_banner_and_the_whole_timeline(drill_report, tmp_path):
    path, events = drill_report
    facts = _page_facts(path, tmp_path)
    assert facts["title"].startswith("DRILL")
    assert facts["bannerVisible"] and "NOT A REAL INCIDENT" in facts["bannerText"]
    assert facts["timelineRows"] == events
    assert facts["scripts"] == 1  # only the test's probe: the report itself runs no script
    assert facts["externalAssets"] == 0
    assert facts["noteShownAsText"], "a hostile note must be shown as text, not run"
    assert facts["wide"], "the page must fit the window without horizontal scrolling"


def test_the_report_prints_to_pdf(drill_report, tmp_path):
    path, _ = drill_report
    pdf = tmp_path / "report.pdf"
    result = _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", path.as_uri(), tmp_path=tmp_path)
    assert pdf.is_file(), result.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 1
