"""Options shared by the commands that run a bundle on images (``graft evaluate``, ``graft predict``)."""

from __future__ import annotations

from dataclasses import dataclass

from graft.options import ACCELERATOR_HELP, DEVICES_HELP, NUM_NODES_HELP, STRATEGY_HELP, option

BUNDLE_HELP = "bundle folder (written by graft fit, graft probe or graft export)"


@dataclass
class InferenceOptions:
    """The options of ``graft predict`` and ``graft evaluate`` that say how images are run.

    Example:
        >>> InferenceOptions().batch_size
        64
    """

    batch_size: int = option(64, "images per batch")
    tta: bool = option(
        False, "average with the horizontally flipped image (test-time augmentation)"
    )
    workers: int = option(0, "image decoding processes (0: in the main process)")
    accelerator: str = option("auto", ACCELERATOR_HELP + "; PyTorch bundles (ONNX runs on the CPU)")
    devices: str = option(
        "1",
        DEVICES_HELP + "; several processes each run a shard of the images, the output is "
        "the one of one process",
    )
    strategy: str = option("auto", STRATEGY_HELP)
    num_nodes: int = option(1, NUM_NODES_HELP)
