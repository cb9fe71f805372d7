"""The body protocol of the model endpoints: a raw image, a multipart ``file``, or a JSON batch of base64."""

import asyncio
from dataclasses import dataclass

import torch
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from service.config import Settings
from service.errors import BodyTimeout, ClientClosed, InvalidBatch, PayloadTooLarge, UnsupportedMediaType
from service.images import Preprocessing, decode_base64, decode_image, pixel_count
from service.schemas import BODY_TYPES, RAW_TYPES, ImageBatch


@dataclass
class Images:
    tensors: list[torch.Tensor]
    is_batch: bool


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


async def read_payloads(request: Request, settings: Settings) -> tuple[list[bytes], bool]:
    """The encoded image files of the body, and whether it was a JSON batch."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in BODY_TYPES:
        raise UnsupportedMediaType(f"content type {media_type or '(none)'!r} is not supported")
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    if media_type == "multipart/form-data":
        return [await _multipart_file(request, body)], False
    if media_type in RAW_TYPES:
        return [body], False
    try:
        batch = ImageBatch.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidBatch(f'expected {{"images": [<base64>, ...]}}: {exc.errors()[0]["msg"]}') from exc
    if not 1 <= len(batch.images) <= settings.max_images_per_request:
        raise InvalidBatch(f"batch has {len(batch.images)} images; send 1 to {settings.max_images_per_request}")
    return [decode_base64(text) for text in batch.images], True


async def read_images(request: Request, settings: Settings, prep: Preprocessing) -> Images:
    """Every input form decoded to [0,1] tensors at the manifest's shape; large ones off the event loop."""
    payloads, is_batch = await read_payloads(request, settings)

    def decode() -> list[torch.Tensor]:
        return [decode_image(p, prep, settings.max_pixels) for p in payloads]

    small = sum(pixel_count(p) for p in payloads) <= settings.inline_decode_max_pixels
    return Images(decode() if small else await run_in_threadpool(decode), is_batch)
