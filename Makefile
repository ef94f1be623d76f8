# The two everyday commands: `make demo` starts a complete system, `make test` runs the tests.
PORT ?= 8765
HOME_DIR ?= $(HOME)/.arctern
PYTEST_ARGS ?=

.PHONY: demo test lint bootstrap dist notebook

bootstrap:
	@scripts/bootstrap

demo: bootstrap
	.venv/bin/arctern serve --demo --home $(HOME_DIR) --port $(PORT)

# JupyterLab on examples/ with globus-sdk pointed at the server of `make demo` (same PORT).
# NOTEBOOK_ARGS go to `jupyter lab`, e.g. make notebook NOTEBOOK_ARGS=--no-browser
NOTEBOOK_ARGS ?=
notebook: bootstrap
	PORT=$(PORT) scripts/notebook $(NOTEBOOK_ARGS)

# The whole suite on the embedded SQLite default, then the live-server integration tests
# again on PostgreSQL (a throwaway cluster the tests start themselves).
test: bootstrap
	@scripts/system-deps
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy
	.venv/bin/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)
	ARCTERN_TEST_DATABASE=postgresql .venv/bin/python -m pytest -n 2 --dist loadfile \
		tests/integration -m "not browser" $(PYTEST_ARGS)

lint: bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

# A wheel of the server and the notebook client (arctern_client) in dist/, for machines
# without the checkout: pip install 'dist/arctern-<version>-py3-none-any.whl[client]'.
dist: bootstrap
	.venv/bin/uv build --wheel --out-dir dist
