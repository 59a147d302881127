"""--logger csv,tensorboard,mlflow: each logger's files are read back after a tiny run."""

from __future__ import annotations

import csv

import pytest
import yaml

from graft.errors import ConfigError, UnknownNameError
from graft.train import fit
from graft.train.loggers import check_available, parse_loggers


def _run(folder, opts, tmp_path, logger):
    return fit(folder, recipe="auto", epochs=2, out=str(tmp_path / "r"), report=False,
               logger=logger, **opts)  # fmt: skip


def test_parse_loggers_keeps_csv_and_rejects_typos():
    assert parse_loggers("csv") == ("csv",)
    assert parse_loggers("tensorboard, mlflow,tensorboard") == ("csv", "tensorboard", "mlflow")
    with pytest.raises(UnknownNameError, match="tensorbord"):
        parse_loggers("tensorbord")


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="graft\\[tracking\\]"):
        check_available(("csv", "mlflow"))


def test_csv_logger_holds_config_lrs_phases_and_final_metrics(tiny_folder, tiny_opts, tmp_path):
    result = _run(tiny_folder, tiny_opts, tmp_path, "csv")
    logs = tmp_path / "r" / "logs"
    hparams = yaml.safe_load((logs / "hparams.yaml").read_text())
    assert hparams["epochs"] == 2 and hparams["head_epochs"] == 1 and hparams["recipe"] == "auto"
    with open(logs / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    phases = [float(r["phase"]) for r in rows if r.get("phase")]
    assert phases == [0.0, 1.0]
    assert any(r.get("lr_head") for r in rows) and any(r.get("lr_stem") for r in rows)
    final = [r for r in rows if r.get("final_val_acc")]
    assert float(final[0]["final_val_acc"]) == pytest.approx(result.metrics["val_acc"])


def test_tensorboard_logger_event_files(tiny_folder, tiny_opts, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _run(tiny_folder, tiny_opts, tmp_path, "csv,tensorboard")
    (folder,) = {p.parent for p in (tmp_path / "r" / "tensorboard").rglob("events.out.tfevents*")}
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"lr_head", "lr_stem", "phase", "final_val_acc", "train_loss_epoch"} <= tags
    assert [e.value for e in events.Scalars("phase")] == [0.0, 1.0]
    assert events.Scalars("final_val_acc")[-1].value == pytest.approx(result.metrics["val_acc"])
    assert (folder / "hparams.yaml").is_file()


def test_mlflow_logger_local_store(tiny_folder, tiny_opts, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    result = _run(tiny_folder, tiny_opts, tmp_path, "mlflow")
    client = MlflowClient(tracking_uri=(tmp_path / "r" / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "graft"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["recipe"] == "auto" and run.data.params["epochs"] == "2"
    assert run.data.metrics["final_val_acc"] == pytest.approx(result.metrics["val_acc"])
    history = client.get_metric_history(run.info.run_id, "phase")
    assert [m.value for m in history] == [0.0, 1.0]
    assert "lr_head" in run.data.metrics
