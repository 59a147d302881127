"""graft: transfer learning with pretrained vision models.

The public API, imported lazily so that ``import graft`` stays fast:

>>> import graft
>>> model = graft.create_model("test_efficientnet", num_classes=3, pretrained=False)
>>> graft.freeze(model, upto=2)  # doctest: +SKIP
"""

from __future__ import annotations

from graft.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    # models
    "create_model": "graft.models",
    "list_models": "graft.models",
    "available_models": "graft.models",
    "freeze": "graft.models",
    "unfreeze": "graft.models",
    "trainable_summary": "graft.models",
    "param_groups": "graft.models",
    "replace_head": "graft.models",
    # data
    "scan_dataset": "graft.data",
    "ImageDataset": "graft.data",
    "build_transforms": "graft.data",
    "dataset_stats": "graft.data",
    "sample_dataset": "graft.data",
    "load_image": "graft.data",
    "resolve_data_config": "graft.data",
    "parse_normalization": "graft.data",
    # bundles
    "save_bundle": "graft.bundle",
    "load_bundle": "graft.bundle",
    # training
    "fit": "graft.train",
    "FitResult": "graft.train",
    "evaluate": "graft.inference",
    "predict": "graft.inference",
    "lr_find": "graft.train",
    "FitConfig": "graft.train",
    "ImageClassifier": "graft.inference",
    # features
    "extract": "graft.features",
    "Probe": "graft.features",
    "probe": "graft.features",
    "Features": "graft.features",
    "tune_allocator": "graft.runtime",
    # hybrids, distillation, selection, export
    "create_hybrid": "graft.hybrid",
    "distill_model": "graft.distill",
    "select_models": "graft.select",
    "SelectionResult": "graft.select",
    "export_model": "graft.export",
    "ensemble": "graft.ensembling",
    "EnsembleResult": "graft.ensembling",
    "Int8Options": "graft.export",
    # reports
    "write_report": "graft.report",
    "grad_cam": "graft.report",
    # dataset audit
    "audit": "graft.auditing",
    # serving
    "serve": "graft.serving",
    # errors
    "GraftError": "graft.errors",
}

# sub-packages that are also reachable as graft.NAME (never a function of the same name: they were
# graft.select / graft.distill / graft.export functions; calling the package still works for one
# release with a warning, see graft.lazy.deprecated_call)
_PACKAGES = ("select", "distill", "export")

__all__ = sorted([*_API, "__version__"])


_getattr, __dir__ = lazy_exports(__name__, _API, cache=True)


# names whose runs end with report.html: graft.report installs its writer with graft.train (a lower
# layer that never imports it) when imported, so the public API loads it first (ARCHITECTURE.md)
_REPORTING = frozenset({"fit", "evaluate", "ImageClassifier", "distill_model"})
# names that can run --preset best: graft.ensembling.best installs its ensemble runner with
# graft.train the same way
_PRESET_BEST = frozenset({"fit", "ImageClassifier"})


def __getattr__(name: str):
    import importlib

    if name in _PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _REPORTING:
        importlib.import_module("graft.report")
    if name in _PRESET_BEST:
        importlib.import_module("graft.ensembling.best")
    return _getattr(name)
