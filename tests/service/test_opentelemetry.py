"""FastAPI's OpenTelemetry instrumentation follows ``PURIFIER_OPENTELEMETRY``: spans when on, none when off,
even with an SDK tracer provider configured in the process."""

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app import create_app
from service.config import Settings
from tests.service.tiny_artifacts import brightness_png

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def sdk_tracer_provider() -> None:
    """A configured SDK provider, as a deployment with OpenTelemetry would have (set once per process)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.mark.parametrize("enabled", [True, False])
def test_spans_follow_the_setting(settings: Settings, enabled: bool) -> None:
    EXPORTER.clear()
    with TestClient(create_app(settings.model_copy(update={"opentelemetry": enabled}))) as client:
        answer = client.post("/classify", content=brightness_png(3), headers={"content-type": "image/png"})
    assert answer.status_code == 200 and answer.json()["label"] == 3
    routes = {span.attributes.get("http.route") for span in EXPORTER.get_finished_spans()}
    assert ("/classify" in routes) == enabled, routes
