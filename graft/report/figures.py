"""Matplotlib (Agg, headless) figures and images as ``data:`` URIs for a self-contained HTML file.

Example:
    >>> from PIL import Image
    >>> png_data_uri(Image.new("RGB", (4, 4)))[:22]
    'data:image/png;base64,'
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_data_uri(fig: Any, dpi: int = 90) -> str:
    """Render ``fig`` as PNG, close it, and return its ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return _uri(buf.getvalue())


def png_data_uri(image: Image.Image) -> str:
    """A PIL image as a PNG ``data:`` URI.

    Example:
        >>> png_data_uri(Image.new("L", (2, 2))).startswith("data:image/png;base64,")
        True
    """
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return _uri(buf.getvalue())


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
