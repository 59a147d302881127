"""The size rule of a hybrid: which input size each branch computes at, and why.

One rule, used by ``graft fit``, ``graft select`` and :func:`graft.hybrid.create_hybrid`; the first
that applies wins:

1. ``branch_inputs={branch: {"input_size": N}}``: a per-branch size, on purpose (rule ``branch_inputs``);
2. ``branch_kwargs={branch: {"img_size": N}}``: the branch was built for that size (rule ``img_size``);
3. ``image_size=N`` (``graft fit --image-size N``): the size the user asked for (rule ``image_size``);
4. the branch's weights' size, ``pretrained_cfg["input_size"]`` (rule ``weights``).

CNN branches take any size. A ViT-style branch (``patch_embed``) is resized in place with timm's
``set_input_size`` (its position embedding is interpolated to the new patch grid) when the size is a
multiple of its patch size; otherwise a :class:`~graft.errors.ConfigError` names the branch and the
sizes it accepts.

Example:
    >>> from graft.hybrid import create_hybrid
    >>> m = create_hybrid("test_efficientnet+test_vit", num_classes=2, pretrained=False,
    ...                   image_size=64)
    >>> {k: v["input_size"] for k, v in branch_input_sizes(m).items()}
    {'cnn': [64, 64], 'vit': [64, 64]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from graft.errors import ConfigError
from graft.log import get_logger

log = get_logger("graft.hybrid")

RULES = ("branch_inputs", "img_size", "image_size", "weights")


def as_hw(value: Any) -> tuple[int, int]:
    """``N``, ``[h, w]`` or ``[c, h, w]`` -> ``(h, w)``; anything else is a ConfigError.

    Example:
        >>> as_hw(96), as_hw([3, 64, 80])
        ((96, 96), (64, 80))
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if isinstance(value, (list, tuple)) and len(value) in (2, 3):
        try:
            h, w = int(value[-2]), int(value[-1])
        except (TypeError, ValueError):
            h = w = 0
        if h > 0 and w > 0:
            return h, w
    raise ConfigError(
        f"an input size must be a positive int or [height, width], got {value!r}; e.g. 96 or [96, 128]."
    )


def requested_size(
    override: Mapping[str, Any],
    kwargs: Mapping[str, Any],
    image_size: Any,
    pretrained_cfg: Mapping[str, Any],
) -> tuple[tuple[int, int], str]:
    """``((h, w), rule)`` for one branch by the size rule (see the module docstring).

    Example:
        >>> requested_size({}, {}, 96, {"input_size": (3, 224, 224)})
        ((96, 96), 'image_size')
        >>> requested_size({"input_size": 224}, {}, 96, {})
        ((224, 224), 'branch_inputs')
    """
    if "input_size" in override:
        return as_hw(override["input_size"]), "branch_inputs"
    if "img_size" in kwargs:
        return as_hw(kwargs["img_size"]), "img_size"
    if image_size is not None:
        return as_hw(image_size), "image_size"
    return as_hw(tuple(pretrained_cfg.get("input_size", (3, 224, 224)))), "weights"


