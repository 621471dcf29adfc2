PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mission run examples/catering.yaml --simulate --db "$$(mktemp -d)/demo.db"

# Two processes: the multi-process fault tests mostly wait on their workers, so they run
# beside the rest (tests/conftest.py starts them first).
test: lint
	$(BIN)/pytest -q -n 2 --dist worksteal

# Style, format, types and the dependency rule (docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/lateness.py

clean:
	rm -rf $(VENV) .pytest_cache
