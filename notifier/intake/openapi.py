"""``GET /openapi.json``: the intake API described as OpenAPI 3.1, for clients and humans.

The bodies' schemas are the ``model_json_schema()`` of the models the handlers validate with
(:mod:`notifier.intake.bodies`, whose constraints are :mod:`notifier.models`' limits), so the
two cannot drift; this module adds the paths, methods, statuses and the words. The test
suite runs schemathesis against the live API to check that every answer is the documented
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier import __version__
from notifier.intake.bodies import (
    ACCOUNT_NAME_RE,
    ANSWERS,
    CallbackByData,
    CallbackByTop,
    JobRef,
    WatchRequest,
    schema,
)
from notifier.models import MAX_LABELS, MAX_LABELS_TEXT
from notifier.watchspec import AccountRule

#: The media type of every request body (``; charset=utf-8`` may follow).
JSON = "application/json"

_ERROR = {"$ref": "#/components/responses/Error"}
_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": schema(JobRef)["properties"]["id"],
}
_KIND = {
    "name": "kind",
    "in": "query",
    "required": False,
    "description": "The job's kind: the same id under two kinds is two watches",
    "schema": schema(WatchRequest)["properties"]["kind"],
}
_ACCOUNT = {
    "name": "account",
    "in": "query",
    "required": False,
    "description": "The job's vendor account (absent: the only account, or the one marked "
    "default; required otherwise): the same id on two accounts is two watches. Another "
    "account than the token's is a 404, as for a watch that does not exist",
    "schema": {"type": "string", "pattern": ACCOUNT_NAME_RE},
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
    max_limit: int,
    default_limit: int,
    max_body: int,
    client_timeout: float,
    endpoint_names: Sequence[str] | None,
    accounts: AccountRule | None = None,
) -> dict[str, Any]:
    """The document; the numbers are the running API's limits. ``endpoint_names``: the
    configured endpoints, listed as the only names ``endpoints`` takes (None: not listed, for
    a reader without a token); ``accounts``: the accounts as the reader's token sees them,
    listed as the only ones ``account`` takes, required where none is the default."""
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    # The watch the POST made: its first id, the kind and the account it went to.
    by_id = {
        "id": "$request.body#/ids/0",
        "kind": "$response.body#/kind",
        "account": "$response.body#/account",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chanjing-notifier intake API",
            "version": __version__,
            "description": "Watch Chanjing lip-sync jobs from other hosts, and pull the events "
            "the daemon recorded. Every path but this document and the vendor callback "
            "(which carries intake.callback_token) needs a bearer token (intake.tokens); "
            "without a valid one every path, known or not, is a 401. A token limited to some "
            "accounts (intake.tokens[].accounts) sees only their watches and events: another "
            "account's watch is a 404 and its events are not listed. Request bodies are "
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
                        "content": {JSON: {"schema": _watch_request(endpoint_names, accounts)}},
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
                "parameters": [_JOB_ID, _KIND, _account_parameter(accounts)],
                "get": {
                    "summary": "One watch, as a row of `watch list --json`",
                    "operationId": "getWatch",
                    "responses": {
                        "200": {
                            "description": "The watch",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Watch"}}},
                        },
                        "400": _error(
                            "Not a job id, not a kind, not an account name, or no account "
                            "named where one is required"
                        ),
                        "401": unauthorized,
                        "404": _error("No watch for this job (on an account of the token)"),
                    },
                },
                "delete": {
                    "summary": "Stop watching a job (like `watch rm`)",
                    "operationId": "deleteWatch",
                    "responses": {
                        "204": {"description": "Removed"},
                        "400": _error(
                            "Not a job id, not a kind, not an account name, or no account "
                            "named where one is required"
                        ),
                        "401": unauthorized,
                        "404": _error("No watch for this job (on an account of the token)"),
                        "503": _error(
                            "The state database cannot be written for now",
                            **{"Retry-After": "Seconds"},
                        ),
                    },
                },
            },
            "/v1/events": {
                "get": {
                    "summary": "Recorded events in the order they were recorded, a page at a time "
                    "(a token limited to some accounts: only their events)",
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
    envelope = {
        "description": "The vendor's detail envelope `{code, msg, data}`: only the job id is "
        "read, `data.id` (else a top-level `id`); every other member is ignored, whatever it "
        "holds",
        "anyOf": [schema(CallbackByData), schema(CallbackByTop)],
    }
    return {
        "parameters": [
            {
                "name": "callback_token",
                "in": "path",
                "required": True,
                "description": "intake.callback_token, then `/{kind}` for a job of another "
                "kind than lip_sync, or `/{account}/{kind}` for a job of another account than "
                "the default one (an unknown account, or none where no account is the default: "
                "400)",
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


def _watch_request(
    endpoint_names: Sequence[str] | None, accounts: AccountRule | None
) -> dict[str, Any]:
    """The model's schema; with a token, the configured names are the only ``endpoints``
    and the token's accounts the only ``account`` (required when none is its default)."""
    body = schema(WatchRequest)
    if endpoint_names is not None:
        names: dict[str, Any] = {"enum": list(endpoint_names)} if endpoint_names else {"not": {}}
        body["properties"]["endpoints"]["items"] = names
    if accounts is not None and accounts.names is not None:
        account = body["properties"]["account"]
        account["enum"] = [*accounts.names, None] if accounts.default else list(accounts.names)
        if accounts.default is None:
            account["type"] = "string"
            body["required"] = [*body.get("required", []), "account"]
    return body


def _account_parameter(accounts: AccountRule | None) -> dict[str, Any]:
    """``?account=``: required when the reader's token has no default account."""
    required = accounts is not None and accounts.default is None
    return {**_ACCOUNT, "required": required}


def _schemas() -> dict[str, Any]:
    """The answers' schemas, from their models."""
    return {name: schema(model) for name, model in ANSWERS.items()}
