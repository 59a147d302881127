"""What a ``POST /predict`` carries: one image as the raw body, or several as multipart parts.

- ``Content-Type: image/*`` or ``application/octet-stream``: the body is one image.
- ``Content-Type: multipart/form-data``: every file part is an image (any field name), in order.
- Anything else: 415; an empty body or a form without files: 400; more than ``max_images``: 413.

The body size limit is :class:`BodyLimit`, an ASGI middleware: a ``Content-Length`` over the limit
is refused before anything is read, and a streamed body is counted as it arrives.

Example:
    >>> content_kind("multipart/form-data; boundary=x"), content_kind("image/png")
    ('multipart', 'raw')
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from graft.serving.engine import RequestError

RAW_TYPES = ("application/octet-stream",)
ERROR_HEADER = "x-graft-error"  # the error code, for the request log and /metrics
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes of an oversized body read and dropped so the reply arrives


def content_kind(content_type: str) -> str:
    """``"raw"``, ``"multipart"`` or ``"other"`` for a ``Content-Type`` header value."""
    main = content_type.split(";")[0].strip().lower()
    if main == "multipart/form-data":
        return "multipart"
    if main.startswith("image/") or main in RAW_TYPES:
        return "raw"
    return "other"


async def read_images(request: Request, max_images: int) -> list[tuple[str, bytes]]:
    """``[(name, bytes), ...]`` from the request, or a :class:`RequestError` saying what is wrong."""
    content_type = request.headers.get("content-type", "")
    kind = content_kind(content_type)
    if kind == "raw":
        body = await request.body()
        if not body:
            raise RequestError(400, "empty_body", "the request body is empty; send the image bytes")
        return [(request.query_params.get("name") or "image", body)]
    if kind == "multipart":
        return await _multipart(request, max_images)
    body = await request.body()
    if not body:
        raise RequestError(
            400, "empty_body",
            "the request body is empty; send an image (Content-Type: image/jpeg, image/png, ...) "
            "or a multipart/form-data form with image files",
        )  # fmt: skip
    raise RequestError(
        415, "unsupported_content_type",
        f"Content-Type {content_type or '(none)'!r} is not accepted; send image bytes with "
        "Content-Type image/* or application/octet-stream, or multipart/form-data with image files",
    )  # fmt: skip


async def _multipart(request: Request, max_images: int) -> list[tuple[str, bytes]]:
    try:
        form = await request.form(max_files=max_images, max_fields=max_images)
    except HTTPException as e:  # starlette's MultiPartException (bad boundary, too many parts)
        status = 413 if "Too many" in str(e.detail) else 400
        raise RequestError(
            status, "bad_multipart", f"the multipart form is unreadable: {e.detail}"
        ) from e
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise RequestError(
                400, "empty_body",
                "the form has no files; send images as file fields (curl -F file=@cat.jpg)",
            )  # fmt: skip
        return [(f.filename or f"image{i}", await f.read()) for i, f in enumerate(files)]
    finally:
        await form.close()


class BodyTooLarge(RequestError):
    def __init__(self, limit: int, size: int | None = None) -> None:
        got = f"{size:,} bytes" if size is not None else "more"
        super().__init__(
            413, "body_too_large",
            f"the request body ({got}) is larger than the {limit:,} bytes allowed (--max-body-mb); "
            "send smaller or fewer images per request",
        )  # fmt: skip


class BodyLimit:
    """ASGI middleware: bodies over ``limit`` bytes get 413 (by header, or counted while read)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _drain(receive, int(length))
            await send_error(send, BodyTooLarge(self.limit, int(length)))
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_LIMIT)
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Any, most: int) -> None:
    """Read and drop up to ``most`` bytes of a refused body, so the client reads the 413 reply."""
    seen = 0
    while seen <= min(most, DRAIN_LIMIT):
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def send_error(send: Any, error: RequestError) -> None:
    """Send ``{"error": code, "reason": ...}`` with the error's status, from ASGI level."""
    body = json.dumps(error_body(error)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (ERROR_HEADER.encode(), error.code.encode()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(error: RequestError) -> dict[str, Any]:
    return {"error": error.code, "status": error.status, "reason": error.reason}
