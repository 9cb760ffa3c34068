"""HTTP errors: one JSON body {"error": ..., "type": ...} for every failure, whose message names
the problem and the fix; the status codes each route declares in the API description."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..core.errors import LipsyncError
from .jobs import internal_message

log = logging.getLogger(__name__)

STATUS = {  # error class -> HTTP status
    "InputError": 400,
    "TimelineFormatError": 400,
    "OutputError": 500,
    "EngineUnavailable": 503,
    "Busy": 429,
    "Cancelled": 409,
    "InternalError": 500,
}
MEANING = {
    400: "the request cannot be done as sent; the message says what to change",
    401: "missing or wrong token (the server was started with --token)",
    404: "no such job, line or variant",
    405: "the path does not take this method; the Allow header lists those it takes",
    409: "the job is not finished yet, or was cancelled",
    411: "a request with a body needs a Content-Length header",
    413: "the upload is over the server's --max-upload-mb",
    422: "a field is missing, of the wrong type or out of its range",
    429: "too many jobs are waiting; retry later",
    500: "a bug in the bridge (the server log has its traceback), or an output it could not write",
    503: "an engine or device this needs is not installed or not present",
}


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(..., description="what went wrong and how to fix it")
    type: str = Field(..., description="the error's class: InputError, EngineUnavailable, ...")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "InputError"):
        super().__init__(message)
        self.status, self.kind = status, kind


def builtin(name: str, names: list[str], what: str) -> str:
    """A name from a built-in list (presets, grammars): a client never names a file on the server."""
    if name not in names:
        raise ApiError(400, f"unknown {what} {name!r}; choose one of: {', '.join(names)}")
    return name


def responses(*codes: int) -> dict:
    """The error answers a route may give, for its `responses=`."""
    return {code: {"model": ErrorBody, "description": MEANING[code]} for code in codes}


def error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status, headers=headers)


def add_handlers(app: FastAPI) -> None:
    """Every exception becomes the JSON error body, converted here once."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(LipsyncError, _lipsync_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)


def _api_error(request: Request, e: ApiError) -> JSONResponse:
    return error(e.status, str(e), e.kind)


def _lipsync_error(request: Request, e: LipsyncError) -> JSONResponse:
    kind = type(e).__name__
    return error(STATUS.get(kind, 400), str(e), kind)


def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
    problems = [
        f"{'.'.join(str(p) for p in err['loc'] if p != 'body') or 'body'}: {err['msg']}"
        for err in e.errors()
    ]
    return error(422, "invalid request: " + "; ".join(problems), "InputError")


def _http_error(request: Request, e: HTTPException) -> JSONResponse:
    headers = dict(e.headers or {})
    if e.status_code == 405:  # Starlette names only the first route's methods
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error(e.status_code, str(e.detail), "HTTPError", headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # included routers' too
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def _internal(request: Request, e: Exception) -> JSONResponse:
    log.error("%s %s crashed", request.method, request.url.path, exc_info=e)
    return error(500, internal_message(e), "InternalError")
