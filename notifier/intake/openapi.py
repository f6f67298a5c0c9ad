"""``GET /openapi.json``: the intake API described as OpenAPI 3.1, for clients and humans.

Built from the limits and patterns the handlers validate with (:mod:`notifier.models`, the
constants of :mod:`notifier.intake.http_api`), so the two cannot drift; the test suite runs
schemathesis against the live API to check that every answer is the documented one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier import __version__
from notifier.models import (
    JOB_ID_RE,
    LABEL_KEY_RE,
    MAX_LABEL_NUMBER,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_LABELS_TEXT,
    WatchState,
)

#: The media type of every request body (``; charset=utf-8`` may follow).
JSON = "application/json"

_ERROR = {"$ref": "#/components/responses/Error"}
_JOB_ID_SCHEMA = {"type": "string", "pattern": JOB_ID_RE.pattern}
_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": _JOB_ID_SCHEMA,
}


def _error(description: str, **headers: str) -> dict[str, Any]:
    """An error answer: ``{"error": "..."}``, with the headers named (name → description)."""
    answer: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


def _body_errors(max_body: int, client_timeout: float) -> dict[str, Any]:
    """The answers of any request with a JSON body, besides its own."""
    return {
        "400": _error("The body is not what the operation takes; the message names the problem"),
        "408": _error(f"The body did not arrive within {client_timeout:g}s (then closed)"),
        "413": _error(f"The body is over {max_body} bytes"),
        "415": _error(f"The body is not `{JSON}` (a `charset=utf-8` parameter may follow)"),
        "503": _error("The state database cannot be written for now", **{"Retry-After": "Seconds"}),
    }


def openapi_document(
    *,
    max_ids: int,
    max_limit: int,
    default_limit: int,
    max_body: int,
    client_timeout: float,
    endpoint_names: Sequence[str] | None,
) -> dict[str, Any]:
    """The document; the numbers are the running API's limits. ``endpoint_names``: the
    configured endpoints, listed as the only names ``endpoints`` takes (None: not listed, for
    a reader without a token)."""
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    by_id = {"id": "$request.body#/ids/0"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chanjing-notifier intake API",
            "version": __version__,
            "description": "Watch Chanjing lip-sync jobs from other hosts, and pull the events "
            "the daemon recorded. Every path but this document and the vendor callback "
            "(which carries intake.callback_token) needs a bearer token (intake.tokens); "
            "without a valid one every path, known or not, is a 401. Request bodies are "
            f"`{JSON}`. Read with a token, this document also lists the configured "
            "endpoint names.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/watches": {
                "post": {
                    "summary": "Watch jobs (the rules of `watch add`)",
                    "operationId": "addWatches",
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": _watch_request(max_ids, endpoint_names)}},
                    },
                    "responses": {
                        "202": {
                            "description": "Taken: the watches exist and are polled",
                            "content": {
                                JSON: {"schema": {"$ref": "#/components/schemas/Accepted"}}
                            },
                            "links": {
                                "GetWatch": {
                                    "operationId": "getWatch",
                                    "parameters": by_id,
                                    "description": "The first id's watch",
                                },
                                "DeleteWatch": {
                                    "operationId": "deleteWatch",
                                    "parameters": by_id,
                                    "description": "Stop watching the first id",
                                },
                            },
                        },
                        **_body_errors(max_body, client_timeout),
                        "401": unauthorized,
                        "409": _error(
                            "The labels merged into a known watch would pass its limits "
                            f"({MAX_LABELS} labels, {MAX_LABELS_TEXT} characters); nothing "
                            "of the request was kept"
                        ),
                    },
                }
            },
            "/v1/watches/{id}": {
                "parameters": [_JOB_ID],
                "get": {
                    "summary": "One watch, as a row of `watch list --json`",
                    "operationId": "getWatch",
                    "responses": {
                        "200": {
                            "description": "The watch",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Watch"}}},
                        },
                        "400": _error("Not a job id"),
                        "401": unauthorized,
                        "404": _error("No watch for this job"),
                    },
                },
                "delete": {
                    "summary": "Stop watching a job (like `watch rm`)",
                    "operationId": "deleteWatch",
                    "responses": {
                        "204": {"description": "Removed"},
                        "400": _error("Not a job id"),
                        "401": unauthorized,
                        "404": _error("No watch for this job"),
                        "503": _error(
                            "The state database cannot be written for now",
                            **{"Retry-After": "Seconds"},
                        ),
                    },
                },
            },
            "/v1/events": {
                "get": {
                    "summary": "Recorded events in the order they were recorded, a page at a time",
                    "operationId": "listEvents",
                    "parameters": [
                        {
                            "name": "after",
                            "in": "query",
                            "description": "The `next` of the previous page (absent or empty: "
                            "from the first event kept)",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": max_limit,
                                "default": default_limit,
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "A page; an empty one keeps `next` as it was",
                            "content": {
                                JSON: {"schema": {"$ref": "#/components/schemas/EventPage"}}
                            },
                        },
                        "400": _error("`limit` is not a whole number in range"),
                        "401": unauthorized,
                        "404": _error(
                            "`after` names no event kept (never recorded, or pruned): page "
                            "from the start"
                        ),
                    },
                }
            },
            "/v1/chanjing/callback/{callback_token}": _callback_path(max_body, client_timeout),
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [{}, {"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": _error("The problem, named"),
                "Unauthorized": {
                    "description": 'No valid bearer token: always `{"error": "unauthorized"}`',
                    "headers": {
                        "WWW-Authenticate": {
                            "description": "`Bearer`",
                            "schema": {"const": "Bearer"},
                        }
                    },
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "schemas": _schemas(),
        },
    }


def _callback_path(max_body: int, client_timeout: float) -> dict[str, Any]:
    """The vendor's callback: its own secret in the path, no bearer token."""
    with_data_id = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"type": "object", "required": ["id"], "properties": {"id": _JOB_ID_SCHEMA}}
        },
    }
    with_top_id = {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": _JOB_ID_SCHEMA,
            # data.id, when there is one, is the id read: it must be absent or null here.
            "data": {
                "anyOf": [
                    {"not": {"type": "object"}},
                    {"type": "object", "properties": {"id": {"type": "null"}}},
                ]
            },
        },
    }
    envelope = {
        "description": "The vendor's detail envelope `{code, msg, data}`: only the job id is "
        "read, `data.id` (else a top-level `id`); every other member is ignored, whatever it "
        "holds",
        "anyOf": [with_data_id, with_top_id],
    }
    return {
        "parameters": [
            {
                "name": "callback_token",
                "in": "path",
                "required": True,
                "description": "intake.callback_token",
                "schema": {"type": "string"},
            }
        ],
        "post": {
            "summary": "The vendor's completion callback: a hint to poll the job now",
            "description": "Give this URL as `callback` when creating a job. The body is never "
            "trusted: its id becomes a watch (if new, with intake.labels/intake.endpoints) "
            "and is polled at once; the event is built from that poll. A wrong token (or "
            "none configured) gets the 404 of an unknown path, whatever the method.",
            "operationId": "vendorCallback",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": envelope}},
            },
            "responses": {
                "202": {
                    "description": "Taken; the poll (if any) runs after the answer",
                    "content": {
                        JSON: {"schema": {"$ref": "#/components/schemas/CallbackAccepted"}}
                    },
                },
                **_body_errors(max_body, client_timeout),
                "404": _error("Not a configured callback token (the answer of an unknown path)"),
            },
        },
    }


