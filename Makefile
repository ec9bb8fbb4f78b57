# The two commands: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint unit install kafka-jars kafka-start kafka-stop migrate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

kafka-jars: install
	$(PY) -m infra.kafka fetch

run: install kafka-jars
	$(PY) -m infra.run_local

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The whole suite against real parts: the tests start their own broker from the fetched jars.
test: install kafka-jars lint
	$(PY) -m pytest

unit: install
	$(PY) -m pytest -m "not kafka and not clickhouse"

kafka-start: kafka-jars
	$(PY) -m infra.kafka start

kafka-stop: install
	$(PY) -m infra.kafka stop

migrate: install
	$(PY) -m services.warehouse.migrate

clean:
	rm -rf $(VENV) .cache data .mypy_cache .pytest_cache .ruff_cache
