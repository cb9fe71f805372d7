"""Pydantic request and response models, with examples for ``/docs``."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROBS_EXAMPLE = [0.001, 0.002, 0.001, 0.003, 0.001, 0.002, 0.001, 0.985, 0.002, 0.002]
# The body types of the model endpoints: one raw image file, a multipart ``file``, or a JSON batch.
RAW_TYPES = ("image/png", "image/jpeg", "image/webp", "image/bmp", "application/octet-stream")
BODY_TYPES = frozenset({*RAW_TYPES, "multipart/form-data", "application/json"})
PNG_EXAMPLE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="


def _example(example: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class ImageBatch(BaseModel):
    """A JSON batch of base64-encoded images, answered as a list in the same order."""

    model_config = _example({"images": [PNG_EXAMPLE]})
    images: list[str] = Field(description="base64 image files (PNG, JPEG, WebP, BMP)")


class ClassScore(BaseModel):
    label: int
    class_name: str
    probability: float


class Prediction(BaseModel):
    """What a prediction shows depends on the client's response detail: ``full`` gives ``probabilities``,
    ``topk`` gives ``top``, ``label`` neither."""

    model_config = _example({"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE})
    label: int
    class_name: str
    probabilities: list[float] | None = Field(None, description="every class's probability; `full` detail only")
    top: list[ClassScore] | None = Field(
        None, description="the most likely classes, probabilities rounded; `topk` detail only"
    )


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
            "pipeline": "autoencoder",
            "undefended": {"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE},
            "suspected_adversarial": False,
            "reconstruction_mse": 0.012,
        }
    )
    pipeline: str = Field(description="the pipeline that answered (purifier, then classifier), as in GET /models")
    undefended: Prediction | None = Field(
        None, description="the manifest's classifier on the image as given; `full` detail only"
    )
    suspected_adversarial: bool | None = Field(
        None, description="labels disagree, or reconstruction MSE above the manifest threshold; `full` detail only"
    )
    reconstruction_mse: float | None = Field(
        None, description="purified vs input, null for a pipeline without purifier; `full` detail only"
    )
    certified: bool | None = Field(
        None,
        description="certifiable pipelines only: the label provably holds for every image within the pipeline's "
        "ℓ∞ eps (GET /models) of the model's input",
    )
    certified_radius: float | None = Field(
        None,
        description="certifiable pipelines only: the largest ℓ∞ radius, a whole number of grey levels (k/255, "
        "rounded down to 6 decimals), at which the label provably holds (0: none); `full` detail, rounded down "
        "further in `topk`, absent in `label`",
    )


class PurifyResponse(BaseModel):
    model_config = _example(
        {"image": PNG_EXAMPLE, "l2": 2.31, "linf": 0.42, "model": "dc9941a16887", "latency_ms": 3.0}
    )
    image: str = Field(description="base64 PNG of the purified image")
    l2: float = Field(description="ℓ2 distance between input and purified image, pixels in [0,1]")
    linf: float = Field(description="ℓ∞ distance between input and purified image")
    model: str = Field(description="sha256 prefix of the purifier")
    latency_ms: float = Field(description="server time from queueing the image to its result")


class AttackQuery(BaseModel):
    """``POST /attack`` parameters. Unset hyperparameters take the paper's values (FGSM eps 0.6; PGD eps 0.3,
    alpha 0.01, 40 steps); the bounds cap one request's cost."""

    attack: Literal["fgsm", "pgd"] = "fgsm"
    eps: float | None = Field(None, ge=0, le=1, description="ℓ∞ budget, pixels in [0,1]")
    alpha: float | None = Field(None, gt=0, le=1, description="PGD step size")
    steps: int | None = Field(None, ge=1, le=100, description="PGD steps")
    label: int | None = Field(None, ge=0, description="true label to move away from; default: the predicted label")
    target: Literal["classifier", "pipeline"] = Field(
        "classifier",
        description="attack the manifest's classifier alone (the paper's oblivious attacker), or the whole pipeline: "
        "gradients through purifier and classifier, averaged over `eot` draws of the purifier's noise",
    )
    pipeline: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$", description="with target=pipeline; default: the manifest's"
    )
    eot: int = Field(8, ge=1, le=16, description="noise draws per gradient, with target=pipeline")

    @model_validator(mode="after")
    def _pgd_only(self) -> "AttackQuery":
        if self.attack != "pgd" and (self.alpha is not None or self.steps is not None):
            raise ValueError(f"alpha and steps apply to pgd, not {self.attack}")
        if self.target != "pipeline" and self.pipeline is not None:
            raise ValueError("pipeline applies to target=pipeline")
        return self


