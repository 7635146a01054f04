"""The playbook format, as pydantic models.

These models check the *shape* of a playbook: types, required fields, unknown keys
(always errors), durations. Checks that need the whole playbook at once (dangling
references, reachability, templates) live in :mod:`engine.format.checks`, so that both
kinds of problem are reported together, each with its file:line:col.

The models are strict: a YAML value is never coerced into another type, so
``title: NO`` (a boolean to YAML 1.1) is an error instead of the text ``False``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .durations import parse_duration
from .monitors import Monitor

#: Shortest update cadence a playbook may ask for. Anything tighter is a typo
#: (``every 2m`` instead of ``2h``) and would bury a team in breach alerts.
MIN_CADENCE = timedelta(minutes=5)

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64),
    Field(description="lower_snake_case identifier"),
]
PlaybookId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64),
]
Lang = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
    Field(description="a language tag such as en, es, pt-BR"),
]
Text = Annotated[str, StringConstraints(max_length=20_000)]


def _check_duration(value: str) -> str:
    parse_duration(value)  # raises ValueError with a helpful message
    return value


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(
        description="a duration: a number and a unit (s, m, h, d), e.g. 15m, 2h, 1h30m",
        examples=["15m", "2h", "1d"],
    ),
]
InputType = Literal[
    "string", "text", "url", "email", "phone", "datetime", "date", "enum", "integer", "boolean"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Role(_Model):
    """A named responsibility; people are assigned to roles per incident."""

    title: str
    description: str = ""
    required: bool = Field(False, description="must be filled before the incident can start")


class Input(_Model):
    """A typed incident variable, set at start (``--set name=value``)."""

    # values before default, and checked field by field, so that each problem is
    # reported at the line of the key that has to change
    type: InputType = "string"
    description: str = ""
    required: bool = False
    values: list[str] | None = Field(
        None, description="allowed values, for type enum", validate_default=True
    )
    default: Union[str, int, bool, None] = None
    confidential: bool = Field(
        False, description="never rendered into a public channel (patient name, record number)"
    )
    public_contact: bool = Field(
        False,
        description="the organisation's own public contact (helpline, press email): its value "
        "is not flagged as a possible identifier in public posts",
    )
    identifies_person: bool = Field(
        False,
        description="holds a member of the public's name or handle (the complainant): in a "
        "public post only as the leading @mention of a reply, which validate checks",
    )

    @field_validator("public_contact")
    @classmethod
    def _contact_not_confidential(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("confidential"):
            raise ValueError("an input cannot be both confidential and a public contact")
        return value

    @field_validator("values")
    @classmethod
    def _values_match_type(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        kind = info.data.get("type")
        if kind == "enum" and not values:
            raise ValueError("an enum input needs a non-empty list of values")
        if kind is not None and kind != "enum" and values is not None:
            raise ValueError(f"values only apply to enum inputs, not {kind}")
        return values

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return value
        if info.data.get("required"):
            raise ValueError("a required input cannot also have a default")
        kind = info.data.get("type")
        if kind is None:
            return value
        # a YAML value is never coerced: `default: 14:30` is the number 870 to YAML 1.1
        want, what = {"integer": (int, "a whole number"), "boolean": (bool, "true or false")}.get(
            kind, (str, "text"))
        if isinstance(value, bool) is not (want is bool) or not isinstance(value, want):
            article = "an" if kind[0] in "aeiou" else "a"
            raise ValueError(f"the default of {article} {kind} input must be {what}, not {value!r}")
        values = info.data.get("values")
        if kind == "enum" and values and value not in values:
            raise ValueError(f"default {value!r} is not one of the values {values}")
        return value


#: Shortest repeat of an escalation ladder's last step: anything tighter pages people
#: faster than they can answer.
MIN_REPEAT = timedelta(minutes=5)


def _check_after(value: str) -> str:
    if not (isinstance(value, str) and value.strip() in ("0", "0s", "0m", "0h")):
        parse_duration(value)  # 0m is the moment of the breach; anything else a real duration
    return value


class LadderStep(_Model):
    """One rung of an escalation ladder: whom to notify, how long after the breach."""

    after: Annotated[str, AfterValidator(_check_after)] = Field(
        description="time since the clock was missed (its due time): 0m, 15m, 1h", examples=["0m", "15m"])
    notify: list[Id] = Field(min_length=1, description="roles to notify: the incident's own roles (the people "
                             "holding them), or on-call roles found in the roster outside the playbook")
    repeat: Duration | None = Field(None, description="on the last step only: notify again this often "
                                    "until someone acknowledges (playbook ack)")

    @property
    def after_seconds(self) -> int:
        return 0 if self.after.strip() in ("0", "0s", "0m", "0h") else int(parse_duration(self.after).total_seconds())

    @field_validator("repeat")
    @classmethod
    def _not_too_often(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) < MIN_REPEAT:
            raise ValueError(f"a ladder that repeats more often than every 5m is not workable: {value!r}")
        return value


class EscalationStep(_Model):
    """Whom to notify and where to move when a clock is missed: once (``notify``), or up
    a ladder of steps that climbs and repeats until someone acknowledges (``ladder``)."""

    notify: list[Id] = Field(default_factory=list, description="roles to notify")
    move_to: Id | None = Field(None, description="stage to move the incident to, if any")
    ladder: list[LadderStep] | None = Field(
        None, min_length=1, description="steps with delays, climbed while nobody acknowledges: "
        "[{after: 0m, notify: [incident_lead]}, {after: 15m, notify: [head_of_comms]}, "
        "{after: 30m, notify: [executive_on_call], repeat: 30m}]")

    @field_validator("ladder")
    @classmethod
    def _notify_or_ladder(cls, value: list | None, info: ValidationInfo) -> list | None:
        if value is not None and info.data.get("notify"):
            raise ValueError("give either notify: (once) or ladder: (steps), not both; "
                             "put notify:'s roles in the ladder's first step (after: 0m)")
        return value


class Escalation(EscalationStep):
    """What happens when a clock is missed; ``by_severity`` replaces it for an incident of
    that severity (e.g. a critical incident also pages the executive on call)."""

    by_severity: dict[str, EscalationStep] = Field(
        default_factory=dict, description="severity -> the escalation for incidents of that severity")


Within = Union[Duration, Annotated[dict[str, Duration], Field(min_length=1)]]
Anchor = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64),
    Field(description="what the clock counts from: start (the incident's start), entry (entering "
          "the stage), or the name of a datetime input such as discovered_at"),
]


class Until(_Model):
    """What meets an incident-wide target: a template published, or a stage reached."""

    published: Id | None = Field(None, description="a post of this template is published")
    reached: Id | None = Field(None, description="the incident enters this stage")

    @model_validator(mode="after")
    def _one(self) -> "Until":
        if (self.published is None) == (self.reached is None):
            raise ValueError("until: names exactly one of published: TEMPLATE or reached: STAGE")
        return self


class Clock(_Model):
    """An incident-wide target: ``within`` of ``from`` (default: the start), until ``until``."""

    title: str = ""
    within: Within = Field(description="a duration, or one per severity: {critical: 30m, high: 60m}")
    anchor: Anchor | None = Field(None, alias="from")
    until: Union[Literal["first_public_post"], Until] = "first_public_post"
    escalate: Escalation | None = None


class Deadline(_Model):
    """Time allowed in a stage (``until: exit``) or until its first public post, counted
    from entering the stage unless ``from:`` names the start or a datetime input."""

    within: Within = Field(description="a duration, or one per severity: {critical: 30m, high: 60m}")
    anchor: Anchor | None = Field(None, alias="from")
    until: Literal["exit", "first_public_post"] = "exit"
    escalate: Escalation | None = None


class Cadence(_Model):
    """A public update is due at least this often while in the stage."""

    every: Duration
    escalate: Escalation | None = None

    @field_validator("every")
    @classmethod
    def _sane(cls, value: str) -> str:
        if parse_duration(value) < MIN_CADENCE:
            raise ValueError(f"an update cadence shorter than 5m is not workable: {value!r}")
        return value


class Listening(_Model):
    """Inbound messages (mentions, reviews, calls): how soon each one must be answered."""

    respond_within: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")], Duration] = Field(
        default_factory=dict, description="time to answer a message, per source or channel (e.g. "
        "{default: 60m, phone: 30m}); counted from when it was posted; a source not named takes "
        "default, and without default has no clock")
    escalate: Escalation | None = Field(None, description="what happens when a message waits too long")


def _deadline(value: object) -> object:
    return Deadline(within=value) if isinstance(value, str) else value


def _cadence(value: object) -> object:
    if not isinstance(value, str):
        return value
    every = value.strip().removeprefix("every").strip()
    if parse_duration(every) < MIN_CADENCE:
        raise ValueError(f"an update cadence shorter than 5m is not workable: {value!r}")
    return Cadence(every=every)


class Stage(_Model):
    title: str
    description: str = ""
    tasks: dict[Id, Text] = Field(
        default_factory=dict, description="checklist: task id -> what to do"
    )
    templates: list[Id] = Field(default_factory=list, description="templates sent in this stage")
    deadline: Annotated[Union[Duration, Deadline, None], AfterValidator(_deadline)] = None
    updates: Annotated[Union[str, Cadence, None], AfterValidator(_cadence)] = Field(
        None, description="update cadence, e.g. 'every 2h'"
    )
    terminal: bool = Field(False, description="the incident is closed while here")


class Guard(_Model):
    """What must be true before a transition may fire."""

    tasks: list[Id] = Field(default_factory=list, description="tasks that must be done")
    published: list[Id] = Field(
        default_factory=list, description="templates with a published post in this incident"
    )
    approved: list[Id] = Field(
        default_factory=list, description="templates with an approved post in this incident"
    )
    inputs: list[Id] = Field(default_factory=list, description="inputs that must have a value")


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Transition(_Model):
    """A named move (the trigger) from one or more stages to one stage."""

    source: Annotated[Union[Id, list[Id]], AfterValidator(_as_list)] = Field(alias="from")
    to: Id
    title: str = ""
    roles: list[Id] = Field(min_length=1, description="roles allowed to fire this transition")
    requires: Guard = Field(default_factory=Guard)
    reopen: bool = Field(False, description="allowed out of a terminal stage")


class EmailText(_Model):
    subject: Text
    body: Text


class Policy(_Model):
    """Roles whose approval a post needs: all of ``all_of`` and ``min`` of ``any_of``."""

    all_of: list[Id] = Field(default_factory=list)
    any_of: list[Id] = Field(default_factory=list)
    min: int = Field(1, ge=1)
    signed: bool = Field(
        False, description="each approval must be an electronic signature: given on the team server "
        "by a person who signed in again within the last few minutes (an asserted local approval is "
        "refused)")

    @field_validator("min")
    @classmethod
    def _enough_roles(cls, value: int, info: ValidationInfo) -> int:
        any_of = info.data.get("any_of")
        if any_of and value > len(any_of):
            raise ValueError(f"min is {value} but any_of names only {len(any_of)} roles")
        return value

    @model_validator(mode="after")
    def _some_role(self) -> "Policy":
        if not self.all_of and not self.any_of:
            raise ValueError("name at least one approving role in all_of or any_of")
        return self


#: The findings of the public-text check (see :mod:`engine.format.publictext`).
PublicTextCheck = Literal["confirms_care", "admission", "names_person", "macro_language",
                          "no_phrase_list"]


class Allowance(_Model):
    """Silences one finding of the public-text check on one template, for a stated reason."""

    check: PublicTextCheck
    reason: str = Field(description="why this text is right despite the finding (shown by show)")
    phrase: str | None = Field(
        None, description="only the finding on this phrase (default: every finding of the check)")

    @field_validator("reason")
    @classmethod
    def _stated(cls, value: str) -> str:
        if len(value.split()) < 3:
            raise ValueError("state the reason in a few words, so a reviewer can judge it")
        return value


class Phrases(_Model):
    """Phrases the public-text check looks for in one language, besides the shipped lists.
    A trailing or leading * lets a phrase match inside a longer word (negligen*)."""

    confirms_care: list[Annotated[str, StringConstraints(min_length=2)]] = Field(
        default_factory=list, description="phrases that confirm a care relationship")
    admission: list[Annotated[str, StringConstraints(min_length=2)]] = Field(
        default_factory=list, description="admissions of fault or cause, absolute promises")


class Approval(Policy):
    """The approval policy of a template; ``languages`` replaces it for posts in a language
    (e.g. Turkish posts approved by the Turkish-speaking liaison)."""

    languages: dict[Lang, Policy] = Field(
        default_factory=dict, description="language -> the policy for posts in that language")

    def policy_for(self, lang: str) -> dict:
        """The policy a post in `lang` is drafted under (recorded with each version)."""
        chosen = self.languages.get(lang, self)
        policy = {"all_of": list(chosen.all_of), "any_of": list(chosen.any_of), "min": chosen.min}
        return {**policy, "signed": True} if chosen.signed else policy


Audience = Literal["public", "direct", "internal"]


class Template(_Model):
    """Message text per channel and language (Jinja2, sandboxed)."""

    title: str = ""
    description: str = ""
    audience: Audience | None = Field(
        None, description="who reads it: public (a broadcast: confidential inputs refused, "
        "identifiers flagged, counts for the public clocks), direct (one person, e.g. a "
        "patient) or internal (staff). Default: public on x, bluesky, mastodon, facebook, "
        "linkedin, web and sms; direct on email; internal on chat")
    approval: Approval
    allow: list[Allowance] = Field(
        default_factory=list, description="public-text findings accepted on this template, "
        "each with its reason")
    channels: dict[str, dict[Lang, Union[Text, EmailText]]] = Field(min_length=1)
    per_recipient: bool = Field(
        False, description="rendered once per individual recipient (render --recipient REF): each "
        "recipient's message is its own post, approved, published and delivered on its own")
    also_in: list[Id] = Field(
        default_factory=list, description="other stages where this template may be rendered too "
        "(e.g. a reactive holding statement, for the moment a story breaks)")


class ChannelSettings(_Model):
    limit: int = Field(gt=0, description="length limit, in the channel's own unit")


def _target(value: object) -> object:
    return Clock(within=value) if isinstance(value, str) else value


Target = Annotated[Union[Duration, Clock], AfterValidator(_target)]


def _version(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Playbook(_Model):
    """A crisis response: roles, inputs, stages, transitions and message templates."""

    id: PlaybookId
    name: str
    version: Annotated[Union[str, int], AfterValidator(_version)]
    description: str = ""
    severities: list[str] = Field(
        default_factory=lambda: ["low", "medium", "high", "critical"], min_length=1
    )
    initial: Id | None = Field(None, description="first stage (default: the first listed)")
    roles: dict[Id, Role] = Field(min_length=1)
    managers: list[Id] | None = Field(
        None, description="roles that may assign and unassign people during an incident "
        "(default: the roles allowed to fire at least one transition)")
    inputs: dict[Id, Input] = Field(default_factory=dict)
    stages: dict[Id, Stage] = Field(min_length=1)
    transitions: dict[Id, Transition] = Field(default_factory=dict)
    templates: dict[Id, Template] = Field(default_factory=dict)
    channels: dict[str, ChannelSettings] = Field(
        default_factory=dict, description="per-channel settings, e.g. {x: {limit: 280}}"
    )
    targets: dict[Id, Target] = Field(
        default_factory=dict,
        description="incident-wide clocks: first_public_post (the acknowledgement), and any named "
        "deadline such as regulator_notified: {within: 72h, from: discovered_at, until: "
        "{published: regulator_notification}}",
    )
    region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        None, description="the organisation's country (ISO 3166-1 alpha-2, e.g. US, GB, ES): how "
        "phone numbers without a country code are read in the identifier scan (default: "
        "$PLAYBOOK_REGION at start, else US)")
    inbound: Listening | None = Field(None, description="response clocks for inbound messages")
    monitors: dict[Id, Monitor] = Field(default_factory=dict, description=(
        "rules over inbound messages that open an incident of this playbook (or page someone to "
        "confirm) when enough matching messages arrive while none is open"))
    identifiers: dict[Id, str] = Field(
        default_factory=dict,
        description="extra regular expressions for identifiers that must not appear in public posts",
    )
    lexicon: dict[Lang, Phrases] = Field(
        default_factory=dict,
        description="the organisation's own phrases for the public-text check, per language, "
        "added to the shipped lists",
    )

    @property
    def initial_stage(self) -> str:
        return self.initial or next(iter(self.stages))

    def manager_roles(self) -> list[str]:
        if self.managers is not None:
            return list(self.managers)
        return [r for r in self.roles if any(r in tr.roles for tr in self.transitions.values())]

    def stage_templates(self, stage: str) -> list[str]:
        """The stage's own templates, then those made available there with also_in."""
        own = list(self.stages[stage].templates)
        return own + [t for t, spec in self.templates.items() if stage in spec.also_in and t not in own]

    def terminal_stages(self) -> list[str]:
        return [name for name, stage in self.stages.items() if stage.terminal]

    def audience(self, template: str, channel: str) -> str:
        """Who a template's post on `channel` reaches: its own audience:, else the channel's."""
        from ..posts.channels import CHANNELS

        declared = self.templates[template].audience
        return declared or CHANNELS[channel].audiences[0]

    def channel_limit(self, channel: str) -> int | None:
        settings = self.channels.get(channel)
        return settings.limit if settings else None


def json_schema() -> dict:
    schema = Playbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Crisis communication playbook"
    return schema
