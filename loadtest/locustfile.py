"""Locust users that post the committed test images to /classify, /defended-classify and /purify.

Run it through ``python -m loadtest`` (which starts the service, checks the SLO and writes the
results), or directly::

    locust -f loadtest/locustfile.py --headless -u 1 -t 30s --host http://127.0.0.1:8000 \\
        --mix defended-classify=1 --datasets mnist --timings-file timings.csv

``--mix`` weighs the endpoints, ``--datasets`` picks the sample sets (each request names its
dataset), ``--api-key`` is sent as ``X-API-Key``. Every request's exact client-side time (the float
``response_time`` of Locust's request event, from ``perf_counter``) goes to ``--timings-file``:
Locust's own percentiles are rounded to whole milliseconds below 100 ms.
"""

import csv
import random
from pathlib import Path

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

from loadtest.mix import parse_mix
from loadtest.samples import ARTIFACTS, Sample, load_samples

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMINGS: list[tuple[str, str, float, bool]] = []


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--mix", default="defended-classify=1,classify=1,purify=1", help="endpoint=weight,...")
    parser.add_argument("--datasets", default="mnist,fashion-mnist", help="sample sets, comma-separated")
    parser.add_argument("--artifacts", default=str(ARTIFACTS), help="folder with <dataset>/samples")
    parser.add_argument("--api-key", default="", help="sent as X-API-Key when set")
    parser.add_argument("--timings-file", default="", help="CSV of every request's exact time")


@events.request.add_listener
def _record(name: str, response_time: float, exception: Exception | None, context: dict, **_: object) -> None:
    TIMINGS.append((name, context.get("dataset", ""), response_time, exception is None))


@events.quitting.add_listener
def _write_timings(environment: Environment, **_: object) -> None:
    path = environment.parsed_options.timings_file if environment.parsed_options else ""
    if path:
        with Path(path).open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["endpoint", "dataset", "response_time_ms", "ok"])
            writer.writerows((name, dataset, f"{ms:.4f}", int(ok)) for name, dataset, ms, ok in TIMINGS)


class PurifierUser(FastHttpUser):
    """Back-to-back requests (no think time): at 1 user this is the sequential latency of the service."""

    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        mix = parse_mix(options.mix)
        self.endpoints, self.weights = list(mix), list(mix.values())
        datasets = [d.strip() for d in options.datasets.split(",") if d.strip()]
        self.samples: list[Sample] = [s for d in datasets for s in load_samples(d, Path(options.artifacts))]
        self.headers = {"content-type": "image/png", **({"x-api-key": options.api_key} if options.api_key else {})}

    @task
    def post_image(self) -> None:
        endpoint = random.choices(self.endpoints, self.weights)[0]
        sample = random.choice(self.samples)
        path = f"/{endpoint}?dataset={sample.dataset}"
        context = {"dataset": sample.dataset}
        with self.client.post(
            path, data=sample.png, headers=self.headers, name=f"/{endpoint}", context=context, catch_response=True
        ) as response:
            problem = _check(endpoint, response)
            if problem:
                response.failure(problem)


def _check(endpoint: str, response) -> str | None:
    """Why an answer is wrong (status, type, shape), or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {(response.text or '')[:200]}"
    if endpoint == "purify":
        return None if (response.content or b"").startswith(PNG_SIGNATURE) else "purify did not answer a PNG"
    try:
        body = response.json()
    except ValueError:
        return "answer is not JSON"
    return None if isinstance(body.get("label"), int) and "probabilities" in body else f"unexpected answer {body}"
