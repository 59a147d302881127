"""Export bundles for deployment: ONNX (fp32 or int8, verified with onnxruntime) and TorchScript.

Names are imported lazily, so that ``graft --help`` does not load torch and onnx.

Example:
    >>> from graft.export import export
    >>> export("runs/pets/bundle", quantize="int8", calibration="data/pets")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "ExportError": "graft.export.onnx",
    "ExportResult": "graft.export.onnx",
    "export": "graft.export.onnx",
    "Int8Options": "graft.export.options",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'graft.export' has no attribute '{name}'")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
