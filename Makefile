# parkstream: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean image image-base

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
	$(BIN)/hadolint Dockerfile
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# -rs prints why a test was skipped (a missing system tool, see system-deps).
# The e2e tests each start a whole stack (broker, sandbox, workers, gateway, load): they
# run one at a time in one pytest process. Beside it a second one runs the unit and
# integration tests and the three e2e tests that mostly wait (two minute-long outages, a
# frozen broker of its own); its report follows the first one's. Both must pass.
E2E_BESIDE := tests/e2e/test_outage.py::test_a_60s_controller_outage_under_load_loses_and_doubles_nothing \
              tests/e2e/test_stall.py::test_a_worker_with_work_and_no_progress_exits_with_code_70 \
              tests/e2e/test_crash.py::test_a_minute_long_outage_while_a_worker_joins_and_another_leaves

test: system-deps lint
	$(BIN)/python -m pytest -q -rs --durations=10 -p no:cacheprovider \
	    tests/unit tests/integration $(E2E_BESIDE) $(PYTEST_ARGS) > $(VENV)/test-beside.log 2>&1 & \
	beside=$$!; \
	$(BIN)/python -m pytest -q -rs --durations=25 tests/e2e \
	    $(addprefix --deselect ,$(E2E_BESIDE)) $(PYTEST_ARGS); e2e=$$?; \
	wait $$beside; others=$$?; \
	echo "== unit and integration tests, and the e2e tests that wait (run beside) =="; \
	cat $(VENV)/test-beside.log; \
	test $$e2e -eq 0 && test $$others -eq 0

# The benchmarks' own extra (matplotlib, for the plots) on top of the test set-up.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache

# The container image the chart runs (docs/deploying.md, "Building the image"). Its tag is
# the chart's appVersion, the tag the chart pulls by default.
IMAGE      ?= parkstream:$(shell sed -n 's/^appVersion: *"\(.*\)"/\1/p' helm/parkstream/Chart.yaml)
BASE_IMAGE ?= python:3.11-slim-bookworm
BUILDAH    ?= buildah --storage-driver vfs
# A CA bundle for pip inside the build, for networks behind a TLS-intercepting proxy; taken
# from the environment when set there, handed over as a build secret (never in a layer).
PIP_CERT   ?=
comma      := ,

image:
	$(BUILDAH) build --isolation chroot --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  $(if $(PIP_CERT),--secret id=pip-cert$(comma)src=$(PIP_CERT)) --tag $(IMAGE) .

# A base image without a registry: Debian bookworm (python3 is 3.11) made by mmdebstrap from
# the Debian mirror, imported into buildah's local storage. Then:
#   make image BASE_IMAGE=localhost/parkstream-base:bookworm
# Only what the Dockerfile needs: the essential set, python3 with its venv module, useradd,
# and the C++ runtime RocksDB needs; no docs, man pages or locales.
DEBIAN_BASE ?= localhost/parkstream-base:bookworm

image-base:
	set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	mmdebstrap --quiet --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	  --include=python3,python3-venv,passwd,libstdc++6 --skip=output/dev \
	  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	  bookworm "$$dir/base.tar"; \
	ctr=$$($(BUILDAH) from scratch); \
	$(BUILDAH) add --quiet "$$ctr" "$$dir/base.tar" /; \
	$(BUILDAH) config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	  --cmd /bin/sh "$$ctr"; \
	$(BUILDAH) commit --quiet --rm "$$ctr" $(DEBIAN_BASE)

# Debian packages some tests need, each installed only when its command is missing. Without
# root it says so and goes on (those tests skip, saying why):
#   prometheus: promtool (alert-rule tests) and a real Prometheus;
#   buildah, mmdebstrap: the image test (tests/e2e/test_image.py).
.PHONY: system-deps
system-deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v buildah >/dev/null || missing="$$missing buildah"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && apt-get install -y --no-install-recommends $$missing; \
	  else \
	    echo "system-deps: missing$$missing and this is not root; run as root:"; \
	    echo "  apt-get update && apt-get install -y --no-install-recommends$$missing"; \
	    echo "system-deps: the tests that need them will be skipped until then"; \
	  fi; \
	}
