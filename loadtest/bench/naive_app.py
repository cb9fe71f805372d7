"""The naive baseline: FastAPI with the model called in a plain ``def`` endpoint, one request per forward pass.

FastAPI runs ``def`` endpoints on its thread pool, as its documentation advises for blocking code;
there is no batching, queue or back-pressure. ``python -m loadtest.bench.naive_app`` serves
``POST /defended-classify`` (raw image body) on ``PURIFIER_HOST:PURIFIER_PORT``.
"""

import time
from typing import Annotated

import uvicorn
from fastapi import Body, FastAPI

from loadtest.bench.pipeline import Pipeline
from service.config import Settings


def create_app(settings: Settings) -> FastAPI:
    pipeline = Pipeline.load(settings)
    app = FastAPI(title="naive per-request baseline")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/defended-classify")
    def defended_classify(image: Annotated[bytes, Body(media_type="image/png")]) -> dict:
        started = time.perf_counter()
        result = pipeline.defend([pipeline.decode(image)])[0]
        return pipeline.encode(result, (time.perf_counter() - started) * 1000)

    return app


if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)
