"""The intake API's bodies as pydantic models: the requests (what the handlers validate
with) and the answers, which ``/openapi.json`` describes from them.

The limits are :mod:`notifier.models`' (as Field constraints and patterns, so the schema
states them); each field first goes through the watch-spec parser's own check
(:mod:`notifier.watchspec`), so a problem is worded as on every other intake path and
pydantic's own message never shows. The constraints after it are the same rules, for the
schema: a body the parser takes, they take too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from notifier.config import dotted, kind
from notifier.kinds import DEFAULT_KIND, KINDS, Phase
from notifier.models import (
    DEFAULT_ACCOUNT,
    JOB_ID_RE,
    LABEL_KEY_RE,
    MAX_LABEL_NUMBER,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_LABELS_TEXT,
    WatchState,
    label_map,
)
from notifier.watchspec import (
    ANY_ACCOUNT,
    AccountRule,
    account_check,
    endpoint_problem,
    endpoints_type_problem,
    id_problem,
    kind_check,
    labels_check,
)

#: An account's name, as the config takes it (:func:`notifier.config.accounts.account_name`).
ACCOUNT_NAME_RE = "^[a-z0-9_][a-z0-9_-]{0,39}$"

#: Ids per POST /v1/watches: one request is one transaction on the daemon's loop; a bigger
#: one would hold up polling (about 6 statements an id).
MAX_IDS = 1000


def _problem(message: str) -> PydanticCustomError:
    # The message as a context value: a brace in it is not taken for a placeholder.
    return PydanticCustomError("watch_request", "{problem}", {"problem": message})


def _judged(check: Callable[[object], str | None]) -> BeforeValidator:
    """A validator that runs ``check`` (the parser's) before pydantic looks."""

    def judge(value: object) -> object:
        problem = check(value)
        if problem is not None:
            raise _problem(problem)
        return value

    return BeforeValidator(judge)


def _ids(value: object) -> object:
    if not isinstance(value, list) or not value:
        raise _problem(f"must be a non-empty list of job ids, got {kind(value)}")
    if len(value) > MAX_IDS:
        raise _problem(f"at most {MAX_IDS} per request, got {len(value)}")
    return value


def _labels(value: object) -> object:
    problem = labels_check(value)  # null too: never taken as "no labels"
    if problem is not None:
        raise _problem(problem)
    assert isinstance(value, dict)
    return label_map(value)  # as stored: 7 stays "7", true is "true"


def _endpoint(value: object, info: ValidationInfo) -> object:
    configured: Collection[str] | None = (info.context or {}).get("endpoints")
    problem = endpoint_problem(value, configured)
    if problem is not None:
        raise _problem(problem)
    return value


def _account(value: object, info: ValidationInfo) -> object:
    """The account the watches go to: named (one the caller may use) or, when absent, the
    caller's default; the context's ``accounts`` is the rule (a limited token's view)."""
    rule: AccountRule = (info.context or {}).get("accounts", ANY_ACCOUNT)
    name, problem = account_check(value, rule)
    if problem is not None:
        raise _problem(problem)
    return name


def _reopen(value: object) -> object:
    if not isinstance(value, bool):
        raise _problem(f"must be true or false, got {kind(value)}")
    return value


def _label_schema(schema: dict[str, Any]) -> None:
    """Keys as ``propertyNames`` (pydantic writes ``patternProperties``, which lets any
    other key through), values as ``additionalProperties``."""
    ((pattern, values),) = schema.pop("patternProperties").items()
    schema["propertyNames"] = {"pattern": pattern}
    schema["additionalProperties"] = values


def _nullable(schema: dict[str, Any]) -> None:
    """``anyOf: [X, null]`` as ``type: [X, null]``: one schema for clients to read."""
    first, _null = schema.pop("anyOf")
    schema.update(first, type=[first["type"], "null"])


JobId = Annotated[str, StringConstraints(pattern=JOB_ID_RE.pattern), _judged(id_problem)]
#: A kind's name (:data:`notifier.kinds.KINDS`), checked with the kind table's wording.
KindName = Annotated[str, Field(json_schema_extra={"enum": list(KINDS)}), _judged(kind_check)]
LabelValue = (
    Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]
    | Annotated[float, Field(ge=-MAX_LABEL_NUMBER, le=MAX_LABEL_NUMBER)]
    | bool
)
Labels = Annotated[
    dict[Annotated[str, StringConstraints(pattern=LABEL_KEY_RE.pattern)], LabelValue],
    Field(max_length=MAX_LABELS),
    BeforeValidator(_labels),
]


