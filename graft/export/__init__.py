"""Export bundles for deployment: ONNX (fp32 or int8, verified with onnxruntime) and TorchScript.

Example:
    >>> from graft.export import export
    >>> export("runs/pets/bundle", quantize="int8", calibration="data/pets")  # doctest: +SKIP
"""

from __future__ import annotations

from graft.export.onnx import ExportError, ExportResult, export

__all__ = ["ExportError", "ExportResult", "export"]
