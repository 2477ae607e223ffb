# The two commands of the README are `make demo` and `make test`; both install what they need.
# The virtualenv lives outside the clone, keyed on requirements.lock, so the ~6 GB torch
# install happens once per machine and lock, not once per clone or CI run.
SHELL := /bin/bash
PYTHON ?= python3
IDENTIGRAPH_CACHE ?= $(HOME)/.cache/identigraph
export IDENTIGRAPH_CACHE
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
VENV ?= $(IDENTIGRAPH_CACHE)/venv-$(LOCK_HASH)
PY := $(VENV)/bin/python
IG := $(VENV)/bin/identigraph
STAMP := $(VENV)/.identigraph-installed
# ruff, mypy and build sit on top, with their own stamp (requirements-dev.lock).
DEV_STAMP := $(VENV)/.dev-$(shell sha256sum requirements-dev.lock | cut -c1-16)
# The project is installed editable into the shared venv; redo it when the clone or
# pyproject.toml changes (CI clones to a new folder each run).
EDITABLE_STAMP := $(VENV)/.editable-$(shell { echo "$(CURDIR)"; cat pyproject.toml; } | sha256sum | cut -c1-16)
# Every command runs this checkout's code and addresses this checkout's Neo4j store, whichever
# checkout last installed itself editable into the shared venv.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
export IDENTIGRAPH_NEO4J_DIR ?= $(CURDIR)/.neo4j
PYTEST_ARGS ?=
DEMO_DIR ?= .demo
DEMO_CUSTOMERS ?= 20000

.PHONY: install demo test lint neo4j-start neo4j-stop neo4j-status bench lock clean

install:
	@if [ ! -f "$(STAMP)" ]; then \
	  echo "Creating $(VENV) from requirements.lock (first time on this machine: a few minutes)"; \
	  rm -rf "$(VENV)" && $(PYTHON) -m venv "$(VENV)" && \
	  "$(PY)" -m pip install --quiet --upgrade pip && \
	  "$(PY)" -m pip install --quiet -r requirements.lock && touch "$(STAMP)" || exit 1; \
	fi
	@if [ ! -f "$(DEV_STAMP)" ]; then \
	  "$(PY)" -m pip install --quiet -r requirements-dev.lock && rm -f "$(VENV)"/.dev-* && touch "$(DEV_STAMP)" || exit 1; \
	fi
	@if [ ! -f "$(EDITABLE_STAMP)" ]; then \
	  rm -f "$(VENV)"/.editable-* && \
	  "$(PY)" -m pip install --quiet --no-deps --no-build-isolation -e . && touch "$(EDITABLE_STAMP)" || exit 1; \
	fi

demo: install
	"$(IG)" demo --out "$(DEMO_DIR)" --customers $(DEMO_CUSTOMERS)

# Unless NEO4J_URI names a server: runs every test with this checkout's local Neo4j up, and
# stops it afterwards if (and only if) it was started for the tests. Exits with pytest's status.
test: install
	@if [ -n "$${NEO4J_URI:-}" ]; then exec "$(PY)" -m pytest $(PYTEST_ARGS); fi; \
	exec "$(IG)" neo4j run -- "$(PY)" -m pytest $(PYTEST_ARGS)

# ruff and mypy alone (make test runs them too, in tests/test_code_checks.py).
lint: install
	"$(PY)" tests/code_checks.py

neo4j-start: install
	"$(IG)" neo4j start

neo4j-stop: install
	"$(IG)" neo4j stop

neo4j-status: install
	"$(IG)" neo4j status

bench: install
	"$(PY)" benchmarks/run_all.py

# Re-resolves the dependency ranges of pyproject.toml (with the gnn, serve, spark, test and bench extras)
# into requirements.lock; requirements-dev.lock is pinned by hand.
lock:
	rm -rf "$(IDENTIGRAPH_CACHE)/lock-venv" && $(PYTHON) -m venv "$(IDENTIGRAPH_CACHE)/lock-venv"
	"$(IDENTIGRAPH_CACHE)/lock-venv/bin/pip" install --quiet --upgrade pip
	"$(IDENTIGRAPH_CACHE)/lock-venv/bin/pip" install --quiet ".[gnn,serve,spark,test,bench]"
	{ echo "# Exact versions the Makefile installs into the cached venv (~/.cache/identigraph/venv-<hash of this file>)."; \
	  echo "# Regenerate: make lock"; \
	  "$(IDENTIGRAPH_CACHE)/lock-venv/bin/pip" freeze --all | grep -v -E '^(identigraph|pip)=='; } > requirements.lock

clean:
	rm -rf $(DEMO_DIR) .bench .pytest_cache
