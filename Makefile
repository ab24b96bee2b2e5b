# The two commands: `make run` sets everything up and starts the PBX; `make test` sets
# everything up and runs the whole suite. Both work on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= pbx.settings.dev
export PBX_HTTP_HOST ?= 127.0.0.1
export PBX_HTTP_PORT ?= 8000
PYTEST_WORKERS ?= 2

.PHONY: run stop test setup lint bench help

help:
	@echo "make run    set up and start the whole PBX (web, worker, beat, SIP engine)"
	@echo "make stop   stop what make run started"
	@echo "make test   set up and run every test"
	@echo "make lint   ruff check and format check"
	@echo "make bench  run the benchmarks (prints figures)"

setup:
	@scripts/bootstrap.sh run
	@$(PY) manage.py setup_pbx

run: setup
	@$(PY) manage.py create_system_admin
	@if [ "$${PBX_DEMO:-1}" != "0" ]; then $(PY) manage.py seed_demo; fi
	@echo ""
	@echo "Portal:      http://localhost:$(PBX_HTTP_PORT)/  (system admin; see above for the sign-in)"
	@echo "Demo tenant: http://demo.localhost:$(PBX_HTTP_PORT)/  (tenant admin; see above)"
	@echo "API docs:    http://localhost:$(PBX_HTTP_PORT)/api/v1/docs/"
	@echo ""
	@mkdir -p var/run
	@exec $(VENV)/bin/honcho -f Procfile start & echo $$! > var/run/honcho.pid; wait

stop:
	@if [ -f var/run/honcho.pid ]; then \
	  kill $$(cat var/run/honcho.pid) 2>/dev/null || true; rm -f var/run/honcho.pid; \
	  echo "stopped"; else echo "not running"; fi

test:
	@scripts/bootstrap.sh test
	@DJANGO_SETTINGS_MODULE=pbx.settings.test $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

lint:
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

bench:
	@scripts/bootstrap.sh test
	@DJANGO_SETTINGS_MODULE=pbx.settings.test $(PY) bench/run.py
