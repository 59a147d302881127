"""Dataset audit: likely label errors, exact and near duplicates, train/test leaks and outliers.

Named ``auditing`` so that the function :func:`graft.audit` does not share a name with a package.

Example:
    >>> import graft
    >>> result = graft.audit("data/pets", out="audit/pets")  # doctest: +SKIP
    >>> result.counts()["leaks"]  # doctest: +SKIP
    3
"""

from __future__ import annotations

from graft.lazy import lazy_exports

_API = {
    "audit": "graft.auditing.api",
    "AuditConfig": "graft.auditing.config",
    "AuditResult": "graft.auditing.result",
    "find_label_issues": "graft.auditing.labels",
    "confident_joint": "graft.auditing.labels",
    "out_of_fold_probabilities": "graft.auditing.labels",
}
__all__ = sorted(_API)


__getattr__, __dir__ = lazy_exports(__name__, _API)
