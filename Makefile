# The two commands of the README are `make run` and `make test`; .ci/run adds PostgreSQL and the
# browser. Everything is installed into .venv from uv.lock (pinned), with uv bootstrapped into
# .tools by the Python 3.13 that pyenv provides on these machines.
SHELL := /bin/bash
PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -n 1 || command -v python3.13)
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
PG_URL ?= postgres://postgres@127.0.0.1:5432/console
PORT ?= 8000

.PHONY: codes setup run test test-pg test-browser check lint bench chromium screenshots

$(UV):
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found (pyenv install 3.13)"; exit 1; }
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==0.13.9

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

setup: $(VENV)/.synced

# Run the console on SQLite with demo data; prints the demo logins.
run: setup
	mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	DEBUG=1 PORT=$(PORT) $(PY) manage.py runserver 127.0.0.1:$(PORT)

# The demo logins' current second-factor codes (while `make run` runs, in another terminal).
codes: setup
	@DEBUG=1 $(PY) manage.py demo_codes

# The whole test suite on SQLite (browser tests excluded; they need Chromium: make test-browser).
test: setup
	$(PY) -m pytest -m "not browser" -n 2 $(PYTEST_ARGS)

test-pg: setup
	DATABASE_URL=$(PG_URL) $(PY) -m pytest -m "not browser" -n 2 $(PYTEST_ARGS)

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test-browser: setup chromium
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

# Retake the README's images (docs/screenshots/) from the demo data in a throwaway database;
# SHOTS="user-list status-board" retakes only those (console/devtools/screenshots.py).
screenshots: setup chromium
	$(PY) -m console.devtools.screenshots $(SHOTS)

# ruff, then the import arrows (contracts in pyproject.toml, [tool.importlinter]).
lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

check: setup
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=0 SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=console.example.com \
		$(PY) manage.py check --deploy --fail-level WARNING

# Console vs admin at 1M users on PostgreSQL (seeds them first when missing; see README).
# The database named by PG_URL is created when it does not exist yet.
bench: setup
	@db="$(PG_URL)"; db="$${db##*/}"; server="$(PG_URL)"; server="$${server%/*}/postgres"; \
	psql "$$server" -Atc "SELECT 1 FROM pg_database WHERE datname = '$$db'" | grep -q 1 \
		|| { echo "Creating database $$db"; psql "$$server" -qc "CREATE DATABASE \"$$db\""; }
	DATABASE_URL=$(PG_URL) DEVTOOLS=1 SECRET_KEY=$$(head -c 48 /dev/urandom | base64) \
		OTP_WEBAUTHN_RP_ID=localhost OTP_WEBAUTHN_ALLOWED_ORIGINS=https://localhost \
		$(PY) manage.py bench $(BENCH_ARGS)
