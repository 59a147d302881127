"""The outermost ASGI layer: API key check, one log line per request (with latency), metrics.

Every route but ``/health`` needs the key when one is set: header ``X-API-Key: KEY``,
``Authorization: Bearer KEY``, or ``?api_key=KEY`` (for opening the page in a browser). The log
line is ``METHOD PATH STATUS LATENCY ms [error code]`` on the ``graft.serve`` logger (INFO).

Example:
    >>> key_matches("s3cret-key", {b"x-api-key": b"s3cret-key"}, b"")
    True
    >>> key_matches("s3cret-key", {}, b"api_key=wrong")
    False
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from graft.log import get_logger
from graft.serving.engine import RequestError
from graft.serving.metrics import Metrics
from graft.serving.uploads import ERROR_HEADER, send_error

log = get_logger("graft.serve")
OPEN_PATHS = frozenset({"/health"})
ROUTES = frozenset({"/", "/health", "/ready", "/info", "/metrics", "/predict", "/openapi.json"})


def key_matches(key: str, headers: dict[bytes, bytes], query: bytes) -> bool:
    """True when the request carries ``key`` (see the module docstring); constant-time compare."""
    given = headers.get(b"x-api-key", b"").decode("latin-1")
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given and query:
        given = (parse_qs(query.decode("latin-1")).get("api_key") or [""])[0]
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())


class Guard:
    """ASGI middleware: authentication, request log line and Prometheus metrics."""

    def __init__(self, app: Any, metrics: Metrics, api_key: str | None) -> None:
        self.app, self.metrics, self.api_key = app, metrics, api_key

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "error": ""}

        async def watched(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = dict(message.get("headers") or [])
                seen["error"] = headers.get(ERROR_HEADER.encode(), b"").decode()
            await send(message)

        path = scope["path"]
        route = path if path in ROUTES else "other"
        self.metrics.in_flight.labels(route=route).inc()
        try:
            if self.api_key and path not in OPEN_PATHS and not self._allowed(scope):
                await send_error(watched, _unauthorized())
            else:
                await self.app(scope, receive, watched)
        finally:
            self.metrics.in_flight.labels(route=route).dec()
            self._record(scope["method"], path, seen, time.perf_counter() - start)

    def _allowed(self, scope: dict) -> bool:
        assert self.api_key is not None  # checked by the caller
        return key_matches(self.api_key, dict(scope["headers"]), scope.get("query_string", b""))

    def _record(self, method: str, path: str, seen: dict[str, Any], seconds: float) -> None:
        route = path if path in ROUTES else "other"
        status, error = int(seen["status"]), seen["error"]
        self.metrics.request(route, status, seconds)
        if status >= 400:
            self.metrics.error(error or str(status))
        log.info(
            "%s %s %d %.1f ms%s", method, path, status, seconds * 1e3, f" {error}" if error else ""
        )


def _unauthorized() -> RequestError:
    return RequestError(
        401, "unauthorized",
        "missing or wrong API key; send the header 'X-API-Key: KEY' or 'Authorization: Bearer KEY'",
    )  # fmt: skip
