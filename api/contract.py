"""The OpenAPI document as a contract: every answer a route can send, with its body.

Storefronts generate their clients from `/openapi.json`, so each route declares the problems
it answers (`problems(...)`), all as `application/problem+json` with the one `Problem`
schema, and the document links an opened case to what can be done with it next.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from api.errors import PROBLEM_JSON
from domain.actions import EVENT_DATA, EventType


class FieldError(BaseModel):
    """One field at fault: its dotted path, why, and a machine-readable kind."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem, as api.errors.Problem writes it."""

    # A problem may carry members of its own type (a duplicate-case names the case).
    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    case_id: str | None = None


DESCRIPTION = (
    "Every error is `application/problem+json` (RFC 9457). No string may hold a NUL character "
    "(U+0000), in a query or a body, extra fields included: it is refused with 422. Amounts "
    'are decimal strings ("990.00"). An undeclared method on a path answers 405 with `Allow`.'
)
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What each status means on this API; a route's own docstring says when it answers it.
MEANINGS: dict[int, str] = {
    400: "The body can't be read (not UTF-8, or not the form or JSON the route takes).",
    401: "No key or token, or one this API doesn't know (a webhook: a bad signature).",
    403: "The key's role can't do this, or the token opens another case.",
    404: "No such case (or tracking number).",
    409: "The case can't take this now: a duplicate, a refused action, an ended case.",
    413: "The request body is over the size limit.",
    422: "The request is not valid; `errors` names each field at fault.",
    429: (
        "This client address sent too many case tokens that open no case; `Retry-After` says "
        "when it may try again."
    ),
    503: "A service the route needs (Temporal, the database) is unavailable; retry later.",
}
HTML = "text/html"
# The statuses of routes that check a bearer key and read input. Any bearer that isn't a key
# is taken for a customer token, so every such route may answer a guesser 429 (api/guesses.py).
AUTHED = (401, 403, 422, 429)
# What a 429 tells the client besides its problem.
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until this address may send a case token again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
WITH_BODY = (400, 413)


def problems(*statuses: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these problem statuses (with an HTML page too, for the
    status page's browser answers)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        content: dict[str, Any] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
        if html:
            content[HTML] = {"schema": {"type": "string"}}
        out[status] = {"description": MEANINGS[status], "content": content}
        if status == 429:
            out[status]["headers"] = RETRY_AFTER
    return out


# Where an opened case leads: the operations that take its ID, by (method, path).
CASE_LINKS = {
    "GetCase": ("get", "/v1/cases/{case_id}"),
    "ActOnCase": ("post", "/v1/cases/{case_id}/actions"),
    "CustomerActOnCase": ("post", "/v1/cases/{case_id}/customer-actions"),
    "ReportEvent": ("post", "/v1/cases/{case_id}/events"),
    "ListNotifications": ("get", "/v1/cases/{case_id}/notifications"),
}


REF = "#/components/schemas/{model}"
# The bodies that carry an event, and the event types each takes.
EVENT_BODIES = {
    ("post", "/v1/cases/{case_id}/events"): [t.value for t in EventType],
    ("post", "/v1/webhooks/carrier"): [t.value for t in EventType if t.startswith("carrier.")],
}


def _without_null_defaults(schema: Any) -> Any:
    """The schema without `"default": null` (FastAPI leaves those out, pydantic writes them)."""
    if isinstance(schema, dict):
        return {
            k: _without_null_defaults(v)
            for k, v in schema.items()
            if not (k == "default" and v is None)
        }
    if isinstance(schema, list):
        return [_without_null_defaults(v) for v in schema]
    return schema


def _add_schemas(schemas: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    """Put these models' (input) schemas into the components, under their own names."""
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    for name, schema in top.get("$defs", {}).items():
        if _without_null_defaults(schemas.setdefault(name, schema)) != _without_null_defaults(
            schema
        ):
            # Two shapes under one name would leave one of them undocumented.
            raise RuntimeError(f"schema {name!r} differs from the document's own")


def typed_data(event: dict[str, Any], types: list[str], schemas: dict[str, Any]) -> dict[str, Any]:
    """An event's schema as one branch per model of its `data` (domain.actions.EVENT_DATA):
    the server checks an event's data against its type's model, so the document says which."""
    groups: dict[type[BaseModel] | None, list[str]] = {}
    for name in types:
        groups.setdefault(EVENT_DATA.get(EventType(name)), []).append(name)
    _add_schemas(schemas, [model for model in groups if model is not None])
    branches = []
    for model, names in groups.items():
        branch = copy.deepcopy(event)
        branch["title"] = f"{event.get('title', 'Event')}: {', '.join(names)}"
        branch["properties"]["type"] = {"type": "string", "enum": names}
        if model is not None:
            branch["properties"]["data"] = {"$ref": REF.format(model=model.__name__)}
            if model.model_json_schema().get("required"):
                # Its default (an empty object) lacks what the model requires.
                branch["required"] = [*branch.get("required", []), "data"]
        branches.append(branch)
    return {"title": event.get("title", "Event"), "oneOf": branches}


def _body_schema(doc: dict[str, Any], method: str, path: str) -> tuple[dict[str, Any], str | None]:
    """The JSON body schema of an operation, resolved; and its component's name if it has one."""
    content = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
    ref = content["schema"].get("$ref")
    if ref is None:
        return content["schema"], None
    name = ref.rsplit("/", 1)[-1]
    return doc["components"]["schemas"][name], name


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with the Problem schema and the links of an opened case."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
        description=DESCRIPTION,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    paths = doc["paths"]
    # FastAPI's own 422 (HTTPValidationError, as application/json) is not what api.errors
    # sends: every 422 is a problem.
    for operation in (op for ops in paths.values() for op in ops.values()):
        invalid = operation["responses"].get("422")
        if invalid is not None and PROBLEM_JSON not in invalid.get("content", {}):
            operation["responses"]["422"] = problems(422)[422]
    for (method, path), types in EVENT_BODIES.items():
        event, name = _body_schema(doc, method, path)
        typed = typed_data(event, types, schemas)
        if name is not None:
            schemas[name] = typed
        else:
            content = paths[path][method]["requestBody"]["content"]["application/json"]
            content["schema"] = typed
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    links = {
        name: {
            "operationId": paths[path][method]["operationId"],
            "parameters": {"case_id": "$response.body#/id"},
        }
        for name, (method, path) in CASE_LINKS.items()
    }
    for status in ("200", "201"):
        paths["/v1/cases"]["post"]["responses"][status]["links"] = links
    return doc


def install(app: FastAPI) -> None:
    """Serve `document(app)` as the app's `/openapi.json`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
