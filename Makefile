# Ponte: `make run` (simulated appliance) and `make test` (everything) are all a
# fresh Debian/Ubuntu machine needs.  See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
APT_LIST := .ci/apt-packages
APT_STAMP := $(VENV)/.apt-stamp
VENV_STAMP := $(VENV)/.install-stamp
# Root installs directly; anyone else goes through sudo when it exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
PYTEST_WORKERS ?= 2

.PHONY: help deps venv run test lint typecheck contracts pytest bench conformance image clean prompts

help:
	@echo "make run    start the appliance in simulation"
	@echo "make test   install what is missing, then lint, type-check and test everything"
	@echo "make bench  print the performance figures (make bench queue services: only those)"
	@echo "make conformance  print the DTMF / caller ID / call-progress accuracy table"

# --- installation ---------------------------------------------------------------

$(APT_STAMP): $(APT_LIST)
	@mkdir -p $(VENV)
	@pkgs=$$(grep -v '^\s*#' $(APT_LIST) | xargs); \
	missing=$$(for p in $$pkgs; do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || echo "$$p"; \
	done | xargs); \
	if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then missing="$$missing python3-venv python3-dev"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(VENV_STAMP): pyproject.toml $(APT_STAMP)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

deps: $(APT_STAMP)
venv: $(VENV_STAMP)

# Spoken prompts rendered with espeak-ng into build/prompts/<lang>/ (docs/prompts.md);
# cached by content hash, so this is quick when nothing changed.
prompts: $(VENV_STAMP)
	$(PY) -m firmware.prompts build --out build/prompts

# --- running --------------------------------------------------------------------

run: $(VENV_STAMP) prompts
	@mkdir -p var
	@echo "Ponte in simulation: 4 phones (FXS ports 1-4), 2 exchange lines (FXO 5-6)."
	@echo "The appliance logs to var/ponte.log; the console opens on it (Ctrl+Q quits both)."
	@echo "In another terminal, pick up phone 1 and watch the dashboard:"
	@echo "  .venv/bin/ponte sim --control var/sim.sock handset 1 off-hook"
	@$(BIN)/ponte run --simulate --data-dir var --stderr >var/ponte.log 2>&1 & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT TERM; \
	for _ in $$(seq 600); do \
	  if $(PY) -c 'import socket; socket.socket(socket.AF_UNIX).connect("var/api.sock")' 2>/dev/null; then break; fi; \
	  if ! kill -0 $$pid 2>/dev/null; then echo "ponte run stopped:"; tail -n 20 var/ponte.log; exit 1; fi; \
	  sleep 0.1; \
	done; \
	$(BIN)/ponte console --socket var/api.sock

# --- checks ---------------------------------------------------------------------

lint: $(VENV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV_STAMP)
	$(BIN)/mypy

contracts: $(VENV_STAMP)
	$(BIN)/lint-imports

pytest: $(VENV_STAMP) prompts
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: lint typecheck contracts pytest

# `make bench queue services`: only the benchmarks whose names hold one of the words after
# `bench`; the words are not targets of their own (a real target among them still runs).
ifeq ($(firstword $(MAKECMDGOALS)),bench)
BENCH_NAMES := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
BENCH_WORDS := $(filter-out $(shell sed -n 's/^\([a-z]*\):.*/\1/p' $(firstword $(MAKEFILE_LIST))),$(BENCH_NAMES))
.PHONY: $(BENCH_WORDS)
$(BENCH_WORDS):
	@:
endif

bench: $(VENV_STAMP)
	$(PY) -m bench $(BENCH_NAMES)

conformance: $(VENV_STAMP)
	$(PY) -m bench.conformance

image: $(VENV_STAMP) prompts
	$(MAKE) -C image

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
