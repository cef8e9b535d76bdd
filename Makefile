# The two commands: `make run` (the pipeline) and `make test` (every check CI runs: lint first).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: run test install lint pytest clean

run: $(STAMP)
	$(BIN)/racemap run $(ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: racemap needs Python 3.11" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# The stored notebooks: tracked or new, not git-ignored (executed copies under reports/ are).
NOTEBOOKS = $(shell git ls-files --cached --others --exclude-standard '*.ipynb' 2>/dev/null \
	|| ls notebooks/*.ipynb)
# sqlfluff's dbt templater compiles the project: keep its target/ and logs out of the way.
LINT_DIR := target/lint

# The PostgreSQL the checks and tests use, decided once by scripts/test_server.py (one line says
# which): RACEMAP_TEST_DATABASE_URL, else the server the PG* variables name (127.0.0.1:5432 by
# default), else the embedded pgserver in .racemap/test-pgdata. It runs the command after it with
# that server's URL and libpq variables.
TEST_SERVER := $(BIN)/python scripts/test_server.py

# The same checks as .pre-commit-config.yaml. sqlfluff's dbt templater connects to the
# database that profiles.yml's PG* variables name: the test server.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/nbstripout --keep-id --verify $(NOTEBOOKS)
	$(BIN)/python scripts/check_notebooks.py $(NOTEBOOKS)
	$(BIN)/python scripts/check_notebook_pairs.py
	$(BIN)/python scripts/check_env_table.py --check
	$(BIN)/python scripts/test_server.py \
		env DBT_TARGET_PATH=$(LINT_DIR)/target DBT_LOG_PATH=$(LINT_DIR)/logs \
		$(BIN)/sqlfluff lint models snapshots tests/dbt
	$(BIN)/python scripts/check_dbt_docs.py

# Lint, then pytest, both under one decision of the test server.
test: $(STAMP)
	$(TEST_SERVER) $(MAKE) -j1 --no-print-directory lint pytest

# Three workers, a test file each (pytest-xdist; each file's fixtures are built once): a run
# waits on PostgreSQL, its kernels and its GX worker part of the time, so three keep two cores
# busy. Give PYTEST_ARGS to choose ("-p no:xdist tests/test_apply.py" runs one file alone).
PYTEST_ARGS ?= -n 3 --dist loadfile --no-loadscope-reorder

pytest: $(STAMP)
	$(TEST_SERVER) $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf target logs reports .pytest_cache
