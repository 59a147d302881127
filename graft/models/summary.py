"""``trainable_summary``: one table of groups, parameter counts, what trains, and the BatchNorm mode.

Example:
    >>> m = create_model("test_resnet", num_classes=3, pretrained=False)  # doctest: +SKIP
    >>> freeze(m, upto=2); print(trainable_summary(m))  # doctest: +SKIP
      # group     params  trainable  BN
      0 stem         ...          0  frozen (eval)
"""

from __future__ import annotations

from torch import nn

from graft.models.freezing import is_frozen_bn
from graft.models.groups import param_groups


def trainable_summary(model: nn.Module) -> str:
    """A text table: group index and name, parameters, trainable parameters, BatchNorm mode."""
    params = dict(model.named_parameters())
    bn_modes = _bn_modes_by_prefix(model)
    rows = []
    for i, (name, members) in enumerate(param_groups(model)):
        total = sum(params[n].numel() for n in members)
        trainable = sum(params[n].numel() for n in members if params[n].requires_grad)
        modes = sorted(
            {
                mode
                for prefix, mode in bn_modes.items()
                if any(m.startswith(prefix + ".") for m in members)
            }
        )
        rows.append((str(i), name, f"{total:,}", f"{trainable:,}", "/".join(modes) or "-"))
    total = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    rows.append(
        (
            "",
            "total",
            f"{total:,}",
            f"{trainable:,}",
            f"{100 * trainable / max(total, 1):.1f}% trainable",
        )
    )
    return _table(("#", "group", "params", "trainable", "BN"), rows)


def _bn_modes_by_prefix(model: nn.Module) -> dict[str, str]:
    modes = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._NormBase):
            modes[name] = "frozen (eval)" if is_frozen_bn(module) else "train"
    return modes


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {0, 2, 3}

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(r) for r in rows[:-1]), rule, fmt(rows[-1])])
