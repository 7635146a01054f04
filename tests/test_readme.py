"""The README's commands work as shown: a newcomer can trust every example."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
#: What CI runs: the locked versions with their hashes, then the project itself.
TEST_COMMAND = ("pip install --require-hashes -r requirements-test.lock && "
                "pip install --no-deps --no-build-isolation -e . && pytest")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _console_commands() -> list[tuple[list[str], int]]:
    """Each `$ playbook ...` line with the exit code its comment promises (default 0)."""
    out = []
    for block in _blocks("console"):
        for line in block.splitlines():
            if not line.startswith("$ "):
                continue
            command, _, comment = line[2:].partition("#")
            expected = re.search(r"exits (\d+)", comment)
            args = shlex.split(command)
            assert args[0] == "playbook", line
            out.append((args[1:], int(expected.group(1)) if expected else 0))
    return out


@pytest.fixture
def in_scratch(tmp_path, monkeypatch):
    (tmp_path / "playbooks").symlink_to(ROOT / "playbooks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    return tmp_path


def test_the_walkthrough_runs_in_order_with_the_promised_exit_codes(cli, in_scratch):
    commands = _console_commands()
    assert len(commands) >= 15
    for args, expected in commands:
        result = cli(*args)
        assert result.exit_code == expected, (args, result.output)
    assert (in_scratch / "checkpoint.json").is_file()
    assert list((in_scratch / "outbox").rglob("public_ack.x.en.v1.json"))


def test_the_quick_start_command_works_after_installing(cli, in_scratch):
    (block,) = [b for b in _blocks("sh") if "playbook start" in b]
    steps = [shlex.split(step) for step in block.strip().split("&&")]
    installs = [args for args in steps if args[0] == "pip"]
    assert steps[:len(installs)] == installs and installs[0][:2] == ["pip", "install"]
    assert "requirements.lock" in installs[0], "the quick start installs from the lock"
    for args in steps[len(installs):]:
        assert args[0] == "playbook"
        result = cli(*args[1:])
        assert result.exit_code == 0, result.output
    assert "Started INC-20260314-001" in result.output


def test_the_ci_runs_the_readmes_test_command():
    marker = README.index("<!-- ci-test-command -->")
    block = re.search(r"```sh\n(.*?)```", README[marker:], flags=re.S).group(1).strip()
    assert block == TEST_COMMAND
    assert "ci-test-command" in (ROOT / ".ci" / "run").read_text()


def test_the_minimal_playbook_in_the_readme_is_valid(tmp_path):
    from engine.format.loader import load_playbook

    (example,) = [b for b in _blocks("yaml") if b.startswith("id: minimal")]
    path = tmp_path / "minimal.yaml"
    path.write_text(example, encoding="utf-8")
    loaded = load_playbook(path)
    assert loaded.playbook.id == "minimal"
    assert yaml.safe_load(example)["stages"]["closed"]["terminal"] is True
