"""Streamable HTTP: the ASGI app at /mcp with Host/Origin checks and an optional bearer token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mcp.server import MCPServer

from mcp_rag.errors import QueryError

log = logging.getLogger(__name__)


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def authorized(self, header: bytes) -> bool:
        """The auth scheme is case-insensitive (RFC 7235 §2.1); the token is compared in
        constant time."""
        import hmac

        scheme, _, credentials = header.strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(), self.token
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") != "/health":  # health is public
            got = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not self.authorized(got):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "unauthorized", "message": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def http_app(
    server: MCPServer,
    host: str,
    port: int,
    token: str | None,
    allowed_hosts: Sequence[str] = (),
) -> Any:
    """The streamable HTTP app at /mcp: Host/Origin checked (DNS rebinding), optional token."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
    hosts |= {f"{h}:{port}" for h in allowed_hosts} | set(allowed_hosts)
    if host not in LOOPBACK:
        hosts.add(f"{host}:{port}")
    origins = {f"http://{h}" for h in hosts} | {f"https://{h}" for h in hosts}
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(origins),
    )
    app = server.streamable_http_app(transport_security=security, host=host)
    return BearerAuth(app, token) if token else app


def run_http(server: MCPServer, host: str, port: int, token: str | None,
             allowed_hosts: Sequence[str] = ()) -> None:
    import uvicorn

    if host not in LOOPBACK and not token:
        raise QueryError(
            f"refusing to listen on {host} without a token: set MCP_RAG_TOKEN, or bind to "
            f"127.0.0.1"
        )
    app = http_app(server, host, port, token, allowed_hosts)
    log.info("mcp-rag serving streamable HTTP at http://%s:%d/mcp%s", host, port,
                " (bearer token required)" if token else "")
    uvicorn.run(app, host=host, port=port, log_level="warning")
