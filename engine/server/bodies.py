"""The JSON bodies the API accepts: strict (unknown fields refused, no value coerced to
another type: `0` is not `false`) and bounded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=100_000)]
Short = Annotated[str, Field(max_length=2_000)]
Values = Annotated[dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=10_000)]],
                   Field(max_length=200)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StartBody(Body):
    playbook: Name = Field(description="a playbook of the server's library, by name (see GET /api/v1/playbooks)")
    title: Name
    severity: Name | None = None
    inputs: Values = Field(default_factory=dict)
    assign: Annotated[dict[Name, Name], Field(max_length=100)] = Field(
        default_factory=dict, description="role -> account name")


class DrillBody(StartBody):
    scenario: Text | None = Field(
        None, description="a scenario's YAML text: {injects: [{at: +10m, message: ...}]}")


class RoleBody(Body):
    role: Name
    person: Name = Field(description="an account name")


class TaskBody(Body):
    done: bool = True


class NoteBody(Body):
    text: Text


class InputsBody(Body):
    values: Values


class AdvanceBody(Body):
    trigger: Name
    reason: Short | None = None


class CloseBody(Body):
    trigger: Name | None = None
    reason: Short | None = None


class RenderBody(Body):
    template: Name
    channels: Annotated[list[Name], Field(max_length=50)] = Field(default_factory=list)
    langs: Annotated[list[Name], Field(max_length=50)] = Field(default_factory=list)
    overrides: Values = Field(default_factory=dict)
    recipients: Annotated[list[tuple[Name, Values]], Field(max_length=5_000)] | None = None


class EditBody(Body):
    post: Name
    text: Text
    subject: Short | None = None


class ApproveBody(Body):
    post: Name
    version: int = Field(ge=1)
    role: Name | None = None
    override_identifiers: Short | None = None
    password: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="sign again now (a session older than 5 minutes cannot sign)")


class RejectBody(Body):
    post: Name
    reason: Short
    version: int | None = Field(None, ge=1)


class PostBody(Body):
    post: Name


class AckBody(Body):
    clock: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="the clock whose escalation to acknowledge (e.g. message:M3); default: every climbing one")
    note: Short = ""


class ClockBody(Body):
    duration: Annotated[str, Field(max_length=40)] = Field(description="e.g. 45m")


class VerifyBody(Body):
    incident: Name | None = None
    fast: bool = False
    full: bool = False  # refold every incident, also those a checkpoint vouches for


class LoginBody(Body):
    name: Name
    password: Annotated[str, Field(max_length=1024)]


Format = Literal["md", "html", "json"]
ExportFormat = Literal["jsonl", "csv"]
