"""GET /api/openapi.json: the OpenAPI 3.1 document of every route the app serves."""

from __future__ import annotations

import functools

from dci import __version__
from dci.events import CollectBatch

REF = "#/components/schemas/{model}"


def _problem(description: str) -> dict[str, object]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "pointer", "detail"],
                "properties": {name: {"type": "string"} for name in ("field", "pointer", "detail")},
            },
        },
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_CONTACT_PARAMETER = {"name": "contact_id", "in": "path", "required": True,
                      "schema": {"type": "string", "format": "uuid"}, "description": "Dataverse contact id"}
_EXPORT_SCHEMA = {
    "type": "object",
    "required": ["contact", "visitors", "interactions", "cases"],
    "properties": {
        "contact": {"type": "string"},
        "visitors": {"type": "array", "items": {
            "type": "object", "required": ["visitor", "signins"],
            "properties": {"visitor": {"type": "string"}, "signins": {"type": "array", "items": {
                "type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}}}},
        "interactions": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "ts", "visitor", "attribution"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                           "ts": {"type": "string", "format": "date-time"}, "visitor": {"type": "string"},
                           "attribution": {"enum": ["verified", "stitched"]}},
            "additionalProperties": True}},
        "cases": {"type": "array", "items": {"type": "object", "required": ["case_id", "ticket", "created"],
                                             "properties": {"case_id": {"type": "string"},
                                                            "ticket": {"type": "string"},
                                                            "created": {"type": "string"},
                                                            "timeline": {"type": ["object", "null"]}}}},
    },
}
_ERASE_SCHEMA = {
    "type": "object",
    "required": ["contact", "removed"],
    "properties": {"contact": {"type": "string"}, "removed": {
        "type": "object", "properties": {name: {"type": "integer"} for name in ("interactions", "visitors", "cases")}}},
}

_TIMELINE_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["assembled", "skipped"]},
        "reason": {"type": "string"},
        "version": {"type": "integer"},
        "case": {"type": "object"},
        "summary": {"type": "object", "properties": {
            "sentence": {"type": "string"}, "searches": {"type": "array"},
            "zero_result_searches": {"type": "array", "items": {"type": "string"}},
            "articles": {"type": "array"}, "path": {"type": "array", "items": {"type": "string"}},
            "sessions": {"type": "integer"}, "first_touch_before_case_ms": {"type": ["integer", "null"]}}},
        "sessions": {"type": "array"},
        "items": {"type": "array", "items": {"type": "object", "required": ["type", "ts"]}},
    },
}

_HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"const": "ok"},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@functools.cache
def document() -> dict[str, object]:
    """The OpenAPI document (built once per process)."""
    batch = CollectBatch.model_json_schema(ref_template=REF)
    schemas = batch.pop("$defs", {})
    schemas.update({"CollectBatch": batch, "Problem": _PROBLEM_SCHEMA, "Health": _HEALTH_SCHEMA,
                    "Export": _EXPORT_SCHEMA, "Erased": _ERASE_SCHEMA, "Timeline": _TIMELINE_SCHEMA})
    collect_body = {"schema": {"$ref": REF.format(model="CollectBatch")}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portal Insights for Dataverse",
            "version": __version__,
            "description": "Portal activity before each support case. See docs/API.md.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/collect": {
                "post": {
                    "operationId": "collect",
                    "summary": "Accept a batch of beacon events",
                    "security": [],
                    "requestBody": {"required": True,
                                    "content": {"application/json": collect_body, "text/plain": collect_body}},
                    "responses": {
                        "202": {"description": "Accepted for processing",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["accepted"],
                                    "properties": {"accepted": {"type": "integer"}}}}}},
                        "400": _problem("The body is not a valid collect batch; `errors` names each field"),
                        "403": _problem("The Origin is not an allowed portal"),
                        "405": _problem("Method not allowed"),
                        "413": _problem("Body over 32 KiB or more than 50 events"),
                        "415": _problem("Content type other than application/json or text/plain"),
                        "429": _problem("Too many batches from this visitor; see Retry-After"),
                    },
                },
                "options": {
                    "operationId": "collectPreflight",
                    "summary": "CORS preflight",
                    "security": [],
                    "responses": {"204": {"description": "Allowed origin"},
                                  "403": _problem("The Origin is not an allowed portal")},
                },
            },
            "/contacts/{contact_id}/export": {
                "get": {
                    "operationId": "exportContact",
                    "summary": "Everything stored about a contact (right of access)",
                    "parameters": [_CONTACT_PARAMETER],
                    "responses": {
                        "200": {"description": "The contact's interactions and visitors (empty when unknown)",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Export")}}}},
                        "400": _problem("The contact id is not a GUID"),
                    },
                }
            },
            "/contacts/{contact_id}": {
                "delete": {
                    "operationId": "eraseContact",
                    "summary": "Erase a contact's activity (right to erasure); idempotent",
                    "parameters": [_CONTACT_PARAMETER],
                    "responses": {
                        "200": {"description": "What was removed",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Erased")}}}},
                        "400": _problem("The contact id is not a GUID"),
                    },
                }
            },
            "/dataverse/incidents": {
                "post": {
                    "operationId": "dataverseIncident",
                    "summary": "Dataverse webhook (RemoteExecutionContext) for Create of incident",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "202": {"description": "The case is queued (or was known, or is skipped)",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["case_id", "outcome"],
                                    "properties": {"case_id": {"type": "string"},
                                                   "outcome": {"enum": ["queued", "known", "skipped"]}}}}}},
                        "400": _problem("Not a webhook call for the creation of a case; `errors` says why"),
                    },
                }
            },
            "/cases/{case_id}/timeline": {
                "get": {
                    "operationId": "caseTimeline",
                    "summary": "The portal activity before a case",
                    "parameters": [{"name": "case_id", "in": "path", "required": True,
                                    "schema": {"type": "string", "format": "uuid"}}],
                    "responses": {
                        "200": {"description": "The timeline (status assembled), or why there is none (skipped)",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Timeline")}}}},
                        "202": {"description": "The case is settling; try again later",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "properties": {"status": {"const": "pending"}}}}}},
                        "400": _problem("The case id is not a GUID"),
                        "404": _problem("No such case is known"),
                    },
                }
            },
            **{
                f"/{name}": {
                    "get": {
                        "operationId": operation,
                        "summary": summary,
                        "security": [],
                        "responses": {"200": {"description": "The script",
                                              "content": {"application/javascript": {"schema": {"type": "string"}}}},
                                      "304": {"description": "Not modified (If-None-Match)"}},
                    }
                }
                for name, operation, summary in (
                    ("beacon.js", "beacon", "The portal beacon script (minified), long-cached with an ETag"),
                    ("beacon-search.js", "beaconSearch", "The beacon's search-page part, loaded by the beacon there"),
                )
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and storage reachability",
                    "security": [],
                    "responses": {
                        "200": {"description": "Up",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Health")}}}},
                        "503": _problem("Storage is unreachable; `checks` says which service"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
        },
        "security": [{"functionKey": []}],
    }
