"""A fitted probe as plain arrays, and a torch module that predicts from them: no pickle anywhere.

:func:`export_probe` turns a fitted ``StandardScaler -> [PCA] -> classifier`` pipeline into named
arrays (scaler mean/scale, PCA mean/components, coefficients and intercepts, SVM support vectors,
dual coefficients and intercepts, Nystroem landmarks with their folded ridge coefficients, kNN
training set) plus a small JSON-able description.
:class:`ProbeHead` rebuilds the prediction from those arrays in torch; its scores equal scikit-learn's
``decision_function`` (linear models, SVMs) or ``log(predict_proba)`` (logreg's softmax,
kNN) so ``argmax`` gives the same class.

Example:
    >>> arrays, info = export_probe(probe.pipeline_)  # doctest: +SKIP
    >>> ProbeHead(arrays, info)(torch.as_tensor(X)).argmax(1)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from graft.errors import ConfigError

KINDS = ("linear", "softmax", "svm-rbf", "nystroem", "knn")


def export_probe(pipeline: Any, clf: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and a description that :class:`ProbeHead` needs to reproduce ``pipeline``'s predictions."""
    steps = dict(pipeline.named_steps)
    scaler, pca, model = steps["scale"], steps.get("pca"), steps["clf"]
    arrays = {"scale_mean": scaler.mean_, "scale_scale": scaler.scale_}
    info: dict[str, Any] = {
        "clf": clf,
        "classes": np.asarray(model.classes_).tolist(),
        "pca": pca is not None,
    }
    if pca is not None:
        arrays["pca_mean"], arrays["pca_components"] = pca.mean_, pca.components_
        if pca.whiten:
            arrays["pca_scale"] = np.sqrt(pca.explained_variance_)
    if clf in ("logreg", "linear-svm", "ridge"):
        info["kind"] = "softmax" if clf == "logreg" else "linear"
        arrays["coef"] = np.atleast_2d(model.coef_)
        arrays["intercept"] = np.atleast_1d(model.intercept_)
    elif clf == "svm-rbf" and hasattr(model, "nystroem_"):  # the Nystroem path above the budget
        landmarks, coef, intercept = model.export()
        info.update(kind="nystroem", gamma=float(model._gamma), n_components=int(len(landmarks)))
        arrays["landmarks"], arrays["coef"], arrays["intercept"] = landmarks, coef, intercept
    elif clf == "svm-rbf":
        info.update(kind="svm-rbf", gamma=float(model._gamma), n_support=model.n_support_.tolist())
        arrays["support_vectors"] = model.support_vectors_
        arrays["dual_coef"] = model.dual_coef_
        arrays["intercept"] = model.intercept_
    elif clf == "knn":
        if model.effective_metric_ != "euclidean":
            raise ConfigError(
                f"kNN probes support the euclidean metric only, got {model.effective_metric_}"
            )
        info.update(kind="knn", k=int(model.n_neighbors), weights=str(model.weights))
        arrays["train_x"], arrays["train_y"] = model._fit_X, model._y.astype(np.int64)
    else:
        raise ConfigError(f"cannot export a probe of type '{clf}'")
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, info