class WatchRequest(BaseModel):
    """``POST /v1/watches``: the rules of ``watch add``."""

    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[JobId], Field(min_length=1, max_length=MAX_IDS), BeforeValidator(_ids)]
    labels: Labels = Field(
        default_factory=dict,
        json_schema_extra=_label_schema,
        description="Merged into a known watch's labels (given keys win). Stored as strings "
        "(`true`/`false` for booleans). Strings hold no lone UTF-16 surrogate; keys and "
        f"values hold at most {MAX_LABELS_TEXT} characters together, also after a merge",
    )
    endpoints: Annotated[
        list[Annotated[str, BeforeValidator(_endpoint)]] | None,
        _judged(lambda v: None if v is None else endpoints_type_problem(v)),
    ] = Field(
        default=None,
        json_schema_extra=_nullable,
        description="Names of configured endpoints to notify (null or absent: every "
        "endpoint whose events match, or what a known watch has)",
    )
    reopen: Annotated[bool, BeforeValidator(_reopen)] = Field(
        default=False, description="Watch an expired, failed or rejected job again"
    )
    kind: KindName = Field(
        default=DEFAULT_KIND,
        description="The jobs' kind (absent: lip_sync); the same id under two kinds is two watches",
    )
    account: Annotated[
        str | None,
        Field(pattern=ACCOUNT_NAME_RE, json_schema_extra=_nullable),
        BeforeValidator(_account),
    ] = Field(
        default=None,
        validate_default=True,
        description="The jobs' vendor account (absent or null: the only account, or the one "
        "marked default; required otherwise); the same id on two accounts is two watches. "
        "A token limited to some accounts names only those",
    )

    @property
    def stored_labels(self) -> dict[str, str]:
        """``labels`` as the parser stored them: every value a string already (the schema
        types them as a client may send them)."""
        return cast("dict[str, str]", self.labels)

    @property
    def stored_account(self) -> str:
        """``account`` as the validator resolved it (never None after validation)."""
        assert self.account is not None
        return self.account

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        """Unknown keys named as unknown config keys are; a missing ``ids`` worded as a
        wrong one."""
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise _problem(
                    f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(cls.model_fields)})"
                )
            data = {"ids": None, **data}
        return data


class JobRef(BaseModel):
    """A job named by its id; whatever else the object holds is not read."""

    model_config = ConfigDict(extra="allow")

    id: JobId


class CallbackByData(BaseModel):
    """The vendor's detail envelope: the id read is ``data.id``; its other members (the
    result and its message) are not read."""

    model_config = ConfigDict(extra="allow")

    data: JobRef


class CallbackByTop(BaseModel):
    """A bare ``{"id": …}``, read only when there is no ``data.id``."""

    model_config = ConfigDict(extra="allow")

    id: JobId
    data: Annotated[
        Any,
        Field(
            json_schema_extra={
                "anyOf": [
                    {"not": {"type": "object"}},
                    {"type": "object", "properties": {"id": {"type": "null"}}},
                ]
            }
        ),
    ] = None


# -- answers: described, never validated (the handlers build them) ---------------------


def _absent_or(schema: dict[str, Any]) -> None:
    """An optional member that is absent, never null, when it does not apply."""
    first, _null = schema.pop("anyOf")
    schema.pop("default", None)
    schema.update(first)


def _optional_all(schema: dict[str, Any]) -> None:
    """No ``required``: the document promises the shape of what is there (as it did)."""
    schema.pop("required", None)
    for prop in schema["properties"].values():
        prop.pop("default", None)


class ProblemItem(BaseModel):
    """One problem of a request body: where (keys, indexes) and what, in the parser's words."""

    loc: list[str | int]
    msg: str


class ErrorAnswer(BaseModel):
    """Every answer but a success."""

    error: str
    problems: list[ProblemItem] | None = Field(
        default=None,
        json_schema_extra=_absent_or,
        description="A 400 of a request body: every problem found, `error` being the first",
    )


class CallbackAccepted(BaseModel):
    accepted: Literal[True]


class Accepted(BaseModel):
    accepted: int = Field(description="Distinct ids now watched")
    new: int = Field(description="Of them, watches created")
    finished: list[str] = Field(description="Ids not watched: finished already (one event per job)")
    kind: str = Field(description="The watches' kind", json_schema_extra={"enum": list(KINDS)})
    account: str = Field(
        description="The vendor account they are watched on (the default one "
        "when the request named none)"
    )


class WatchAnswer(BaseModel):
    """One watch, as a row of ``watch list --json``."""

    model_config = ConfigDict(json_schema_extra=_optional_all)

    job_id: str = ""
    account: str = Field(default=DEFAULT_ACCOUNT, description="The vendor account")
    kind: str = Field(default=DEFAULT_KIND, json_schema_extra={"enum": list(KINDS)})
    state: WatchState = WatchState.ACTIVE
    phase: Phase | None = Field(
        default=None, description="Where the job was at the last answer (null: none yet)"
    )
    status: int | None = Field(
        default=None, description="The vendor's own last status value, as its kind uses it"
    )
    progress: int | None = None
    msg: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    endpoints: list[str] | None = None
    source: str = Field(
        default="", description="Where it came from: file, queue, discovery or callback"
    )
    added_at: float = Field(default=0, description="Unix seconds")
    last_poll_at: float | None = None
    next_poll_at: float | None = None
    finished_at: float | None = None
    polls: int = 0
    seen: int = 0
    errors: int = 0
    last_error: str | None = None
    rejections: int = 0


class EventAnswer(BaseModel):
    id: str = Field(description="The webhook-id of its deliveries")
    type: str
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventAnswer]
    next: str | None = Field(description="Pass as `after` for the following page")


#: The document's ``components/schemas``, by name.
ANSWERS: dict[str, type[BaseModel]] = {
    "Error": ErrorAnswer,
    "CallbackAccepted": CallbackAccepted,
    "Accepted": Accepted,
    "Watch": WatchAnswer,
    "Event": EventAnswer,
    "EventPage": EventPage,
}


def problems_of(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as the API lists them: ``{"loc": [...], "msg": "..."}`` each."""
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]


def first_problem(problems: list[dict[str, Any]]) -> str:
    """The API's ``error``: the first problem, after where it is."""
    first = problems[0]
    return f"{dotted(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]


def schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema, self-contained (its ``$defs`` inlined) and without the
    titles pydantic gives every property: what the document embeds."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def inline(node: Any, names: bool = False) -> Any:
        """``names``: ``node`` maps property names (one may be called ``title``)."""
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {
                k: inline(v, names=k == "properties" and not names)
                for k, v in node.items()
                if names or k != "title"
            }
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(raw)
    return result
