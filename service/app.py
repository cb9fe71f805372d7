"""create_app(): settings, lifespan (load, verify, warm up, start batchers), routers, /metrics."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, Response, params
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.artifacts import load_dataset, resolve_device
from service.attacking import build_attacks
from service.batching import Batcher
from service.config import Settings, get_settings
from service.errors import ArtifactError, install_error_handlers
from service.heap import keep_freed_memory
from service.images import Preprocessing, decode_image, encode_png
from service.inference import Classify, Defend, InferenceModel, Operation, Purify, branch_executor
from service.metrics import PrometheusObserver, RequestMetricsMiddleware
from service.routes import api_router
from service.routes.demo import STATIC_DIR
from service.samples import load_samples
from service.state import Endpoint, Runtime, Served

logger = logging.getLogger(__name__)


def build_served(
    settings: Settings, executor: ThreadPoolExecutor, branch: ThreadPoolExecutor | None
) -> dict[str, Served]:
    """Load every dataset; an endpoint for each model and pipeline its manifest names. Any artifact problem
    stops start-up with one line naming the file."""
    device = resolve_device(settings.device)
    observer = PrometheusObserver()

    def endpoint(operation: Operation, preprocessing: Preprocessing) -> Endpoint:
        batcher = Batcher(
            operation.label,
            operation.predict,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_wait_s,
            max_queue_size=settings.max_queue_size,
            timeout_s=settings.request_timeout_s,
            retry_after_s=settings.retry_after_s,
            executor=executor,
            observer=observer,
        )
        return Endpoint(operation, batcher, preprocessing)

    served = {}
    for dataset in settings.datasets:
        artifacts = load_dataset(settings.artifacts_dir / dataset, device, settings.optimize_classifier)
        model = InferenceModel.served(artifacts, settings, branch)
        manifest, pipeline_prep = artifacts.manifest, artifacts.pipeline_preprocessing
        served[dataset] = Served(
            artifacts,
            model,
            classify=endpoint(Classify(model), artifacts.preprocessing_for(manifest.classifier)),
            purify={
                name: endpoint(Purify(model, name), artifacts.preprocessing_for(name)) for name in artifacts.purifiers
            },
            defend={name: endpoint(Defend(model, name), pipeline_prep(name)) for name in manifest.pipelines},
            compose={name: endpoint(Defend(model, name), pipeline_prep(name)) for name in manifest.compositions},
        )
    return served


async def warm_request_path(served: dict[str, Served], settings: Settings) -> None:
    """One image through PNG decoding, the worker threads and every batcher, so the first request is not slow."""
    for item in served.values():
        prep = item.artifacts.preprocessing
        png = encode_png(torch.rand(prep.channels, prep.height, prep.width))
        for endpoint in item.endpoints():
            image = await run_in_threadpool(decode_image, png, endpoint.preprocessing, settings.max_pixels)
            await endpoint.batcher.submit([image])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    settings = runtime.settings
    torch.set_num_threads(settings.num_threads)
    if settings.keep_freed_memory and not keep_freed_memory():
        logger.info("freed memory goes back to the kernel: the C library did not take the thresholds (glibc mallopt)")
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
        for endpoint in item.endpoints():
            endpoint.batcher.start()
    await warm_request_path(served, settings)
    # What start-up made (models, modules, caches) lives as long as the process: out of the collector's sight,
    # a full collection scans a few thousand objects instead of ~240,000, a pause of 1-2 ms instead of ~110 ms
    # every second or two under load.
    gc.collect()
    gc.freeze()
    runtime.served, runtime.attacks, runtime.samples = served, attacks, samples
    runtime.ready = True
    logger.info("ready: %s", ", ".join(served))
    try:
        yield
    finally:
        runtime.ready = False
        for item in served.values():
            for endpoint in item.endpoints():
                await endpoint.batcher.stop()
        attacks.pool.shutdown()
        await runtime.guard.close()
        executor.shutdown(wait=True)
        if branch is not None:
            branch.shutdown(wait=True)
        gc.unfreeze()  # what start-up made may be collected again (an app shut down inside a longer process)


def install_served_openapi(app: FastAPI) -> None:
    """``/openapi.json`` lists the served purifier and pipeline names as enums, once the manifests are loaded."""

    def openapi() -> dict[str, Any]:
        runtime: Runtime = app.state.runtime
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        if not runtime.ready:  # not cached: the names come with the artifacts
            app.openapi_schema = None
            return schema
        enums = {"purifier": runtime.names("purify"), "pipeline": runtime.names("defend")}
        for operations in schema["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    for option in parameter["schema"].get("anyOf", [parameter["schema"]]):
                        if parameter["name"] in enums and option.get("type") == "string":
                            option.pop("pattern", None)
                            option["enum"] = enums[parameter["name"]]
        return schema

    app.openapi = openapi


def create_app(settings: Settings | None = None, dependencies: Sequence[params.Depends] = ()) -> FastAPI:
    """The service; ``dependencies`` (a deployer's own checks, as ``FastAPI(dependencies=...)`` takes them) run on
    every route before its own."""
    settings = settings or get_settings()
    telemetry = dict.fromkeys(("tracing", "metrics", "logs", "operation_spans"), settings.opentelemetry)
    app = FastAPI(
        title="Adversarial purifier",
        description="Convolutional-autoencoder purification against adversarial examples, then VGG-16 classification.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=telemetry,
        dependencies=list(dependencies),
    )
    app.state.runtime = Runtime(settings)
    install_error_handlers(app)
    install_served_openapi(app)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    app.add_middleware(RequestMetricsMiddleware)
    if app.state.runtime.settings.cors_origins:  # off unless configured: browsers on other origins get no CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(app.state.runtime.settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "accept", "x-api-key", "authorization"],
            expose_headers=["retry-after"],
        )

    @app.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
