"""py-spy's samples split by stage of a request, and turned into CPU per request."""

from pathlib import Path

import pytest

from loadtest.bench.analysis import stage_ms
from loadtest.bench.profile import LOOP, OTHER, STAGE_OF, summarize

ROOT = 'process 1:"python -m service";thread (1): MainThread;Runner.run (asyncio/runners.py:118)'
APP = ROOT + ";RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:422);FastAPI.__call__ (x.py:1)"
ROUTE = APP + ";run_endpoint_function (fastapi/routing.py:1);defended_classify (service/routes/defended.py:2)"
RAW = "\n".join(
    [
        f"{ROUTE};read_images (service/payloads.py:77);decode_image (service/images.py:84);load (PIL/x.py:3) 30",
        f"{ROUTE};Guard.screen (service/guard.py:90) 10",
        f"{ROUTE};Endpoint.answer (service/state.py:28);Batcher.submit (service/batching.py:73) 5",
        f"{ROUTE};Endpoint.answer (service/state.py:28);<lambda> (service/detail.py:44) 5",
        f"{ROUTE} 10",  # the route itself
        f"{APP} 5",  # the middleware above it
        f"{ROOT};HttpToolsProtocol.data_received (uvicorn/x.py:1) 10",
        f"{ROOT} 20",  # uvloop's own frame: its C code or an idle wait
        f"{ROOT};gc_collect (x.py:1) 5",
        'process 1:"python -m service";thread (2): inference_0;Module._call_impl (torch/x.py:1) 100',
    ]
)


def test_each_sample_goes_to_its_innermost_stage(tmp_path: Path) -> None:
    raw = tmp_path / "spy.txt"
    raw.write_text(RAW)
    threads = summarize(raw, seconds=1.0)
    stages = threads["MainThread"]["stages"]
    assert sum(stages.values()) == pytest.approx(1.0)
    assert stages[STAGE_OF["decode_image"]] == pytest.approx(30 / 100)
    assert stages[STAGE_OF["Guard"]] == pytest.approx(10 / 100)
    assert stages[STAGE_OF["Batcher"]] == pytest.approx(5 / 100)
    assert stages[STAGE_OF["Endpoint.answer"]] == pytest.approx(5 / 100)  # encoding, inside the answer
    assert stages[STAGE_OF["run_endpoint_function"]] == pytest.approx(15 / 100)  # the route and the middleware
    assert stages[STAGE_OF["HttpToolsProtocol"]] == pytest.approx(10 / 100)
    assert stages[LOOP] == pytest.approx(20 / 100) and stages[OTHER] == pytest.approx(5 / 100)
    assert threads["inference"]["busy"] == pytest.approx(100 / 250)


def test_cpu_per_request_by_stage(tmp_path: Path) -> None:
    raw = tmp_path / "spy.txt"
    raw.write_text(RAW)
    measured = {
        "throughput_rps": 200.0,
        "cpu": {"server_main_thread_cores": 0.3},
        "profile": {"throughput_rps": 100.0, "threads": summarize(raw, seconds=1.0)},
    }
    ms = stage_ms(measured)
    # the event loop was busy 100 samples of 250 a second (0.4 of a core) at 100 requests a second: 4 ms each
    assert ms[STAGE_OF["decode_image"]] == pytest.approx(4.0 * 0.30)
    assert ms["event loop: the stages above"] == pytest.approx(4.0 * 0.80)  # all but uvloop's own frame
    assert ms[LOOP] == pytest.approx(4.0 * 0.20)
    assert ms["event loop thread: CPU time measured"] == pytest.approx(1000 * 0.3 / 200)
    assert ms["model: the inference threads (py-spy)"] == pytest.approx(1000 * 0.4 / 100)
