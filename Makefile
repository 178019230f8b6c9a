# Two commands for a fresh machine: `make dev` runs the stack, `make test` runs every test.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: dev test lint bench chaos demo screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/aftersales dev

# Three processes on two cores: a quarter of the suite's time is waiting on real servers
# (Temporal, SMTP, HTTP, PostgreSQL, Chromium, killed processes coming back), which a third
# process fills (5m14s here against 5m49s with two). Each process starts its own servers.
# The suite starts dozens of Python processes (servers, workers, CLIs): with bytecode caches
# each compiles the project once, not every time (some machines set PYTHONDONTWRITEBYTECODE).
test: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP)
	$(BIN)/pytest -n 3 --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy domain workflows config

# Not in `make test` (a fast subset is): real process faults against the real stack with full
# counts, each scenario on a fresh stack (tests/chaos), figures written to docs/reliability.md.
# Takes about a quarter of an hour on 2 cores.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --record docs/reliability.md

demo: $(STAMP)
	$(BIN)/aftersales demo

# Not a test: throughput and memory as a ratio to the bare SDK, then the API's opens and reads
# (bench/api.py), then one worker against two and memory with 10k open cases (bench/scale.py),
# written to docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.scale

# The console's screenshots in docs/console.md, taken by its browser tests.
screenshots: $(STAMP)
	AFTERSALES_SCREENSHOTS=docs/console $(BIN)/pytest tests/test_console_browser.py

clean:
	rm -rf $(VENV) .aftersales .pytest_cache .mypy_cache .ruff_cache