def _labels() -> dict[str, Any]:
    return {
        "type": "object",
        "maxProperties": MAX_LABELS,
        "propertyNames": {"pattern": LABEL_KEY_RE.pattern},
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_LABEL_VALUE},
                {"type": "number", "minimum": -MAX_LABEL_NUMBER, "maximum": MAX_LABEL_NUMBER},
                {"type": "boolean"},
            ]
        },
        "description": "Merged into a known watch's labels (given keys win). Stored as "
        "strings (`true`/`false` for booleans). Strings hold no lone UTF-16 surrogate; keys "
        f"and values hold at most {MAX_LABELS_TEXT} characters together, also after a merge",
    }


def _watch_request(max_ids: int, endpoint_names: Sequence[str] | None) -> dict[str, Any]:
    names: dict[str, Any] = {"type": "string"}
    if endpoint_names is not None:
        names = {"enum": list(endpoint_names)} if endpoint_names else {"not": {}}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["ids"],
        "properties": {
            "ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_ids,
                "items": _JOB_ID_SCHEMA,
            },
            "labels": _labels(),
            "endpoints": {
                "type": ["array", "null"],
                "items": names,
                "description": "Names of configured endpoints to notify (null or absent: every "
                "endpoint whose events match, or what a known watch has)",
            },
            "reopen": {
                "type": "boolean",
                "default": False,
                "description": "Watch an expired, failed or rejected job again",
            },
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_number = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "CallbackAccepted": {
            "type": "object",
            "required": ["accepted"],
            "properties": {"accepted": {"const": True}},
        },
        "Accepted": {
            "type": "object",
            "required": ["accepted", "new", "finished"],
            "properties": {
                "accepted": {"type": "integer", "description": "Distinct ids now watched"},
                "new": {"type": "integer", "description": "Of them, watches created"},
                "finished": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Ids not watched: finished already (one event per job)",
                },
            },
        },
        "Watch": {
            "type": "object",
            "properties": {
                "job_id": {"type": "string"},
                "state": {"enum": [state.value for state in WatchState]},
                "status": {"type": ["integer", "null"]},
                "progress": {"type": ["integer", "null"]},
                "msg": {"type": ["string", "null"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "endpoints": {"type": ["array", "null"], "items": {"type": "string"}},
                "source": {"type": "string"},
                "added_at": {"type": "number", "description": "Unix seconds"},
                "last_poll_at": nullable_number,
                "next_poll_at": nullable_number,
                "finished_at": nullable_number,
                "polls": {"type": "integer"},
                "seen": {"type": "integer"},
                "errors": {"type": "integer"},
                "last_error": {"type": ["string", "null"]},
                "rejections": {"type": "integer"},
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "type", "timestamp", "data"],
            "properties": {
                "id": {"type": "string", "description": "The webhook-id of its deliveries"},
                "type": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {"type": "object"},
            },
        },
        "EventPage": {
            "type": "object",
            "required": ["events", "next"],
            "properties": {
                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                "next": {
                    "type": ["string", "null"],
                    "description": "Pass as `after` for the following page",
                },
            },
        },
    }
