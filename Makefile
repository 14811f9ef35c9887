# Assent: `make run` starts the whole system on this machine, `make test` runs every test.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help install run test test-unit test-e2e bench bench-peer chaos docs check-docs clean-state

help:
	@echo "make run     start Kafka, PostgreSQL, an SMTP sink and the five services (Ctrl-C stops)"
	@echo "make test    the unit lane, then every test on real Kafka and PostgreSQL"
	@echo "make test-unit  only the tests that need no Kafka, PostgreSQL, JVM or network"
	@echo "make bench   run the benchmarks (BENCH_ARGS=--quick for a short run)"
	@echo "make bench-peer  the peer (Fides 2.78.2, installed under var/peer) and ours, same consent load, the ratio"
	@echo "make chaos   the fault suite under load (SOAK=1 [SOAK_MINUTES=30]: hold load, report RSS growth)"
	@echo "make docs    regenerate the event catalog's JSON Schemas and AsyncAPI document"

install:
	@command -v python3 >/dev/null || { echo "assent: python3 (3.11) is needed: install python3.11"; exit 2; }
	@command -v uv >/dev/null || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --python 3.11 -q

run: install
	@$(UV) run --frozen python -m assent_devtools.devstack

# The unit lane needs no Kafka, PostgreSQL, JVM or network; a test that uses the servers is marked
# `integration` by the test plugin, one in tests/e2e `e2e`. Exit 5 (no test selected) is not a failure.
UNIT_LANE := -m "not integration and not e2e"
SERVER_LANE := -m "integration or e2e"

test: install
	@$(UV) run --frozen python -m pytest -q $(UNIT_LANE) $(PYTEST_ARGS) || [ $$? -eq 5 ]
	@$(UV) run --frozen python -m pytest -q $(SERVER_LANE) $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-unit: install
	@$(UV) run --frozen python -m pytest -q $(UNIT_LANE) $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-e2e: install
	@$(UV) run --frozen python -m pytest -q tests/e2e $(PYTEST_ARGS)

bench: install
	@$(UV) run --frozen python -m bench $(BENCH_ARGS)

bench-peer: install
	@$(UV) run --frozen python -m bench.peer $(BENCH_ARGS)

chaos: install
	@$(UV) run --frozen python -m chaos $(if $(SOAK),--soak --soak-minutes $(or $(SOAK_MINUTES),30)) $(CHAOS_ARGS)

docs: install
	@$(UV) run --frozen python -m assent_shared.catalog_docs

check-docs: install
	@$(UV) run --frozen python -m assent_shared.catalog_docs --check

clean-state:
	rm -rf var/
