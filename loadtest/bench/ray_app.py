"""Ray Serve serving the same TorchScript files, batching with ``@serve.batch``: a peer the benchmark compares.

``python -m loadtest.bench.ray_app --batch-timeout-ms T`` starts a local Ray instance and one replica that
serves ``POST /defended-classify`` (raw image body) on ``PURIFIER_HOST:PURIFIER_PORT`` through Ray's HTTP
proxy (and ``GET /healthz`` once the replica is up), with ``max_batch_size`` from
``PURIFIER_MAX_BATCH_SIZE``. The replica decodes each request, then ``@serve.batch`` gathers the decoded
images for one ``defend``. It stays up until interrupted.
"""

import argparse
import os
import signal
import sys
import threading
import time

import ray
from ray import serve
from starlette.requests import Request

from loadtest.bench.pipeline import Pipeline
from service.config import Settings


@serve.deployment(num_replicas=1, max_ongoing_requests=1024)
class DefendedClassify:
    def __init__(self, settings: Settings, batch_timeout_s: float) -> None:
        self.pipeline = Pipeline.load(settings)
        self.defend.set_max_batch_size(settings.max_batch_size)
        self.defend.set_batch_wait_timeout_s(batch_timeout_s)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.001)
    async def defend(self, images: list) -> list[dict]:
        started = time.perf_counter()
        results = self.pipeline.defend(images)
        latency_ms = (time.perf_counter() - started) * 1000
        return [self.pipeline.encode(result, latency_ms) for result in results]

    async def __call__(self, request: Request) -> dict:
        if request.url.path == "/healthz":  # answered once the replica is up: the benchmark's readiness check
            return {"status": "ok"}
        return await self.defend(self.pipeline.decode(await request.body()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.ray_app", description=__doc__)
    parser.add_argument("--batch-timeout-ms", type=float, default=1.0)
    args = parser.parse_args()
    settings = Settings()
    # the replica runs in a Ray worker process: it must find this repository and read the same settings
    env = {k: v for k, v in os.environ.items() if k.startswith("PURIFIER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env})
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(DefendedClassify.bind(settings, args.batch_timeout_ms / 1000), route_prefix="/")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
