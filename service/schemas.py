"""Pydantic request and response models, with examples for ``/docs``."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBS_EXAMPLE = [0.001, 0.002, 0.001, 0.003, 0.001, 0.002, 0.001, 0.985, 0.002, 0.002]
PNG_EXAMPLE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="


def _example(example: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class ImageBatch(BaseModel):
    """A JSON batch of base64-encoded images, answered as a list in the same order."""

    model_config = _example({"images": [PNG_EXAMPLE]})
    images: list[str] = Field(description="base64 image files (PNG, JPEG, WebP, BMP)")


class Prediction(BaseModel):
    model_config = _example({"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE})
    label: int
    class_name: str
    probabilities: list[float]


class ClassifyResponse(Prediction):
    model_config = _example(
        {"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE, "model": "c07decfba86b", "latency_ms": 4.2}
    )
    model: str = Field(description="sha256 prefix of the classifier")
    latency_ms: float = Field(description="server time from queueing the image to its result")


class DefendedResponse(ClassifyResponse):
    model_config = _example(
        {
            "label": 7,
            "class_name": "7",
            "probabilities": PROBS_EXAMPLE,
            "model": "c07decfba86b",
            "latency_ms": 6.1,
            "undefended": {"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE},
            "suspected_adversarial": False,
            "reconstruction_mse": 0.012,
        }
    )
    undefended: Prediction
    suspected_adversarial: bool = Field(
        description="labels disagree, or reconstruction MSE above the manifest threshold"
    )
    reconstruction_mse: float


class PurifyResponse(BaseModel):
    model_config = _example(
        {"image": PNG_EXAMPLE, "l2": 2.31, "linf": 0.42, "model": "dc9941a16887", "latency_ms": 3.0}
    )
    image: str = Field(description="base64 PNG of the purified image")
    l2: float = Field(description="ℓ2 distance between input and purified image, pixels in [0,1]")
    linf: float = Field(description="ℓ∞ distance between input and purified image")
    model: str = Field(description="sha256 prefix of the purifier")
    latency_ms: float = Field(description="server time from queueing the image to its result")


class ErrorResponse(BaseModel):
    model_config = _example({"error": "invalid_image", "detail": "cannot decode image: truncated"})
    error: str
    detail: str


class DatasetInfo(BaseModel):
    device: str
    classifier: str
    default_purifier: str
    purifiers: list[str]
    class_names: list[str]
    input_shape: list[int]
    detector_thresholds: dict[str, float | None]
    sha256: dict[str, str]
    metrics: dict[str, Any]


class ModelsResponse(BaseModel):
    model_config = _example(
        {
            "datasets": {
                "mnist": {
                    "device": "cpu",
                    "classifier": "classifier",
                    "default_purifier": "autoencoder",
                    "purifiers": ["autoencoder", "autoencoder-fgsm", "autoencoder-pgd"],
                    "class_names": [str(i) for i in range(10)],
                    "input_shape": [1, 32, 32],
                    "detector_thresholds": {"autoencoder": 0.0135, "autoencoder-fgsm": None, "autoencoder-pgd": None},
                    "sha256": {"classifier.pt": "c07decfba86b..."},
                    "metrics": {},
                }
            }
        }
    )
    datasets: dict[str, DatasetInfo]


class Status(BaseModel):
    model_config = _example({"status": "ok"})
    status: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "missing or wrong API key",
        413: "body over the size limit, or too many pixels",
        415: "unsupported media type",
        422: "corrupt image, bad base64, bad batch or unknown dataset",
        503: "overloaded: retry after the Retry-After header",
    }.items()
}

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **{
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in ("image/png", "image/jpeg", "image/webp", "image/bmp", "application/octet-stream")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {"schema": ImageBatch.model_json_schema(), "example": {"images": [PNG_EXAMPLE]}},
        },
    }
}
