"""RFC 9457 problem+json for every error a service returns."""

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assent_shared.outages import TRANSIENT

log = structlog.get_logger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from a route to answer with problem+json."""

    def __init__(self, status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_response(status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None,
                     **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.headers, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the submitted values: they may be passwords or emails.
        errors = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        return problem_response(422, "Invalid request", "The request does not match the schema.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(asyncpg.DataError)
    async def on_data_error(_request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Values the schema let through but the database cannot store (a NUL character, say):
        # the transaction rolled back, so nothing was half-written; the input is at fault.
        return problem_response(422, "Invalid value", f"A value cannot be stored ({type(exc).__name__}).")

    async def on_outage(_request: Request, exc: Exception) -> JSONResponse:
        # The database or a service behind us is down for now (a restart, say): the transaction rolled
        # back, nothing was half-written, and the same request will do once it is back.
        log.warning("dependency unavailable", error=type(exc).__name__)
        return problem_response(503, "Service unavailable", "Try again shortly.", headers={"Retry-After": "5"})

    for outage in TRANSIENT:
        app.add_exception_handler(outage, on_outage)

    @app.exception_handler(Exception)
    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", error=type(exc).__name__)
        return problem_response(500, "Internal error")
