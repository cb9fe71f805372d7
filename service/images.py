"""Bytes <-> [0,1] float tensors at the manifest's input shape, with the training's resize."""

import base64
import binascii
import io
import struct
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from service.errors import ImageTooLarge, InvalidBase64, InvalidImage

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# What the endpoints accept; Image.open tries no other decoder (no EPS, no TIFF, ...).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Preprocessing:
    """How the training pipeline turned an image into a tensor, as the manifest records it."""

    channels: int
    height: int
    width: int
    color_mode: str
    resample: Image.Resampling

    @classmethod
    def from_manifest(cls, input_shape: list[int], preprocessing: dict) -> "Preprocessing":
        channels, height, width = (int(v) for v in input_shape)
        if preprocessing.get("resize_library") != "PIL" or preprocessing.get("scale") != "uint8 / 255":
            raise ValueError(f"unsupported preprocessing {preprocessing}")
        method = preprocessing.get("resize")
        if method not in RESAMPLING:
            raise ValueError(f"unsupported resize method {method!r}")
        color_mode = preprocessing.get("color_mode")
        if color_mode not in ("L", "RGB") or len(color_mode) != channels:
            raise ValueError(f"color_mode {color_mode!r} does not match {channels} channel(s)")
        return cls(channels, height, width, color_mode, RESAMPLING[method])

    def at(self, input_shape: list[int]) -> "Preprocessing":
        """The same preprocessing at another ``C x H x W`` (a model with its own input shape)."""
        channels, height, width = (int(v) for v in input_shape)
        if channels != self.channels or min(height, width) < 1:
            raise ValueError(
                f"input shape {input_shape} does not suit {self.channels}-channel {self.color_mode!r} images"
            )
        return replace(self, height=height, width=width)


def decode_base64(text: str) -> bytes:
    """Strict base64 (an optional ``data:...;base64,`` prefix is accepted)."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(f"not valid base64: {exc}") from exc


def pixel_count(data: bytes) -> int:
    """Width × height as the header claims, nothing decoded: a PNG's from its IHDR chunk (about 1 µs), any other
    format's through Pillow (about 11 µs); 0 when unreadable, so decoding says why."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    try:
        width, height = Image.open(io.BytesIO(data), formats=FORMATS).size
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError):
        return 0
    return width * height


def decode_image(data: bytes, prep: Preprocessing, max_pixels: int) -> torch.Tensor:
    """Any readable image -> C×H×W float32 in [0,1]; 413 above ``max_pixels``, 422 if unreadable."""
    if not data:
        raise InvalidImage("empty image")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"image is {width}x{height} pixels, above the limit of {max_pixels}")
        image.load()
        converted = _to_8_bit(image).convert(prep.color_mode).resize((prep.width, prep.height), prep.resample)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(f"not a readable {', '.join(FORMATS)} image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"cannot decode image: {exc}") from exc
    array = np.asarray(converted, dtype=np.uint8).reshape(prep.height, prep.width, prep.channels)
    return torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32) / 255.0)


def _to_8_bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale scaled to 8 bits (Pillow's own conversion would clip it at 255)."""
    if not image.mode.startswith("I;16"):
        return image
    return Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))


def encode_png(tensor: torch.Tensor) -> bytes:
    """C×H×W float in [0,1] -> PNG bytes."""
    array = (tensor.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()).transpose(1, 2, 0)
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
