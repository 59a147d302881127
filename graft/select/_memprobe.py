"""Peak CPU memory of one forward pass, measured in a fresh process (run by :mod:`graft.select.cost`).

Usage: ``python -m graft.select._memprobe '{"spec": {...}, "input_size": [3, 224, 224], "batch": 16}'``
prints ``{"peak_mb": ...}``: the resident-set high-water mark after the pass minus the resident set
before the model was built (so weights plus activations), in MiB.
"""

from __future__ import annotations

import json
import sys

import torch

from graft.select.cost import read_status_kb, reset_peak_rss


def main(payload: str) -> float:
    """Build the model from its ``graft_spec`` without weights, run one batch, return the peak in MiB."""
    from graft.models import create_model

    args = json.loads(payload)
    x = torch.randn(int(args["batch"]), *[int(v) for v in args["input_size"]])
    before = read_status_kb("VmRSS")
    reset_peak_rss()
    spec = {**args["spec"], "pretrained": False}
    model = create_model(**spec).eval()
    with torch.inference_mode():
        model(x)
    return (read_status_kb("VmHWM") - before) / 1024


if __name__ == "__main__":
    print(json.dumps({"peak_mb": main(sys.argv[1])}))
