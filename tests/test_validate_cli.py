"""The playbook commands a playbook author uses before a crisis: validate, schema,
graph and show. Each exits with its documented code and never prints a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from engine.format.loader import load_playbook

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
SHIPPED = sorted(PLAYBOOKS.glob("*.yaml"))
VIRAL = PLAYBOOKS / "viral-complaint.yaml"
CORPUS = ROOT / "tests" / "bad_playbooks"


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    return result


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the viral-complaint playbook with one mistake: a duration written in words."""
    text = VIRAL.read_text(encoding="utf-8")
    text = text.replace("    deadline: 4h\n", "    deadline: 4 hours\n", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# -- validate ----------------------------------------------------------------------


def test_validate_shipped_playbooks_exits_0(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("validate", "playbooks")
    assert result.exit_code == 0, result.output
    for path in SHIPPED:
        assert f"playbooks/{path.name}: ok" in result.output
    assert f"{len(SHIPPED)} valid, 0 invalid" in result.output


def test_validate_defaults_to_the_playbooks_folder(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "playbooks/viral-complaint.yaml: ok (viral-complaint v1.3)" in result.output


def test_validate_prints_location_field_message_source_line_and_caret(broken: Path):
    result = run("validate", str(broken))
    assert result.exit_code == 3
    line = _line_of(broken, "deadline: 4 hours")
    source = broken.read_text(encoding="utf-8").splitlines()[line - 1]
    col = source.index("4 hours") + 1
    lines = result.output.splitlines()
    head = f"{broken}:{line}:{col}: stages.private_outreach.deadline: '4 hours' is not a duration"
    index = next(i for i, text in enumerate(lines) if text.startswith(head))
    assert lines[index + 1] == "    " + source
    assert lines[index + 2] == "    " + " " * (col - 1) + "^"
    assert "1 playbook(s) checked: 0 valid, 1 invalid (1 problem(s))" in result.output


def test_validate_every_line_has_the_file_line_col_field_shape():
    path = CORPUS / "several-meaning-mistakes.yaml"
    result = run("validate", str(path))
    assert result.exit_code == 3
    heads = [ln for ln in result.output.splitlines() if ln.startswith(str(path))]
    assert len(heads) == 3
    for head in heads:
        assert re.fullmatch(re.escape(str(path)) + r":\d+:\d+: [\w.\[\]]+: .+", head), head


def test_validate_mixed_folder_reports_each_file_and_exits_3(tmp_path: Path, broken: Path):
    (tmp_path / "good.yaml").write_text(VIRAL.read_text(encoding="utf-8"), encoding="utf-8")
    result = run("validate", str(tmp_path))
    assert result.exit_code == 3
    assert f"{tmp_path / 'good.yaml'}: ok" in result.output
    assert f"{broken}:" in result.output
    assert "2 playbook(s) checked: 1 valid, 1 invalid" in result.output


def test_validate_json(broken: Path):
    result = run("validate", "--json", str(broken), str(VIRAL))
    assert result.exit_code == 3
    data = json.loads(result.output)
    bad, good = data
    assert (bad["path"], bad["valid"]) == (str(broken), False)
    (error,) = bad["errors"]
    assert error["line"] == _line_of(broken, "deadline: 4 hours")
    assert error["col"] >= 1
    assert error["field"] == "stages.private_outreach.deadline"
    assert "is not a duration" in error["message"]
    assert (good["path"], good["valid"], good["errors"]) == (str(VIRAL), True, [])
    assert good["id"] == "viral-complaint"


def test_validate_json_valid_only_exits_0():
    result = run("validate", "--json", str(VIRAL))
    assert result.exit_code == 0
    assert json.loads(result.output)[0]["valid"] is True


def test_validate_missing_path_exits_3(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    result = run("validate", str(missing))
    assert result.exit_code == 3
    assert f"{missing}: no such file" in result.output


def test_validate_empty_folder_exits_3(tmp_path: Path):
    result = run("validate", str(tmp_path))
    assert result.exit_code == 3
    assert "no *.yaml or *.yml playbooks" in result.output


def test_validate_json_for_a_yaml_syntax_error_has_no_field():
    path = CORPUS / "tab-indentation.yaml"
    result = run("validate", "--json", str(path))
    assert result.exit_code == 3
    (error,) = json.loads(result.output)[0]["errors"]
    assert error["field"] == "" and error["line"] == 10 and "tab" in error["message"]


# -- schema ------------------------------------------------------------------------


def _schema() -> dict:
    result = run("schema")
    assert result.exit_code == 0
    return json.loads(result.output)


def test_schema_is_a_json_schema_of_the_format():
    schema = _schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert {"stages", "roles", "templates", "transitions"} <= set(schema["properties"])
    assert {"id", "name", "version", "roles", "stages"} <= set(schema["required"])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_playbook_validates_against_the_schema(path: Path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


def test_schema_refuses_an_unknown_key():
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load(VIRAL.read_text(encoding="utf-8"))
    data["owner"] = "comms"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, _schema(), cls=jsonschema.Draft202012Validator)


# -- graph -------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_graph_is_a_mermaid_state_diagram(path: Path):
    pb = load_playbook(path).playbook
    result = run("graph", str(path))
    assert result.exit_code == 0, result.output
    lines = [ln.strip() for ln in result.output.splitlines()]
    assert "stateDiagram-v2" in lines
    assert f"[*] --> {pb.initial_stage}" in lines
    edges = [ln for ln in lines if re.match(r"\w+ --> \w+: ", ln)]
    expected = [(src, tr.to, trigger) for trigger, tr in pb.transitions.items() for src in tr.source]
    assert len(edges) == len(expected)
    for src, to, trigger in expected:
        assert any(ln.startswith(f"{src} --> {to}: {trigger}") for ln in edges), (src, to, trigger)
    for sid in pb.terminal_stages():
        assert f"{sid} --> [*]" in lines
    for sid, stage in pb.stages.items():  # each stage is drawn with its title
        (state,) = [ln for ln in lines if ln.startswith('state "') and ln.endswith(f'" as {sid}')]
        assert all(word in state for word in re.findall(r"\w+", stage.title)), (state, stage.title)


def test_graph_of_viral_complaint_uses_stage_titles_and_guards():
    result = run("graph", str(VIRAL))
    assert 'state "Detect and triage (15m)" as triage' in result.output
    assert "triage --> acknowledge: acknowledge [tasks confirm_post; inputs complaint_url]" in result.output
    assert "resolved --> [*]" in result.output


# -- show --------------------------------------------------------------------------


def test_show_names_roles_stages_transitions_templates_and_confidential_inputs():
    pb = load_playbook(VIRAL).playbook
    result = run("show", str(VIRAL))
    assert result.exit_code == 0, result.output
    out = result.output
    for section in ("Roles:", "Inputs:", "Stages:", "Transitions:", "Templates:"):
        assert section in out
    for name in [*pb.roles, *pb.stages, *pb.transitions, *pb.templates]:
        assert re.search(rf"^\s+{re.escape(name)}\b", out, re.M), name
    for name, spec in pb.inputs.items():
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
        assert ("CONFIDENTIAL" in line) is spec.confidential, line


# -- graph and show refuse what validate refuses -----------------------------------


@pytest.mark.parametrize("command", ["graph", "show"])
def test_graph_and_show_on_a_broken_playbook_exit_3_with_the_location(command: str, broken: Path):
    result = run(command, str(broken))
    assert result.exit_code == 3
    line = _line_of(broken, "deadline: 4 hours")
    assert f"{broken}:{line}:" in result.stderr
    assert "is not a duration" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["graph", "show"])
@pytest.mark.parametrize("case", ["tab-indentation", "alias-bomb", "not-utf8", "empty-file"])
def test_graph_and_show_on_hostile_files_exit_3(command: str, case: str):
    result = run(command, str(CORPUS / f"{case}.yaml"))
    assert result.exit_code == 3
    assert str(CORPUS / f"{case}.yaml") in result.stderr


@pytest.mark.parametrize("command", ["graph", "show"])
def test_graph_and_show_on_a_missing_file_exit_4(command: str, tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    result = run(command, str(missing))
    assert result.exit_code == 4
    assert "no such playbook file" in result.stderr


def test_the_committed_schema_is_the_one_the_code_prints():
    """Editors point at docs/playbook.schema.json: it must not drift from the models."""
    from cli import main

    printed = CliRunner().invoke(main, ["schema"]).stdout
    committed = (Path(__file__).resolve().parents[1] / "docs" / "playbook.schema.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(printed), "run: playbook schema > docs/playbook.schema.json"
