"""Put a pretrained state dict into a freshly built model: adapt the input conv, keep or drop the
classifier, and refuse files of another architecture with the first mismatches spelled out.

Example:
    >>> import timm
    >>> m = timm.create_model("test_resnet", num_classes=3)
    >>> load_pretrained(m, timm.create_model("test_resnet").state_dict(), name="test_resnet")
    False
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graft.errors import GraftError
from graft.log import get_logger

log = get_logger("graft.models")
StateDict = dict[str, Tensor]
_SHOWN = 5


class WeightsMismatchError(GraftError, ValueError):
    """A weights file does not fit the architecture it was given for."""


def module_path(model: nn.Module, module: nn.Module) -> str:
    """Dotted name of ``module`` inside ``model`` (found by identity)."""
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ValueError("module is not part of the model")


def classifier_path(model: nn.Module) -> str:
    """Dotted name of the model's classifier (``get_classifier()``)."""
    return module_path(model, model.get_classifier())


def load_pretrained(
    model: nn.Module,
    state_dict: StateDict,
    *,
    name: str,
    source: str = "weights",
    first_conv: str | None = None,
) -> bool:
    """Load ``state_dict`` into ``model``; return True when the pretrained classifier was kept.

    The classifier is kept only when its keys and shapes match the model's; otherwise exactly the
    classifier keys are dropped (logged). Any other missing, unexpected or mis-shaped key raises
    :class:`WeightsMismatchError`.
    """
    state_dict = dict(state_dict)
    if first_conv:
        _adapt_first_conv(model, state_dict, first_conv, name)
    model_sd = model.state_dict()
    head = classifier_path(model)
    head_kept = _split_head(model_sd, state_dict, head, name)
    _check_fit(model_sd, state_dict, head, name, source)
    model.load_state_dict(state_dict, strict=False)
    return head_kept


def _in_head(key: str, head: str) -> bool:
    return bool(head) and (key == head or key.startswith(head + "."))


def _split_head(model_sd: StateDict, sd: StateDict, head: str, name: str) -> bool:
    """Drop the file's classifier keys unless they fit the model's classifier exactly."""
    file_keys = {k: tuple(v.shape) for k, v in sd.items() if _in_head(k, head)}
    model_keys = {k: tuple(v.shape) for k, v in model_sd.items() if _in_head(k, head)}
    if file_keys and file_keys == model_keys:
        return True
    for k in file_keys:
        del sd[k]
    if file_keys:
        old = _classes(file_keys)
        new = _classes(model_keys)
        log.info(
            "%s: dropped the pretrained classifier '%s' (%s classes); the new head (%s classes) starts from a small init",
            name, head, old, new if model_keys else 0,
        )  # fmt: skip
    return False


def _classes(shapes: dict[str, tuple[int, ...]]) -> int | str:
    weights = [s for k, s in shapes.items() if k.endswith("weight")]
    return weights[-1][0] if weights and weights[-1] else "?"


def _check_fit(model_sd: StateDict, sd: StateDict, head: str, name: str, source: str) -> None:
    missing = [
        k
        for k in model_sd
        if k not in sd and not _in_head(k, head) and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in sd if k not in model_sd]
    shapes = [
        f"{k} file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in model_sd.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es), first: " + "; ".join(shapes[:_SHOWN]))
    if missing:
        parts.append(
            f"{len(missing)} key(s) missing from the file, first: " + ", ".join(missing[:_SHOWN])
        )
    if unexpected:
        parts.append(
            f"{len(unexpected)} unexpected key(s) in the file, first: "
            + ", ".join(unexpected[:_SHOWN])
        )
    raise WeightsMismatchError(
        f"weights from {source} do not fit model '{name}': " + ". ".join(parts) + ". "
        "Check that the file was saved from this architecture (same name, same variant), "
        "or pick the model name that matches the file."
    )


@torch.no_grad()
def _adapt_first_conv(model: nn.Module, sd: StateDict, first_conv: str, name: str) -> None:
    from timm.models import adapt_input_conv

    key = f"{first_conv}.weight"
    if key not in sd or key not in model.state_dict():
        return
    want = model.state_dict()[key].shape[1]
    have = sd[key].shape[1]
    if want == have or sd[key].ndim != 4:
        return
    sd[key] = adapt_input_conv(want, sd[key], base_chans=have)
    how = "summed over channels" if want == 1 else "repeated and rescaled by 3/in_chans"
    log.info(
        "%s: adapted the first conv '%s' from %d to %d input channels (%s)",
        name,
        first_conv,
        have,
        want,
        how,
    )
