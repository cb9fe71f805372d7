"""Service settings: the one place that reads the environment (prefix ``PURIFIER_``)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATASETS = ("mnist", "fashion-mnist")
Dataset = Literal["mnist", "fashion-mnist"]
# The purifier names training/export.py writes; query parameters are these enums, never paths.
PURIFIERS = ("autoencoder", "autoencoder-fgsm", "autoencoder-pgd")
Purifier = Literal["autoencoder", "autoencoder-fgsm", "autoencoder-pgd"]
REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the service; defaults serve the bundled ``artifacts/``."""

    model_config = SettingsConfigDict(env_prefix="PURIFIER_", extra="ignore")

    artifacts_dir: Path = REPO_ROOT / "artifacts"
    datasets: tuple[Dataset, ...] = DATASETS
    default_dataset: Dataset = "mnist"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = Field(default=1, ge=1)
    # torch.jit.optimize_for_inference on the real VGG-16s (1 CPU thread, median of 200 runs):
    # batch 1 even (1.0 / 0.8 ms), batch 2 2.1 -> 1.5 ms (MNIST) and 1.7 -> 1.3 ms (Fashion), batch 8
    # 5.9 -> 3.2 and 4.8 -> 3.5 ms, batch 16 11.5 -> 7.0 and 8.6 -> 6.0 ms. The autoencoder gains nothing
    # (batch 1: 0.21 -> 0.31 ms, batch 32: 2.0 -> 2.0 ms), so only the classifier is optimized.
    optimize_classifier: bool = True
    # /defended-classify classifies the raw images on a second thread while the purifier and the classifier
    # on the purified images run on the inference thread. defend() on MNIST, 1 torch thread per branch,
    # median, in-process: batch 1 1.73-2.08 -> 1.38-1.41 ms, batch 8 6.9-7.3 -> 4.4-4.7 ms, batch 32
    # 21 -> 12 ms. It takes a core the event loop may want; `make bench` measures it over HTTP (variant
    # serial-defend).
    parallel_defend: bool = True

    max_batch_size: int = Field(default=32, ge=1)
    # 0 = greedy: a batch takes whatever queued while the model was busy, and a lone request does not
    # wait. Measured on 2 CPU cores: sequential /classify p50 3.1 ms at 0 vs 6.4 ms at 2 ms; at 64
    # concurrent requests batches still average 4-5 and throughput is no lower than with 1, 2 or 5 ms.
    max_wait_ms: float = Field(default=0.0, ge=0)
    max_queue_size: int = Field(default=256, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0)
    retry_after_s: int = Field(default=1, ge=0)
    # POST /attack runs forward and backward passes on its own threads, outside the batchers; more
    # attacks than this at once get 503. Each uses num_threads torch threads, so the default keeps
    # attacks to one core beside the inference thread. Measured on the MNIST VGG-16, 1 CPU thread:
    # FGSM 15 ms per image, PGD 8 ms per step (40 steps 0.33 s, 100 steps 0.86 s).
    max_concurrent_attacks: int = Field(default=1, ge=1)

    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=4096 * 4096, ge=1)
    max_images_per_request: int = Field(default=64, ge=1)
    # Requests whose images add up to at most this many pixels are decoded on the event loop; larger ones
    # on the thread pool, so they cannot stall it. The hand-off costs ~120 µs of CPU per request, more
    # than decoding a 28x28 PNG (~50 µs); at 64x64 RGB a decode takes ~110 µs. /defended-classify over
    # HTTP on 2 shared CPUs, interleaved rounds against 0: server CPU per request -7 % to -20 % at
    # concurrency 32 and 64 (two runs of 3-4 rounds); latencies moved within the noise of the other load.
    # `make bench` keeps measuring it (variant pool-decode). 0 = always the thread pool.
    inline_decode_max_pixels: int = Field(default=64 * 64, ge=0)
    # A client has this long to send its whole body (slow-upload clients get 408 and lose the connection).
    body_timeout_s: float = Field(default=30.0, gt=0)
    # On SIGTERM, in-flight requests get this long to finish before they are cancelled; then exit 0.
    shutdown_timeout_s: int = Field(default=30, ge=1)

    api_keys: tuple[SecretStr, ...] = ()
    # Browser origins allowed to call the API (CORS); empty = no CORS headers at all.
    cors_origins: tuple[str, ...] = ()

    # uvicorn worker processes, each with its own copy of the models, queues and attack limit, and its own
    # /metrics (a scrape sees one worker). /defended-classify over HTTP on 2 CPU cores (`make bench`,
    # variant workers2): at concurrency 64, 1046 vs 834 req/s and p95 82 vs 172 ms; at 32 and below level
    # with one worker, within the machine's noise. Scale out with replicas first (deploy/k8s).
    workers: int = Field(default=1, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("datasets")
    @classmethod
    def _unique_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("datasets must be a non-empty list without repeats")
        return value

    @model_validator(mode="after")
    def _default_is_served(self) -> "Settings":
        if self.default_dataset not in self.datasets:
            raise ValueError(f"default_dataset {self.default_dataset!r} is not in datasets {self.datasets}")
        return self

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
