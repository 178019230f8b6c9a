"""Every error as `application/problem+json` (RFC 9457), naming the fields at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


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
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers)


def field_errors(errors: Any, *, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as `{field, message, type}`, with the field as a dotted path."""
    out = []
    for error in errors:
        loc = [part for part in (*prefix, *error.get("loc", ())) if part not in ("body", "query", "path")]
        out.append(
            {
                "field": ".".join(str(part) for part in loc) or "body",
                "message": error.get("msg", "invalid"),
                "type": error.get("type", "invalid"),
            }
        )
    return out


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    """A 422 naming every field at fault."""
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return Problem(422, "validation-error", "The request is not valid.", f"Invalid: {fields}.", errors=errors)


def install(app: FastAPI) -> None:
    """Answer every error the app raises as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(field_errors(exc.errors())).response()

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        return validation_problem(field_errors(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code, str(exc.detail))
        return Problem(exc.status_code, f"http-{exc.status_code}", title, str(exc.detail)).response()
