PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LLM_STAMP := $(VENV)/.installed-llm

.PHONY: demo test test-llm lint bench install clean browser

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# Bytecode for our own modules too, as a regular install has (PYTHONDONTWRITEBYTECODE
	@# would otherwise make every command compile them again).
	$(BIN)/python -m compileall -q mission_server planner state
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mission run examples/catering.yaml --simulate --db "$$(mktemp -d)/demo.db"

# Two processes: the multi-process fault tests mostly wait on their workers, so they run
# beside the rest (tests/conftest.py starts them first).
test: lint browser
	$(BIN)/pytest -q -n 2 --dist worksteal

# The browser tests (tests/mission_server/web) drive Debian's Chromium through chromedriver:
# installed here when missing (nothing to do when both are on PATH). When it cannot be
# installed the browser tests skip, except under CI=true, where they fail.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver) || \
			echo "could not install chromium: the browser tests will skip (fail under CI=true)"; \
	fi

# Opt-in, not part of `test`: a real model (Gemma 3 270M under llama-cpp-python's
# OpenAI-compatible server, on 127.0.0.1 at a free port) read through the project's own
# MISSION_LLM_* settings (tests/llm, tests/llm/harness.py). The first run builds
# llama-cpp-python from source (~10 min on 2 cores), so it needs a C/C++ compiler and cmake:
# they are installed from Debian only if missing.
$(LLM_STAMP): $(STAMP) pyproject.toml
	@if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null || ! command -v make >/dev/null; then \
		echo "installing the build tools llama-cpp-python needs (build-essential, cmake)"; \
		apt-get update -qq && apt-get install -y -qq build-essential cmake; \
	fi
	$(BIN)/pip install --quiet -e '.[test,llm]'
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)
	$(BIN)/python tests/llm/harness.py

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
