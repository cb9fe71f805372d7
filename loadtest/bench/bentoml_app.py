"""BentoML serving the same TorchScript files with its adaptive batching: a peer the benchmark compares.

``python -m loadtest.bench.bentoml_app`` runs ``bentoml serve`` on this module's service, one worker process,
on ``PURIFIER_HOST:PURIFIER_PORT``. It serves ``POST /defended-classify`` with a JSON body
``{"images": ["<base64 PNG>"]}`` (a batchable BentoML API takes a list; its dispatcher joins the lists of
concurrent requests into one batch of at most ``PURIFIER_MAX_BATCH_SIZE``), and BentoML's own ``/readyz``.
The worker decodes each image of the batch, then runs one ``defend``. It stays up until interrupted.
"""

import base64
import os
import sys
import time

import bentoml

from loadtest.bench.pipeline import Pipeline
from service.config import Settings

SETTINGS = Settings()  # read at import: the worker processes that bentoml starts import this module again


@bentoml.service(workers=1, logging={"access": {"enabled": False}})  # no access log: no engine here keeps one
class DefendedClassify:
    def __init__(self) -> None:
        self.pipeline = Pipeline.load(SETTINGS)

    # max_latency_ms is the budget past which the dispatcher refuses a request: set far above any latency here,
    # so that it batches adaptively and never sheds load the other engines would queue.
    @bentoml.api(route="/defended-classify", batchable=True, max_batch_size=SETTINGS.max_batch_size,
                 max_latency_ms=60_000)
    def defend(self, images: list[str]) -> list[dict]:
        started = time.perf_counter()
        results = self.pipeline.defend([self.pipeline.decode(base64.b64decode(image)) for image in images])
        latency_ms = (time.perf_counter() - started) * 1000
        return [self.pipeline.encode(result, latency_ms) for result in results]


def main() -> None:
    command = [sys.executable, "-m", "bentoml", "serve", f"{__spec__.name}:DefendedClassify",
               "--host", SETTINGS.host, "--port", str(SETTINGS.port)]
    os.execv(sys.executable, command)  # bentoml's arbiter takes this process's place (and its signals)


if __name__ == "__main__":
    main()
