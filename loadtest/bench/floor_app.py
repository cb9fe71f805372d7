"""The floor of the stack: a bare ASGI app under the same server as the service (uvicorn with uvloop and
httptools), with no framework, no validation, no queue and no thread hand-off.

``python -m loadtest.bench.floor_app --static`` answers every request with a fixed JSON body: what HTTP alone
costs on this machine. Without ``--static`` it also decodes the image and runs the same ``defend`` as every
engine, on the event loop, and answers its JSON: the least any server can spend around the model. Both serve
``POST /defended-classify`` (raw image body) and ``GET /healthz`` on ``PURIFIER_HOST:PURIFIER_PORT``.
"""

import argparse
import json
import time

import uvicorn

from loadtest.bench.pipeline import Pipeline
from service.config import Settings

FIXED = json.dumps({"label": 0, "status": "ok"}).encode()  # a label, so the answer check reads it


async def _body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def create_app(pipeline: Pipeline | None):
    """The ASGI callable; ``pipeline`` None answers the fixed body."""

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await _body(receive)
        payload = FIXED
        if pipeline is not None and scope["path"] == "/defended-classify":
            started = time.perf_counter()
            result = pipeline.defend([pipeline.decode(body)])[0]
            payload = json.dumps(pipeline.encode(result, (time.perf_counter() - started) * 1000)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.floor_app", description=__doc__)
    parser.add_argument("--static", action="store_true", help="answer a fixed body: no decode, no model")
    args = parser.parse_args()
    settings = Settings()
    app = create_app(None if args.static else Pipeline.load(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                loop="uvloop", http="httptools")
