"""``GET /openapi.json``: the intake API described as OpenAPI 3.1, for clients and humans."""

from __future__ import annotations

from typing import Any

from notifier import __version__
from notifier.models import WatchState

_ERROR = {"$ref": "#/components/responses/Error"}
_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"},
}


def openapi_document(max_ids: int, max_limit: int, default_limit: int) -> dict[str, Any]:
    """The document; the numbers are the running API's limits."""
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chanjing-notifier intake API",
            "version": __version__,
            "description": "Watch Chanjing lip-sync jobs from other hosts, and pull the events "
            "the daemon recorded. Every path but this document and the vendor callback "
            "(which carries intake.callback_token) needs a bearer token (intake.tokens).",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/watches": {
                "post": {
                    "summary": "Watch jobs (the rules of `watch add`)",
                    "operationId": "addWatches",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _watch_request(max_ids)}},
                    },
                    "responses": {
                        "202": {
                            "description": "Taken: the watches exist and are polled",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Accepted"}
                                }
                            },
                        },
                        "400": _ERROR,
                        "401": unauthorized,
                        "413": _ERROR,
                        "503": _ERROR,
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
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Watch"}
                                }
                            },
                        },
                        "400": _ERROR,
                        "401": unauthorized,
                        "404": _ERROR,
                    },
                },
                "delete": {
                    "summary": "Stop watching a job (like `watch rm`)",
                    "operationId": "deleteWatch",
                    "responses": {
                        "204": {"description": "Removed"},
                        "400": _ERROR,
                        "401": unauthorized,
                        "404": _ERROR,
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
                            "description": "The `next` of the previous page (absent: from the "
                            "first event kept)",
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
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/EventPage"}
                                }
                            },
                        },
                        "400": _ERROR,
                        "401": unauthorized,
                        "404": _ERROR,
                    },
                }
            },
            "/v1/chanjing/callback/{callback_token}": _callback_path(),
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "The problem, named",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "Unauthorized": {"description": "No valid bearer token"},
            },
            "schemas": _schemas(),
        },
    }


def _callback_path() -> dict[str, Any]:
    """The vendor's callback: its own secret in the path, no bearer token."""
    envelope = {
        "type": "object",
        "description": "The vendor's detail envelope; only data.id is read (a top-level id "
        "is taken too)",
        "properties": {
            "code": {"type": "integer"},
            "msg": {"type": "string"},
            "data": {"type": "object", "properties": {"id": _JOB_ID["schema"]}},
        },
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
            "and is polled at once; the event is built from that poll. A wrong token gets "
            "the 404 of an unknown path.",
            "operationId": "vendorCallback",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": envelope}},
            },
            "responses": {
                "202": {"description": "Taken; the poll (if any) runs after the answer"},
                "400": _ERROR,
                "404": _ERROR,
                "413": _ERROR,
                "503": _ERROR,
            },
        },
    }


def _watch_request(max_ids: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["ids"],
        "properties": {
            "ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_ids,
                "items": _JOB_ID["schema"],
            },
            "labels": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "Merged into a known watch's labels",
            },
            "endpoints": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Endpoint names to notify (default: every endpoint whose events "
                "match, or what a known watch has)",
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
        "Accepted": {
            "type": "object",
            "required": ["accepted"],
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
                "state": {"enum": [s.value for s in WatchState]},
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
