"""Errors with messages that say what went wrong, the value, the limit and the fix."""

from __future__ import annotations


class MCPRagError(Exception):
    """Base class of every error mcp-rag raises on purpose."""


class ConfigError(MCPRagError, ValueError):
    """A setting or parameter is out of range or unknown."""


class ModelNotFoundError(MCPRagError):
    """A model spec resolves to nothing on disk and cannot be fetched."""


class ModelIntegrityError(MCPRagError):
    """A model file's sha256 does not match the pinned one."""


class IndexNotFoundError(MCPRagError):
    """There is no index in the given directory yet."""


class IndexCorruptError(MCPRagError):
    """The index on disk cannot be read."""


class IndexBusyError(MCPRagError):
    """Another process is writing the index."""


class IndexMismatchError(MCPRagError):
    """The index was built with other settings (model, chunking) than those asked for."""


class LoaderError(MCPRagError):
    """A file cannot be turned into text (binary, unreadable, malformed, missing parser)."""


class NotIndexed(LoaderError):
    """A file read and left out on purpose (minified code, a generated source listing):
    unlike a file that cannot be read now, what an index held of it goes."""


class QueryError(MCPRagError, ValueError):
    """A query or its parameters are invalid."""


class BusyError(MCPRagError):
    """Too many expensive calls are queued: retry later (the message says when)."""


class BackendUnavailableError(MCPRagError):
    """The server that holds the index (Milvus) did not answer."""
