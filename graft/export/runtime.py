"""The onnxruntime backend: ONNX bundles (``kind="onnx"``) for ``predict`` and ``evaluate``.

Importing this module registers the ``onnx`` and ``torchscript`` bundle kinds with
:func:`graft.bundle.register_kind`. An ONNX file is a protobuf graph: loading it runs no Python code.

Example:
    >>> bundle = load_bundle("runs/pets/onnx")  # doctest: +SKIP
    >>> bundle.logits(torch.zeros(2, 3, 224, 224)).shape  # doctest: +SKIP
    torch.Size([2, 37])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graft.bundle import Bundle, BundleError, register_kind

ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class OnnxModel:
    """Callable wrapper of an onnxruntime session: normalised batch (torch) -> logits (torch).

    Example:
        >>> m = OnnxModel("model.onnx")  # doctest: +SKIP
        >>> m(torch.zeros(1, 3, 224, 224)).shape  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # no busy-waiting threads between calls: graft runs onnxruntime next to torch work (decoding,
        # preprocessing, DataLoader workers), which spinning threads would slow down
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                os.fspath(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise BundleError(f"onnxruntime cannot load {path}: {str(e)[:300]}") from e
        self.input_name = self.session.get_inputs()[0].name
        self.path = Path(path)

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        out = self.session.run(
            None, {self.input_name: np.ascontiguousarray(array, dtype=np.float32)}
        )[0]
        return torch.from_numpy(out)

    def eval(self) -> OnnxModel:
        return self

    def metadata(self) -> dict[str, str]:
        """The ``metadata_props`` stored in the ONNX file."""
        return dict(self.session.get_modelmeta().custom_metadata_map)


def load_onnx_bundle(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """Loader for ``kind="onnx"`` (checksums were verified by :func:`graft.bundle.load_bundle`)."""
    model = OnnxModel(folder / ONNX_FILE)
    stored = model.metadata().get("graft.classes")
    if stored is not None and json.loads(stored) != list(meta["classes"]):
        raise BundleError(
            f"{folder}: the classes in model.onnx differ from model.json; the bundle was edited."
        )
    return Bundle(
        model, list(meta["classes"]), dict(meta["data_config"]), meta, "onnx", folder, "cpu"
    )


def load_torchscript_bundle(folder: Path, meta: dict[str, Any], device: str = "cpu") -> Bundle:
    """TorchScript exports are for deployment; graft does not load them (see the message)."""
    raise BundleError(
        f"{folder} is a TorchScript export, meant for deployment (torch.jit.load in Python or C++). "
        "graft does not load TorchScript archives, since they carry code; predict and evaluate with the source "
        f"bundle ({meta.get('source', {}).get('path', 'the bundle it was exported from')}) or an ONNX export."
    )


register_kind("onnx", load_onnx_bundle)
register_kind("torchscript", load_torchscript_bundle)
