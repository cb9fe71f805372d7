"""Every Prometheus object, defined once, and what feeds them: the batcher observer and a request middleware."""

import logging
import time
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("purifier_requests_total", "HTTP requests by endpoint and status", ["endpoint", "method", "status"])
REQUEST_LATENCY = Histogram(
    "purifier_request_latency_seconds", "HTTP request latency by endpoint", ["endpoint"], buckets=LATENCY_BUCKETS
)
BATCH_SIZE = Histogram(
    "purifier_batch_size", "Items per executed micro-batch", ["batcher"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
QUEUE_WAIT = Histogram("purifier_queue_wait_seconds", "Mean queue wait per batch", ["batcher"], buckets=LATENCY_BUCKETS)
PREDICT_LATENCY = Histogram(
    "purifier_predict_latency_seconds", "Model time per micro-batch", ["batcher"], buckets=LATENCY_BUCKETS
)
QUEUE_DEPTH = Gauge("purifier_queue_depth", "Items waiting in a batcher's queue", ["batcher"])
REJECTIONS = Counter("purifier_rejections_total", "Requests refused, by reason", ["reason"])
CLIENT_BUDGET = Gauge(
    "purifier_client_budget_images", "Images each remembered client may still send at once", ["client"]
)
TRACKED_CLIENTS = Gauge("purifier_tracked_clients", "Clients remembered, by table", ["table"])
FLAGGED_CLIENTS = Counter("purifier_query_attack_flagged_clients_total", "Times a client became flagged")
FLAGGED_QUERIES = Counter("purifier_query_attack_flagged_queries_total", "Images from clients flagged at the time")
SHARED_STATE_ERRORS = Counter(
    "purifier_shared_state_errors_total", "Model requests refused because Redis (PURIFIER_REDIS_URL) did not answer"
)


@lru_cache(maxsize=4096)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """The metric's series for these label values, looked up once: ``labels()`` checks and locks on every call.
    Only for label sets that are bounded and never removed (a client's budget series is removed with it)."""
    return metric.labels(*labels)


class PrometheusObserver:
    """Receives the batcher's fixed-point events."""

    def queue_depth(self, name: str, depth: int) -> None:
        child(QUEUE_DEPTH, name).set(depth)

    def batch_done(self, name: str, size: int, queue_wait_s: float, predict_s: float) -> None:
        child(BATCH_SIZE, name).observe(size)
        child(QUEUE_WAIT, name).observe(queue_wait_s)
        child(PREDICT_LATENCY, name).observe(predict_s)


class StatusNotingSend:
    """An ASGI ``send`` that remembers the response status once the status line is out (``None`` before)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class RequestMetricsMiddleware:
    """Pure ASGI middleware: count and time every HTTP request by its matched route and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, noted = time.perf_counter(), StatusNotingSend(send)
        try:
            await self.app(scope, receive, noted)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            _record_request(endpoint, scope["method"], noted.status or 500, time.perf_counter() - started)


def _record_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """A failure here is logged, never raised into the request."""
    try:
        child(REQUESTS, endpoint, method, str(status)).inc()
        child(REQUEST_LATENCY, endpoint).observe(seconds)
    except Exception:
        logger.exception("recording request metrics failed")


def forget_client(client: str) -> None:
    """An evicted client's budget series goes with it, so the series stay as bounded as the table."""
    try:
        CLIENT_BUDGET.remove(client)
    except KeyError:
        pass


def record_rejection(reason: str) -> None:
    """Count one refused request by reason; never raises."""
    try:
        child(REJECTIONS, reason).inc()
    except Exception:
        logger.exception("recording a rejection failed")
