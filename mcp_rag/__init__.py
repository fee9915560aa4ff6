"""mcp-rag: local hybrid retrieval over your own documents, served over MCP."""

__version__ = "0.2.0"
