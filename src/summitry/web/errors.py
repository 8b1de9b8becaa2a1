"""Every error a caller can get, as JSON naming the problem, mapped in this one place."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from summitry.domain.errors import (
    BadDescription,
    Conflict,
    IllegalTransition,
    InvalidInput,
    MediaRefused,
    MediaUnavailable,
    NotAuthenticated,
    NotFound,
    NotIssuedHere,
    NotPermitted,
    StaleVersion,
    SummitryError,
)
from summitry.web.schemas import ErrorOut

STATUS: dict[type[SummitryError], tuple[int, str]] = {
    InvalidInput: (422, "invalid_input"),
    BadDescription: (400, "bad_sdp"),
    MediaUnavailable: (503, "media_unavailable"),
    # Refused by the media server: answered as a refusal of the phase machine always was.
    MediaRefused: (409, "not_allowed_now"),
    IllegalTransition: (409, "not_allowed_now"),
    StaleVersion: (409, "stale_version"),
    Conflict: (409, "conflict"),
    NotAuthenticated: (401, "not_authenticated"),
    NotIssuedHere: (401, "not_authenticated"),
    NotPermitted: (403, "forbidden"),
    NotFound: (404, "not_found"),
}


class Throttled(Exception):
    """Too much of something in too little time: answered 429 with `Retry-After`."""

    code = "rate_limited"

    def __init__(self, seconds: int, message: str) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.message = message


class TooManyFailures(Throttled):
    """This address presented too many credentials of one kind never issued here."""

    code = "too_many_failures"

    def __init__(self, seconds: int) -> None:
        super().__init__(
            seconds,
            "too many credentials that were not issued here came from your address; "
            f"try again in {seconds} s",
        )


def declared(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route may give, for its OpenAPI `responses`."""
    return {
        status: {"model": ErrorOut, "description": ERROR_ANSWERS[status]} for status in statuses
    }


ERROR_ANSWERS = {
    400: "The body is not valid JSON, or not a usable SDP",
    401: "No credential, or one this server never issued, expired or revoked",
    403: "The credential does not allow this",
    404: "No such summit",
    409: "Not now: the state does not allow it",
    413: "The body is too large",
    422: "A field, parameter or header is wrong; `field` names it",
    429: "Too many: try again after the seconds Retry-After says",
    503: "The media server is not answering right now",
}
ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}


def errors_of(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The errors an operation can answer with, from what it is: every one may be
    refused for its rate (the public limit, or credentials not issued here); one with a
    body may get a bad or too large one; one that names something may not find it; one
    for participants or the operator needs a credential; one that changes something may
    not be allowed now; and the media server may be away."""
    statuses = [429, 503]
    if "requestBody" in operation:
        statuses += [400, 413, 422]
    if operation.get("parameters"):
        statuses.append(422)
    if "{" in path:
        statuses.append(404)
    if not path.startswith("/api/v1/public/") and path != "/api/v1/health":
        statuses += [401, 403]
    if method != "get":
        statuses.append(409)
    return sorted(set(statuses))


def declare_errors(app: FastAPI) -> None:
    """Each operation of the OpenAPI document lists the errors it can answer with, each
    with the error body every error has (FastAPI's own 422 body is never sent)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                for status in errors_of(path, method, operation):
                    answer = answers.setdefault(str(status), {})
                    answer.setdefault("description", ERROR_ANSWERS[status])
                    answer["content"] = ERROR_SCHEMA
                    if status == 429:
                        answer["headers"] = {
                            "Retry-After": {
                                "description": "Seconds to wait",
                                "schema": {"type": "integer"},
                            }
                        }
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(SummitryError)
    async def summitry_error(_request: Request, error: SummitryError) -> JSONResponse:
        status, code = STATUS[type(error)]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, error.message, error.field), status, headers)

    @app.exception_handler(Throttled)
    async def throttled(_request: Request, error: Throttled) -> JSONResponse:
        body = error_body(error.code, error.message)
        return JSONResponse(body, 429, {"Retry-After": str(error.seconds)})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":
            return JSONResponse(
                error_body("malformed_json", "the request body is not valid JSON"), 400
            )
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        field = ".".join(location) or None
        message = first.get("msg", "invalid request")
        if field:
            message = f"{field}: {message}"
        return JSONResponse(error_body("invalid_input", message, field), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        headers = error.headers
        if error.status_code == 405:
            # Starlette names the methods of the one route it tried; the path may have
            # others, which the OpenAPI document lists.
            documented = documented_methods(request.app, request.url.path)
            if documented:
                headers = {"Allow": ", ".join(documented)}
        return JSONResponse(error_body(code, str(error.detail)), error.status_code, headers)


def documented_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives the path, if it lists it."""
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return sorted(method.upper() for method in operations)
    return []
