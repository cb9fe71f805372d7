"""A hostile-image corpus, generated (never committed): broken, bombed, disguised and odd inputs, each with
the answer the service owes it.

Broken or disguised inputs must get their specific 4xx with a JSON error; valid but unusual images
(1x1, 16-bit, palette, RGBA, CMYK, APNG, a polyglot, a big EXIF) must be read correctly, so those
cases carry the label the tiny brightness classifier (tests/service/tiny_artifacts.py) gives them.
The limits assumed are the reliability server's: 256 KiB bodies, 512x512 pixels, 64 images a batch.

    python -m tests.reliability.hostile DIR   # write every body and DIR/index.json, e.g. for curl
"""

import base64
import io
import json
import struct
import sys
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

MAX_BODY_BYTES = 256 * 1024
MAX_PIXELS = 512 * 512
MAX_IMAGES = 64
PAYLOAD = b"<script>alert('polyglot')</script>"
ALL_ENDPOINTS = ("/classify", "/defended-classify", "/purify")


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str | None
    status: int
    error: str | None = None  # the error code a 4xx answer must carry
    label: int | None = None  # what the tiny classifier answers for an accepted image
    params: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # send without Content-Length
    endpoints: tuple[str, ...] = ALL_ENDPOINTS

    def request(self) -> dict:
        """httpx keyword arguments for this case."""
        headers = {"content-type": self.content_type} if self.content_type else {}
        content = (
            iter([self.body[i : i + 16384] for i in range(0, len(self.body), 16384)]) if self.chunked else self.body
        )
        return {"content": content, "headers": headers, "params": self.params}


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gray(level: int, size: tuple[int, int] = (28, 28), mode: str = "L") -> Image.Image:
    """A flat image the tiny classifier labels ``level`` (0 black .. 9 white)."""
    value = round(level / 9 * 255)
    return Image.new(mode, size, value if len(mode) == 1 else (value,) * len(mode))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """Insert a chunk right after IHDR (signature 8 bytes + IHDR 25 bytes)."""
    return png[:33] + png_chunk(kind, data) + png[33:]


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height``: bytes that would decode to gigabytes."""
    png = encode(gray(0, (1, 1)))
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose SOF0 frame header claims ``width`` x ``height``."""
    jpeg = bytearray(encode(gray(1, (8, 8)), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


def bmp_claiming(width: int, height: int) -> bytes:
    bmp = bytearray(encode(gray(1, (4, 4)), "BMP"))
    bmp[18:26] = struct.pack("<ii", width, height)
    return bytes(bmp)


def noisy_png(size: int = 64) -> bytes:
    """Incompressible pixels, so truncation cuts into image data rather than the trailer."""
    return encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)))


def bad_huffman_jpeg() -> bytes:
    """Every DHT table's 16 code-length counts set to 255: a table libjpeg must refuse."""
    jpeg = bytearray(
        encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)), "JPEG")
    )
    start = 0
    while (start := jpeg.find(b"\xff\xc4", start)) != -1:
        jpeg[start + 5 : start + 21] = b"\xff" * 16
        start += 2
    return bytes(jpeg)


