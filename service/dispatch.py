"""Direct dispatch of the API routes: each route's own function, its parameters resolved by a plan compiled once
from FastAPI's dependant, its answer serialized by FastAPI's own serializer.

On every request FastAPI matches the path against each route, then solves every dependency and re-validates
every parameter through its general machinery: about a third of the event loop's CPU per `/defended-classify`.
A plan keeps, per route, its query and header fields and its dependency calls in FastAPI's order, so the same
validators and functions run with none of that search. A request whose parameters do not all validate takes
FastAPI's path, so every error is FastAPI's own. So does any route a plan cannot express (path, cookie, body or
security parameters, generator or sync functions, a custom response class or a body limit of its own), and any
request under a root path or while dependency overrides are set.
"""

from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from inspect import iscoroutinefunction
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from fastapi import FastAPI
from fastapi._compat import ModelField
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

INVALID = object()  # a parameter that did not validate: FastAPI answers the request


@dataclass(frozen=True, eq=False)
class Param:
    """A query or header parameter: the argument it fills, the key it is read by, and FastAPI's field."""

    name: str
    key: str
    in_headers: bool
    field: ModelField

    def value(self, query: QueryParams, headers: Headers) -> Any:
        """The validated value, the default when absent (as FastAPI fills it), or ``INVALID``."""
        raw = (headers if self.in_headers else query).get(self.key)
        if raw is None:
            if self.field.field_info.is_required():
                return INVALID
            default = deepcopy(self.field.default)
            if not self.field.field_info.validate_default:
                return default
            raw = default
        value, errors = self.field.validate(raw, {}, loc=("header" if self.in_headers else "query", self.key))
        return INVALID if errors else value


@dataclass(frozen=True)
class Step:
    """One function of the dependency tree: its sub-dependencies first, then its own parameters."""

    call: Callable[..., Any]
    name: str | None
    steps: tuple["Step", ...]
    params: tuple[Param, ...]
    request: str | None
    response: str | None
    background: str | None

    def validated(self, query: QueryParams, headers: Headers) -> dict[Param, Any] | None:
        """Every parameter of the tree, validated; None when one is not (nothing has run yet)."""
        values: dict[Param, Any] = {}
        for step in self.steps:
            sub = step.validated(query, headers)
            if sub is None:
                return None
            values |= sub
        for param in self.params:
            value = param.value(query, headers)
            if value is INVALID:
                return None
            values[param] = value
        return values

    async def run(self, values: dict[Param, Any], context: "Context") -> Any:
        """Call the sub-dependencies in FastAPI's order (each once per request), then this function."""
        kwargs = {param.name: values[param] for param in self.params}
        for step in self.steps:
            if step.call not in context.solved:
                context.solved[step.call] = await step.run(values, context)
            kwargs[step.name] = context.solved[step.call]
        for name, given in ((self.request, context.request), (self.response, context.response)):
            if name is not None:
                kwargs[name] = given
        if self.background is not None:
            kwargs[self.background] = context.background_tasks()
        return await self.call(**kwargs)


class Context:
    """What FastAPI shares across one request's dependencies: the request, a response for headers and status,
    background tasks (made when first asked for), and each function's result."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response = Response()
        del self.response.headers["content-length"]
        self.response.status_code = None  # type: ignore[assignment]  # FastAPI's marker: no status set
        self.background: BackgroundTasks | None = None
        self.solved: dict[Callable[..., Any], Any] = {}

    def background_tasks(self) -> BackgroundTasks:
        if self.background is None:
            self.background = BackgroundTasks()
        return self.background


def _plain(annotation: Any) -> bool:
    """``str``, a ``Literal`` of strings, or either or None: what a query or header value is read as, unchanged."""
    if get_origin(annotation) in (Union, UnionType):  # X | None
        return all(_plain(arg) for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        return all(isinstance(arg, str) for arg in get_args(annotation))
    return annotation is str


def _params(dependant: Dependant) -> tuple[Param, ...] | None:
    fields = [(field, False) for field in dependant.query_params] + [(f, True) for f in dependant.header_params]
    plain = (_plain(field.field_info.annotation) and field.field_info.validation_alias is None for field, _ in fields)
    if not all(plain):
        return None
    return tuple(Param(field.name, field.alias, in_headers, field) for field, in_headers in fields)


def compile_step(dependant: Dependant) -> Step | None:
    """The plan of a dependency tree, or None where it has what a plan does not express."""
    unsupported = (
        dependant.path_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.security_scopes_param_name,
        dependant.concurrency,
    )
    if any(unsupported) or not iscoroutinefunction(dependant.call):
        return None
    steps = tuple(compile_step(sub) for sub in dependant.dependencies)
    params = _params(dependant)
    if params is None or None in steps or any(not sub.use_cache for sub in dependant.dependencies):
        return None
    return Step(
        dependant.call,
        dependant.name,
        steps,  # type: ignore[arg-type]
        params,
        dependant.request_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
    )


@dataclass(frozen=True)
class Plan:
    """A route, the plan of its dependant, and how FastAPI turns its answer into a response."""

    route: APIRoute
    step: Step

    async def respond(self, request: Request, values: dict[Param, Any]) -> Response:
        context = Context(request)
        answer = await self.step.run(values, context)
        if isinstance(answer, Response):
            if answer.background is None:
                answer.background = context.background
            return answer
        route = self.route
        content = await serialize_response(
            field=route.response_field,
            response_content=answer,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            dump_json=True,
        )
        status = {"status_code": code} if (code := context.response.status_code or route.status_code) else {}
        response = Response(content, media_type="application/json", background=context.background, **status)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        response.headers.raw.extend(context.response.headers.raw)
        return response


def compile_plan(route: APIRoute) -> Plan | None:
    """A route's plan; None where FastAPI must answer (no response model, its own response class or body limit)."""
    if (
        route.response_field is None
        or not isinstance(route.response_class, DefaultPlaceholder)
        or getattr(route, "max_body_size", None) is not None
    ):
        return None
    step = compile_step(route.dependant)
    return None if step is None else Plan(route, step)


class DirectRoutes:
    """Pure ASGI middleware: a planned route's requests go straight to it; all others, and any request a plan
    cannot resolve, to ``app`` (FastAPI's router).

    Innermost of the user middleware, so request metrics, error mapping and CORS see both paths alike; an
    exception a handler of ``fastapi_app`` maps is answered as FastAPI's exception middleware would.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, routes: Sequence[APIRoute], enabled: bool = True) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.plans: dict[tuple[str, str], Plan] = {}
        for route in routes if enabled else ():
            plan = compile_plan(route)
            if plan is not None:
                self.plans |= {(method, route.path): plan for method in route.methods}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self.plans.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if plan is None or scope.get("root_path") or self.fastapi_app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        values = plan.step.validated(request.query_params, request.headers)
        if values is None:
            await self.app(scope, receive, send)
            return
        scope |= {"route": plan.route, "endpoint": plan.route.endpoint, "path_params": {}}
        try:
            response = await plan.respond(request, values)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            if iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's handler for ``exc`` as Starlette's exception middleware finds it: by status code for an
        ``HTTPException``, then by class, never the catch-all (``Exception`` errors go on to the outer middleware)."""
        handlers = self.fastapi_app.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers and cls is not Exception), None)
