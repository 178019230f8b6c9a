"""Every error as `application/problem+json` (RFC 9457), naming the fields at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"

# Every problem type the API answers, kebab-case, one per meaning; the `type` of a problem
# is `/problems/<slug>`. Routes name these, never a literal.
UNAUTHORIZED = "unauthorized"
BAD_SIGNATURE = "bad-signature"
FORBIDDEN = "forbidden"
# An agent's account tried what only a supervisor may (reassign a case another agent holds).
SUPERVISOR_ONLY = "supervisor-only"
VALIDATION_ERROR = "validation-error"
BODY_UNREADABLE = "body-unreadable"
TOO_LARGE = "too-large"
CASE_NOT_FOUND = "case-not-found"
TRACKING_NUMBER_NOT_FOUND = "tracking-number-not-found"
IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
DUPLICATE_CASE = "duplicate-case"
ACTION_NOT_ALLOWED = "action-not-allowed"
CASE_ENDED = "case-ended"
TRACKING_NUMBER_TAKEN = "tracking-number-taken"
TRACKING_NUMBER_AMBIGUOUS = "tracking-number-ambiguous"
TEMPORAL_UNAVAILABLE = "temporal-unavailable"
DATABASE_UNAVAILABLE = "database-unavailable"
NOT_READY = "not-ready"
# A client sent too many customer tokens that open no case (api/guesses.py).
TOO_MANY_GUESSES = "too-many-guesses"


def http_slug(status: int) -> str:
    """The slug of a bare HTTP error the framework raised (404 route, 405 method)."""
    return f"http-{status}"


class Problem(Exception):
    """An error answer: status, a stable type slug, a title and the detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.errors, self.headers, self.extra = errors, headers, extra

    def response(self) -> JSONResponse:
        """The problem as a response."""
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            **self.extra,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers
        )


# Where FastAPI says a value came from; the client knows, so a field is named without it.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


def field_errors(
    errors: Any, *, prefix: tuple[str | int, ...] = (), body: Any = None
) -> list[dict[str, Any]]:
    """Pydantic errors as `{field, message, type}`, with the field as a dotted path.

    `body`, the parsed request body, lets a field inside a tagged union (an action, say)
    be named as the client wrote it: pydantic puts the tag ("approve") into the path.
    """
    out = []
    for error in errors:
        raw = list(error.get("loc", ()))
        if raw and raw[0] in _LOCATIONS:
            raw = raw[1:]
        kind = error.get("type", "invalid")
        if kind == "json_invalid":
            raw = []  # the loc is a character offset; the body as a whole is at fault
        elif body is not None:
            raw = _without_tags(raw, body)
        if kind in _TAG_ERRORS:
            # The tag itself is wrong or missing: name the discriminator field.
            raw.append(str(error.get("ctx", {}).get("discriminator", "")).strip("'\""))
        loc = [*prefix, *(part for part in raw if part != "")]
        out.append(
            {
                "field": ".".join(str(part) for part in loc) or "body",
                "message": error.get("msg", "invalid"),
                "type": kind,
            }
        )
    return out


def _without_tags(loc: list[Any], body: Any) -> list[Any]:
    """The path minus the parts the client never wrote: tags of tagged unions."""
    kept: list[Any] = []
    node: Any = body
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict):
            if part in node:
                node = node[part]
            elif isinstance(part, str) and not last:
                continue  # not a key of the input here: a union's tag
            else:
                node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        kept.append(part)
    return kept


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    """A 422 naming every field at fault."""
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return Problem(
        422, VALIDATION_ERROR, "The request is not valid.", f"Invalid: {fields}.", errors=errors
    )


def too_large(detail: str) -> Problem:
    """A 413 for a request body over the limit."""
    return Problem(413, TOO_LARGE, "The request body is too large.", detail)


def install(app: FastAPI) -> None:
    """Answer every error the app raises as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(field_errors(exc.errors(), body=exc.body)).response()

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        return validation_problem(field_errors(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return too_large(str(exc.detail)).response()
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not parse (not UTF-8, nested too deep).
            return Problem(
                400,
                BODY_UNREADABLE,
                "The request body can't be read.",
                str(exc.detail),
                errors=[{"field": "body", "message": str(exc.detail), "type": "body_unreadable"}],
            ).response()
        title = {404: "Not found.", 405: "Method not allowed."}.get(
            exc.status_code, str(exc.detail)
        )
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # `Allow` lists every method the path takes (RFC 9110), not only those of the
            # first route that matched it: GET and POST /v1/cases are two routes.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return Problem(
            exc.status_code, http_slug(exc.status_code), title, str(exc.detail), headers=headers
        ).response()


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
