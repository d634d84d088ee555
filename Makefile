PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast lint bench

# Exact tested versions come from constraints.txt (torch 2.13.0 CPU: no multi-GB CUDA download).
$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/neuralese demo --out runs/demo

# Debian's chromium for the play page's browser test: installed when missing and possible, else the test is skipped
browser:
	@bash .ci/ensure-chromium

test: install browser
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/train_english.py
	$(BIN)/python bench/agents.py
	$(BIN)/python bench/translate.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/stream.py
