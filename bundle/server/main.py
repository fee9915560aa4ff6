"""The bundle's entry point: ``mcp-rag serve`` with what the desktop client passes.

The client runs it as the manifest's ``mcp_config`` says (``uv run`` in the unpacked
bundle, which installs the dependencies pinned in its ``uv.lock``); the folders the user
picked arrive as arguments, the other choices as ``MCP_RAG_*`` variables.
"""

import sys

from mcp_rag.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
