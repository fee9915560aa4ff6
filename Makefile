# Two commands do all the set-up on a fresh machine:
#   make demo   install, pull the offline model pack, index the sample knowledge base, search it
#   make test   install with the dev extra, pull the pack, lint, run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint models

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
	$(BIN)/mcp-rag index mcp_rag/sample
	$(BIN)/mcp-rag status
	$(BIN)/mcp-rag search "What does error KB-ERR-2847 mean?" -k 3

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

test: $(VENV)/.installed-dev models lint
	MCP_RAG_REQUIRE_PACK=1 $(BIN)/pytest
