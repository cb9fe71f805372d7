"""Typed dependency aliases: the served dataset, the purifier, the API key and the decoded images."""

import asyncio
import hmac
from dataclasses import dataclass
from typing import Annotated

import torch
from fastapi import Depends, Header, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from service.artifacts import DatasetArtifacts
from service.batching import Batcher
from service.config import Dataset, Purifier, Settings
from service.errors import (
    BodyTimeout,
    ClientClosed,
    InvalidBatch,
    NotReady,
    PayloadTooLarge,
    Unauthorized,
    UnknownDataset,
    UnknownPurifier,
    UnsupportedMediaType,
)
from service.images import decode_base64, decode_image, pixel_count
from service.inference import InferenceModel
from service.schemas import ImageBatch

RAW_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/bmp", "application/octet-stream"})


@dataclass
class Served:
    """One dataset as served: its artifacts, model and one batcher per operation and model."""

    artifacts: DatasetArtifacts
    model: InferenceModel
    batchers: dict[str, Batcher]


@dataclass
class Images:
    tensors: list[torch.Tensor]
    is_batch: bool


def settings_of(request: Request) -> Settings:
    """The app's settings; a plain call, not a dependency: each sub-dependency costs FastAPI a solve per request."""
    return request.app.state.settings


async def get_served(request: Request, dataset: Annotated[Dataset | None, Query()] = None) -> Served:
    name = dataset or settings_of(request).default_dataset
    served: dict[str, Served] = getattr(request.app.state, "served", {})
    if not served:
        raise NotReady("artifacts are not loaded yet")
    if name not in served:
        raise UnknownDataset(f"dataset {name!r} is not served; choose one of {sorted(served)}")
    return served[name]


ServedDep = Annotated[Served, Depends(get_served)]


async def get_purifier(served: ServedDep, purifier: Annotated[Purifier | None, Query()] = None) -> str:
    """The requested purifier (``autoencoder-fgsm``, ``autoencoder-pgd``, ...), else the manifest's default."""
    name = purifier or served.artifacts.manifest.default_purifier
    if name not in served.artifacts.purifiers:
        raise UnknownPurifier(f"purifier {name!r} is not served; choose one of {sorted(served.artifacts.purifiers)}")
    return name


PurifierDep = Annotated[str, Depends(get_purifier)]


async def check_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """With keys configured, accept ``X-API-Key`` or ``Authorization: Bearer``; compare in constant time."""
    settings = settings_of(request)
    if not settings.api_keys:
        return
    given = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
    matches = [hmac.compare_digest(given.encode(), key.get_secret_value().encode()) for key in settings.api_keys]
    if not given or not any(matches):
        raise Unauthorized("missing or wrong API key")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes, and with 408 once it takes ``timeout_s``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyTimeout(f"body not received within {timeout_s} s") from exc
    except ClientDisconnect as exc:
        raise ClientClosed("the client closed the connection while sending its body") from exc
    return b"".join(chunks)


async def _multipart_file(request: Request, body: bytes) -> bytes:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=8).parse()
    except MultiPartException as exc:
        raise InvalidBatch(f"bad multipart body: {exc.message}") from exc
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidBatch("multipart body needs a file field named 'file'")
    return await upload.read()


async def _payloads(request: Request, settings: Settings) -> tuple[list[bytes], bool]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in RAW_TYPES | {"multipart/form-data", "application/json"}:
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not supported")
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    if media_type == "multipart/form-data":
        return [await _multipart_file(request, body)], False
    if media_type != "application/json":
        return [body], False
    try:
        batch = ImageBatch.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidBatch(f'expected {{"images": [<base64>, ...]}}: {exc.errors()[0]["msg"]}') from exc
    if not 1 <= len(batch.images) <= settings.max_images_per_request:
        raise InvalidBatch(f"batch has {len(batch.images)} images; send 1 to {settings.max_images_per_request}")
    return [decode_base64(text) for text in batch.images], True


async def read_images(request: Request, served: ServedDep) -> Images:
    """Every input form decoded to [0,1] tensors at the manifest's shape."""
    settings = settings_of(request)
    payloads, is_batch = await _payloads(request, settings)
    prep = served.artifacts.preprocessing

    def decode() -> list[torch.Tensor]:
        return [decode_image(p, prep, settings.max_pixels) for p in payloads]

    small = sum(pixel_count(p) for p in payloads) <= settings.inline_decode_max_pixels
    return Images(decode() if small else await run_in_threadpool(decode), is_batch)


ImagesDep = Annotated[Images, Depends(read_images)]
ApiKey = Depends(check_api_key)
