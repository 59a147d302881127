"""``graft serve``: a bundle behind an HTTP API (FastAPI + uvicorn) and a web page.

Names are imported lazily, so that ``import graft`` does not need the server extra.

Example:
    >>> import graft
    >>> graft.serve("runs/pets/bundle", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
    "serve": "graft.serving.server",
    "ServeConfig": "graft.serving.config",
    "create_app": "graft.serving.app",
    "Engine": "graft.serving.engine",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
