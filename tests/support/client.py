"""A small typed client over httpx, sync and async, for the tests that talk to a real server.

>>> with PurifierClient("http://127.0.0.1:8000") as client:
...     client.classify(open("artifacts/mnist/samples/000.png", "rb").read()).label
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import httpx
from pydantic import BaseModel

from service.schemas import (
    ClassifyResponse,
    DefendedResponse,
    ModelsResponse,
    PurifyResponse,
)

Images = bytes | list[bytes]


class ServiceHTTPError(Exception):
    """A non-2xx answer, with the service's error code and detail."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.status_code = response.status_code
        self.error = body.get("error", "http_error") if isinstance(body, dict) else "http_error"
        self.detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
        self.retry_after = response.headers.get("retry-after")
        super().__init__(f"{self.status_code} {self.error}: {self.detail}")


@dataclass(frozen=True)
class Call:
    """One request to send and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    kwargs: dict[str, Any]


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ServiceHTTPError(response)
    return response


def _model_call(path: str, schema: type[BaseModel], images: Images, params: dict, headers: dict) -> Call:
    params = {key: value for key, value in params.items() if value}
    if isinstance(images, bytes):
        kwargs = {"content": images, "headers": {"content-type": "application/octet-stream", **headers}}
        return Call(
            "POST", path, lambda r: schema.model_validate_json(_checked(r).content), {"params": params, **kwargs}
        )

    def parse_list(response: httpx.Response) -> list[BaseModel]:
        return [schema.model_validate(item) for item in _checked(response).json()]

    payload = {"images": [base64.b64encode(image).decode() for image in images]}
    return Call("POST", path, parse_list, {"params": params, "json": payload, "headers": headers})


def classify_call(images: Images, dataset: str | None = None) -> Call:
    return _model_call("/classify", ClassifyResponse, images, {"dataset": dataset}, {})


def defended_call(
    images: Images, dataset: str | None = None, purifier: str | None = None, pipeline: str | None = None
) -> Call:
    params = {"dataset": dataset, "purifier": purifier, "pipeline": pipeline}
    return _model_call("/defended-classify", DefendedResponse, images, params, {})


def purify_call(images: Images, dataset: str | None = None, purifier: str | None = None, as_json: bool = False) -> Call:
    """One image gives PNG bytes back (or a ``PurifyResponse`` with ``as_json``); a list gives a list."""
    png = isinstance(images, bytes) and not as_json
    params = {"dataset": dataset, "purifier": purifier}
    call = _model_call(
        "/purify", PurifyResponse, images, params, {"accept": "image/png" if png else "application/json"}
    )
    return Call(call.method, call.path, lambda r: _checked(r).content, call.kwargs) if png else call


def raw_call(method: str, path: str, **kwargs: Any) -> Call:
    """Any request (httpx keyword arguments), answered as parsed JSON or ``ServiceHTTPError``."""
    return Call(method, path, lambda r: _checked(r).json(), kwargs)


def get_call(path: str, parse: Callable[[httpx.Response], Any]) -> Call:
    return Call("GET", path, lambda r: parse(_checked(r)), {})


HEALTH = get_call("/healthz", lambda r: r.json())
READY = get_call("/readyz", lambda r: r.json())
MODELS = get_call("/models", lambda r: ModelsResponse.model_validate_json(r.content))
METRICS = get_call("/metrics", lambda r: r.text)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"x-api-key": api_key} if api_key else {}


class PurifierClient:
    """Blocking client. ``images`` is one file's bytes (one answer) or a list (a JSON batch, a list back)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send(self, call: Call) -> Any:
        return call.parse(self._http.request(call.method, call.path, **call.kwargs))

    def classify(self, images: Images, dataset: str | None = None) -> ClassifyResponse | list[ClassifyResponse]:
        return self.send(classify_call(images, dataset))

    def defended_classify(
        self, images: Images, dataset: str | None = None, purifier: str | None = None, pipeline: str | None = None
    ) -> DefendedResponse | list[DefendedResponse]:
        return self.send(defended_call(images, dataset, purifier, pipeline))

    def purify(
        self, images: Images, dataset: str | None = None, purifier: str | None = None, as_json: bool = False
    ) -> Any:
        return self.send(purify_call(images, dataset, purifier, as_json))

    def models(self) -> ModelsResponse:
        return self.send(MODELS)

    def metrics(self) -> str:
        return self.send(METRICS)


class AsyncPurifierClient:
    """The same calls, awaitable."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def send(self, call: Call) -> Any:
        return call.parse(await self._http.request(call.method, call.path, **call.kwargs))

    async def classify(self, images: Images, dataset: str | None = None) -> ClassifyResponse | list[ClassifyResponse]:
        return await self.send(classify_call(images, dataset))

    async def defended_classify(
        self, images: Images, dataset: str | None = None, purifier: str | None = None, pipeline: str | None = None
    ) -> DefendedResponse | list[DefendedResponse]:
        return await self.send(defended_call(images, dataset, purifier, pipeline))

    async def purify(
        self, images: Images, dataset: str | None = None, purifier: str | None = None, as_json: bool = False
    ) -> Any:
        return await self.send(purify_call(images, dataset, purifier, as_json))