def with_ihdr_crc_broken(png: bytes) -> bytes:
    return png[:29] + bytes(b ^ 0xFF for b in png[29:33]) + png[33:]


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "hostile-boundary") -> tuple[bytes, str]:
    """(body, content type) of form fields ``(name, filename or None, data)``."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += (b"Content-Type: image/png\r\n" if filename else b"") + b"\r\n" + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def animated(fmt: str, levels: tuple[int, ...]) -> bytes:
    frames = [gray(level) for level in levels]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def json_batch(images: list[str]) -> bytes:
    return json.dumps({"images": images}).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def corpus() -> list[Case]:
    png = encode(gray(3))
    svg = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text>&xxe;</text></svg>'
    )
    exif_app1 = b"\xff\xe1" + struct.pack(">H", 65535) + b"Exif\x00\x00" + b"\x00" * 65527
    jpeg = encode(gray(6), "JPEG", quality=95)
    no_file, no_file_type = multipart([("note", None, b"hello")])
    two_files, two_files_type = multipart([("file", "a.png", png), ("file", "b.png", png)])
    text_png, text_png_type = multipart([("file", "photo.png", b"this is a text file named photo.png\n")])
    ztxt_bomb = png_with_chunk(png, b"zTXt", b"bomb\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024), 9))
    sixteen_bit = encode(Image.fromarray(np.full((28, 28), 5 * 65535 // 9, np.uint16)))
    cmyk = encode(Image.new("CMYK", (28, 28), (0, 0, 0, 0)), "JPEG", quality=95)
    big_exif = png_with_chunk(png, b"eXIf", b"MM\x00\x2a" + b"\xab" * 150_000)
    cases = [
        # broken files
        Case("zero-bytes", b"", "image/png", 422, "invalid_image"),
        Case("truncated-png", noisy_png()[:2000], "image/png", 422, "invalid_image"),
        Case("png-bad-crc", with_ihdr_crc_broken(png), "image/png", 422, "invalid_image"),
        Case("jpeg-bad-huffman", bad_huffman_jpeg(), "image/jpeg", 422, "invalid_image"),
        Case("png-zero-size", png_claiming(0, 0), "image/png", 422, "invalid_image"),
        Case("png-ztxt-bomb", ztxt_bomb, "image/png", 422, "invalid_image"),
        # bombs and pixel limits: refused from the header, before any decoding
        Case("png-bomb-50000x50000", png_claiming(50_000, 50_000), "image/png", 413, "image_too_large"),
        Case("jpeg-bomb-65000x65000", jpeg_claiming(65_000, 65_000), "image/jpeg", 413, "image_too_large"),
        Case("bmp-bomb-30000x30000", bmp_claiming(30_000, 30_000), "image/bmp", 413, "image_too_large"),
        Case("png-over-pixel-limit", png_claiming(600, 600), "image/png", 413, "image_too_large"),
        Case("png-tall-sliver", png_claiming(1, MAX_PIXELS + 1), "image/png", 413, "image_too_large"),
        # valid but unusual: read correctly
        Case("png-1x1", encode(gray(8, (1, 1))), "image/png", 200, label=8),
        Case("png-16-bit", sixteen_bit, "image/png", 200, label=5),
        Case("png-palette", encode(gray(7).convert("P")), "image/png", 200, label=7),
        Case("png-rgba-transparent", encode(gray(2, mode="RGBA").convert("RGBA")), "image/png", 200, label=2),
        Case("jpeg-cmyk", cmyk, "image/jpeg", 200, label=9),
        Case("apng-first-frame", animated("PNG", (4, 9, 0)), "image/png", 200, label=4),
        Case("png-polyglot-zip-html", png + b"PK\x03\x04" + b"\x00" * 26 + PAYLOAD, "image/png", 200, label=3),
        Case("png-big-exif", big_exif, "image/png", 200, label=3),
        Case("jpeg-with-exif", jpeg[:2] + exif_app1 + jpeg[2:], "image/jpeg", 200, label=6),
        # formats the service does not decode, and disguises
        Case("gif-animated", animated("GIF", (1, 8)), "image/png", 422, "invalid_image"),
        Case("tiff-multipage", animated("TIFF", (1, 8)), "image/png", 422, "invalid_image"),
        Case("svg-xxe-as-svg", svg, "image/svg+xml", 415, "unsupported_media_type"),
        Case("svg-xxe-as-png", svg, "image/png", 422, "invalid_image"),
        Case("text-named-png", text_png, text_png_type, 422, "invalid_image"),
        Case("html-content-type", png, "text/html", 415, "unsupported_media_type"),
        Case("no-content-type", png, None, 415, "unsupported_media_type"),
        # size limits
        Case("jpeg-huge-exif", jpeg[:2] + exif_app1 * 5 + jpeg[2:], "image/jpeg", 413, "payload_too_large"),
        Case(
            "chunked-over-limit",
            b"\x89PNG" + b"\x00" * MAX_BODY_BYTES,
            "image/png",
            413,
            "payload_too_large",
            chunked=True,
        ),
        # multipart
        Case("multipart-no-file", no_file, no_file_type, 422, "invalid_batch"),
        Case("multipart-two-files", two_files, two_files_type, 422, "invalid_batch"),
        Case("multipart-no-boundary", png, "multipart/form-data", 422, "invalid_batch"),
        # JSON batches
        Case("json-bad-base64", json_batch(["iVBORw0KGgo$$$"]), "application/json", 422, "invalid_base64"),
        Case(
            "json-over-batch-limit", json_batch([b64(png)] * (MAX_IMAGES + 1)), "application/json", 422, "invalid_batch"
        ),
        Case("json-nan", b'{"images": [NaN, Infinity]}', "application/json", 422, "invalid_batch"),
        Case(
            "json-huge-numbers",
            b'{"images": [1e999999, ' + b"9" * 50_000 + b"]}",
            "application/json",
            422,
            "invalid_batch",
        ),
        Case(
            "json-deeply-nested",
            b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "application/json",
            422,
            "invalid_batch",
        ),
        # parameters never reach the filesystem
        Case(
            "dataset-path-traversal", png, "image/png", 422, "unknown_dataset", params={"dataset": "../../etc/passwd"}
        ),
        Case(
            "purifier-path-traversal",
            png,
            "image/png",
            422,
            "unknown_purifier",
            params={"purifier": "../mnist/classifier.pt"},
            endpoints=("/defended-classify", "/purify"),
        ),
        Case(
            "purifier-is-the-classifier",
            png,
            "image/png",
            422,
            "unknown_purifier",
            params={"purifier": "classifier"},
            endpoints=("/defended-classify", "/purify"),
        ),
    ]
    assert all(len(case.body) <= 2 * MAX_BODY_BYTES for case in cases), "keep the corpus cheap to send"
    return cases


def write(folder: Path) -> Path:
    """Every case's body as ``NN-name.bin`` and its expectations in ``index.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for number, case in enumerate(corpus()):
        path = folder / f"{number:02d}-{case.name}.bin"
        path.write_bytes(case.body)
        index.append({"file": path.name, **{k: v for k, v in asdict(case).items() if k != "body"}})
    (folder / "index.json").write_text(json.dumps(index, indent=1))
    return folder


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")))
