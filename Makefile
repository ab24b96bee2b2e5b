# The two commands: `make run` sets everything up and starts the PBX; `make test` sets
# everything up and runs the whole suite. Both work on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# make run: production settings (DEBUG off); make dev: the developer mode (DEBUG on).
export DJANGO_SETTINGS_MODULE ?= pbx.settings.prod
export PBX_HTTP_HOST ?= 127.0.0.1
export PBX_HTTP_PORT ?= 8000
export PBX_HTTPS_PORT ?= 8443
PYTEST_WORKERS ?= 2
RUN_DIR := $(or $(PBX_RUN_DIR),$(or $(PBX_VAR_DIR),var)/run)
SUPERVISOR_CONF := $(RUN_DIR)/supervisord.conf

.PHONY: run dev stop status test setup lint bench help

help:
	@echo "make run    set up and start the whole PBX, supervised (Ctrl-C stops it)"
	@echo "make dev    the same in developer mode: DEBUG on, one web worker, access log"
	@echo "make stop   stop what make run started (from another terminal)"
	@echo "make status the state of each process (supervisorctl status)"
	@echo "make test   set up and run every test"
	@echo "make lint   ruff (check and format), the import contracts, mypy"
	@echo "make bench  run the benchmarks (prints figures)"

setup:
	@scripts/bootstrap.sh run
	@$(PY) manage.py setup_pbx
	@$(PY) manage.py make_prompts

run: setup
	@$(PY) manage.py create_system_admin
	@if [ "$${PBX_DEMO:-1}" != "0" ]; then $(PY) manage.py seed_demo; fi
	@echo ""
	@$(PY) -m pbx.processes urls
	@$(PY) -m pbx.processes supervisord --out $(SUPERVISOR_CONF)
	@echo "Processes:   $$($(PY) -m pbx.processes names), supervised (a crashed one restarts);"
	@echo "             logs in $(or $(PBX_LOG_DIR),var/log)/<process>.log; make status; Ctrl-C stops all"
	@echo ""
	@exec $(VENV)/bin/supervisord -n -c $(SUPERVISOR_CONF)

dev:
	@$(MAKE) --no-print-directory run DJANGO_SETTINGS_MODULE=pbx.settings.dev \
	  PBX_WEB_WORKERS=$${PBX_WEB_WORKERS:-1} PBX_WEB_ACCESS_LOG=1

stop:
	@if [ -S $(RUN_DIR)/supervisor.sock ] && $(VENV)/bin/supervisorctl -c $(SUPERVISOR_CONF) \
	  shutdown >/dev/null 2>&1; then echo "stopped"; else echo "not running"; fi

status:
	@$(VENV)/bin/supervisorctl -c $(SUPERVISOR_CONF) status || true

test:
	@scripts/bootstrap.sh test
	@DJANGO_SETTINGS_MODULE=pbx.settings.test $(PY) manage.py make_prompts
	@DJANGO_SETTINGS_MODULE=pbx.settings.test $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

# The import contracts and mypy's plugin read pyproject.toml; their caches go under var/.
lint:
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports --no-logo --cache-dir var/cache/import-linter
	@$(VENV)/bin/mypy

bench:
	@scripts/bootstrap.sh test
	@DJANGO_SETTINGS_MODULE=pbx.settings.test $(PY) bench/run.py
