"""GET /api/openapi.json (anonymous): the OpenAPI 3.1 document of the whole HTTP API, built
from what `functions.invocation.endpoint` registered (routes, authentication, query
parameters, statuses) and the dataclasses of its bodies and views. Built on the first request,
never at cold start; nothing in it is written by hand twice."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import re
import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

import azure.functions as func

from functions.invocation import OPERATIONS, Auth, Operation, endpoint, takes_body

bp = func.Blueprint()
JSON, PROBLEM = "application/json", "application/problem+json"
MEANING = {
    200: "OK",
    201: "Created",
    204: "Done; no body",
    206: "The requested part",
    308: "Moved permanently (the address with a trailing slash)",
    400: "Malformed input: the body or a parameter is not what the operation takes",
    401: "No valid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "The body is over this operation's size limit (see x-max-body-bytes)",
    415: "The body is not application/json",
    422: "Breaks a rule; `errors` names the fields",
    503: "A dependency is down or throttling; try again later",
}
FUNCTION_KEY_401 = (
    "No or wrong function key. The Functions host answers this itself, with an empty body "
    "(no problem+json), as Azure does."
)
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    Auth.AGENT: [{"entra": []}],
    Auth.SUPERVISOR: [{"entra": []}],
    Auth.STAFF: [{"entra": []}],
    Auth.SIGNED_IN: [{"entra": []}],
    Auth.FUNCTION_KEY: [{"functionKey": []}, {"functionKeyQuery": []}],
    Auth.ACS_CALLBACK: [{"acsCallback": []}],
    Auth.PUBLIC: [],
}
CALLER = {
    Auth.AGENT: "agent",
    Auth.SUPERVISOR: "supervisor",
    Auth.STAFF: "agent or supervisor",
    Auth.SIGNED_IN: "any signed-in user",
    Auth.FUNCTION_KEY: "function key",
    Auth.ACS_CALLBACK: "ACS",
    Auth.PUBLIC: "anyone",
}
ROLE_NOTE = {
    Auth.AGENT: "Agents (the agent or supervisor role, a user in AGENTS).",
    Auth.SUPERVISOR: "Supervisors (the supervisor role).",
    Auth.STAFF: "Agents and supervisors.",
    Auth.SIGNED_IN: "Any user of the tenant with a token for the API; the operation decides.",
}


@endpoint(bp, "GET", "openapi.json", auth=Auth.PUBLIC, responses={200: "application/json"})
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """This document"""
    from shared import composition

    return func.HttpResponse(
        json.dumps(document(composition.settings().app_version)),
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


def operations() -> list[Operation]:
    """Every registered operation: importing each module of functions/ registers its routes."""
    import functions

    for module in pkgutil.iter_modules(functions.__path__):
        importlib.import_module(f"functions.{module.name}")
    return sorted(OPERATIONS, key=lambda op: (op.route, op.method))


@cache
def document(version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations():
        # A catch-all route parameter `{*path}` is the path parameter `{path}` in OpenAPI.
        path = "/" + op.route.replace("{*", "{")
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "D365 Phone API",
            "version": version,
            "description": "The web phone panel's API and the webhooks of the D365 phone "
            "backend. Errors are RFC 9457 problem+json, except the Functions host's own 401 "
            "for a missing function key (empty body). Generated from the code "
            "(functions/openapi.py).",
        },
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "entra": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Entra ID access token for API_AUDIENCE with the "
                    "agent (or supervisor) app role.",
                },
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "acsCallback": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The JWT ACS signs mid-call callbacks with, and the "
                    "per-call token of the callback URL in ?token=.",
                },
            },
        },
    }


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    doc = (op.handler.__doc__ or "").strip()
    summary, _, rest = doc.partition("\n\n")
    description = " ".join(
        part for part in (ROLE_NOTE.get(op.auth, ""), " ".join(rest.split())) if part
    )
    out: dict[str, Any] = {
        "operationId": op.name,
        "summary": " ".join(summary.split()),
        "security": SECURITY[op.auth],
        "x-caller": CALLER[op.auth],
    }
    if description:
        out["description"] = description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{\*?(\w+)\}", op.route)
    ]
    if op.auth == Auth.ACS_CALLBACK:
        params.append(
            {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}
        )
    for q in op.query:
        param: dict[str, Any] = {"name": q.name, "in": "query", "schema": q.schema()}
        if getattr(q, "required", False):
            param["required"] = True
        if q.description:
            param["description"] = q.description
        params.append(param)
    if params:
        out["parameters"] = params
    body_type = op.body_type()
    if body_type is not None:
        out["requestBody"] = {
            "required": not getattr(body_type, "EMPTY_OK", False),
            "content": {JSON: {"schema": schema_of(body_type, schemas)}},
        }
    elif op.raw_body is not None:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": op.raw_body}}}
    elif op.body_media:
        binary = {"type": "string", "format": "binary"}
        out["requestBody"] = {
            "required": True,
            "content": {media: {"schema": binary} for media in op.body_media},
        }
    if takes_body(op):
        out["x-max-body-bytes"] = op.max_body
    out["responses"] = _responses(op, schemas)
    return out


def _responses(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    declared: dict[int, Any] = dict(op.responses)
    returned = op.types().get("return")
    if not declared:
        declared[op.status] = None if returned is type(None) else returned
    codes = set(op.errors) | {413}
    if takes_body(op):
        codes.add(415)
    if op.body_type() is not None or op.raw_body is not None or op.query:
        codes.add(400)
    if op.auth != Auth.PUBLIC:
        codes.add(401)
    if op.auth in (Auth.AGENT, Auth.SUPERVISOR, Auth.STAFF, Auth.SIGNED_IN):
        codes.add(403)
    out: dict[str, Any] = {}
    for code in sorted(declared):
        out[str(code)] = _content(code, declared[code], schemas)
    for code in sorted(codes - set(declared)):
        if code == 401 and op.auth == Auth.FUNCTION_KEY:
            out["401"] = {"description": FUNCTION_KEY_401}
            continue
        meaning = MEANING[code]
        if code == 415 and op.body_media:
            meaning = f"The body is not {' or '.join(op.body_media)}"
        out[str(code)] = {
            "description": meaning,
            "content": {PROBLEM: {"schema": schema_of(_views().ProblemView, schemas)}},
        }
    return dict(sorted(out.items()))


def _content(code: int, what: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """A success (or declared) response: a view, a union of views, a media type, or nothing."""
    response: dict[str, Any] = {"description": MEANING.get(code, "OK")}
    if what is None:
        return response
    if isinstance(what, str) and "/" in what:  # media types, e.g. "audio/*" or "text/*, image/*"
        response["content"] = {media.strip(): {"schema": {}} for media in what.split(",")}
        return response
    names = what if isinstance(what, tuple) else (what,)
    kinds = [getattr(_views(), n) if isinstance(n, str) else n for n in names]
    problem = _views().ProblemView
    media = PROBLEM if all(isinstance(k, type) and issubclass(k, problem) for k in kinds) else JSON
    schema = (
        schema_of(kinds[0], schemas)
        if len(kinds) == 1
        else {"anyOf": [schema_of(k, schemas) for k in kinds]}
    )
    response["content"] = {media: {"schema": schema}}
    return response


def _views() -> Any:
    from shared import views

    return views


# ---------------------------------------------------------------------- dataclasses -> JSON Schema


def schema_of(kind: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a type; a dataclass becomes a component named after its class."""
    if kind is Any:
        return {}
    if kind is type(None):
        return {"type": "null"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if kind in simple:
        return {"type": simple[kind]}
    if kind is datetime:
        return {"type": "string", "format": "date-time"}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return {"type": "string", "enum": [m.value for m in kind]}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        name = kind.__name__
        if name not in schemas:
            schemas[name] = {}  # reserve first: a view may refer to itself
            schemas[name] = _object_schema(kind, schemas)
        return {"$ref": f"#/components/schemas/{name}"}
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        choices = [schema_of(a, schemas) for a in args if a is not type(None)]
        nullable = type(None) in args
        if len(choices) == 1 and not nullable:
            return choices[0]
        if len(choices) == 1 and "type" in choices[0]:  # a nullable scalar: one schema
            scalar = {**choices[0], "type": [choices[0]["type"], "null"]}
            if "enum" in scalar:
                scalar["enum"] = [*scalar["enum"], None]
            return scalar
        return {"anyOf": choices + ([{"type": "null"}] if nullable else [])}
    if origin in (tuple, list, frozenset):
        return {"type": "array", "items": schema_of(args[0], schemas)}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(args[1], schemas)}
    raise TypeError(f"no JSON Schema for {kind!r}")