def patch_grid(model: nn.Module) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``(native size, patch size)`` of a ViT-style branch (timm ``patch_embed``), else ``None``."""
    embed = getattr(model, "patch_embed", None)
    img, patch = getattr(embed, "img_size", None), getattr(embed, "patch_size", None)
    if img is None or patch is None:
        return None
    try:
        return as_hw(tuple(img)), as_hw(tuple(patch))
    except (ConfigError, TypeError):
        return None


def fit_token_branch(name: str, model: nn.Module, size: tuple[int, int], rule: str) -> None:
    """Make a ViT-style branch compute at ``size``: timm's ``set_input_size`` (position embedding
    interpolated to the new grid). CNNs and models without a patch embedding are left alone (the
    dummy forward that follows checks them).

    Example:
        >>> import timm
        >>> vit = timm.create_model("test_vit", num_classes=0)
        >>> fit_token_branch("test_vit", vit, (64, 64), "image_size")
        >>> tuple(vit.patch_embed.img_size), vit.pos_embed.shape[1]  # 4x4 patches + class token
        ((64, 64), 17)
    """
    grid = patch_grid(model)
    if grid is None or grid[0] == size:
        return
    native, patch = grid
    if size[0] % patch[0] or size[1] % patch[1]:
        raise ConfigError(
            f"branch '{name}' (a ViT with {patch[0]} px patches, built for {native[0]} px) cannot "
            f"take {size[0]}x{size[1]} px ({_why(rule)}): it accepts multiples of {patch[0]} px, "
            f"e.g. {_near(size[0], patch[0])}. {_fix(name, rule)}"
        )
    setter = getattr(model, "set_input_size", None)
    if not callable(setter):
        raise ConfigError(
            f"branch '{name}' is built for {native[0]}x{native[1]} px and cannot be resized to "
            f"{size[0]}x{size[1]} ({_why(rule)}): it accepts {native[0]} px only. "
            f"{_fix(name, rule, native[0])}"
        )
    try:
        setter(img_size=size)
    except Exception as e:  # noqa: BLE001 - report any failure with the branch and size
        raise ConfigError(
            f"branch '{name}' could not be resized to {size[0]}x{size[1]} px ({_why(rule)}): "
            f"{type(e).__name__}: {e}. {_fix(name, rule, native[0])}"
        ) from e


def size_error(name: str, size: tuple[int, int], rule: str, err: Exception) -> ConfigError:
    """The error for a branch whose dummy forward failed at ``size``."""
    return ConfigError(
        f"branch '{name}' failed on a {size[0]}x{size[1]} input ({_why(rule)}; "
        f"{type(err).__name__}: {err}). {_fix(name, rule)}"
    )


def warn_off_size(
    branches: Sequence[tuple[str, tuple[int, int], str]], image_size: tuple[int, int] | None
) -> None:
    """Warn for each ``(name, size, rule)`` computing at another size than ``image_size`` (its
    cost changes with the pixel count: 224 px is 5.4x the pixels of 96 px)."""
    if image_size is None:
        return
    for name, (h, w), rule in branches:
        if (h, w) != tuple(image_size):
            ratio = h * w / (image_size[0] * image_size[1])
            log.warning(
                "hybrid branch %s computes at %dx%d px (%s), not the requested %dx%d: %.2gx the "
                "pixels per image", name, h, w, rule, *image_size, ratio,
            )  # fmt: skip


def _why(rule: str) -> str:
    return {
        "branch_inputs": "its branch_inputs input_size",
        "img_size": "its branch_kwargs img_size",
        "image_size": "the requested image size",
        "weights": "its weights' size",
    }.get(rule, rule)


def _near(size: int, patch: int) -> str:
    low = max(patch, size // patch * patch)
    return f"{low} or {low + patch}"


def _fix(name: str, rule: str, size: int | str = "N") -> str:
    own = f"--model-arg 'branch_inputs={{{name}: {{input_size: {size}}}}}'"
    if rule == "image_size":
        return f"Pick another --image-size, or give this branch its own size with {own}."
    return f"Set a size it accepts with {own} (Python: branch_inputs={{'{name}': {{'input_size': {size}}}}})."


def branch_input_sizes(model: Any) -> dict[str, dict[str, Any]]:
    """Each branch's input size and the rule that chose it; ``{}`` for a model that is not a hybrid.

    Keys are the branch keys (``cnn``, ``vit``, ``cnn2``...); values ``{"name": backbone,
    "input_size": [h, w], "rule": "branch_inputs" | "img_size" | "image_size" | "weights"}``.
    Safe to call on any model (a training plan can print it unconditionally).

    Example:
        >>> branch_input_sizes(nn.Linear(2, 2))
        {}
    """
    inputs = getattr(model, "inputs", None)
    names = getattr(model, "branch_names", None)
    if not isinstance(inputs, nn.ModuleDict) or not isinstance(names, Mapping):
        return {}
    rules = getattr(model, "branch_size_rules", {}) or {}
    return {
        key: {
            "name": names.get(key, key),
            "input_size": [int(v) for v in prep.size],
            "rule": rules.get(key, "branch_inputs"),
        }
        for key, prep in inputs.items()
    }


def describe_branch_inputs(model: Any) -> str:
    """One line for logs and plans: ``cnn=efficientnet_lite0 96x96 (image_size), ...``; ``""``
    for a model that is not a hybrid.

    Example:
        >>> describe_branch_inputs(nn.Linear(2, 2))
        ''
    """
    return ", ".join(
        f"{key}={b['name']} {b['input_size'][0]}x{b['input_size'][1]} ({b['rule']})"
        for key, b in branch_input_sizes(model).items()
    )
