"""Service settings: the one place that reads the environment (prefix ``PURIFIER_``)."""

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATASETS = ("mnist", "fashion-mnist")
Dataset = Literal["mnist", "fashion-mnist"]
Detail = Literal["full", "topk", "label"]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def key_id(key: str) -> str:
    """An API key's public name: the first 12 hex digits of its sha256 (in metrics, logs and ``key_detail``)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]
REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the service; defaults serve the bundled ``artifacts/``. Each description is one line of
    docs/deploy.md's configuration table (``python -m service.settings_doc``); measurements are in
    docs/performance.md."""

    model_config = SettingsConfigDict(env_prefix="PURIFIER_", extra="ignore")

    artifacts_dir: Path = Field(
        REPO_ROOT / "artifacts",
        description="folder with one artifact folder (`manifest.json`, TorchScript files) per dataset; "
        "`/app/artifacts` in the image",
    )
    datasets: tuple[Dataset, ...] = Field(DATASETS, description="datasets to load and serve")
    default_dataset: Dataset = Field("mnist", description="dataset of requests without `?dataset=`; must be served")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` (CUDA when visible, else CPU), `cpu` or `cuda`")
    num_threads: int = Field(1, ge=1, description="torch intra-op threads")
    keep_freed_memory: bool = Field(
        True,
        description="on glibc, reuse the memory tensors free instead of returning it to the kernel after each "
        "request: no page faults per request, for a little more resident memory; `false` leaves glibc's "
        "`MALLOC_*` settings in charge",
    )
    optimize_classifier: bool = Field(
        True, description="apply `torch.jit.optimize_for_inference` to the classifiers (not the purifiers)"
    )
    parallel_defend: bool = Field(
        True,
        description="`/defended-classify` classifies the raw images on a second thread while the pipeline runs",
    )
    certified_radius_probes: int = Field(
        2, ge=1, le=64, description="grey levels bounded per round of the certified-radius search, in one batched call"
    )
    certified_radius_rounds: int = Field(
        16,
        ge=0,
        le=64,
        description="most rounds of the certified-radius search; it stops earlier once every radius is found to one "
        "grey level (fewer: a smaller radius, still proved; 0: the largest grey level under eps, or 0)",
    )
    max_batch_size: int = Field(32, ge=1, description="most images per micro-batch")
    max_wait_ms: float = Field(
        0.0, ge=0, description="how long a batch waits to fill; 0 takes what queued while the model was busy"
    )
    max_queue_size: int = Field(
        256, ge=1, description="images waiting per batcher before requests get 503 with `Retry-After`"
    )
    request_timeout_s: float = Field(30.0, gt=0, description="longest wait for a result, else 504")
    retry_after_s: int = Field(1, ge=0, description="the `Retry-After` header of a 503")
    max_concurrent_attacks: int = Field(1, ge=1, description="`POST /attack` runs at once; one more gets 503")
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1, description="largest request body (5 MiB), else 413")
    max_pixels: int = Field(
        4096 * 4096, ge=1, description="largest decoded image (4096×4096), else 413 (decompression bombs)"
    )
    max_images_per_request: int = Field(64, ge=1, description="largest JSON batch, else 422")
    inline_decode_max_pixels: int = Field(
        64 * 64,
        ge=0,
        description="requests with at most this many pixels in all are decoded on the event loop, larger ones "
        "on the thread pool; 0 = always the pool",
    )
    body_timeout_s: float = Field(30.0, gt=0, description="time to send the whole body, else 408")
    shutdown_timeout_s: int = Field(
        30, ge=1, description="on SIGTERM, how long in-flight requests may finish before they are cancelled"
    )
    api_keys: tuple[SecretStr, ...] = Field(
        (),
        description="keys accepted in `X-API-Key` or `Authorization: Bearer` on the model endpoints; empty = open",
    )
    response_detail: Literal["auto", "full", "topk", "label"] = Field(
        "auto",
        description="what `/classify` and `/defended-classify` reveal: `full`, `topk` or `label`; `auto` = `full` "
        "when listening on loopback, else `label`",
    )
    response_top_k: int = Field(3, ge=1, description="classes in a `topk` answer")
    response_decimals: int = Field(2, ge=0, le=6, description="decimals of a `topk` answer's probabilities")
    key_detail: dict[str, Detail] = Field(
        {}, description="per-key detail, by key id (sha256 prefix, `service.config.key_id`): `{\"<id>\": \"full\"}`"
    )
    client_rate: float = Field(
        0.0, ge=0, description="images per second each client may send on average (token bucket); 0 = no budget"
    )
    client_burst: int = Field(600, ge=1, description="images a client may send at once before `client_rate` applies")
    max_clients: int = Field(
        10_000, ge=1, description="clients the budgets and the query detector remember each (least recently seen go)"
    )
    query_defense: Literal["off", "flag", "block"] = Field(
        "flag",
        description="query-attack detector: `flag` sets `X-Query-Attack: suspected` on a flagged client's answers, "
        "`block` answers it 429",
    )
    query_history: int = Field(64, ge=1, le=4096, description="fingerprints the detector keeps per client")
    query_window_s: float = Field(600.0, gt=0, description="fingerprints older than this are forgotten")
    query_distance: float = Field(
        6.0, ge=0, description="close: mean absolute difference of 8×8 cell means, 8-bit units, at most this"
    )
    query_matches: int = Field(
        2, ge=1, description="a query is a near-duplicate when this many kept fingerprints are close to it"
    )
    query_threshold: int = Field(8, ge=1, description="near-duplicates among the kept fingerprints that flag a client")
    redis_url: SecretStr | None = Field(
        None,
        description="Redis for the budgets and the query detector, shared by every worker and replica "
        "(`redis://host:6379/0`); unset, each process keeps its own. Unreachable, model requests get 503",
    )
    redis_timeout_s: float = Field(
        0.25, gt=0, le=10, description="how long a request waits for Redis before it is refused with 503"
    )
    cors_origins: tuple[str, ...] = Field((), description="browser origins allowed to call the API; empty = no CORS headers")
    workers: int | None = Field(
        None,
        ge=1,
        description="uvicorn worker processes; each holds its own models, queues and attack limit and answers "
        "`/metrics` for itself only. Unset: one per CPU core with `redis_url` (budgets and the detector are "
        "shared), else 1",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans, metrics and logs, when an OpenTelemetry SDK is configured; "
        "off, the hot path skips the per-request check (`/metrics` is Prometheus either way)",
    )
    host: str = Field("127.0.0.1", description="interface to listen on; `0.0.0.0` in the image")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="`critical`, `error`, `warning`, `info` or `debug`"
    )

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

    @model_validator(mode="after")
    def _detail_keys_are_configured(self) -> "Settings":
        known = {key_id(key.get_secret_value()) for key in self.api_keys}
        unknown = sorted(set(self.key_detail) - known)
        if unknown:
            raise ValueError(f"key_detail names key ids no configured API key has: {unknown}")
        return self

    @property
    def default_detail(self) -> Detail:
        if self.response_detail == "auto":
            return "full" if self.host in LOOPBACK else "label"
        return self.response_detail

    def detail_for(self, key: str | None) -> Detail:
        """The detail a client gets: its key's entry in ``key_detail``, else the default."""
        return self.key_detail.get(key, self.default_detail) if key else self.default_detail

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0

    @property
    def worker_count(self) -> int:
        """``workers``, else one per core this process may use when the client state is shared, else one."""
        if self.workers is not None:
            return self.workers
        return len(os.sched_getaffinity(0)) if self.redis_url else 1


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
