"""LitServe serving the same TorchScript files with its own batching: the engine we compare against.

``python -m loadtest.bench.litserve_app --batch-timeout-ms T`` serves ``POST /defended-classify``
with a JSON body ``{"image": "<base64 PNG>"}`` (LitServe's way to carry bytes), ``max_batch_size``
from ``PURIFIER_MAX_BATCH_SIZE``, and ZeroMQ responses (``fast_queue``, LitServe's advice above
100 requests/s). LitServe decodes in its inference worker process, per request, before ``batch``.
"""

import argparse
import base64
import time

import litserve as ls
import torch

from loadtest.bench.pipeline import Pipeline
from service.config import Settings
from service.inference import Defended


class DefendedClassifyAPI(ls.LitAPI):
    def __init__(self, settings: Settings, batch_timeout_s: float) -> None:
        super().__init__(
            max_batch_size=settings.max_batch_size, batch_timeout=batch_timeout_s, api_path="/defended-classify"
        )
        self.settings = settings

    def setup(self, device: str) -> None:
        self.pipeline = Pipeline.load(self.settings)

    def decode_request(self, request: dict) -> torch.Tensor:
        return self.pipeline.decode(base64.b64decode(request["image"]))

    def batch(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(inputs)

    def predict(self, images: list[torch.Tensor]) -> list[tuple[Defended, float]]:
        started = time.perf_counter()
        results = self.pipeline.defend(images)
        latency_ms = (time.perf_counter() - started) * 1000
        return [(result, latency_ms) for result in results]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: tuple[Defended, float]) -> dict:
        return self.pipeline.encode(*output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-timeout-ms", type=float, default=1.0)
    args = parser.parse_args()
    settings = Settings()
    api = DefendedClassifyAPI(settings, args.batch_timeout_ms / 1000)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, fast_queue=True)
    server.run(
        host=settings.host,
        port=settings.port,
        num_api_servers=1,
        log_level=settings.log_level,
        generate_client_file=False,
    )


if __name__ == "__main__":
    main()
