"""The tool works as an installed package, without a checkout: the wheel carries the
shared partials, the report templates and the shipped playbooks, and a new user gets
started with `playbook playbooks` and `playbook init`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import PLAYBOOKS, ROOT


def test_playbooks_lists_every_shipped_playbook_with_its_title(cli):
    result = cli("playbooks")
    assert result.exit_code == 0
    for path in PLAYBOOKS.glob("*.yaml"):
        assert path.stem in result.output
    listed = json.loads(cli("playbooks", "--json").output)
    assert sorted(e["name"] for e in listed) == sorted(p.stem for p in PLAYBOOKS.glob("*.yaml"))
    assert all(e["title"] and e["version"] for e in listed)


def test_init_copies_a_shipped_playbook_that_validates_with_its_schema_beside_it(cli, tmp_path):
    target = tmp_path / "my-playbook.yaml"
    result = cli("init", "--from", "viral-complaint", str(target))
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.output
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=playbook.schema.json"
    assert text.splitlines()[1:] == (PLAYBOOKS / "viral-complaint.yaml").read_text().splitlines()[1:]
    schema = json.loads((tmp_path / "playbook.schema.json").read_text())
    assert schema == json.loads(cli("schema").output)
    assert cli("validate", str(target)).exit_code == 0


def test_init_into_a_folder_uses_the_shipped_name(cli, tmp_path):
    assert cli("init", "--from", "privacy-breach.yaml", str(tmp_path)).exit_code == 0
    assert (tmp_path / "privacy-breach.yaml").is_file()


def test_init_never_overwrites_without_force(cli, tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("my own edits\n")
    result = cli("init", "--from", "viral-complaint", str(target))
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "my own edits\n"
    assert not (tmp_path / "playbook.schema.json").exists()
    assert cli("init", "--from", "viral-complaint", "--force", str(target)).exit_code == 0
    assert target.read_text().startswith("# yaml-language-server")


@pytest.mark.parametrize("args, code, says", [
    (["--from", "no-such-crisis"], 4, "no shipped playbook 'no-such-crisis' (shipped: medical-tourism"),
    (["--from", "viral-complaint", "{tmp}/missing/x.yaml"], 4, "no such folder"),
    (["--from", "viral-complaint", "{tmp}/x.txt"], 2, "ends in .yaml"),
    ([], 2, "--from"),
])
def test_init_refuses_bad_requests_and_writes_nothing(cli, tmp_path, args, code, says):
    before = sorted(tmp_path.rglob("*"))
    result = cli("init", *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == code
    assert says in result.output
    assert sorted(tmp_path.rglob("*")) == before


def test_a_users_own_partials_folder_adds_to_the_shipped_ones(tmp_path):
    """PLAYBOOK_TEMPLATES, resolved into the configuration, is searched before the shipped partials."""
    from engine.app.config import Config
    from engine.app.context import App
    from engine.errors import Refused
    from engine.posts.render import render_text
    from engine.posts.sandbox import use_partials

    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "ours.j2").write_text("{% macro sign() %}The Comms Team{% endmacro %}")
    source = ('{% from "partials/ours.j2" import sign %}{% from "partials/common.j2" '
              'import hashtags %}{{ sign() }}')
    App(Config.resolve({"PLAYBOOK_TEMPLATES": str(tmp_path)}, db="memory:"))
    try:
        text = render_text(source, {}, html=False, where="t")
    finally:
        use_partials(None)
    assert text == "The Comms Team"
    with pytest.raises(Refused, match="not one of the shared partials"):  # back to the shipped ones only
        render_text(source, {}, html=False, where="t")


def _run(args, **kw):
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_the_built_wheel_works_from_a_folder_outside_the_checkout(tmp_path):
    """Build the wheel, install it with the locked dependencies into a new virtual
    environment, and run a whole incident from an empty folder."""
    import shutil

    source, dist = tmp_path / "source", tmp_path / "dist"  # a copy: no stale build/ folder
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".venv", ".pytest_cache", ".hypothesis"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(source)])
    (wheel,) = dist.glob("crisis_playbook-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/shipped_templates/partials/common.j2" in names
    assert "engine/shipped_templates/report.html.j2" in names
    assert "engine/shipped_playbooks/viral-complaint.yaml" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "--require-hashes", "-r", str(ROOT / "requirements.lock")])
    _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", str(wheel)])

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
    env.update(PLAYBOOK_DB=str(work / "incidents.db"), PLAYBOOK_ACTOR="alice",
               PLAYBOOK_KEY=str(work / "signing.key"), PYTHONPATH="")
    playbook = str(venv / "bin" / "playbook")

    def run(*args):
        return _run([playbook, *args], cwd=work, env=env).stdout

    where = _run([str(py), "-c", "import engine, cli; print(engine.__file__, cli.__file__)"],
                 cwd=work, env=env).stdout
    assert str(ROOT) not in where and str(venv) in where
    assert "viral-complaint" in run("playbooks")
    run("init", "--from", "viral-complaint", "pb.yaml")
    assert "ok (viral-complaint" in run("validate", "--strict", "pb.yaml")  # the phrase lists ship too
    started = run("start", "pb.yaml", "--title", "ER complaint", "--set",
                  "complaint_url=https://x.com/p/status/1", "--set", "complaint_channel=x",
                  "--assign", "incident_lead=alice", "--assign", "spokesperson=bob",
                  "--assign", "compliance=cora", "--assign", "patient_relations=petra", "--json")
    incident = json.loads(started)["id"]
    run("task", incident, "confirm_post")
    run("advance", incident, "acknowledge")
    rendered = run("render", incident, "public_ack", "--channel", "x", "--lang", "en")
    assert "x: " in rendered and "/280" in rendered
    run("report", incident, "--format", "html", "-o", "report.html")
    html = (work / "report.html").read_text(encoding="utf-8")
    assert incident in html and "<html" in html
    assert run("verify", incident).startswith(f"OK: ") and f"events of {incident} verify" in run("verify", incident)


def _pins(lock: str) -> dict[str, str]:
    import re

    text = (ROOT / lock).read_text(encoding="utf-8")
    return {re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_the_locks_pin_every_declared_dependency_with_hashes_and_agree():
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # names compared as the package index normalises them (PEP 503: Mastodon.py is mastodon-py)
    name = lambda req: re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]).lower()
    runtime, test = _pins("requirements.lock"), _pins("requirements-test.lock")
    backend = [name(r) for r in project["build-system"]["requires"]]
    for req in project["project"]["dependencies"] + backend:
        assert name(req) in runtime, f"{req} is not in requirements.lock (run: bash .ci/lock)"
    for extra in project["project"]["optional-dependencies"].values():
        for req in extra:
            assert name(req) in test, f"{req} is not in requirements-test.lock (run: bash .ci/lock)"
    assert {k: test[k] for k in runtime} == runtime, "the two locks disagree (run: bash .ci/lock)"
    for lock in ("requirements.lock", "requirements-test.lock"):
        entries = re.split(r"\n(?=\S)", (ROOT / lock).read_text())
        for entry in (e for e in entries if "==" in e.split("\n", 1)[0]):
            assert "--hash=sha256:" in entry, f"{lock}: {entry.split(chr(10))[0]} has no hash"
