# The two commands: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint unit install vendor kafka-jars kafka-start kafka-stop migrate clean chromium ops-tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

# The chart library the pages serve themselves (no CDN): pinned in package-lock.json, fetched
# from the npm registry by `npm ci`, copied into a gitignored folder served as /static/vendor/.
VENDOR := api/pages/static/vendor/echarts.min.js

$(VENDOR): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $@) && cp node_modules/echarts/dist/echarts.min.js $@

vendor: $(VENDOR)

install: $(STAMP) $(VENDOR)

kafka-jars: install
	$(PY) -m infra.kafka fetch

# Migrations run here, once, before the API (which only checks the schema version).
# RUN_ARGS, e.g. "--no-demo". A SIGTERM to make alone is forwarded to the runner; SIGINT and
# SIGHUP reach it with the terminal's (or a service manager's) process group.
RUN_ARGS ?=
run: install kafka-jars
	$(PY) -m services.warehouse.migrate
	$(PY) -m infra.run_local $(RUN_ARGS)

# lint-imports checks the layers contract in .importlinter (services is the core; routers do
# not import routers; docs/conventions.md).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

# The whole suite against real parts: the tests start their own broker from the fetched jars.
test: install kafka-jars chromium ops-tools lint
	$(PY) -m pytest

# The browser tests drive Debian's chromium (never a downloaded browser); CI is root on Debian.
# The CJK fonts make the Chinese pages readable in the screenshots people look at.
chromium:
	(test -x /usr/bin/chromium && dpkg -s fonts-noto-cjk >/dev/null 2>&1) || \
	  (apt-get update && apt-get install -y chromium fonts-noto-cjk)

# promtool (Debian's prometheus) checks infra/prometheus; docker-compose checks
# docker-compose.yml against the Compose Specification. The tests marked ops_tools need them.
ops-tools:
	(command -v promtool >/dev/null && command -v docker-compose >/dev/null) || \
	  (apt-get update && apt-get install -y --no-install-recommends prometheus docker-compose)

unit: install
	$(PY) -m pytest -m "not kafka and not clickhouse"

# Fault drills (issues 7, 18; not part of `make test`): each starts its own broker, chDB,
# worker(s) and API (through infra.stack), injects one fault (g: a rebalance storm under a
# backlog with CPU contention) and reconciles every member's hours in sessions, member_weeks
# and what users read (member hours, the assessment); writes docs/drills.md. DRILL_ARGS, e.g.
# DRILL_ARGS="--only g", "--scans 1000000 --only g --timeout 5400", "--only 0,a,c".
.PHONY: drills
drills: install kafka-jars
	$(PY) -m bench.drills $(DRILL_ARGS)

# Benchmarks side by side with baselines (issue 7; not part of `make test`): writes
# docs/benchmarks.md and the README's Benchmarks section. BENCH_ARGS, e.g. "--quick" or
# "--scans 200000 --sizes 1e6 1e7". wrk (Debian) drives the HTTP load.
.PHONY: bench
bench: install kafka-jars
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) -m bench $(BENCH_ARGS)

kafka-start: kafka-jars
	$(PY) -m infra.kafka start

kafka-stop: install
	$(PY) -m infra.kafka stop

migrate: install
	$(PY) -m services.warehouse.migrate

clean:
	rm -rf $(VENV) .cache data .mypy_cache .pytest_cache .ruff_cache node_modules api/pages/static/vendor
