"""What every request passes before a route: the token, a Content-Length, the upload limit;
and those answers declared on the routes they apply to."""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request

from .errors import ErrorBody, error, responses
from .settings import ServerSettings

OPEN = "/health"  # answers without the token: the add-on polls it to see the bridge is up
BODIES = {"POST", "PUT", "PATCH"}


def add_guard(app: FastAPI, settings: ServerSettings) -> None:
    limit = int(settings.max_upload_mb * 1024 * 1024)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if settings.token and request.url.path != OPEN:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), settings.token.encode()):
                return error(
                    401, "missing or wrong token; send 'Authorization: Bearer <token>'", "Auth"
                )
        size = request.headers.get("content-length")
        if size is None and request.method in BODIES:
            return error(411, "send the request with a Content-Length header", "InputError")
        if size is not None and (not size.isdigit() or int(size) > limit):
            return error(
                413,
                f"the upload is over the server's limit of {settings.max_upload_mb:g} MB; send "
                "a shorter file, or start the server with a larger --max-upload-mb",
                "InputError",
            )
        return await call_next(request)


def declare(app: FastAPI, settings: ServerSettings) -> None:
    """Add to every operation in the API description the answers any route may give: the
    guard's, a field out of range (422 with the error body, not FastAPI's own) and a bug (500)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            described = build()
            for path, operations in described["paths"].items():
                for method, operation in operations.items():
                    operation["responses"] |= _answers(path, method.upper(), operation, settings)
            _error_body(described["components"]["schemas"])
        return app.openapi_schema

    app.openapi = openapi


def _answers(path: str, method: str, operation: dict, settings: ServerSettings) -> dict:
    codes = [413, 500]
    if method in BODIES:
        codes.append(411)
    if settings.token and path != OPEN:
        codes.append(401)
    if "422" in operation["responses"]:  # FastAPI's own, where a route has fields
        codes.append(422)
    return {str(code): answer for code, answer in _described(codes).items()}


def _described(codes: list[int]) -> dict:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        code: {
            "description": answer["description"],
            "content": {"application/json": {"schema": ref}},
        }
        for code, answer in responses(*codes).items()
    }


def _error_body(schemas: dict) -> None:
    """ErrorBody in the components; FastAPI's validation error, which no answer uses, out."""
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
