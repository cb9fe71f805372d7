"""create_app(): settings, lifespan (load, verify, warm up, start batchers), routers, /metrics."""

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial

import torch
from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.artifacts import load_dataset, resolve_device
from service.attacking import build_attacks
from service.batching import Batcher
from service.config import Settings, get_settings
from service.deps import Served
from service.errors import ArtifactError, install_error_handlers
from service.images import decode_image, encode_png
from service.inference import InferenceModel, branch_executor
from service.metrics import PrometheusObserver, RequestMetricsMiddleware
from service.routes import api_router
from service.routes.demo import STATIC_DIR
from service.samples import load_samples

logger = logging.getLogger(__name__)


def build_served(
    settings: Settings, executor: ThreadPoolExecutor, branch: ThreadPoolExecutor | None
) -> dict[str, Served]:
    """Load every dataset; any artifact problem stops start-up with one line naming the file."""
    device = resolve_device(settings.device)
    observer = PrometheusObserver()
    served = {}
    for dataset in settings.datasets:
        artifacts = load_dataset(settings.artifacts_dir / dataset, device, settings.optimize_classifier)
        model = InferenceModel(artifacts, branch)
        operations = {"classify": model.classify}
        for name in artifacts.purifiers:
            operations[f"purify:{name}"] = partial(model.purify, purifier=name)
            operations[f"defend:{name}"] = partial(model.defend, purifier=name)
        batchers = {
            op: Batcher(
                f"{dataset}/{op}",
                predict,
                max_batch_size=settings.max_batch_size,
                max_wait_s=settings.max_wait_s,
                max_queue_size=settings.max_queue_size,
                timeout_s=settings.request_timeout_s,
                retry_after_s=settings.retry_after_s,
                executor=executor,
                observer=observer,
            )
            for op, predict in operations.items()
        }
        served[dataset] = Served(artifacts, model, batchers)
    return served


async def warm_request_path(served: dict[str, Served], settings: Settings) -> None:
    """One image through PNG decoding, the worker threads and every batcher, so the first request is not slow."""
    for item in served.values():
        prep = item.artifacts.preprocessing
        png = encode_png(torch.rand(prep.channels, prep.height, prep.width))
        image = await run_in_threadpool(decode_image, png, prep, settings.max_pixels)
        for batcher in item.batchers.values():
            await batcher.submit([image])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    torch.set_num_threads(settings.num_threads)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
    branch = branch_executor(settings)
    loop = asyncio.get_running_loop()
    try:  # load and warm up on the inference thread, where the models will run
        served = await loop.run_in_executor(executor, build_served, settings, executor, branch)
        artifacts = {name: item.artifacts for name, item in served.items()}
        attacks = await loop.run_in_executor(executor, build_attacks, settings, artifacts)
        samples = {name: load_samples(settings.artifacts_dir / name, a.manifest) for name, a in artifacts.items()}
    except ArtifactError as exc:
        logger.error("start-up failed: %s", exc)
        executor.shutdown()
        if branch is not None:
            branch.shutdown()
        raise
    for item in served.values():
        for batcher in item.batchers.values():
            batcher.start()
    await warm_request_path(served, settings)
    app.state.served, app.state.attacks, app.state.samples = served, attacks, samples
    app.state.ready = True
    logger.info("ready: %s", ", ".join(served))
    try:
        yield
    finally:
        app.state.ready = False
        for item in served.values():
            for batcher in item.batchers.values():
                await batcher.stop()
        attacks.pool.shutdown()
        executor.shutdown(wait=True)
        if branch is not None:
            branch.shutdown(wait=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Adversarial purifier",
        description="Convolutional-autoencoder purification against adversarial examples, then VGG-16 classification.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    app.add_middleware(RequestMetricsMiddleware)
    if app.state.settings.cors_origins:  # off unless configured: browsers on other origins get no CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "accept", "x-api-key", "authorization"],
            expose_headers=["retry-after"],
        )

    @app.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
