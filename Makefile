# meterflow: two commands on a fresh machine — `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
ENV := source scripts/env.sh &&

.PHONY: help setup services services-down migrate up down demo test test-unit bench lint format stream clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed ## create .venv and install the pinned packages

services: setup ## start PostgreSQL, S3 (s3rver, objects on disk) and SMTP (aiosmtpd) on 127.0.0.1
	@scripts/services.sh start

services-down: ## stop the local stack
	@scripts/services.sh stop

migrate: services ## apply warehouse migrations and migrate the Airflow metadata DB
	@$(ENV) python -m meterflow.warehouse migrate
	@scripts/airflow.sh migrate

up: migrate ## start Airflow (api-server, scheduler, dag-processor, triggerer); UI on :8080
	@scripts/airflow.sh start

down: ## stop Airflow and the local stack
	@scripts/airflow.sh stop
	@scripts/services.sh stop

demo: up ## run the whole pipeline on generated sample data through Airflow; print outputs
	@$(ENV) python -m meterflow.demo

test: services ## the whole test suite against the real local stack
	@command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace >/dev/null; }
	@$(ENV) python -m pytest -q -p no:cacheprovider --timeout=900

test-unit: setup ## only the tests that need no service
	@$(ENV) python -m pytest -q tests/unit

bench: migrate ## benchmarks (ratios against baselines run in the same process)
	@$(ENV) PYTHONPATH=.:plugins python -m bench $(BENCH)

stream: setup ## the live meter stream receiver (POST /meter; token: MF_STREAM_TOKEN or var/stream/token)
	@$(ENV) python -m meterflow.stream

lint: setup ## ruff lint and format check
	@$(ENV) ruff check . && ruff format --check .

format: setup ## apply ruff formatting and fixes
	@$(ENV) ruff check --fix . && ruff format .

clean: down ## stop everything and delete all local state (var/, and a cluster kept outside it)
	@scripts/services.sh clean
	rm -rf var
