"""The serving engines the benchmark compares, all on the same artifacts and ``PURIFIER_*`` settings, and the
floor of the stack beside them."""

import base64
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.redis_server import RedisServer
from loadtest.server import Server, free_port, running, service_env

LOCAL_REDIS = "local"  # a variant's redis_url: a private redis-server for that engine


def _raw_png(png: bytes) -> tuple[bytes, str]:
    return png, "image/png"


def _json_base64(png: bytes) -> tuple[bytes, str]:
    return json.dumps({"image": base64.b64encode(png).decode()}).encode(), "application/json"


def _json_base64_list(png: bytes) -> tuple[bytes, str]:
    return json.dumps({"images": [base64.b64encode(png).decode()]}).encode(), "application/json"


def _as_is(answer: Any) -> dict:
    return answer


def _only_item(answer: Any) -> dict:
    return answer[0]


@dataclass(frozen=True)
class Engine:
    key: str
    title: str
    module: str
    ready_path: str
    settings: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    body: Callable[[bytes], tuple[bytes, str]] = _raw_png
    answer: Callable[[Any], dict] = _as_is  # the answer for one image, from the parsed JSON response
    # This service: it serves several datasets (the path names one) and reports batch sizes on /metrics.
    is_service: bool = True

    @property
    def reports_batches(self) -> bool:
        """Its /metrics describe every batch: this service in one process (each worker answers for itself; with
        Redis and no ``workers``, there is one a core)."""
        one = "1" if "redis_url" not in self.settings else None
        return self.is_service and self.settings.get("workers", one) == "1"

    def path(self, dataset: str) -> str:
        return f"/defended-classify?dataset={dataset}" if self.is_service else "/defended-classify"

    @contextmanager
    def start(self, log: Path, dataset: str) -> Iterator[Server]:
        """The engine on a free port; ``redis_url=local`` gives it a private redis-server for its lifetime."""
        with ExitStack() as stack:
            settings = dict(self.settings)
            if settings.get("redis_url") == LOCAL_REDIS:
                redis = RedisServer(log.parent).start()
                stack.callback(redis.stop)
                settings["redis_url"] = redis.url
            port = free_port()
            env = service_env(port, default_dataset=dataset, **settings)
            command = [sys.executable, "-m", self.module, *self.args]
            yield stack.enter_context(running(command, log, port=port, ready_path=self.ready_path, env=env))


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``"pool-decode:inline_decode_max_pixels=0,log_level=info"`` -> the service with those settings."""
    name, _, assignments = text.partition(":")
    pairs = [item.split("=", 1) for item in assignments.split(",") if item]
    if not name or not pairs or any(len(pair) != 2 or not pair[0] for pair in pairs):
        raise ValueError(f"variant {text!r} is not NAME:KEY=VALUE[,KEY=VALUE...]")
    return name, dict(pairs)


def _peers(batch: str, peer_batch_timeout_ms: float) -> list[Engine]:
    """Naive FastAPI, LitServe, Ray Serve and BentoML, each batching its own way, and the floor."""
    return [
        Engine("naive", "naive FastAPI, model in a def endpoint", "loadtest.bench.naive_app", "/healthz",
               is_service=False),
        Engine(
            "litserve",
            f"LitServe, batching (max_batch_size={batch}, batch_timeout={peer_batch_timeout_ms:g} ms)",
            "loadtest.bench.litserve_app",
            "/health",
            {"max_batch_size": batch},
            ("--batch-timeout-ms", str(peer_batch_timeout_ms)),
            _json_base64,
            is_service=False,
        ),
        Engine(
            "ray",
            f"Ray Serve, @serve.batch (max_batch_size={batch}, batch_wait_timeout={peer_batch_timeout_ms:g} ms)",
            "loadtest.bench.ray_app",
            "/healthz",
            {"max_batch_size": batch},
            ("--batch-timeout-ms", str(peer_batch_timeout_ms)),
            is_service=False,
        ),
        Engine(
            "bentoml",
            f"BentoML, adaptive batching (max_batch_size={batch})",
            "loadtest.bench.bentoml_app",
            "/readyz",
            {"max_batch_size": batch},
            body=_json_base64_list,
            answer=_only_item,
            is_service=False,
        ),
        Engine("floor", "bare ASGI, a fixed JSON body", "loadtest.bench.floor_app", "/healthz",
               args=("--static",), is_service=False),
        Engine("floor-model", "bare ASGI, decode and defend on the event loop", "loadtest.bench.floor_app",
               "/healthz", is_service=False),
    ]


def engines(
    max_batch_size: int, peer_batch_timeout_ms: float, variants: dict[str, dict[str, str]] | None = None
) -> dict[str, Engine]:
    """(a) the service batching, (b) the service at batch 1, (c) naive FastAPI, (d) LitServe, Ray Serve and
    BentoML, each batching its own way, (e) the floor: a bare ASGI app answering a fixed body, (f) the same app
    with the decode and the model call; then
    ``ours-<name>`` for each variant: the service, batching, with other ``PURIFIER_*`` settings."""
    batch = str(max_batch_size)
    ours = [
        Engine("ours", f"this service, batching (max_batch_size={batch})", "service", "/readyz",
               {"max_batch_size": batch}),
        Engine("ours-batch1", "this service, max_batch_size=1", "service", "/readyz", {"max_batch_size": "1"}),
    ]
    extra = [
        Engine(
            f"ours-{name}",
            f"this service, batching, {', '.join(f'{k}={v}' for k, v in settings.items())}",
            "service",
            "/readyz",
            {"max_batch_size": batch, **settings},
        )
        for name, settings in (variants or {}).items()
    ]
    return {engine.key: engine for engine in (*ours, *_peers(batch, peer_batch_timeout_ms), *extra)}
