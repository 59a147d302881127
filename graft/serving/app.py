"""The FastAPI application: routes, error replies, the batcher's lifetime.

Routes: ``POST /predict`` (images -> top-k JSON, optional Grad-CAM), ``GET /`` (the page),
``/health`` (liveness), ``/ready`` (model loaded and accepting), ``/info``, ``/metrics``
(Prometheus) and ``/openapi.json``. Every refusal is ``{"error": code, "status": N, "reason": ...}``.

Example:
    >>> app = create_app(ServeConfig(bundle="runs/pets/bundle"))  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

import graft
from graft.serving.batcher import Batcher
from graft.serving.config import ServeConfig, check
from graft.serving.engine import Engine, RequestError
from graft.serving.guard import Guard
from graft.serving.metrics import CONTENT_TYPE, Metrics
from graft.serving.page import page_html
from graft.serving.uploads import ERROR_HEADER, BodyLimit, error_body, read_images

CONFIG_ENV = "GRAFT_SERVE_CONFIG"  # JSON ServeConfig for worker processes (--workers > 1)


class ClassProb(BaseModel):
    label: str
    prob: float


class ImagePrediction(BaseModel):
    name: str
    label: str
    prob: float
    top_k: list[ClassProb]
    gradcam: str | None = None  # data:image/png;base64,... when ?gradcam=1


class PredictResponse(BaseModel):
    predictions: list[ImagePrediction]
    backend: str


class ErrorResponse(BaseModel):
    error: str
    status: int
    reason: str


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        },
    }
}
ERRORS = {s: {"model": ErrorResponse} for s in (400, 401, 413, 415, 422, 503)}


def create_app(cfg: ServeConfig, engine: Engine | None = None) -> Any:
    """The ASGI application serving ``cfg.bundle`` (``engine``: an already loaded model).

    Without ``engine`` the model is loaded at start-up (``/ready`` says 503 until then).
    """
    check(cfg)
    metrics = Metrics()
    state: dict[str, Any] = {"engine": engine, "batcher": None, "accepting": False}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        if state["engine"] is None:
            state["engine"] = await asyncio.to_thread(Engine.load, cfg, os.getpid())
        eng: Engine = state["engine"]
        batcher = Batcher(eng.probabilities, cfg.max_batch_size, cfg.batch_timeout / 1e3,
                          on_batch=metrics.batch)  # fmt: skip
        batcher.start()
        # decoding gets as many threads as the model: more would take the cores from the model
        decoders = ThreadPoolExecutor(max(1, torch.get_num_threads()), "graft-decode")
        state.update(batcher=batcher, decoders=decoders, accepting=True)
        try:
            yield
        finally:
            state["accepting"] = False
            await batcher.stop()
            decoders.shutdown(wait=True)
            eng.close()

    app = FastAPI(
        title="graft serve",
        version=graft.__version__,
        description="Image classification with a graft bundle: POST images to /predict.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI / ReDoc load scripts from a CDN; the schema is /openapi.json
        redoc_url=None,
    )
    app.state.serve = state
    _error_handlers(app)
    _routes(app, cfg, state, metrics)
    app.add_middleware(BodyLimit, limit=int(cfg.max_body_mb * 1024 * 1024))
    return Guard(app, metrics, cfg.api_key or os.environ.get("GRAFT_API_KEY") or None)


def app_from_env() -> Any:
    """Factory for worker processes: the config comes JSON-encoded in ``GRAFT_SERVE_CONFIG``."""
    return create_app(ServeConfig(**json.loads(os.environ[CONFIG_ENV])))


def _routes(app: FastAPI, cfg: ServeConfig, state: dict[str, Any], metrics: Metrics) -> None:
    def engine() -> Engine:
        if not state["accepting"] or state["engine"] is None:
            raise RequestError(503, "not_ready", "the model is loading or the server is stopping")
        return state["engine"]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/health", summary="liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="readiness: the model is loaded and requests are accepted",
             responses={503: {"model": ErrorResponse}})  # fmt: skip
    async def ready() -> dict[str, Any]:
        eng = engine()
        return {"ready": True, "backend": eng.backend}

    @app.get("/info", summary="classes, model, input size, bundle hash, graft version")
    async def info() -> dict[str, Any]:
        return engine().info()

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.post("/predict", response_model=PredictResponse, responses=ERRORS,
              openapi_extra=PREDICT_BODY, summary="top-k classes of one or several images")  # fmt: skip
    async def predict(
        request: Request,
        top_k: int | None = Query(None, ge=1, le=1000, description="classes per image"),
        gradcam: bool = Query(
            False, description="add a Grad-CAM overlay PNG (server needs --gradcam)"
        ),
    ) -> dict[str, Any]:
        eng = engine()
        if gradcam and not cfg.gradcam:
            raise RequestError(400, "gradcam_disabled",
                               "Grad-CAM is off on this server; start it with --gradcam")  # fmt: skip
        images = await read_images(request, cfg.max_images)
        loop = asyncio.get_running_loop()
        tensors = await asyncio.gather(
            *(loop.run_in_executor(state["decoders"], eng.decode, d, n) for n, d in images)
        )
        probs = await asyncio.gather(*(state["batcher"].submit(x) for x in tensors))
        rows = eng.rows(np.stack(probs), top_k or cfg.top_k)
        for (name, _), row, x in zip(images, rows, tensors, strict=True):
            row["name"] = name
            if gradcam:
                target = eng.bundle.classes.index(row["label"])
                row["gradcam"] = await run_in_threadpool(eng.gradcam_png, x, target)
        return {"predictions": rows, "backend": eng.backend}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(_: Request, e: RequestError) -> JSONResponse:
        return _json_error(e)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in e.errors()[:3])
        return _json_error(RequestError(422, "invalid_parameter", where))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return _json_error(RequestError(e.status_code, code, str(e.detail)))


def _json_error(e: RequestError) -> JSONResponse:
    return JSONResponse(error_body(e), status_code=e.status, headers={ERROR_HEADER: e.code})
