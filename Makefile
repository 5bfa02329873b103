# parkstream: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

# The stamp is newer than pyproject.toml once the venv is installed, so a second
# `make install` does nothing.
install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/parkstream dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: system-deps lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# promtool (alert-rule tests) and a real Prometheus come from Debian's prometheus package;
# installed only when promtool is missing. Without root it says so and goes on (those tests skip).
.PHONY: system-deps
system-deps:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && apt-get install -y --no-install-recommends prometheus; \
	  else \
	    echo "system-deps: promtool is missing and this is not root; run as root:"; \
	    echo "  apt-get update && apt-get install -y --no-install-recommends prometheus"; \
	    echo "system-deps: the promtool tests will be skipped until then"; \
	  fi; \
	}
