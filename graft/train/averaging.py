"""Weight arithmetic on state dicts: averages, interpolations, greedy soups, BatchNorm recomputation.

Pure functions over ``{name: tensor}`` mappings (a model's ``state_dict()``), used after training by
:mod:`graft.train.improve` for WiSE-FT and ``--average``:

- :func:`average_states`: the element-wise mean of several checkpoints (SWA, top-k).
- :func:`interpolate_states`: ``(1 - alpha) * start + alpha * end`` (WiSE-FT; ``alpha = 1`` returns
  ``end`` exactly).
- :func:`greedy_soup`: checkpoints added in order of validation accuracy while it does not drop
  (Wortsman et al., "Model soups", ICML 2022).
- :func:`recompute_bn`: BatchNorm running statistics measured again on training images with
  :func:`torch.optim.swa_utils.update_bn`.

Floating-point tensors (weights and BatchNorm running statistics) are averaged; integer tensors
(``num_batches_tracked``) are taken from the last state.

Example:
    >>> import torch
    >>> a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
    >>> average_states([a, b])["w"].tolist()
    [0.5, 0.5]
    >>> interpolate_states(a, b, 0.3)["w"].tolist()
    [0.30000001192092896, 0.30000001192092896]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from graft.errors import ConfigError

State = Mapping[str, torch.Tensor]


def average_states(states: Sequence[State]) -> dict[str, torch.Tensor]:
    """The element-wise mean of ``states`` (same keys and shapes); one state is returned as a copy.

    Example:
        >>> average_states([{"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}])["w"].item()
        2.0
    """
    if not states:
        raise ConfigError("weight averaging needs at least one checkpoint, got none.")
    _check_same_keys(states)
    out: dict[str, torch.Tensor] = {}
    for name, last in states[-1].items():
        if torch.is_floating_point(last):
            total = torch.zeros_like(last, dtype=torch.float64)
            for state in states:
                total += state[name].to(torch.float64)
            out[name] = (total / len(states)).to(last.dtype)
        else:
            out[name] = last.clone()
    return out


def interpolate_states(start: State, end: State, alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * end`` for floating tensors; ``alpha = 1`` gives ``end`` exactly.

    Example:
        >>> s = interpolate_states({"w": torch.tensor([0.0])}, {"w": torch.tensor([4.0])}, 0.25)
        >>> s["w"].item()
        1.0
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}.")
    _check_same_keys([start, end])
    out: dict[str, torch.Tensor] = {}
    for name, last in end.items():
        if alpha == 1.0 or not torch.is_floating_point(last):
            out[name] = last.clone()
        elif alpha == 0.0:
            out[name] = start[name].clone()
        else:
            out[name] = torch.lerp(start[name].to(last.dtype), last, alpha)
    return out


def greedy_soup(
    states: Sequence[State], scores: Sequence[float], evaluate: Callable[[State], float]
) -> tuple[dict[str, torch.Tensor], list[int], list[float]]:
    """Greedy soup: sort checkpoints by ``scores`` (best first), then add each one to the soup if the
    averaged weights score at least as well on validation (``evaluate(state) -> accuracy``).

    Returns (soup weights, indices of the checkpoints kept, validation accuracy after each step).

    Example:
        >>> states = [{"w": torch.tensor([0.0])}, {"w": torch.tensor([2.0])}]
        >>> soup, kept, curve = greedy_soup(states, [0.5, 0.9], lambda s: 1 - abs(s["w"].item() - 1.5))
        >>> kept, soup["w"].item()
        ([1, 0], 1.0)
    """
    if len(states) != len(scores) or not states:
        raise ConfigError(
            f"greedy soup needs one score per checkpoint, got {len(states)} and {len(scores)}."
        )
    order = sorted(range(len(states)), key=lambda i: -scores[i])
    kept = [order[0]]
    best = evaluate(states[order[0]])
    curve = [best]
    for i in order[1:]:
        candidate = average_states([states[j] for j in [*kept, i]])
        score = evaluate(candidate)
        curve.append(score)
        if score >= best:
            kept.append(i)
            best = score
    return average_states([states[j] for j in kept]), kept, curve


def bn_buffers_differ(model: nn.Module, states: Sequence[State]) -> bool:
    """True when the BatchNorm running statistics of ``states`` are not all identical.

    Recipes that keep BatchNorm in eval mode (``auto``: ``frozen`` then ``eval``) never update
    them, so every checkpoint holds the same statistics, the ones the weights were trained with.

    Example:
        >>> bn_buffers_differ(model, [s1, s2])  # doctest: +SKIP
        False
    """
    names = [
        f"{prefix}.{buf}" if prefix else buf
        for prefix, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for buf in ("running_mean", "running_var")
    ]
    first = states[0]
    return any(not torch.equal(first[n], s[n]) for s in states[1:] for n in names if n in first)


def recompute_bn(
    model: nn.Module, loader: Iterable[Any], device: torch.device | None = None
) -> bool:
    """Measure BatchNorm running statistics again on ``loader``'s images (``update_bn``).

    Returns False (and changes nothing) when the model has no BatchNorm layer. Batches are
    ``(images, labels)`` or ``None`` (a batch whose every image failed to load, skipped).

    Example:
        >>> recompute_bn(model, datamodule.eval_loader(datamodule.plain_train_set))  # doctest: +SKIP
        True
    """
    from torch.optim.swa_utils import update_bn

    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return False
    was_training = model.training
    update_bn((b[0] for b in loader if b is not None), model, device=device)
    model.train(was_training)
    return True


@torch.no_grad()
def accuracy(
    model: nn.Module, loader: Iterable[Any], device: torch.device | None = None, tta: bool = False
) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``loader``'s ``(images, labels)`` batches;
    ``tta=True`` averages the probabilities of each image and its horizontal mirror.

    Example:
        >>> accuracy(model, datamodule.val_dataloader())  # doctest: +SKIP
        0.91
    """
    was_training = model.training
    model.eval()
    right = total = 0
    for batch in loader:
        if batch is None:
            continue
        x, y = batch
        if device is not None:
            x, y = x.to(device), y.to(device)
        probs = model(x).softmax(-1)
        if tta:
            probs = probs + model(x.flip(-1)).softmax(-1)
        right += int((probs.argmax(-1) == y).sum())
        total += len(y)
    model.train(was_training)
    return right / total if total else 0.0


def _check_same_keys(states: Sequence[State]) -> None:
    keys = set(states[0])
    for state in states[1:]:
        if set(state) != keys:
            missing = sorted(keys ^ set(state))[:3]
            raise ConfigError(
                f"checkpoints differ in their tensors (e.g. {missing}); cannot average."
            )
