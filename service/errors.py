"""Domain exceptions, each carrying its HTTP status and error code; mapped to JSON once."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from service.metrics import StatusNotingSend, record_rejection

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the service answers with a 4xx/5xx JSON body."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class PayloadTooLarge(ServiceError):
    status_code, code = 413, "payload_too_large"


class ImageTooLarge(ServiceError):
    status_code, code = 413, "image_too_large"


class BodyTimeout(ServiceError):
    status_code, code = 408, "body_timeout"


class ClientClosed(ServiceError):
    """The client hung up mid-request: nobody reads the answer; 499 as nginx counts it, not a server error."""

    status_code, code = 499, "client_closed_request"


class UnsupportedMediaType(ServiceError):
    status_code, code = 415, "unsupported_media_type"


class InvalidImage(ServiceError):
    status_code, code = 422, "invalid_image"


class InvalidBase64(ServiceError):
    status_code, code = 422, "invalid_base64"


class InvalidBatch(ServiceError):
    status_code, code = 422, "invalid_batch"


class UnknownDataset(ServiceError):
    status_code, code = 422, "unknown_dataset"


class UnknownPurifier(ServiceError):
    status_code, code = 422, "unknown_purifier"


class UnknownPipeline(ServiceError):
    status_code, code = 422, "unknown_pipeline"


class InvalidParameters(ServiceError):
    status_code, code = 422, "invalid_parameters"


class InvalidLabel(ServiceError):
    status_code, code = 422, "invalid_label"


class NotFound(ServiceError):
    status_code, code = 404, "not_found"


class Unauthorized(ServiceError):
    status_code, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status_code, code = 403, "forbidden"


class RateLimited(ServiceError):
    status_code, code = 429, "rate_limited"


class QueryAttackSuspected(ServiceError):
    status_code, code = 429, "query_attack_suspected"


class Overloaded(ServiceError):
    status_code, code = 503, "overloaded"


class StateUnavailable(ServiceError):
    """The shared client state (Redis) did not answer: the request is refused, not admitted unchecked."""

    status_code, code = 503, "state_unavailable"


class NotReady(ServiceError):
    status_code, code = 503, "not_ready"


class InferenceTimeout(ServiceError):
    status_code, code = 504, "timeout"


class ArtifactError(Exception):
    """A missing, tampered or malformed artifact: start-up must stop."""


def error_response(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    logger.info("%s %s -> %d %s: %s", request.method, request.url.path, exc.status_code, exc.code, exc.detail)
    record_rejection(exc.code)
    return error_response(exc.status_code, exc.code, exc.detail, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    runtime = request.app.state.runtime
    if any(err.get("loc", ())[:2] == ("query", "dataset") for err in errors):
        served = ", ".join(runtime.settings.datasets)
        return await _service_error(request, UnknownDataset(f"dataset must be one of: {served}"))
    for parameter, error, attribute in (("purifier", UnknownPurifier, "purify"), ("pipeline", UnknownPipeline, "defend")):
        if any(err.get("loc", ())[:2] == ("query", parameter) for err in errors):
            names = ", ".join(runtime.names(attribute))
            return await _service_error(request, error(f"{parameter} must be one of: {names}"))
    record_rejection("invalid_request")
    detail = "; ".join(f"{'.'.join(map(str, err.get('loc', ())))}: {err.get('msg', '')}" for err in errors)
    return error_response(422, "invalid_request", detail)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = str(exc.detail).lower().replace(" ", "_")
    return error_response(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


class UnhandledErrorMiddleware:
    """Any error no handler mapped: logged once and answered with the JSON 500, without re-raising.

    Starlette's own ``Exception`` handler re-raises after answering; uvicorn then logs the traceback
    again and drops the keep-alive connection, so the client's next request on it is reset.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        noted = StatusNotingSend(send)
        try:
            await self.app(scope, receive, noted)
        except Exception:
            if noted.status is not None:  # the status line is out: nothing left to answer with
                raise
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await error_response(500, "internal_error", "internal server error")(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Map every domain error to its JSON body, in one place."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)  # errors raised outside the middleware below
    app.add_middleware(UnhandledErrorMiddleware)  # innermost: request metrics still see the 500