class AttackResponse(BaseModel):
    model_config = _example(
        {
            "image": PNG_EXAMPLE,
            "original_image": PNG_EXAMPLE,
            "l2": 5.1,
            "linf": 0.2,
            "label": 7,
            "original": {"label": 7, "class_name": "7", "probabilities": PROBS_EXAMPLE},
            "adversarial": {"label": 3, "class_name": "3", "probabilities": PROBS_EXAMPLE[::-1]},
            "target": "classifier",
            "attack": "fgsm",
            "eps": 0.2,
            "alpha": None,
            "steps": None,
            "model": "c07decfba86b",
            "latency_ms": 15.2,
        }
    )
    image: str = Field(description="base64 PNG of the adversarial image at the model's input shape")
    original_image: str = Field(description="base64 PNG of the input as the model sees it (decoded, resized)")
    l2: float = Field(description="ℓ2 distance between input and adversarial image, pixels in [0,1]")
    linf: float = Field(description="ℓ∞ distance; at most eps (the image is rounded to the 8-bit grid inside the ball)")
    label: int = Field(description="the label the attack moved away from")
    original: Prediction = Field(description="the attacked target (classifier or pipeline) on the input")
    adversarial: Prediction = Field(description="the attacked target on the adversarial image")
    target: str = Field(description="`classifier`, or the name of the attacked pipeline")
    attack: str
    eps: float
    alpha: float | None = Field(description="PGD only")
    steps: int | None = Field(description="PGD only")
    model: str = Field(description="sha256 prefix of the attacked (pipeline's) classifier")
    latency_ms: float = Field(description="server time from starting the attack to its result")


class Sample(BaseModel):
    index: int
    label: int
    class_name: str
    url: str = Field(description="the PNG, as served by GET /samples/{index}")


class SamplesResponse(BaseModel):
    model_config = _example(
        {"dataset": "mnist", "samples": [{"index": 0, "label": 7, "class_name": "7", "url": "/samples/0?dataset=mnist"}]}
    )
    dataset: str
    samples: list[Sample]


class ErrorResponse(BaseModel):
    model_config = _example({"error": "invalid_image", "detail": "cannot decode image: truncated"})
    error: str
    detail: str


class PipelineInfo(BaseModel):
    purifier: str | None = Field(description="the purifier model, or null: the classifier sees the input as given")
    classifier: str
    input_shape: list[int] = Field(description="what an image is resized to before the pipeline's first model")
    description: str | None = Field(None, description="what the pipeline is, in one line")
    method: str | None = Field(None, description="how it defends: its training or purification method")
    certificate: dict[str, Any] | None = Field(
        None, description="certifiable pipelines: method, eps and the space the certificate holds in"
    )
    metrics: dict[str, Any] = Field(description="measured accuracy of the pipeline, as the manifest records it")


class DatasetInfo(BaseModel):
    device: str
    classifier: str = Field(description="the undefended classifier (/classify, and `undefended` in responses)")
    classifiers: list[str]
    default_purifier: str
    purifiers: list[str]
    default_pipeline: str = Field(description="what /defended-classify runs without ?pipeline=")
    pipelines: dict[str, PipelineInfo]
    class_names: list[str]
    input_shape: list[int] = Field(description="what /classify and /purify resize an image to (a pipeline: its own)")
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
                    "classifiers": ["classifier"],
                    "default_purifier": "autoencoder",
                    "purifiers": ["autoencoder", "autoencoder-fgsm", "autoencoder-pgd"],
                    "default_pipeline": "autoencoder",
                    "pipelines": {
                        "autoencoder": {
                            "purifier": "autoencoder",
                            "classifier": "classifier",
                            "input_shape": [1, 32, 32],
                            "metrics": {},
                        }
                    },
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
        403: "`/attack` for a client without `full` response detail",
        408: "the body was not received within body_timeout_s",
        413: "body over the size limit, or too many pixels",
        415: "unsupported media type",
        422: "corrupt image, bad base64, bad batch, unknown dataset or purifier",
        429: "over the client's query budget (`rate_limited`), or flagged by the query-attack detector in block "
        "mode (`query_attack_suspected`): retry after the Retry-After header",
        500: "inference failed for this request's batch (logged; the next batch is unaffected)",
        503: "overloaded or not ready: retry after the Retry-After header",
        504: "no answer within request_timeout_s",
    }.items()
}

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **{
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in RAW_TYPES
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
