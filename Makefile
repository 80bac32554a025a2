# Two commands a newcomer needs: `make run` and `make test`. Everything else is set-up they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test demo setup lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Start (embedded PostgreSQL unless DATABASE_URL is set), migrate, and serve on 127.0.0.1:8000.
run: setup
	$(BIN)/python -m app.serve

## The demo city (合肥市) with departments, accounts and routing rules; idempotent.
demo: setup
	$(BIN)/python -m app.demo

## The whole suite: lint, format check, types, migrations agree with models, tests.
test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy app

pytest: setup
	$(BIN)/pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) var/pgdata var/pgdata-test