def _object_schema(kind: type, schemas: dict[str, Any]) -> dict[str, Any]:
    from shared.views import hints, json_fields

    properties: dict[str, Any] = {}
    required: list[str] = []
    field_types = hints(kind)
    for f in json_fields(kind):
        if f.internal:
            continue
        declared = field_types[f.attr]
        if f.omit:  # absent rather than null
            declared = next(a for a in typing.get_args(declared) if a is not type(None))
        schema = schema_of(declared, schemas)
        if f.schema:
            schema = (
                {**schema, **f.schema} if "$ref" not in schema else {"allOf": [schema], **f.schema}
            )
        if _is_body(kind) and f.required and schema.get("type") == "string":
            schema = {"minLength": 1, **schema}  # the decoder reads "" as missing
        properties[f.json] = schema
        if f.required or not (f.omit or _is_body(kind)):
            required.append(f.json)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = _is_body(kind)  # views say all they send; bodies may carry more
    out.update(getattr(kind, "SCHEMA", {}))  # a rule across fields (functions/bodies.py)
    doc = (kind.__doc__ or "").strip()
    if doc and not doc.startswith(f"{kind.__name__}("):  # not the dataclass's own repr text
        out["description"] = " ".join(doc.split())
    return out


def _is_body(kind: type) -> bool:
    return kind.__module__ == "functions.bodies"