class ProbeHead(nn.Module):
    """Features ``(B, ...)`` -> class scores ``(B, num_classes)``, from exported probe arrays.

    Scores are computed in float64 so that they match scikit-learn to rounding.
    """

    def __init__(self, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        super().__init__()
        if info.get("kind") not in KINDS:
            raise ConfigError(f"unknown probe kind {info.get('kind')!r}; valid: {', '.join(KINDS)}")
        self.info = dict(info)
        for (
            name,
            value,
        ) in arrays.items():  # float32 arrays (kernel probes' rows) computed in float64
            tensor = torch.as_tensor(np.asarray(value))
            self.register_buffer(name, tensor.double() if tensor.is_floating_point() else tensor)
        self.num_classes = len(info["classes"])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.flatten(1).double()  # flatten(1): no batch size baked into an export
        x = (x - self.scale_mean) / self.scale_scale
        if self.info["pca"]:
            x = (x - self.pca_mean) @ self.pca_components.transpose(0, 1)
            if hasattr(self, "pca_scale"):
                x = x / self.pca_scale
        kind = self.info["kind"]
        if kind in ("linear", "softmax"):
            scores = self._linear(x)
        elif kind == "svm-rbf":
            scores = self._svm(x)
        elif kind == "nystroem":
            scores = self._nystroem(x)
        else:
            scores = self._knn(x)
        return scores.float()

    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.coef.transpose(0, 1) + self.intercept
        if (
            z.shape[1] == 1
        ):  # binary: sklearn predicts class 1 when z > 0; softmax([0, z]) = sigmoid
            z = torch.cat([torch.zeros_like(z), z], dim=1)
        if self.info["kind"] == "softmax":
            z = torch.log_softmax(z, dim=1)
        return z

    def _svm(self, x: torch.Tensor) -> torch.Tensor:
        kernel = torch.exp(-self.info["gamma"] * _squared_distances(x, self.support_vectors))
        n_classes = self.num_classes
        bounds = np.concatenate([[0], np.cumsum(self.info["n_support"])])
        dec = []
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                si, sj = slice(bounds[i], bounds[i + 1]), slice(bounds[j], bounds[j + 1])
                value = (
                    kernel[:, si] @ self.dual_coef[j - 1, si]
                    + kernel[:, sj] @ self.dual_coef[i, sj]
                )
                dec.append(value + self.intercept[len(dec)])
        dec = torch.stack(dec, dim=1)
        if n_classes == 2:  # sklearn: decision > 0 means classes_[1]
            return torch.cat([torch.zeros_like(dec), dec], dim=1)
        return _ovr_scores(dec, n_classes)

    def _nystroem(self, x: torch.Tensor) -> torch.Tensor:
        """Ridge scores on Nystroem kernel features: ``rbf(x, landmarks) @ coef.T + intercept``."""
        kernel = torch.exp(-self.info["gamma"] * _squared_distances(x, self.landmarks))
        return self._linear(kernel)

    def _knn(self, x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x, self.train_x)
        k = min(self.info["k"], self.train_x.shape[0])
        near, idx = torch.topk(dist, k, dim=1, largest=False, sorted=True)
        if self.info["weights"] == "distance":
            zero = near == 0
            weights = torch.where(
                zero.any(1, keepdim=True), zero.double(), 1.0 / near.clamp_min(1e-300)
            )
        else:
            weights = torch.ones_like(near)
        votes = torch.zeros_like(near[:, :1]).repeat(1, self.num_classes)  # dynamic batch
        votes.scatter_add_(1, self.train_y[idx], weights)
        proba = votes / votes.sum(1, keepdim=True)
        return torch.log(proba.clamp_min(1e-12))


def _squared_distances(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``||x - r||^2`` for all pairs by one matrix product (BLAS; exports to ONNX as MatMul)."""
    x2 = (x * x).sum(1, keepdim=True)
    r2 = (rows * rows).sum(1)
    return (x2 + r2 - 2.0 * (x @ rows.transpose(0, 1))).clamp_min(0.0)


def _ovr_scores(dec: torch.Tensor, n_classes: int) -> torch.Tensor:
    """scikit-learn's one-vs-rest transform of one-vs-one SVM decisions: votes plus bounded confidence.

    Built column by column from ``dec`` (no tensor sized by the batch), so exports keep a dynamic batch.
    """
    votes = [torch.zeros_like(dec[:, 0]) for _ in range(n_classes)]
    confidence = [torch.zeros_like(dec[:, 0]) for _ in range(n_classes)]
    k = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            wins = (dec[:, k] > 0).to(dec.dtype)
            votes[i], votes[j] = votes[i] + wins, votes[j] + (1 - wins)
            confidence[i], confidence[j] = confidence[i] + dec[:, k], confidence[j] - dec[:, k]
            k += 1
    votes_t, confidence_t = torch.stack(votes, dim=1), torch.stack(confidence, dim=1)
    return votes_t + confidence_t / (3 * (confidence_t.abs() + 1))
