"""Which train/val images the suggested clean split leaves out, and why (graft never deletes files).

- A group that crosses splits (a **leak**): its train/val members go when a test member exists
  (the test set stays as it is, so its score stays honest); train members go when the group spans
  train and val only.
- A group inside one split: the first member stays, the other copies go.
- A likely label error in train/val goes when ``drop_labels``; an outlier when ``drop_outliers``.
- Test images are never dropped: they are listed for review.

Example:
    >>> from graft.auditing.result import Group
    >>> g = Group("exact", [0, 1, 2], ["train", "train", "test"])
    >>> suggest_drops([g], [], [], ["train", "train", "test"], True, False)
    {0: 'leak', 1: 'leak'}
"""

from __future__ import annotations

from graft.auditing.result import SPLIT_ORDER, Group, LabelIssue, Outlier


def suggest_drops(
    groups: list[Group],
    label_issues: list[LabelIssue],
    outliers: list[Outlier],
    splits: list[str],
    drop_labels: bool,
    drop_outliers: bool,
) -> dict[int, str]:
    """``{index: reason}`` for each train/val image to leave out of the clean split."""
    drop: dict[int, str] = {}
    for group in groups:
        drop.update({i: reason for i, reason in _group_drops(group).items() if i not in drop})
    if drop_labels:
        for issue in label_issues:
            if splits[issue.index] != "test":
                drop.setdefault(issue.index, "label")
    if drop_outliers:
        for o in outliers:
            if splits[o.index] != "test":
                drop.setdefault(o.index, "outlier")
    return dict(sorted(drop.items()))


def _group_drops(group: Group) -> dict[int, str]:
    held_out = max(SPLIT_ORDER[s] for s in group.splits)
    out: dict[int, str] = {}
    kept_one = False
    for i, split in zip(group.members, group.splits, strict=True):
        if split == "test":
            continue
        if SPLIT_ORDER[split] < held_out:
            out[i] = "leak"
        elif kept_one:
            out[i] = f"{group.kind}-duplicate"
        else:
            kept_one = True
    return out
