import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from service.errors import ImageTooLarge, InvalidBase64, InvalidImage
from service.images import Preprocessing, decode_base64, decode_image, encode_png, pixel_count
from tests.service.tiny_artifacts import bomb_png

PREP = Preprocessing.from_manifest(
    [1, 32, 32], {"color_mode": "L", "resize": "bilinear", "resize_library": "PIL", "scale": "uint8 / 255"}
)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt, mode",
    [
        (fmt, mode)
        for fmt in ("PNG", "JPEG", "WEBP", "BMP")
        for mode in ("L", "RGB", "RGBA")
        if (fmt, mode) != ("JPEG", "RGBA")
    ],
)
def test_any_format_and_mode_becomes_one_channel_at_manifest_shape(fmt: str, mode: str) -> None:
    image = Image.new(mode, (57, 40), 200 if mode == "L" else (200,) * len(mode))
    tensor = decode_image(_encode(image, fmt), PREP, max_pixels=10_000)
    assert tensor.shape == (1, 32, 32) and tensor.dtype == torch.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0


def test_matches_the_training_pipeline_exactly() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    expected = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    assert torch.equal(decode_image(_encode(image, "PNG"), PREP, 10_000)[0], torch.from_numpy(expected))


@pytest.mark.parametrize("data", [b"", b"not an image", None])
def test_corrupt_or_truncated_image_is_invalid(data: bytes | None) -> None:
    if data is None:
        data = _encode(Image.new("L", (64, 64), 3), "PNG")[:40]
    with pytest.raises(InvalidImage):
        decode_image(data, PREP, 10_000)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(_encode(Image.new("L", (200, 200)), "PNG"), PREP, max_pixels=100 * 100)


@pytest.mark.parametrize("side", [5_000, 100_000], ids=["over-max-pixels", "over-pillow-limit"])
def test_a_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(bomb_png(side, side), PREP, max_pixels=4096 * 4096)


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.full((28, 28), 128 * 256 + 200, dtype=np.uint16))
    tensor = decode_image(_encode(image, "PNG"), PREP, 10_000)
    assert torch.allclose(tensor, torch.full_like(tensor, 128 / 255))


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PPM"])
def test_other_formats_are_not_decoded(fmt: str) -> None:
    with pytest.raises(InvalidImage, match="PNG, JPEG, WEBP, BMP"):
        decode_image(_encode(Image.new("L", (28, 28), 9), fmt), PREP, 10_000)


def test_base64_is_strict_and_accepts_a_data_url() -> None:
    assert decode_base64(base64.b64encode(b"abc").decode()) == b"abc"
    assert decode_base64("data:image/png;base64," + base64.b64encode(b"abc").decode()) == b"abc"
    with pytest.raises(InvalidBase64):
        decode_base64("@@not base64@@")


def test_png_round_trip() -> None:
    tensor = torch.rand(1, 32, 32)
    back = decode_image(encode_png(tensor), PREP, 10_000)
    assert (back - tensor).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    "shape, prep",
    [
        ([1, 32, 32], {"color_mode": "L", "resize": "warp", "resize_library": "PIL", "scale": "uint8 / 255"}),
        ([3, 32, 32], {"color_mode": "L", "resize": "bilinear", "resize_library": "PIL", "scale": "uint8 / 255"}),
        ([1, 32, 32], {"color_mode": "L", "resize": "bilinear", "resize_library": "cv2", "scale": "uint8 / 255"}),
    ],
)
def test_unsupported_preprocessing_is_rejected(shape: list[int], prep: dict) -> None:
    with pytest.raises(ValueError):
        Preprocessing.from_manifest(shape, prep)


def test_pixel_count_reads_the_header_only() -> None:
    assert pixel_count(_encode(Image.new("RGB", (40, 30)), "PNG")) == 1200
    assert pixel_count(bomb_png(5000, 5000)) == 25_000_000  # what the header claims, nothing decoded
    assert pixel_count(bomb_png(100_000, 100_000)) == 10_000_000_000  # decoding answers 413
    assert pixel_count(_encode(Image.new("L", (40, 30)), "JPEG")) == 1200  # other formats: through Pillow
    assert pixel_count(b"not an image") == 0 and pixel_count(b"") == 0
