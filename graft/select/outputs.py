"""What a selection hands on: the ``graft fit`` command for the pick, and its files under ``out``.

Example:
    >>> fit_command("data/pets", "tv:mobilenet_v2")
    'graft fit data/pets --model tv:mobilenet_v2 --out runs/fit-tv-mobilenet_v2'
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graft.select.result import SelectionResult


def fit_command(
    data: str | os.PathLike,
    model: str,
    image_size: int | None = None,
    device: str = "cpu",
    pretrained: bool = True,
    model_args: Mapping[str, Any] | None = None,
) -> str:
    """The ``graft fit`` command line that fine-tunes ``model`` on ``data`` (with its model arguments).

    Example:
        >>> fit_command("data/my pets", "efficientnet_lite0", image_size=128)
        "graft fit 'data/my pets' --model efficientnet_lite0 --image-size 128 --out runs/fit-efficientnet_lite0"
    """
    parts = ["graft", "fit", os.fspath(data), "--model", model]
    if image_size:
        parts += ["--image-size", str(image_size)]
    if device == "cuda":
        parts += ["--accelerator", "gpu"]
    if not pretrained:
        parts += ["--weights", "none"]
    for key, value in (model_args or {}).items():
        parts += ["--model-arg", f"{key}={_yaml_flow(value)}"]
    parts += ["--out", f"runs/fit-{folder_name(model)}"]
    return " ".join(shlex.quote(p) for p in parts)


def _yaml_flow(value: Any) -> str:
    """A value as one-line YAML (what ``--model-arg KEY=VALUE`` reads back)."""
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**6)
        .strip()
        .removesuffix("...")
        .strip()
    )


def folder_name(name: str) -> str:
    """A model name as a folder name: ``tv:mobilenet_v2`` -> ``tv-mobilenet_v2``."""
    return name.replace(":", "-").replace("/", "-").replace("@", "-")


def write_outputs(result: SelectionResult, out: str | os.PathLike) -> dict[str, str]:
    """Write ``selection.json``, ``selection.txt`` and ``score_vs_latency.png`` under ``out``."""
    from graft.io import write_text
    from graft.select.plot import plot_selection

    out = Path(out)
    files = {
        "json": str(out / "selection.json"),
        "table": str(out / "selection.txt"),
        "plot": str(out / "score_vs_latency.png"),
    }
    result.files = files
    if result.rows:
        plot_selection(result, files["plot"])
    else:
        del files["plot"]
    write_text(files["table"], result.summary() + "\n")
    result.to_json(files["json"])
    return files
