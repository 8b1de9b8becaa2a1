"""Every error a caller can get, as JSON naming the problem, mapped in this one place."""

from __future__ import annotations

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
    401: "No credential, or one this server never issued, expired or revoked",
    403: "The credential does not allow this",
    404: "No such summit",
    409: "Not now: the state does not allow it",
    429: "Too many: try again after the seconds Retry-After says",
}


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
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(code, str(error.detail)), error.status_code)
