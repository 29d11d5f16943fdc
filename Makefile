VENV := .venv
BIN := $(VENV)/bin

$(BIN)/cmc-lab: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -e ".[dev]"
	touch $@

.PHONY: demo test lint bench
demo: $(BIN)/cmc-lab
	$(BIN)/cmc-lab demo

test:
	bash scripts/test.sh

lint: $(BIN)/cmc-lab
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(BIN)/cmc-lab
	$(BIN)/cmc-lab bench
