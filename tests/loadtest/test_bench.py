"""The benchmark on tiny artifacts, a second per point: every engine answers, the JSON and the report agree."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from render import bench as report
from render import bench_plots as plots
from loadtest.bench.client import Connection, build_request, closed_loop
from loadtest.bench.cpu import CpuMeter
from loadtest.samples import load_samples
from loadtest.server import serve
from service.config import REPO_ROOT
from render.markdown import markers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_raw_client_frames_answers_and_counts_only_the_window(tiny_artifacts: Path, tmp_path: Path) -> None:
    png = load_samples("mnist")[0].png
    with serve(tmp_path / "server.log", artifacts_dir=str(tiny_artifacts)) as server:
        request = build_request(server.url, "/defended-classify?dataset=mnist", png, "image/png")
        bad = build_request(server.url, "/defended-classify?dataset=cifar", png, "image/png")

        async def main() -> tuple:
            connection = await Connection.open(server.url)
            try:  # two answers on one keep-alive connection, each read exactly to its Content-Length
                answers = [await connection.exchange(request), await connection.exchange(bad)]
            finally:
                await connection.close()
            load = await closed_loop(server.url, [request, bad], 4, 0.2, 1.0, CpuMeter(server.pid))
            return answers, load

        (ok, refused), load = asyncio.run(main())
    assert ok[0] == 200 and isinstance(json.loads(ok[1])["label"], int)
    assert refused[0] == 422 and json.loads(refused[1])["error"] == "unknown_dataset"
    assert load.ok > 10 and load.statuses[422] > 10 and not load.errors
    assert len(load.latencies_ms) == load.ok and load.throughput == load.ok / 1.0
    parties = {"client_cores", "server_cores", "server_main_thread_cores", "machine_busy_cores", "other_cores"}
    assert set(load.cpu) == parties


@pytest.mark.timeout(480)
def test_a_short_bench_of_every_engine_kind_writes_json_plots_and_the_same_report(
    tiny_artifacts: Path, tmp_path: Path
) -> None:
    results = tmp_path / "bench"
    env = {**os.environ, "PURIFIER_ARTIFACTS_DIR": str(tiny_artifacts)}
    command = [
        sys.executable,
        "-m",
        "loadtest.bench",
        "--engines",
        "ours",
        "naive",
        "litserve",
        "ray",
        "bentoml",
        "floor",
        "floor-model",
        "--concurrency",
        "1",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--inprocess-repeats",
        "5",
        "--results",
        str(results),
        "--variant",
        "pooldecode:inline_decode_max_pixels=0",
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=460, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((results / "bench.json").read_text())
    assert list(summary["engines"]) == ["ours", "naive", "litserve", "ray", "bentoml", "floor", "floor-model",
                                     "ours-pooldecode"]
    # the floor with the model answers what every engine answers: it runs the same pipeline
    accuracy = {key: engine["answers"][0]["accuracy"] for key, engine in summary["engines"].items() if key != "floor"}
    assert len(set(accuracy.values())) == 1, accuracy  # the static floor answers a fixed label
    for key, engine in summary["engines"].items():
        assert engine["answers"][0]["samples"] == 32, key
        assert [p["concurrency"] for p in engine["points"]] == [1, 4]
        for point in engine["points"]:
            assert point["n"] > 0 and set(point["statuses"]) == {"200"} and not point["errors"], key
            assert point["p50_ms"] <= point["p95_ms"] <= point["p99_ms"] and len(point["cdf_ms"]) == 201
    assert summary["engines"]["ours-pooldecode"]["settings"]["inline_decode_max_pixels"] == "0"
    inproc = summary["inprocess"]
    assert inproc["ae_vgg_batch64"]["batch_size"] == 64 and inproc["decode"]["p50_ms"] > 0
    assert inproc["defend_batch64"]["cpu_ms_per_image"] > 0
    assert "ratios:" in done.stdout and "ours / LitServe throughput at c=32: –" in done.stdout  # no c=32 run
    for figure in ("perf-throughput.png", "perf-latency-cdf.png"):
        assert (results / figure).read_bytes().startswith(PNG_SIGNATURE)
    doc = (results / "performance.md").read_text()
    assert all(markers(name)[0] in doc for name in report.blocks(summary))
    assert "--variant pooldecode:inline_decode_max_pixels=0" in doc

    regenerated = tmp_path / "again"
    regenerated.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "render.bench",
            str(results / "bench.json"),
            "--doc",
            str(regenerated / "performance.md"),
            "--figures",
            str(regenerated),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (regenerated / "performance.md").read_text() == doc  # the report is a function of the JSON alone


def test_the_committed_performance_page_is_what_its_run_renders(tmp_path: Path) -> None:
    summary = json.loads(report.RUN.read_text())
    page = report.DOC.read_text()
    assert all(markers(name)[0] in page for name in report.blocks(summary)), "every table has its place"
    doc = tmp_path / "performance.md"
    doc.write_text(page)
    report.render(summary, doc, tmp_path / "figures")
    assert doc.read_text() == page, "run python -m render.bench docs/performance.json"


def test_every_engine_of_a_full_run_gets_a_look_of_its_own() -> None:
    keys = ["ours", "ours-batch1", "naive", "litserve", "ray", "bentoml", "floor", "floor-model", "ours-pool-decode",
            "ours-serial-defend", "ours-redis", "ours-redis-workers", "ours-otel"]
    looks = plots.styles(keys)
    assert len({tuple(sorted(look.items())) for look in looks.values()}) == len(keys)
    assert len({look["color"] for look in looks.values()}) == len(keys)  # told apart by colour alone, too
    assert looks["ours"]["color"] == "black" and all(looks[k]["linestyle"] == "--" for k in keys if k[:5] == "ours-")
