"""Export bundles for deployment: ONNX (fp32 or int8, verified with onnxruntime) and TorchScript.

Names are imported lazily, so that ``graft --help`` does not load torch and onnx.

Example:
    >>> from graft.export import export_model
    >>> export_model("runs/pets/bundle", quantize="int8", calibration="data/pets")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import deprecated_call, lazy_exports

_API = {
    "ExportError": "graft.export.onnx",
    "ExportResult": "graft.export.onnx",
    "export_model": "graft.export.onnx",
    "export": "graft.export.onnx",
    "Int8Options": "graft.export.options",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
deprecated_call(__name__, "export_model", "graft.export_model")
