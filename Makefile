# The two commands the README promises: `make demo` and `make test`.
# Each builds .venv from pyproject.toml if it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest workers for make test; PYTEST_WORKERS=0 runs the tests in this process, one at a time.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml tests/dynalite/package-lock.json
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "beat-handover needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# dynalite: the DynamoDB race tests run on it (moto is not concurrency-safe)
	@if command -v npm >/dev/null; then npm ci --prefix tests/dynalite --no-audit --no-fund --loglevel=error; \
	else echo "make: npm not found, so the DynamoDB race tests will be skipped; on Debian: apt-get install nodejs npm" >&2; fi
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m beat_handover.handover.demo

test: $(BIN)/.installed
	@command -v redis-server >/dev/null || { echo "make test: redis-server is not installed; the tests start their own. On Debian/Ubuntu: apt-get install redis-server; on macOS: brew install redis" >&2; exit 2; }
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
