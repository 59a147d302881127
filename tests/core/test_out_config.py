"""Every command with ``--out FOLDER`` writes its resolved options there as ``config.yaml``, which
``--config`` reads back into the same options (issue #16: "the saved config.yaml ... from it")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graft.bundle import save_bundle
from graft.cli import main
from graft.commands import option_classes
from graft.config import load
from graft.models import create_model

FAST = ["--model", "test_efficientnet", "--weights", "none", "--image-size", "32"]
DATA_CONFIG = {"input_size": (3, 32, 32), "interpolation": "bilinear", "crop_pct": 1.0,
               "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_folder_session: Path) -> dict[str, str]:
    """The data folder, a bundle of a tiny model, and a one-epoch `graft fit` run folder."""
    from graft.train import fit

    root = tmp_path_factory.mktemp("outputs")
    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=3, pretrained=False).eval()
    bundle = save_bundle(root / "bundle", model, ["blue", "green", "red"], DATA_CONFIG)
    run = fit(str(tiny_folder_session), out=str(root / "run"), model="test_efficientnet",
              weights="none", image_size=32, batch_size=8, workers=0, progress=False, epochs=1,
              report=False).run_dir  # fmt: skip
    return {"data": str(tiny_folder_session), "bundle": str(bundle), "run": str(run)}


# command -> its arguments before --out (DATA, BUNDLE and RUN are replaced by the fixture's paths)
ARGV = {
    "extract": ["DATA", *FAST, "--workers", "0", "--no-progress"],
    "probe": ["DATA", *FAST, "--workers", "0"],
    "stats": ["DATA", "--model", "test_efficientnet", "--accelerator", "cpu", "--no-progress"],
    "predict": ["BUNDLE", "DATA", "--accelerator", "cpu", "--workers", "0"],
    "evaluate": ["BUNDLE", "DATA", "--accelerator", "cpu", "--workers", "0"],
    "export": ["BUNDLE"],
    "select": [
        "DATA",
        *FAST,
        "--sample-per-class",
        "4",
        "--repeats",
        "1",
        "--batch-size",
        "4",
        "--memory",
        "off",
        "--accelerator",
        "cpu",
    ],  # fmt: skip
    "report": ["RUN", "--gradcam", "0", "--mistakes", "0"],
    "lr-find": [
        "DATA",
        *FAST,
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--accelerator",
        "cpu",
    ],  # fmt: skip
    "audit": ["DATA", *FAST, "--workers", "0", "--no-progress", "--folds", "2"],
    "ensemble": ["BUNDLE", "BUNDLE"],
}


def test_every_command_with_out_is_listed() -> None:
    with_out = {c for c, cls in option_classes().items() if "out" in cls.__dataclass_fields__}
    assert with_out - {"fit", "distill", "demo", "data sample"} == set(ARGV)


@pytest.mark.parametrize("command", sorted(ARGV))
def test_out_folder_holds_the_resolved_config(command: str, inputs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [
        inputs.get(a.lower(), a) if a in ("DATA", "BUNDLE", "RUN") else a for a in ARGV[command]
    ]
    assert main([command, *argv, "--out", str(out)]) == 0
    saved = out / "config.yaml"
    assert saved.is_file(), sorted(p.name for p in out.iterdir())
    opts = load(option_classes()[command], saved)  # the keys are the options' own
    assert opts.out == str(out)
    if command == "report":  # the run folder keeps fit's own config.yaml
        assert load(option_classes()["fit"], Path(inputs["run"]) / "config.yaml").epochs == 1
    if "--model" in argv:
        assert opts.model in ("test_efficientnet", ["test_efficientnet"])  # select: a list


def test_report_into_the_run_folder_keeps_fits_config(inputs) -> None:
    run = Path(inputs["run"])
    before = (run / "config.yaml").read_text()
    assert main(["report", str(run), "--gradcam", "0", "--mistakes", "0"]) == 0
    assert (run / "report.html").is_file() and (run / "config.yaml").read_text() == before


def test_lr_find_config_reads_its_own_and_fits_config_yaml(inputs, tmp_path: Path) -> None:
    from graft.commands.lr_find import _read_config
    from graft.errors import ConfigError

    own, fit = _read_config(str(Path(inputs["run"]) / "config.yaml"))  # graft fit's
    assert own == {} and fit.epochs == 1 and fit.model == "test_efficientnet"
    mine = tmp_path / "lr.yaml"
    mine.write_text("steps: 7\nphase: full\nbatch_size: 4\n")
    own, fit = _read_config(str(mine))
    assert own == {"steps": 7, "phase": "full"} and fit.batch_size == 4
    mine.write_text("stepz: 7\n")
    with pytest.raises(ConfigError, match="stepz.*Did you mean .steps."):
        _read_config(str(mine))
